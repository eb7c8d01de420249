"""Incremental equals full refresh, and the same extract processed twice changes nothing.

One raw directory goes through a base extract and two nightly increments (new calls, late
versions of weeks-old calls, completions of calls left in progress, late and redelivered
telemetry, renamed and hard-deleted agents: `callmetrics.generation.increment`), with
`callmetrics build` after each. Then:

- the same build again, with no new file, leaves every mart, fct, dim and quality model as it
  was (row for row);
- a single `callmetrics build --full-refresh` of the final raw directory into a separate
  warehouse gives the same rows in every one of those models, with one difference the spec
  requires: an agent hard-deleted before the full refresh was never seen by that warehouse,
  so there it is "Unknown agent", while the incremental warehouse keeps the last name it saw
  (metrics.md, agentName).

Rows are compared with EXCEPT ALL both ways; only load metadata (LOAD_COLUMNS) is left out.
The whole sequence is one test, so that pytest-xdist never runs its five builds twice.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb

from tests.conftest import build

SEED = 23
BASE_END = date(2025, 3, 1)
BASE_CALLS = 2_000
BASE_DAYS = 20
INCREMENTS = 2
INCREMENT_CALLS = 150
# Columns that say when a row was written, not what it holds.
LOAD_COLUMNS = ("_loaded_at",)
# The models compared: every model dbt puts in these schemas whose name starts so.
COMPARED_SCHEMAS = ("marts", "quality")
COMPARED_PREFIXES = ("mart_", "fct_", "dim_", "dq_")
# Kinds of change each increment must bring, so the comparison covers them all.
INCREMENT_CHANGES = (
    "new_calls",
    "late_version_outcome",
    "late_version_sentiment",
    "late_version_user_corrections",
    "late_version_escalation_reason",
    "late_version_completed_in_progress",
    "late_events_of_older_calls",
    "redelivered_old_events",
    "renamed_agents",
    "deleted_agents",
)
TRIM = " \t\n\r"


@dataclass
class DeletedAgent:
    agent_id: str
    organization_id: str | None
    name: str | None  # the last name in the extracts, trimmed (None when blank)
    raw_status: str | None


@dataclass
class Scenario:
    raw: Path
    deleted: dict[str, DeletedAgent] = field(default_factory=dict)


# ---------------------------------------------------------------------------- helpers


def compared_models() -> list[str]:
    """`schema.name` of every model to compare, from the dbt manifest."""
    from orchestration.project import DBT_PROJECT

    manifest = json.loads(Path(DBT_PROJECT.manifest_path).read_text(encoding="utf-8"))
    models = sorted(
        f"{n['schema']}.{n['alias'] or n['name']}"
        for n in manifest["nodes"].values()
        if n["resource_type"] == "model"
        and n["schema"] in COMPARED_SCHEMAS
        and n["name"].startswith(COMPARED_PREFIXES)
    )
    assert any(m.startswith("marts.mart_") for m in models), models
    assert any(m.startswith("quality.dq_") for m in models), models
    return models


def latest_agents(raw: Path) -> dict[str, DeletedAgent]:
    """Each agent of the current agents extract as the warehouse reads it (the row with the
    greatest updated_at), with its name trimmed."""
    con = duckdb.connect()
    try:
        rows = con.execute(
            "select cast(id as varchar), cast(organization_id as varchar), name, "
            "cast(status as varchar) "
            "from read_parquet(?, union_by_name = true) where id is not null "
            "qualify row_number() over (partition by id order by updated_at desc nulls last, "
            "filename desc) = 1",
            [str(raw / "agents" / "**" / "*.parquet")],
        ).fetchall()
    finally:
        con.close()
    return {
        agent_id: DeletedAgent(agent_id, org, (name or "").strip(TRIM) or None, status)
        for agent_id, org, name, status in rows
    }


def copy_of_live(warehouse: Path, to: Path) -> Path:
    """A private copy of the published version the warehouse link points at."""
    to.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(warehouse.resolve(), to)
    return to


def columns(con: duckdb.DuckDBPyConnection, db: str, table: str) -> list[str]:
    schema, name = table.split(".")
    found = [
        r[0]
        for r in con.execute(
            "select column_name from duckdb_columns() where database_name = ? and "
            "schema_name = ? and table_name = ? order by column_index",
            [db, schema, name],
        ).fetchall()
    ]
    assert found, f"{db}.{table} does not exist"
    return [c for c in found if c not in LOAD_COLUMNS]


def differences(left: Path, right: Path, tables: list[str]) -> dict[str, dict[str, Any]]:
    """Per table, the rows only in `left` and only in `right` (EXCEPT ALL both ways, every
    column but LOAD_COLUMNS). Tables without a difference are not listed."""
    con = duckdb.connect()
    found: dict[str, dict[str, Any]] = {}
    try:
        con.execute("set timezone = 'UTC'")
        con.execute(f"attach '{left}' as lhs (read_only)")
        con.execute(f"attach '{right}' as rhs (read_only)")
        for table in tables:
            cols = columns(con, "lhs", table)
            assert cols == columns(con, "rhs", table), f"{table}: the columns differ"
            listed = ", ".join(f'"{c}"' for c in cols)
            only_left = con.execute(
                f"select {listed} from lhs.{table} except all select {listed} from rhs.{table}"
            ).fetchall()
            only_right = con.execute(
                f"select {listed} from rhs.{table} except all select {listed} from lhs.{table}"
            ).fetchall()
            rows = con.execute(f"select count(*) from lhs.{table}").fetchone()[0]
            assert rows > 0 or table.startswith("quality.dq_unmapped"), f"{table} is empty"
            if only_left or only_right:
                found[table] = {"columns": cols, "left": only_left, "right": only_right}
    finally:
        con.close()
    return found


def shown(diff: dict[str, dict[str, Any]]) -> str:
    return "; ".join(
        f"{t}: {len(d['left'])} rows only in the first, {len(d['right'])} only in the second, "
        f"e.g. {(d['left'] or d['right'])[:2]}"
        for t, d in diff.items()
    )


def counted_agent_ids(warehouse: Path) -> set[str]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute(
            "select distinct agent_id from marts.fct_calls where agent_id is not null"
        ).fetchall()
    finally:
        con.close()
    return {r[0] for r in rows}


# ------------------------------------------------------------------------------ the test


def test_incremental_builds_equal_one_full_refresh_and_a_rerun_changes_nothing(
    tmp_path: Path,
) -> None:
    from callmetrics.generate import generate_increment
    from callmetrics.generation.base import generate_raw

    tables = compared_models()
    scenario = Scenario(raw=tmp_path / "raw")
    generate_raw(scenario.raw, calls=BASE_CALLS, days=BASE_DAYS, orgs=5, resellers=2,
                 seed=SEED, end_date=BASE_END, dirt_rate=0.05)
    incremental = tmp_path / "incremental" / "callmetrics.duckdb"
    build(scenario.raw, incremental)

    for n in range(1, INCREMENTS + 1):
        before = latest_agents(scenario.raw)
        summary = generate_increment(
            scenario.raw, day=BASE_END + timedelta(days=n), seed=SEED, calls=INCREMENT_CALLS,
            late_share=0.1, rename_agents=2, delete_agents=2, dirt_rate=0.05,
        )
        missing = [c for c in INCREMENT_CHANGES if not summary.changes.get(c)]
        assert not missing, f"increment {n} brought no {missing}: {summary.changes}"
        for agent_id in summary.details["deleted_agents"]:
            scenario.deleted[agent_id] = before[agent_id]
        build(scenario.raw, incremental)
    assert len(scenario.deleted) == 2 * INCREMENTS

    # -- the same extract again: nothing changes
    after_increments = copy_of_live(incremental, tmp_path / "copies" / "after_increments.duckdb")
    build(scenario.raw, incremental)
    rerun = differences(after_increments, incremental.resolve(), tables)
    assert not rerun, f"building the same extract again changed: {shown(rerun)}"

    # -- one full refresh of the final raw directory, in a warehouse of its own
    full = tmp_path / "full" / "callmetrics.duckdb"
    build(scenario.raw, full, "--full-refresh")
    diff = differences(incremental.resolve(), full.resolve(), tables)

    # dim_agents differs exactly on the hard-deleted agents (see the module doc)
    agents = diff.pop("marts.dim_agents", None)
    assert not diff, f"incremental and full refresh differ: {shown(diff)}"
    assert agents is not None, "the deleted agents should differ in dim_agents"
    cols = agents["columns"]
    assert cols == ["agent_id", "organization_id", "agent_name", "status", "is_deleted",
                    "raw_status"], cols
    on_counted_calls = counted_agent_ids(full.resolve())
    expected_incremental = sorted(
        (a.agent_id, a.organization_id, a.name or "Unknown agent", "deleted", True,
         a.raw_status)
        for a in scenario.deleted.values()
    )
    expected_full = sorted(
        (a.agent_id, None, "Unknown agent", "deleted", True, None)
        for a in scenario.deleted.values() if a.agent_id in on_counted_calls
    )
    assert expected_full, "no deleted agent had a counted call: the case is not exercised"
    assert sorted(agents["left"]) == expected_incremental
    assert sorted(agents["right"]) == expected_full
