"""The publish step as a Dagster asset, and where an orchestrated step reads or writes.

`orchestration.definitions` adds `build_publish_asset(...)` downstream of every dbt asset, so it
runs only after every dbt test (asset check) and blocking check passed; the export depends on
it and reads the newly published warehouse. Its materialization says which version is live.
"""

# No `from __future__ import annotations`: Dagster reads the context annotations at runtime.

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    PartitionsDefinition,
    asset,
)

from callmetrics.publishing.store import PublishReport, WarehouseStore

PUBLISHED_KEY = AssetKey(["warehouse", "published"])


def warehouse_for_run(run_id: str) -> Path:
    """The file a step of run `run_id` must read: the run's work file before it is published
    (the checks audit the build, not the live version), the live warehouse otherwise."""
    store = WarehouseStore.from_settings()
    return store.work_path if store.work_run_id() == run_id else store.link


def publish_metadata(store: WarehouseStore, report: PublishReport) -> dict[str, Any]:
    version = report.version
    return {
        "live_version": version.name,
        "published_at": version.published_at,
        "build_method": version.method,
        "base_version": f"v{version.base:06d}" if version.base is not None else "none",
        "warehouse": MetadataValue.path(str(store.link)),
        "version_file": MetadataValue.path(str(store.versions_dir / version.file_name)),
        "parquet": MetadataValue.path(str(report.parquet_folder)),
        "kept_versions": ", ".join(v.name for v in store.versions()),
        "publish_seconds": report.seconds["total"],
        "prepare_seconds": report.seconds["prepare"],
        "checkpoint_seconds": report.seconds["checkpoint"],
        "parquet_seconds": report.seconds["parquet"],
        "switch_seconds": report.seconds["switch"],
        "warehouse_bytes": report.warehouse_bytes,
        "parquet_bytes": report.parquet_bytes,
        "row_counts": MetadataValue.json(version.row_counts),
    }


def build_publish_asset(
    deps: Sequence[AssetKey],
    partitions_def: PartitionsDefinition | None = None,
    backfill_policy: BackfillPolicy | None = None,
) -> AssetsDefinition:
    @asset(
        key=PUBLISHED_KEY,
        deps=list(deps),
        partitions_def=partitions_def,
        backfill_policy=backfill_policy,
        group_name="warehouse",
        kinds={"duckdb", "parquet"},
        description=(
            "Publishes the audited build: checkpoint, Parquet copies of the marts, then an "
            "atomic switch of the warehouse link to the new version (docs/publishing.md). "
            "Runs only after every dbt test and blocking check passed; `live_version` in the "
            "metadata is the version readers get."
        ),
    )
    def published(context: AssetExecutionContext) -> MaterializeResult:
        store = WarehouseStore.from_settings()
        report = store.publish_work(run_id=context.run_id)
        context.log.info(
            f"published {report.version.name} ({report.version.method}) in "
            f"{report.seconds['total']:.2f} s: {store.link} now serves it"
        )
        return MaterializeResult(metadata=publish_metadata(store, report))

    return published
