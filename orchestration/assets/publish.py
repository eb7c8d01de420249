"""Write, audit, publish (`callmetrics.publishing`): dbt writes a work file, never the live one.

The dbt step points `CALLMETRICS_WAREHOUSE` at the run's work file (`WarehouseStore.building`,
keyed by the Dagster run id). After every dbt
model and test passed and the marts' freshness check passed, `published_version` publishes the
work file: the warehouse link switches to it in one rename. The export reads the live version.
A failing test or a stale source therefore leaves the live warehouse as it was.
"""

# No `from __future__ import annotations`: Dagster reads the context annotations at runtime.

import json
from collections.abc import Sequence
from pathlib import Path

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    MaterializeResult,
    asset,
)

from callmetrics.publishing import WarehouseStore
from callmetrics.settings import Settings

PUBLISHED_KEY = AssetKey(["warehouse", "published_version"])


def store() -> WarehouseStore:
    return WarehouseStore.from_settings(Settings.from_env())


def file_to_read(run_id: str) -> Path:
    """The run's work file when this run is building one, else the live warehouse."""
    current = store()
    try:
        info = json.loads(current.work_info_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        info = None
    if isinstance(info, dict) and info.get("run_id") == run_id and current.work_path.exists():
        return current.work_path
    return current.link


def build_publish_asset(deps: Sequence[AssetKey]) -> AssetsDefinition:
    @asset(
        key=PUBLISHED_KEY,
        deps=list(deps),
        group_name="warehouse",
        kinds={"duckdb", "parquet"},
        description=(
            "The run's work file, audited and published as the live warehouse version "
            "(CALLMETRICS_WAREHOUSE links to it), with its Parquet copies of the marts."
        ),
    )
    def published_version(context: AssetExecutionContext) -> MaterializeResult:
        report = store().publish_work(run_id=context.run.run_id)
        version = report.version
        context.log.info(f"published {version.name} ({version.method})")
        return MaterializeResult(
            metadata={
                "version": version.name,
                "method": version.method,
                "base": "" if version.base is None else f"v{version.base:06d}",
                "mart_rows": sum(version.row_counts.values()),
                "warehouse_bytes": report.warehouse_bytes,
                "parquet_bytes": report.parquet_bytes,
                "publish_seconds": report.seconds.get("total", 0.0),
            }
        )

    return published_version
