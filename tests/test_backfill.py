"""A missed calls extract re-sent days later counts after the nightly build, exactly as a fresh
build over the same files counts it.

The generated raw directory loses part of its calls change log before it is first built
(`callmetrics.generation.missed.withhold_calls`): every version of some calls, and the newest
version of others; their telemetry stays delivered, so it arrives before its calls. The next
extract (`resend_withheld` plus a normal `generate_increment`) brings them back, with copies of
versions already delivered and never-seen versions older than their call's current one. Every
re-sent row's updated_at is days older than the newest row of the first extract, so a loader
that reads calls by an updated_at window loses them. The increment also moves an organization
to another reseller; the base data has an organization known only through its calls, a
reseller named only by an organization, and an agent taking calls in two organizations.

After the nightly (incremental) build:
- every table of the marts and quality schemas, and the staged calls, equal a fresh build's
  over the same files (EXCEPT ALL both ways);
- payloads (whole history, every organization, every reseller, random ranges) equal a direct
  computation from the raw files (tests/reference_metrics.py `load_raw`), which shares no code
  with the warehouse or the exporter.
One test, so that pytest-xdist never runs its three builds twice.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb

from callmetrics.exporter import Exporter, TimeRange
from tests.conftest import build
from tests.reference_metrics import (
    assert_valid_payload,
    exact_telemetry,
    load_raw,
    payload_differences,
    reference_payload,
)
from tests.test_incremental import compared_models, differences, ledger_changes, shown

SEED = 31
BASE_END = date(2025, 3, 1)
US = timedelta(microseconds=1)
# Columns that say where or when a row was loaded, not what it holds: the file a version was
# read from may be another copy of the same version in a fresh build.
STAGED_CALL_COLUMNS = (
    "call_id, organization_id, agent_id, started_at, ended_at, outcome_code, transferred_at, "
    "sentiment, user_corrections, escalation_reason, updated_at"
)


def _withheld_ids(raw: Path) -> dict[str, set[str]]:
    with duckdb.connect() as con:
        rows = con.execute(
            "select kind, id from read_parquet(?)",
            [str(raw / "_withheld" / "calls.parquet")],
        ).fetchall()
    found: dict[str, set[str]] = defaultdict(set)
    for kind, call_id in rows:
        found[kind].add(call_id)
    return found


def _staged_calls_differ(left: Path, right: Path) -> list[tuple]:
    with duckdb.connect() as con:
        con.execute(f"attach '{left}' as lhs (read_only)")
        con.execute(f"attach '{right}' as rhs (read_only)")
        table = "staging.stg_platform__calls"
        return con.execute(
            f"(select {STAGED_CALL_COLUMNS} from lhs.{table} except all "
            f"select {STAGED_CALL_COLUMNS} from rhs.{table}) union all "
            f"(select {STAGED_CALL_COLUMNS} from rhs.{table} except all "
            f"select {STAGED_CALL_COLUMNS} from lhs.{table})"
        ).fetchall()


def test_a_resent_missed_extract_counts_after_the_nightly_build(tmp_path: Path) -> None:
    from callmetrics.generate import generate_increment
    from callmetrics.generation.base import generate_raw
    from callmetrics.generation.missed import resend_withheld, withhold_calls

    raw = tmp_path / "raw"
    generate_raw(raw, calls=1_500, days=15, orgs=5, resellers=2, seed=SEED,
                 end_date=BASE_END, dirt_rate=0.05)  # fmt: skip
    withheld = withhold_calls(raw, share=0.04, seed=SEED)
    assert withheld["backfilled_call"] >= 20 and withheld["backfilled_latest_version"] >= 20
    held = _withheld_ids(raw)
    with duckdb.connect() as con:
        first_newest = con.execute(
            f"select max(updated_at) from read_parquet('{raw}/calls/**/*.parquet')"
        ).fetchone()[0]

    nightly = tmp_path / "nightly" / "callmetrics.duckdb"
    build(raw, nightly)

    day = BASE_END + timedelta(days=1)
    resent = resend_withheld(raw, day=day, seed=SEED)
    assert resent["resent_copy"] == 20 and resent["older_version"] == 20, resent
    assert resent["backfilled_moved"] >= 5, resent
    with duckdb.connect() as con:
        resent_newest = con.execute(
            f"select max(updated_at) from read_parquet('{raw}/calls/{'extract=' + (day + timedelta(days=1)).isoformat()}/resent-0.parquet')"  # noqa: E501
        ).fetchone()[0]
    assert resent_newest <= first_newest - timedelta(days=3)
    summary = generate_increment(raw, day=day, seed=SEED, calls=100, late_share=0.05,
                                 rename_agents=0, delete_agents=0, move_orgs=1,
                                 dirt_rate=0.05)  # fmt: skip
    assert summary.changes["moved_organizations"] == 1
    build(raw, nightly)

    fresh = tmp_path / "fresh" / "callmetrics.duckdb"
    build(raw, fresh, "--full-refresh")

    # -- table by table, the nightly build equals the fresh one
    diff = differences(nightly.resolve(), fresh.resolve(), compared_models())
    assert not diff, f"nightly and fresh builds differ: {shown(diff)}"
    # the telemetry of the withheld calls waited as orphan events, then the resent calls took
    # them: the second load took orphans back out of the ledger
    orphans = ledger_changes(nightly.resolve())[("telemetry_events", "orphan_event")]
    assert len(orphans) == 2 and orphans[0] > 0 and orphans[1] < 0, orphans
    staged = _staged_calls_differ(nightly.resolve(), fresh.resolve())
    assert not staged, f"stg_platform__calls differs: {staged[:3]}"

    # -- the backfilled calls count: as many as the direct computation says
    data = load_raw(raw)
    by_id = {c.call_id: c for c in data.calls}
    with duckdb.connect(str(nightly.resolve()), read_only=True) as con:
        counted = dict(con.execute(
            "select call_id, bucket_start from marts.fct_calls").fetchall())
        ledger = dict(con.execute(
            "select reason, row_count from quality.dq_left_out_rows "
            "where source_table = 'calls'").fetchall())
    backfilled = held["backfilled_call"] & by_id.keys()
    assert len(backfilled) >= 10 and backfilled <= counted.keys()
    moved = held["backfilled_latest_version"] & by_id.keys()
    for call_id in moved:
        started = by_id[call_id].started_at
        bucket = started.replace(minute=started.minute // 15 * 15, second=0, microsecond=0)
        assert counted[call_id] == bucket, call_id
    assert ledger["version_not_loaded"] == 0
    # the 20 older versions are superseded on arrival (on top of the generator's own)
    assert ledger["superseded_version"] >= 20

    # -- payloads equal the direct computation from the raw files
    moved_org = next(iter(summary.details["moved_organizations"]))
    new_reseller = summary.details["moved_organizations"][moved_org]["new"]
    with Exporter(nightly.resolve()) as exporter:
        first = min(c.started_at for c in data.calls) - timedelta(days=1)
        last = max(c.started_at for c in data.calls) + timedelta(days=1)

        def check(start: datetime, end: datetime, org: str | None = None,
                  reseller: str | None = None) -> dict:
            got = exporter.payload(TimeRange(start, end), org, reseller).to_dict()
            assert_valid_payload(got)
            expected = reference_payload(data, start, end, org, reseller)
            orgs = ({org} if org else set(exporter.organizations_of(reseller))
                    if reseller else None)
            problems = payload_differences(got, expected, exact_telemetry(data, start, end, orgs))
            assert not problems, f"[{start}, {end}] org={org} reseller={reseller}: " \
                                 + "; ".join(problems[:6])
            return got

        everything = check(first, last)
        assert everything["data"]["metrics"]["totalCalls"] == len(data.calls)
        for org in exporter.organization_ids:
            check(first, last, org)
        for reseller in exporter.reseller_ids:
            check(first, last, None, reseller)
        rnd = random.Random(SEED)
        for _ in range(15):
            start = first + rnd.randrange(int((last - first) / US)) * US
            end = start + timedelta(hours=rnd.choice([1, 7, 30, 200]), microseconds=13)
            org = rnd.choice([None, *exporter.organization_ids])
            check(start, end, org)

        # each case the generator brings, through a payload
        # (a) an organization moved to another reseller: all its history moves with it
        assert moved_org in exporter.organizations_of(new_reseller)
        moved_calls = sum(1 for c in data.calls if c.organization_id == moved_org)
        assert moved_calls > 0
        assert check(first, last, moved_org)["data"]["metrics"]["totalCalls"] == moved_calls
        # (b) an organization known only through its calls
        with duckdb.connect() as con:
            extract_orgs = {r[0] for r in con.execute(
                f"select id from read_parquet('{raw}/organizations/**/*.parquet')").fetchall()}
            extract_resellers = {r[0] for r in con.execute(
                f"select id from read_parquet('{raw}/resellers/**/*.parquet')").fetchall()}
        call_only = {c.organization_id for c in data.calls} - extract_orgs
        assert len(call_only) == 1
        only_org = call_only.pop()
        assert only_org in exporter.organization_ids
        assert check(first, last, only_org)["data"]["metrics"]["totalCalls"] == sum(
            1 for c in data.calls if c.organization_id == only_org)
        # (c) a reseller named only by an organization
        named_only = {r for r in data.org_reseller.values() if r} - extract_resellers
        assert len(named_only) == 1
        reseller = named_only.pop()
        assert check(first, last, None, reseller)["data"]["metrics"]["totalCalls"] == sum(
            1 for c in data.calls if data.org_reseller.get(c.organization_id) == reseller) > 0
        # (d) an agent taking calls in two organizations: in each organization's agent rows
        orgs_of_agent: dict[str, set[str]] = defaultdict(set)
        for c in data.calls:
            if c.agent_id:
                orgs_of_agent[c.agent_id].add(c.organization_id)
        lent = [a for a, orgs in orgs_of_agent.items() if len(orgs) > 1]
        assert len(lent) == 1
        for org in orgs_of_agent[lent[0]]:
            rows = check(first, last, org)["data"]["agentPerformance"]
            expected_calls = sum(1 for c in data.calls
                                 if c.organization_id == org and c.agent_id == lent[0])
            assert [r["totalCalls"] for r in rows if r["agentId"] == lent[0]] == [expected_calls]
