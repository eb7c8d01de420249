"""Incremental equals full refresh, and the same extract processed twice changes nothing.

One raw directory goes through a base extract and two nightly increments (new calls, late
versions of weeks-old calls, completions of calls left in progress, late and redelivered
telemetry, renamed and hard-deleted agents: `callmetrics.generation.increment`), with
`callmetrics build` after each. The last extract also corrects some old calls in ways the
generator does not: a later version moves a call to another 15-minute bucket, to another
organization, or makes it invalid, so the marts must empty the bucket the call left. Then:

- the same build again, with no new file (one re-dated, so dbt runs rather than the quiet
  night's skip), leaves every mart, fct, dim and quality model as it was (row for row);
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
import os
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
# Calls of each kind of correction written into the last extract.
CORRECTIONS_PER_KIND = 4


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
    from callmetrics.orchestration.definitions import project_for
    from callmetrics.settings import Settings

    path = project_for(Settings.from_env()).manifest_path
    manifest = json.loads(Path(path).read_text(encoding="utf-8"))
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


def add_corrections(raw: Path, folder: str, per_kind: int) -> dict[str, int]:
    """Write `calls/<folder>/corrections-0.parquet`: a newer version of some counted calls that
    moves it 3 hours earlier (another bucket), to another organization, or makes it invalid
    (ended before it started). Returns the number of calls per kind."""
    glob = str(raw / "calls" / "**" / "*.parquet")
    target = raw / "calls" / folder / "corrections-0.parquet"
    con = duckdb.connect()
    try:
        con.execute("set timezone = 'UTC'")
        con.execute(
            "create table latest as select id, organization_id, agent_id, started_at, "
            "ended_at, outcome, transferred_at, sentiment, user_corrections, "
            "escalation_reason, updated_at "
            "from read_parquet(?, union_by_name = true, hive_partitioning = false) "
            "where id is not null and updated_at is not null "
            "qualify row_number() over (partition by id order by updated_at desc) = 1",
            [glob],
        )
        con.execute(
            "create table picked as select *, "
            "case (row_number() over (order by md5(id)) - 1) // $k "
            "when 0 then 'moved' when 1 then 'organization' else 'invalid' end as kind "
            "from latest where organization_id is not null and started_at is not null "
            "and ended_at >= started_at order by md5(id) limit 3 * $k",
            {"k": per_kind},
        )
        con.execute(
            "create table orgs as select organization_id, coalesce(lead(organization_id) "
            "over (order by organization_id), min(organization_id) over ()) as other "
            "from (select distinct organization_id from latest "
            "where organization_id is not null)"
        )
        con.execute(
            f"""
            copy (
                select
                    p.id,
                    case when p.kind = 'organization' then o.other
                        else p.organization_id end as organization_id,
                    p.agent_id,
                    case when p.kind = 'moved' then p.started_at - interval 3 hours
                        else p.started_at end as started_at,
                    case when p.kind = 'moved' then p.ended_at - interval 3 hours
                        when p.kind = 'invalid' then p.started_at - interval 1 minute
                        else p.ended_at end as ended_at,
                    p.outcome,
                    case when p.kind = 'moved' then p.transferred_at - interval 3 hours
                        else p.transferred_at end as transferred_at,
                    p.sentiment, p.user_corrections, p.escalation_reason,
                    (select max(updated_at) from latest) + interval 1 minute as updated_at
                from picked p join orgs o on o.organization_id = p.organization_id
                order by p.id
            ) to '{str(target).replace("'", "''")}' (format parquet)
            """
        )
        kinds = dict(con.execute("select kind, count(*) from picked group by kind").fetchall())
    finally:
        con.close()
    return kinds


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


def ledger_changes(warehouse: Path) -> dict[tuple[str, str], list[int]]:
    """quality.ledger_left_out_rows: per (source_table, reason), what each load added, in load
    order; and checks that the ledger sums to dq_left_out_rows for every calls and
    telemetry_events reason."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute(
            "select source_table, reason, row_count from quality.ledger_left_out_rows "
            "order by _loaded_at, source_table, reason"
        ).fetchall()
        totals = dict(
            ((t, r), n)
            for t, r, n in con.execute(
                "select source_table, reason, row_count from quality.dq_left_out_rows "
                "where source_table in ('calls', 'telemetry_events')"
            ).fetchall()
        )
    finally:
        con.close()
    found: dict[tuple[str, str], list[int]] = {}
    for table, reason, count in rows:
        found.setdefault((table, reason), []).append(count)
    sums = {key: sum(counts) for key, counts in found.items()}
    assert {k: v for k, v in totals.items() if v} == {k: v for k, v in sums.items() if v}
    return found


def loads_in_ledger(warehouse: Path) -> tuple[int, int, int]:
    """(loads in the ledger, calls ledger_left_out_by_call holds, calls its last load wrote)."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        loads = con.execute(
            "select count(distinct _loaded_at) from quality.ledger_left_out_rows").fetchone()[0]
        calls, last = con.execute(
            "select count(distinct call_id), count(distinct call_id) filter "
            "(where _loaded_at = (select max(_loaded_at) from quality.ledger_left_out_by_call)) "
            "from quality.ledger_left_out_by_call"
        ).fetchone()
    finally:
        con.close()
    return loads, calls, last


# ------------------------------------------------------------------------------ the test


def test_incremental_builds_equal_one_full_refresh_and_a_rerun_changes_nothing(
    tmp_path: Path,
) -> None:
    from callmetrics.generate import generate_increment
    from callmetrics.generation.base import generate_raw
    from callmetrics.generation.increment import extract_folder

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
        if n == INCREMENTS:
            day = BASE_END + timedelta(days=n)
            kinds = add_corrections(scenario.raw, extract_folder(day), CORRECTIONS_PER_KIND)
            assert kinds == dict.fromkeys(("moved", "organization", "invalid"),
                                          CORRECTIONS_PER_KIND)
        build(scenario.raw, incremental)
    assert len(scenario.deleted) == 2 * INCREMENTS

    # -- the same extract again: nothing changes
    after_increments = copy_of_live(incremental, tmp_path / "copies" / "after_increments.duckdb")
    # A file re-dated with the same bytes: the quiet-night check sees a change, so dbt really
    # runs over the same extract (a plain rebuild would be skipped as a quiet night).
    touched = min((scenario.raw / "calls").rglob("*.parquet"))
    stat = touched.stat()
    os.utime(touched, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    build(scenario.raw, incremental)
    rerun = differences(after_increments, incremental.resolve(), tables)
    assert not rerun, f"building the same extract again changed: {shown(rerun)}"

    # -- the left-out counts are a ledger: each load added its changes, none recounted the
    # history. The base load and each increment added rows (the rerun, which loaded nothing,
    # added none); the last increment judged again only the calls it touched; and counts moved
    # after the fact (calls completed late leave in_progress; corrected calls become invalid).
    loads, calls, last = loads_in_ledger(incremental.resolve())
    assert loads == 1 + INCREMENTS, loads
    assert 0 < last < calls, (last, calls)
    changes = ledger_changes(incremental.resolve())
    assert min(changes[("calls", "in_progress")][1:]) < 0, changes[("calls", "in_progress")]
    assert changes[("calls", "ended_before_started")][-1] >= CORRECTIONS_PER_KIND, changes
    assert all(n > 0 for n in changes[("calls", "superseded_version")][1:]), changes

    # -- one full refresh of the final raw directory, in a warehouse of its own
    full = tmp_path / "full" / "callmetrics.duckdb"
    build(scenario.raw, full, "--full-refresh")
    diff = differences(incremental.resolve(), full.resolve(), tables)
    ledger_changes(full.resolve())  # a full build's ledger sums to its counts too

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
