"""The raw Parquet tables as external assets, and their freshness checks.

Dagster does not produce the raw tables (extracts land in `CALLMETRICS_RAW_DIR`), so they are
external assets; their keys come from the dbt sources through the translator, so the dbt models'
edges land on them. The checks run first in every nightly run and gate the dbt steps. They are
the project's one freshness mechanism (the dbt sources declare no freshness):

- `calls_fresh` (blocking): the newest call must have started within
  `CALLMETRICS_RAW_MAX_LAG_HOURS` (default 24) of the end of the run's last day, i.e. by default
  the extract must hold calls of the day that just ended. It stands for the whole extract:
  telemetry's `occurred_at` may be null and never places an event in time;
- `has_rows` (blocking) on the three current-state tables: an empty extract of organizations,
  resellers or agents would make every organization unknown and every agent deleted.
"""

# No `from __future__ import annotations`: Dagster reads the context annotations at runtime.

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    AssetSpec,
    multi_asset_check,
)
from dagster_dbt import DagsterDbtTranslator

from callmetrics.orchestration.partitions import day_end, run_days
from callmetrics.orchestration.project import RAW_GROUP
from callmetrics.settings import DEFAULT_MAX_LAG_HOURS, RAW_MAX_LAG_ENV, RAW_TABLES, Settings

CURRENT_STATE_TABLES = ("resellers", "organizations", "agents")
# table -> the timestamp column whose newest value says how far the extract reaches
FRESHNESS_COLUMNS = {"calls": "started_at"}


@dataclass(frozen=True)
class RawSource:
    table: str
    key: AssetKey
    description: str


def raw_sources(
    manifest: Mapping[str, Any], translator: DagsterDbtTranslator
) -> list[RawSource]:
    """The dbt sources that name a raw table of the contract, with their asset keys."""
    found: dict[str, RawSource] = {}
    for props in manifest["sources"].values():
        table = props["name"]
        if table in RAW_TABLES and table not in found:
            found[table] = RawSource(
                table=table,
                key=translator.get_asset_key(props),
                description=props.get("description") or f"raw `{table}` Parquet files",
            )
    return [found[t] for t in RAW_TABLES if t in found]


def raw_asset_specs(sources: Sequence[RawSource]) -> list[AssetSpec]:
    return [
        AssetSpec(
            key=s.key,
            description=s.description,
            group_name=RAW_GROUP,
            kinds={"parquet"},
            metadata={"raw_table": s.table},
        )
        for s in sources
    ]


def _glob(raw_dir: Path, table: str) -> str:
    return str(raw_dir / table / "**" / "*.parquet").replace("'", "''")


def newest_value(raw_dir: Path, table: str, column: str) -> datetime | None:
    """max(column) over a raw table (Parquet statistics make this cheap)."""
    con = duckdb.connect()
    try:
        con.execute("set timezone = 'UTC'")
        row = con.execute(
            f"select max({column}) from read_parquet('{_glob(raw_dir, table)}', "
            "union_by_name = true)"
        ).fetchone()
    finally:
        con.close()
    return row[0] if row else None


def row_count(raw_dir: Path, table: str) -> int:
    con = duckdb.connect()
    try:
        row = con.execute(
            f"select count(*) from read_parquet('{_glob(raw_dir, table)}', union_by_name = true)"
        ).fetchone()
    finally:
        con.close()
    return int(row[0]) if row else 0


def _check_name(table: str) -> str:
    return "calls_fresh" if table == "calls" else "has_rows"


# the raw tables with a check: the one whose freshness stands for the extract, and the
# current-state tables that must not be empty
CHECKED_TABLES = (*FRESHNESS_COLUMNS, *CURRENT_STATE_TABLES)


def build_raw_checks(sources: Sequence[RawSource], settings: Settings) -> AssetChecksDefinition:
    sources = [s for s in sources if s.table in CHECKED_TABLES]
    specs = [
        AssetCheckSpec(
            name=_check_name(s.table),
            asset=s.key,
            blocking=True,
            description=(
                f"newest `{FRESHNESS_COLUMNS[s.table]}` reaches the end of the run's day "
                f"(allowed lag ${RAW_MAX_LAG_ENV}, default {DEFAULT_MAX_LAG_HOURS:g} h)"
                if s.table in FRESHNESS_COLUMNS
                else "the current-state extract has rows"
            ),
        )
        for s in sources
    ]
    by_table = {s.table: s for s in sources}

    @multi_asset_check(specs=specs, name="raw_sources_fresh", compute_kind="duckdb")
    def raw_sources_fresh(context: AssetCheckExecutionContext) -> Iterator[AssetCheckResult]:
        raw_dir = settings.raw_dir
        _first, last = run_days(context)
        needed = day_end(last) - settings.raw_max_lag
        for table, source in by_table.items():
            if table in FRESHNESS_COLUMNS:
                column = FRESHNESS_COLUMNS[table]
                newest = newest_value(raw_dir, table, column)
                passed = newest is not None and newest >= needed
                severity = AssetCheckSeverity.ERROR
                shown = newest.isoformat() if newest else "none"
                message = (
                    f"raw {table} is stale: newest {column} is {shown}, the run for "
                    f"{last.isoformat()} needs one at or after {needed.isoformat()}"
                )
                yield AssetCheckResult(
                    asset_key=source.key,
                    check_name=_check_name(table),
                    passed=passed,
                    severity=severity,
                    description=None if passed else message,
                    metadata={"newest": shown, "needed_from": needed.isoformat()},
                )
            else:
                rows = row_count(raw_dir, table)
                yield AssetCheckResult(
                    asset_key=source.key,
                    check_name=_check_name(table),
                    passed=rows > 0,
                    severity=AssetCheckSeverity.ERROR,
                    description=None if rows else f"raw {table} has no rows",
                    metadata={"rows": rows},
                )

    return raw_sources_fresh
