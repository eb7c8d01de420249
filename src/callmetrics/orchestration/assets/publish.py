"""Write, audit, publish (`callmetrics.publishing`): dbt writes a work file, never the live one.

The dbt step writes the run's work file (`WarehouseStore.ensure_work`, keyed by the Dagster run
id; dbt gets its path as `--vars`). After every dbt
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
    AssetObservation,
    AssetsDefinition,
    MaterializeResult,
    asset,
)

from callmetrics.publishing.postgres import PostgresError, publish_if_configured
from callmetrics.publishing.store import PublishReport, WarehouseStore
from callmetrics.settings import Settings

PUBLISHED_KEY = AssetKey(["warehouse", "published_version"])


def warehouse_store(settings: Settings) -> WarehouseStore:
    return WarehouseStore.from_settings(settings)


def file_to_read(current: WarehouseStore, run_id: str) -> Path:
    """The run's work file when this run is building one, else the live warehouse."""
    try:
        info = json.loads(current.work_info_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        info = None
    if isinstance(info, dict) and info.get("run_id") == run_id and current.work_path.exists():
        return current.work_path
    return current.link


def build_publish_asset(deps: Sequence[AssetKey], settings: Settings) -> AssetsDefinition:
    @asset(
        key=PUBLISHED_KEY,
        deps=list(deps),
        group_name="warehouse",
        kinds={"duckdb", "parquet", "postgres"},
        description=(
            "The run's work file, audited and published as the live warehouse version "
            "(CALLMETRICS_WAREHOUSE links to it), with its Parquet copies of the marts."
        ),
    )
    def published_version(context: AssetExecutionContext) -> MaterializeResult:
        current = warehouse_store(settings)
        report = current.publish_work(run_id=context.run.run_id)
        version = report.version
        context.log.info(f"published {version.name} ({version.method})")
        postgres = publish_to_postgres(context, current, report, settings)
        return MaterializeResult(
            metadata={
                **postgres,
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


def publish_to_postgres(
    context: AssetExecutionContext,
    current: WarehouseStore,
    report: PublishReport,
    settings: Settings,
) -> dict[str, str | int | float]:
    """The second destination: the same version in PostgreSQL when CALLMETRICS_POSTGRES_URL is
    set. A failure fails this step with one line; the DuckDB version stays published."""
    version = report.version
    live_path = current.live_path()
    try:
        loaded = (
            None
            if live_path is None
            else publish_if_configured(live_path, version, keep=current.keep, settings=settings)
        )
    except PostgresError as exc:
        context.log_event(
            AssetObservation(
                asset_key=PUBLISHED_KEY,
                description=f"DuckDB published {version.name}; PostgreSQL failed",
                metadata={"version": version.name, "postgres_error": str(exc)},
            )
        )
        raise PostgresError(f"DuckDB published {version.name}, but {exc}") from None
    if loaded is None:
        return {}
    context.log.info(loaded.summary())
    return {
        "postgres_version": loaded.version,
        "postgres_tables_loaded": len(loaded.loaded),
        "postgres_rows_loaded": loaded.rows_loaded,
        "postgres_seconds": loaded.seconds.get("total", 0.0),
    }
