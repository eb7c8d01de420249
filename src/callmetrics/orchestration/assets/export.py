"""The exporter's export-all as an asset downstream of the marts, and the marts' freshness check.

The export reads the live warehouse, after `warehouse/published_version` published the run's
work file; the freshness check reads the work file, before publishing, and blocks it.

For every day of the run (one day nightly, each day of a backfilled range) it writes one payload
per organization, per reseller and for all organizations, for that day and for the trailing 30
days ending with it, under `CALLMETRICS_EXPORT_DIR` (default: `exports/` beside the warehouse):

    <export dir>/<day>/day/...            startDate = endDate = <day>
    <export dir>/<day>/trailing-30-days/  startDate = <day> - 29 days, endDate = <day>

Each connection to the warehouse is read-only and closed before the step ends: dbt cannot take
its write lock while any process holds the file.
"""

# No `from __future__ import annotations`: Dagster reads the context annotations at runtime.

from collections.abc import Sequence
from datetime import date, timedelta

import duckdb
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    MaterializeResult,
    PartitionsDefinition,
    asset,
    asset_check,
)

from callmetrics.exporter.api import Exporter
from callmetrics.exporter.commands import write_all
from callmetrics.exporter.timerange import parse_range
from callmetrics.orchestration.assets.publish import file_to_read, warehouse_store
from callmetrics.orchestration.partitions import SINGLE_RUN, day_start, run_days
from callmetrics.settings import DEFAULT_MAX_LAG_HOURS, MART_MAX_LAG_ENV, Settings

TRAILING_DAYS = 30


def export_windows(day: date) -> dict[str, tuple[date, date]]:
    """The ranges written for a day: name -> (first day, last day), both included."""
    return {
        "day": (day, day),
        f"trailing-{TRAILING_DAYS}-days": (day - timedelta(days=TRAILING_DAYS - 1), day),
    }


def build_export_asset(
    deps: Sequence[AssetKey], partitions: PartitionsDefinition, settings: Settings
) -> AssetsDefinition:
    @asset(
        key=AssetKey(["exports", "metrics_payloads"]),
        deps=list(deps),
        partitions_def=partitions,
        backfill_policy=SINGLE_RUN,
        group_name="exports",
        kinds={"python", "json"},
        description=(
            "Get Metrics payloads (export-all) for the day that just ended and the trailing "
            f"{TRAILING_DAYS} days: one per organization, per reseller and for all."
        ),
    )
    def metrics_payloads(context: AssetExecutionContext) -> MaterializeResult:
        root = settings.exports
        first, last = run_days(context)
        written = 0
        folders: list[str] = []
        with Exporter(settings.warehouse) as exporter:
            day = first
            while day <= last:
                for name, (start, end) in export_windows(day).items():
                    result = exporter.export_all(parse_range(start.isoformat(), end.isoformat()))
                    folder = root / day.isoformat() / name
                    manifest = write_all(folder, result, str(exporter.path))
                    written += len(manifest["files"])
                    folders.append(str(folder))
                day += timedelta(days=1)
        context.log.info(f"wrote {written} payloads under {root}")
        return MaterializeResult(
            metadata={"payloads": written, "export_dir": str(root), "last_folder": folders[-1]}
        )

    return metrics_payloads


def build_mart_freshness_check(
    mart_key: AssetKey, table: str, settings: Settings
) -> AssetChecksDefinition:
    """Blocking: the mart's newest bucket must reach the run's last day (less the allowed lag)."""

    @asset_check(
        asset=mart_key,
        name="covers_run_day",
        blocking=True,
        description=(
            "newest bucket_start reaches the start of the run's day (allowed lag "
            f"${MART_MAX_LAG_ENV}, default {DEFAULT_MAX_LAG_HOURS:g} h)"
        ),
    )
    def mart_fresh(context: AssetCheckExecutionContext) -> AssetCheckResult:
        _first, last = run_days(context)
        needed = day_start(last) - settings.mart_max_lag
        # Before publishing, the run's work file holds the marts just built.
        work = file_to_read(warehouse_store(settings), context.run.run_id)
        con = duckdb.connect(str(work), read_only=True)
        try:
            con.execute("set timezone = 'UTC'")
            row = con.execute(f"select max(bucket_start) from {table}").fetchone()
        finally:
            con.close()
        newest = row[0] if row else None
        passed = newest is not None and newest >= needed
        shown = newest.isoformat() if newest else "none"
        return AssetCheckResult(
            passed=passed,
            severity=AssetCheckSeverity.ERROR,
            description=None
            if passed
            else f"{table} is stale: newest bucket {shown}, the run for {last} needs one at or "
            f"after {needed.isoformat()}",
            metadata={"newest_bucket": shown, "needed_from": needed.isoformat()},
        )

    return mart_fresh
