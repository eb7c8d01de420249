"""A rebuild after a second extract changes exactly what it should, and nothing else.

The hand-made raw directory (tests/fixtures/handmade.py) is built once; then a second extract
lands in the same layout, in `<table>/extract=2025-02-07/` folders, as the platform's next
morning would deliver it:

- new versions, four weeks late, of calls started on 2025-01-10:
  c-2 (transferred -> resolved, positive, 0 corrections, no reason, no transfer time),
  c-4 (now ends at 23:50: 600 s -> 1200 s, positive),
  c-5 (its latest version now ends before it starts: it leaves the counted calls),
  c-7 (was in progress, now ended at 15:04, " Resolved", neutral, 1 correction);
- a new call c-20 on 2025-02-06 with two events (e-31 stt 0.5, e-32 llm 250 ms, 20/100);
- a late event e-30 of the old call c-6 (llm 100 ms, 0/50) and a redelivered copy of e-3;
- a new agents extract replacing the old one: a-1 "Ava" renamed "Ava Stone", a-2 "Ben"
  hard-deleted (absent), a-3 and a-5 as before.

The second build is incremental (the published warehouse catches up). Every expected number
below is worked out by hand from those rows; every mart row outside the touched buckets must be
exactly as before. The test makes two builds, so it is one test that reports every failed check
at once rather than several tests that xdist could spread over two workers (four builds).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import date
from pathlib import Path

import duckdb

from tests.conftest import BuiltWarehouse, build
from tests.fixtures.handmade import AGENTS, CALLS, EVENTS, write_handmade_raw
from tests.fixtures.raw_builder import ts, write_table

S = 1_000_000  # microseconds per second
EXTRACT = "extract=2025-02-07/part-0.parquet"
LATE = "2025-02-07 03:00:00"  # updated_at of the late call versions


def _by_id(rows: list[dict], key: str, value: str) -> dict:
    [row] = [r for r in rows if r[key] == value]
    return row


def _new_version(call_id: str, **changes: object) -> dict:
    """The latest first-extract version of a call, with changes and a new updated_at."""
    latest = max((c for c in CALLS if c["id"] == call_id), key=lambda c: c["updated_at"])
    return {**latest, "updated_at": ts(LATE), **changes}


SECOND_CALLS = [
    _new_version("c-2", outcome="resolved", sentiment="positive", user_corrections=0,
                 escalation_reason=None, transferred_at=None),
    _new_version("c-4", ended_at=ts("2025-01-10 23:50:00"), sentiment="positive"),
    _new_version("c-5", ended_at=ts("2025-01-10 23:59:00")),  # before its 2025-01-11 start
    _new_version("c-7", ended_at=ts("2025-01-10 15:04:00"), outcome=" Resolved",
                 sentiment="neutral", user_corrections=1),
    {"id": "c-20", "organization_id": "org-1", "agent_id": "a-1",
     "started_at": ts("2025-02-06 14:05:00"), "ended_at": ts("2025-02-06 14:08:00"),
     "outcome": "resolved", "transferred_at": None, "sentiment": "Positive",
     "user_corrections": 0, "escalation_reason": None, "updated_at": ts("2025-02-06 14:10:00")},
]
SECOND_EVENTS = [
    {"event_id": "e-30", "call_id": "c-6", "event_type": "llm", "occurred_at": None,
     "payload": '{"ttft_ms": 100, "cached_tokens": 0, "total_tokens": 50}'},
    {"event_id": "e-31", "call_id": "c-20", "event_type": "stt", "occurred_at": None,
     "payload": '{"confidence": 0.5}'},
    {"event_id": "e-32", "call_id": "c-20", "event_type": "llm", "occurred_at": None,
     "payload": '{"ttft_ms": 250, "cached_tokens": 20, "total_tokens": 100}'},
    dict(_by_id(EVENTS, "event_id", "e-3")),  # redelivered
]
SECOND_AGENTS = [
    {**_by_id(AGENTS, "id", "a-1"), "name": "Ava Stone", "updated_at": ts("2025-02-06 12:00:00")},
    _by_id(AGENTS, "id", "a-3"),
    _by_id(AGENTS, "id", "a-5"),
]


def write_second_extract(raw: Path) -> None:
    write_table(raw, "calls", SECOND_CALLS, EXTRACT)
    write_table(raw, "telemetry_events", SECOND_EVENTS, EXTRACT)
    # agents are current state: the new extract replaces the old file
    for old in (raw / "agents").rglob("*.parquet"):
        old.unlink()
    write_table(raw, "agents", SECOND_AGENTS, EXTRACT)


# ------------------------------------------------------------------------- what is read

MART_COLUMNS = {
    "mart_metrics": "total_calls, resolved_calls, escalated_calls, duration_us_sum, "
                    "latency_sample_count, latency_ms_sum, sentiment_calls, positive_calls",
    "mart_daily_volume": "call_date, total_calls, resolved_calls",
    "mart_hourly_distribution": "hour_of_day, total_calls, duration_us_sum",
    "mart_resolution_breakdown": "total_calls, resolved_calls, transferred_calls, "
                                 "abandoned_calls, other_calls",
    "mart_agent_performance": "agent_id, total_calls, resolved_calls, transferred_calls, "
                              "abandoned_calls, other_calls, duration_us_sum, sentiment_calls, "
                              "positive_calls",
    "mart_ai_insights": "total_calls, corrections_calls, zero_correction_calls, "
                        "token_sample_count, token_ratio_sum, confidence_sample_count, "
                        "confidence_sum, tool_call_count, tool_success_count, "
                        "latency_sample_count, latency_ms_sum",
    "mart_escalation_reasons": "reason, escalated_calls, escalation_us_sum",
}
FCT_COLUMNS = (
    "call_id, organization_id, agent_id, started_at, ended_at, bucket_start, duration_us, "
    "outcome_code, outcome_category, is_escalated, has_sentiment, is_positive, "
    "has_corrections_data, has_zero_corrections, escalation_reason, escalation_us, "
    "latency_sample_count, latency_ms_sum, token_sample_count, token_ratio_sum, "
    "confidence_sample_count, confidence_sum, tool_call_count, tool_success_count, "
    "telemetry_event_count, updated_at"
)

Bucket = tuple[str, object]
Marts = dict[str, dict[Bucket, list[tuple]]]


def _norm(row: tuple) -> tuple:
    return tuple(round(v, 9) if isinstance(v, float) else v for v in row)


def read_marts(wh: BuiltWarehouse) -> Marts:
    """Every section mart's rows (all but _loaded_at), by (organization, bucket)."""
    marts: Marts = {}
    with wh.connect() as con:
        for mart, columns in MART_COLUMNS.items():
            rows = con.execute(f"select organization_id, bucket_start, {columns} "
                               f"from marts.{mart}").fetchall()
            by_bucket: dict[Bucket, list[tuple]] = {}
            for row in rows:
                by_bucket.setdefault((row[0], row[1]), []).append(_norm(row[2:]))
            marts[mart] = {k: sorted(v, key=str) for k, v in by_bucket.items()}
    return marts


def read_fct(wh: BuiltWarehouse) -> dict[str, tuple]:
    return {r[0]: _norm(r) for r in wh.query(f"select {FCT_COLUMNS} from marts.fct_calls")}


# ------------------------------------------------------------------------- expectations

B0900 = ("org-1", ts("2025-01-10 09:00:00"))   # c-1, c-2 (new version)
B1345 = ("org-1", ts("2025-01-10 13:45:00"))   # c-3 (a-2): untouched
B1500 = ("org-1", ts("2025-01-10 15:00:00"))   # c-7, newly ended
B2330 = ("org-1", ts("2025-01-10 23:30:00"))   # c-4 (new version)
B0000 = ("org-1", ts("2025-01-11 00:00:00"))   # c-5, now invalid: the bucket empties
B1000 = ("org-2", ts("2025-01-10 10:00:00"))   # c-6 (late event e-30)
B0500 = ("org-3", ts("2025-01-10 05:00:00"))   # c-12: untouched
B0206 = ("org-1", ts("2025-02-06 14:00:00"))   # c-20, new
D10, D0206 = date(2025, 1, 10), date(2025, 2, 6)

# The touched buckets after the rebuild, mart by mart ([] = no row any more).
TOUCHED: dict[str, dict[Bucket, list[tuple]]] = {
    "mart_metrics": {
        # c-1 (300 s, resolved, 2 samples 900.5 ms, positive) + c-2 (150 s, now resolved and
        # not escalated, e-9 300 ms, now positive).
        B0900: [(2, 2, 0, 450 * S, 3, 1200.5, 2, 2)],
        B1500: [(1, 1, 0, 240 * S, 1, 100.0, 1, 0)],     # c-7: 240 s, e-18 100 ms, neutral
        B2330: [(1, 0, 0, 1200 * S, 0, 0.0, 1, 1)],      # c-4: 1200 s, now positive
        B0000: [],
        B1000: [(1, 0, 0, 180 * S, 2, 300.0, 1, 0)],     # c-6: e-14 200 ms + e-30 100 ms
        B0206: [(1, 1, 0, 180 * S, 1, 250.0, 1, 1)],     # c-20: 180 s, e-32 250 ms
    },
    "mart_daily_volume": {
        B0900: [(D10, 2, 2)], B1500: [(D10, 1, 1)], B2330: [(D10, 1, 0)], B0000: [],
        B1000: [(D10, 1, 0)], B0206: [(D0206, 1, 1)],
    },
    "mart_hourly_distribution": {
        B0900: [(9, 2, 450 * S)], B1500: [(15, 1, 240 * S)], B2330: [(23, 1, 1200 * S)],
        B0000: [], B1000: [(10, 1, 180 * S)], B0206: [(14, 1, 180 * S)],
    },
    "mart_resolution_breakdown": {
        B0900: [(2, 2, 0, 0, 0)], B1500: [(1, 1, 0, 0, 0)], B2330: [(1, 0, 0, 1, 0)],
        B0000: [], B1000: [(1, 0, 0, 0, 1)], B0206: [(1, 1, 0, 0, 0)],
    },
    "mart_agent_performance": {
        B0900: [("a-1", 2, 2, 0, 0, 0, 450 * S, 2, 2)],
        B1500: [("a-1", 1, 1, 0, 0, 0, 240 * S, 1, 0)],
        B2330: [("a-4", 1, 0, 0, 1, 0, 1200 * S, 1, 1)],
        B0000: [],                                        # c-5 had no agent anyway
        B1000: [("a-3", 1, 0, 0, 0, 1, 180 * S, 1, 0)],
        B0206: [("a-1", 1, 1, 0, 0, 0, 180 * S, 1, 1)],
    },
    "mart_ai_insights": {
        # c-1 (0 corrections; ratios 0.25, 0; 0.9; "Success"; 900.5 ms in 2) + c-2 (now 0
        # corrections; ratio 0.1; "ERROR"; 300 ms).
        B0900: [(2, 2, 2, 3, 0.35, 1, 0.9, 2, 1, 3, 1200.5)],
        B1500: [(1, 1, 0, 0, 0.0, 0, 0.0, 0, 0, 1, 100.0)],   # c-7: 1 correction, e-18
        B2330: [(1, 1, 0, 0, 0.0, 2, 1.0, 0, 0, 0, 0.0)],     # c-4: as before
        B0000: [],
        # c-6: 0 corrections; ratios 1 (e-14) and 0 (e-30); 0.8 (e-15); 200 + 100 ms.
        B1000: [(1, 1, 1, 2, 1.0, 1, 0.8, 0, 0, 2, 300.0)],
        B0206: [(1, 1, 1, 1, 0.2, 1, 0.5, 0, 0, 1, 250.0)],   # c-20: 20/100, 0.5, 250 ms
    },
    "mart_escalation_reasons": {
        # c-2 is no longer escalated; no other touched call is.
        B0900: [], B1500: [], B2330: [], B0000: [], B1000: [], B0206: [],
    },
}
UNTOUCHED = {B1345, B0500}

_LATE = ts(LATE)
# fct_calls rows that change (call_id -> row), in FCT_COLUMNS order; c-5 leaves.
FCT_CHANGED = {
    "c-2": ("c-2", "org-1", "a-1", ts("2025-01-10 09:10:00"), ts("2025-01-10 09:12:30"),
            B0900[1], 150 * S, "resolved", "resolved", 0, 1, 1, 1, 1, None, 150 * S,
            1, 300.0, 1, 0.1, 0, 0.0, 1, 0, 7, _LATE),
    "c-4": ("c-4", "org-1", "a-4", ts("2025-01-10 23:30:00"), ts("2025-01-10 23:50:00"),
            B2330[1], 1200 * S, "abandoned", "abandoned", 0, 1, 1, 1, 0, None, 1200 * S,
            0, 0.0, 0, 0.0, 2, 1.0, 0, 0, 2, _LATE),
    "c-6": ("c-6", "org-2", "a-3", ts("2025-01-10 10:00:00"), ts("2025-01-10 10:03:00"),
            B1000[1], 180 * S, "callback-scheduled", "other", 0, 1, 0, 1, 1, None, 180 * S,
            2, 300.0, 2, 1.0, 1, 0.8, 0, 0, 3, ts("2025-01-10 10:05:00")),
    # c-7's event e-18 arrived in the first extract, while the call was still in progress.
    "c-7": ("c-7", "org-1", "a-1", ts("2025-01-10 15:00:00"), ts("2025-01-10 15:04:00"),
            B1500[1], 240 * S, "resolved", "resolved", 0, 1, 0, 1, 0, None, 240 * S,
            1, 100.0, 0, 0.0, 0, 0.0, 0, 0, 1, _LATE),
    "c-20": ("c-20", "org-1", "a-1", ts("2025-02-06 14:05:00"), ts("2025-02-06 14:08:00"),
             B0206[1], 180 * S, "resolved", "resolved", 0, 1, 1, 1, 1, None, 180 * S,
             1, 250.0, 1, 0.2, 1, 0.5, 0, 0, 2, ts("2025-02-06 14:10:00")),
}
FCT_LEFT = {"c-5"}

LEFT_OUT_AFTER = {
    ("calls", "null_call_id"): 1,
    ("calls", "null_updated_at"): 0,
    ("calls", "duplicate_copy"): 1,           # c-1 v2's copy
    # c-1 v1, c-8 v1, and now the first-extract versions of c-2, c-4, c-5, c-7
    ("calls", "superseded_version"): 6,
    ("calls", "version_not_loaded"): 0,
    ("calls", "null_organization_id"): 1,     # c-11
    ("calls", "null_started_at"): 1,          # c-10
    ("calls", "ended_before_started"): 2,     # c-8 v2, c-5 v2
    ("calls", "in_progress"): 0,              # c-7 has ended
    ("telemetry_events", "duplicate_copy"): 2,      # e-1, e-3
    ("telemetry_events", "null_event_id"): 0,
    ("telemetry_events", "unknown_event_type"): 1,  # e-6
    ("telemetry_events", "null_call_id"): 1,        # e-16
    ("telemetry_events", "orphan_event"): 1,        # e-17
    ("telemetry_events", "call_not_counted"): 1,    # e-21 (c-8); e-18's c-7 now counts
    ("telemetry_events", "invalid_ttft_ms"): 4,     # as before: e-5, e-7, e-8, e-19
    ("telemetry_events", "invalid_token_counts"): 5,  # e-5, e-8, e-9, e-19 and e-18 (no tokens)
    ("telemetry_events", "invalid_confidence"): 2,  # e-10, e-11
    ("telemetry_events", "invalid_tool_status"): 1,  # e-13
    ("telemetry_events", "invalid_payload_json"): 1,  # e-5
    ("resellers", "null_id"): 0,
    ("resellers", "duplicate_id"): 0,
    ("organizations", "null_id"): 0,
    ("organizations", "duplicate_id"): 0,
    ("agents", "null_id"): 0,
    ("agents", "duplicate_id"): 0,
    ("agents", "invalid_status_reported_inactive"): 1,  # a-3 "on-leave"
}
# raw = counted + left out: calls 15 + 5 = 20 = 8 counted (c-1, c-2, c-3, c-4, c-6, c-7, c-12,
# c-20) + 12; events 24 + 4 = 28 = 22 attached (18 + e-30, e-31, e-32, e-18) + 6.
RAW_CALLS_AFTER, COUNTED_AFTER = len(CALLS) + len(SECOND_CALLS), 8
RAW_EVENTS_AFTER, ATTACHED_AFTER = len(EVENTS) + len(SECOND_EVENTS), 22


# ------------------------------------------------------------------------- the test


def test_second_extract_changes_exactly_what_it_should(tmp_path: Path) -> None:
    raw = write_handmade_raw(tmp_path / "raw")
    wh = BuiltWarehouse(raw, tmp_path / "warehouse" / "callmetrics.duckdb")
    build(raw, wh.warehouse)
    marts_before, fct_before = read_marts(wh), read_fct(wh)

    write_second_extract(raw)
    build(raw, wh.warehouse)
    marts_after, fct_after = read_marts(wh), read_fct(wh)

    failures: list[str] = []

    def check(name: str, assertion: Callable[[], None]) -> None:
        try:
            assertion()
        except AssertionError as exc:
            failures.append(f"{name}: {exc}")

    def marts_changed_exactly_in_the_touched_buckets() -> None:
        for mart, touched in TOUCHED.items():
            expected = copy.deepcopy(marts_before[mart])
            for bucket, rows in touched.items():
                expected.pop(bucket, None)
                if rows:
                    expected[bucket] = sorted((_norm(r) for r in rows), key=str)
            assert marts_after[mart] == expected, mart

    def untouched_buckets_are_as_before() -> None:
        for mart in MART_COLUMNS:
            for bucket in UNTOUCHED:
                assert marts_after[mart].get(bucket) == marts_before[mart].get(bucket), mart
        assert marts_before["mart_metrics"][B1345] and marts_before["mart_metrics"][B0500]

    def fct_calls_has_the_new_versions() -> None:
        expected = {k: v for k, v in fct_before.items() if k not in FCT_LEFT}
        expected.update({k: _norm(v) for k, v in FCT_CHANGED.items()})
        assert fct_after == expected
        assert fct_before.keys() >= FCT_LEFT

    def agents_renamed_and_deleted() -> None:
        rows = wh.query("select agent_id, organization_id, agent_name, status, is_deleted "
                        "from marts.dim_agents")
        assert sorted(rows, key=str) == sorted([
            ("a-1", "org-1", "Ava Stone", "active", False),     # renamed
            ("a-2", "org-1", "Ben", "deleted", True),           # last name seen, deleted
            ("a-3", "org-2", "Cy", "inactive", False),
            ("a-4", None, "Unknown agent", "deleted", True),    # never seen
            ("a-5", "org-3", "Dee", "cancelled", False),
        ], key=str)
        # The snapshot remembers both names of a-1 and the deletion of a-2.
        history = wh.query("""
            select agent_id, agent_name, dbt_valid_to is null as is_current,
                   coalesce(cast(dbt_is_deleted as varchar) = 'True', false) as is_deletion
            from snapshots.snp_platform__agents""")
        assert sorted(history, key=str) == sorted([
            ("a-1", "Ava", False, False), ("a-1", "Ava Stone", True, False),
            ("a-2", "Ben", False, False), ("a-2", "Ben", True, True),
            ("a-3", "Cy", True, False), ("a-5", "Dee", True, False),
        ], key=str)

    def deleted_agents_call_reports_its_last_name() -> None:
        rows = wh.query("""
            select p.bucket_start, a.agent_name, a.status, p.total_calls
            from marts.mart_agent_performance p join marts.dim_agents a using (agent_id)
            where p.agent_id = 'a-2'""")
        assert rows == [(B1345[1], "Ben", "deleted", 1)]

    def quality_and_reconciliation() -> None:
        dq = wh.query("select source_table, reason, row_count from quality.dq_left_out_rows")
        assert {(t, r): n for t, r, n in dq} == LEFT_OUT_AFTER
        assert wh.query("select outcome_code, call_count from quality.dq_unmapped_outcomes") \
            == [("callback-scheduled", 1)]   # c-5's null outcome no longer counts
        with duckdb.connect() as con:
            raw_calls = con.execute(
                f"select count(*) from read_parquet('{raw}/calls/**/*.parquet')").fetchone()[0]
            raw_events = con.execute(
                f"select count(*) from read_parquet('{raw}/telemetry_events/**/*.parquet')"
            ).fetchone()[0]
        [(counted, attached)] = wh.query(
            "select count(*), sum(telemetry_event_count) from marts.fct_calls")
        left = dict(wh.query("select source_table, sum(row_count) from quality.dq_left_out_rows "
                             "where is_row_level group by source_table"))
        assert (raw_calls, counted) == (RAW_CALLS_AFTER, COUNTED_AFTER)
        assert (raw_events, attached) == (RAW_EVENTS_AFTER, ATTACHED_AFTER)
        assert raw_calls == counted + left["calls"]
        assert raw_events == attached + left["telemetry_events"]

    check("marts", marts_changed_exactly_in_the_touched_buckets)
    check("untouched buckets", untouched_buckets_are_as_before)
    check("fct_calls", fct_calls_has_the_new_versions)
    check("dim_agents", agents_renamed_and_deleted)
    check("deleted agent", deleted_agents_call_reports_its_last_name)
    check("quality", quality_and_reconciliation)
    assert not failures, "\n\n".join(failures)
