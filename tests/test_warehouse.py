"""The whole dbt project, built by `callmetrics build`, checked number by number.

On the hand-made dirty raw directory (tests/fixtures/handmade.py): every model's row count, the
counted calls and their parts, the left-out rows by table and reason, the unmapped outcomes and
each section mart's parts, all worked out by hand from the fixture's rows (the arithmetic is in
the comments). On a small generated raw directory: raw rows = counted + left out, for calls and
for events, recomputed here from the raw Parquet with DuckDB, independently of the models.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from datetime import date
from pathlib import Path

import duckdb
import yaml

from callmetrics.settings import PROJECT_ROOT
from tests.conftest import BuiltWarehouse
from tests.fixtures.handmade import (
    AGENTS,
    ATTACHED_EVENTS,
    CALLS,
    COUNTED_CALLS,
    EVENTS,
    EXPECTED_ORG1_PAYLOAD,
    LEFT_OUT_CALL_ROWS,
    LEFT_OUT_EVENT_ROWS,
    ORGANIZATIONS,
    RAW_CALL_ROWS,
    RAW_EVENT_ROWS,
    RESELLERS,
)
from tests.fixtures.raw_builder import ts

S = 1_000_000  # microseconds per second

# The UTC 15-minute buckets of the counted calls (docs/design.md: the grain of every mart).
B0900 = ts("2025-01-10 09:00:00")   # org-1: c-1 (09:00), c-2 (09:10)
B1345 = ts("2025-01-10 13:45:00")   # org-1: c-3 (13:59:59.999999)
B2330 = ts("2025-01-10 23:30:00")   # org-1: c-4 (23:30)
B0000 = ts("2025-01-11 00:00:00")   # org-1: c-5 (next day 00:00)
B1000 = ts("2025-01-10 10:00:00")   # org-2: c-6 (10:00)
B0500 = ts("2025-01-10 05:00:00")   # org-3: c-12 (05:00)

# The counted calls: latest version, valid, ended (c-7 in progress, c-8's latest version ends
# before it starts, the null id, c-10 and c-11 are left out).
COUNTED_IDS = {"c-1", "c-2", "c-3", "c-4", "c-5", "c-6", "c-12"}

# Every calls and telemetry_events reason of dq_left_out_rows, with the fixture rows causing it.
EXPECTED_LEFT_OUT: dict[tuple[str, str], int] = {
    ("calls", "null_call_id"): 1,           # the row with id null (12:00, org-1)
    ("calls", "null_updated_at"): 0,        # every row has an updated_at
    ("calls", "duplicate_copy"): 1,         # dict(C1_V2): the second copy of c-1 v2
    ("calls", "superseded_version"): 2,     # c-1 v1 (09:05:01), c-8 v1 (16:10)
    ("calls", "version_not_loaded"): 0,     # a full build loads every version
    ("calls", "null_organization_id"): 1,   # c-11
    ("calls", "null_started_at"): 1,        # c-10
    ("calls", "ended_before_started"): 1,   # c-8 v2 (16:00 -> 15:59)
    ("calls", "in_progress"): 1,            # c-7 (ended_at null)
    ("telemetry_events", "duplicate_copy"): 1,      # dict(E1): the second copy of e-1
    ("telemetry_events", "null_event_id"): 0,       # every event has an id
    ("telemetry_events", "unknown_event_type"): 1,  # e-6 "video"
    ("telemetry_events", "null_call_id"): 1,        # e-16
    ("telemetry_events", "orphan_event"): 1,        # e-17 (call "ghost" never came)
    ("telemetry_events", "call_not_counted"): 2,    # e-18 (c-7 in progress), e-21 (c-8 invalid)
    # Metric-level (the event still counts for its other metrics), events of counted calls:
    # llm events e-1, e-2, e-5, e-7, e-8, e-9, e-14, e-19 (8); ttft samples e-1, e-2, e-9, e-14.
    ("telemetry_events", "invalid_ttft_ms"): 4,     # e-5 not JSON, e-7 "412", e-8 -1, e-19 none
    # token samples e-1 (50/200), e-2 (0/100), e-7 (10/100), e-14 (100/100).
    ("telemetry_events", "invalid_token_counts"): 4,  # e-5, e-8 (300 > 200), e-9 (0), e-19
    # stt events e-3 0.9, e-10 1.2, e-11 true, e-15 0.8, e-22 0, e-23 1.
    ("telemetry_events", "invalid_confidence"): 2,  # e-10 (above 1), e-11 (not a number)
    # tool events e-4 "Success", e-12 "ERROR", e-13 "pending", e-20 "success".
    ("telemetry_events", "invalid_tool_status"): 1,  # e-13
    ("telemetry_events", "invalid_payload_json"): 1,  # e-5 "not json {"
    ("resellers", "null_id"): 0,
    ("resellers", "duplicate_id"): 0,
    ("organizations", "null_id"): 0,
    ("organizations", "duplicate_id"): 0,
    ("agents", "null_id"): 0,
    ("agents", "duplicate_id"): 0,
    # a-3's status "on-leave" is none of the four: reported inactive, the row still counts.
    ("agents", "invalid_status_reported_inactive"): 1,
}


# ledger_left_out_by_call on the fixture: one row per call and reason with a count, worked out
# from the fixture rows. Calls (7): c-1 duplicate_copy + superseded_version, c-7 in_progress,
# c-8 superseded_version + ended_before_started, c-10 null_started_at, c-11
# null_organization_id. Telemetry (14): c-1 duplicate_copy (e-1), unknown_event_type (e-6),
# invalid_ttft_ms + invalid_token_counts + invalid_payload_json (e-5); c-2 invalid_ttft_ms (e-7,
# e-8), invalid_token_counts (e-8, e-9), invalid_confidence (e-10, e-11), invalid_tool_status
# (e-13); c-3 invalid_ttft_ms + invalid_token_counts (e-19); ghost orphan_event (e-17); c-7
# and c-8 call_not_counted (e-18, e-21).
LEFT_OUT_BY_CALL_ROWS = 7 + 14


def _seed_rows(name: str) -> int:
    with (PROJECT_ROOT / "seeds" / f"{name}.csv").open(newline="") as f:
        return sum(1 for _ in csv.DictReader(f))


# Every relation the build makes, with its row count on the hand-made fixture.
EXPECTED_ROWS: dict[str, int] = {
    "staging.stg_platform__resellers": len(RESELLERS),          # r-1, r-2
    "staging.stg_platform__organizations": len(ORGANIZATIONS),  # org-1..org-3
    "staging.stg_platform__agents": len(AGENTS),                # a-1, a-2, a-3, a-5
    # every raw calls row as delivered (one file, so no marker row)
    "staging.stg_platform__call_versions": len(CALLS),
    # one row per call id (latest version): c-1..c-8, c-10, c-11, c-12
    "staging.stg_platform__calls": len({c["id"] for c in CALLS if c["id"] is not None}),
    # e-1..e-23 once each, plus one marker row for the one file read
    "staging.stg_telemetry__events": len({e["event_id"] for e in EVENTS}) + 1,
    "reference.outcome_categories": _seed_rows("outcome_categories"),
    "snapshots.snp_platform__agents": len(AGENTS),              # one version each so far
    "intermediate.int_calls": 11,                               # as stg_platform__calls
    "intermediate.int_call_versions": 11,                       # as stg_platform__calls
    # call ids named by an event with an id: c-1, c-2, c-3, c-4, c-6, c-7, c-8, c-12, ghost
    "intermediate.int_call_telemetry": 9,
    "intermediate.int_touched_buckets": 0,                      # a first build touches none
    "marts.fct_calls": COUNTED_CALLS,
    "marts.dim_resellers": 2,                                   # r-1, r-2
    "marts.dim_organizations": 3,                               # no call names another org
    "marts.dim_agents": 5,                                      # a-1, a-2, a-3, a-5 + a-4
    # (org, bucket): org-1 B0900, B1345, B2330, B0000; org-2 B1000; org-3 B0500
    "marts.mart_metrics": 6,
    "marts.mart_daily_volume": 6,
    "marts.mart_hourly_distribution": 6,
    "marts.mart_resolution_breakdown": 6,
    "marts.mart_ai_insights": 6,
    # (org, bucket, agent) of calls with an agent: B0900 a-1, B1345 a-2, B2330 a-4, B1000 a-3
    "marts.mart_agent_performance": 4,
    # escalated calls with a reason: c-2 (B0900), c-3 (B1345), c-12 (org-3 B0500)
    "marts.mart_escalation_reasons": 3,
    # (org, bucket, latency bin) of counted calls' latency samples: org-1 B0900 ttft 400, 500.5
    # (c-1) and 300 (c-2; its "412" is a string, -1 negative), three bins 1% apart or more;
    # org-2 B1000 ttft 200 (c-6, event type "LLM")
    "marts.mart_latency_sketch": 4,
    # the declared keys and parts of the seven sections (models/marts/sections/): 43, plus the
    # latency sketch's key (latency_bin) and part (latency_sample_count)
    "marts.section_columns": 45,
    "quality.dq_left_out_rows": len(EXPECTED_LEFT_OUT),         # every known reason once
    # a first build's one load: every calls and telemetry_events reason some row has, even at
    # 0 (the file's marker row: null_event_id), i.e. all 20 but null_updated_at and
    # version_not_loaded (no row of the fixture is either)
    "quality.ledger_left_out_rows": 18,
    "quality.ledger_left_out_by_call": LEFT_OUT_BY_CALL_ROWS,
    "quality.dq_unmapped_outcomes": 2,                          # null (c-5), callback-scheduled
}


def _project_relations() -> set[str]:
    """The models, seeds and snapshots of the dbt project, read from its files (on DuckDB:
    models/history is Spark's form of the agents snapshot, disabled here)."""
    names = {p.stem for p in (PROJECT_ROOT / "models").rglob("*.sql") if "history" not in p.parts}
    names |= {p.stem for p in (PROJECT_ROOT / "seeds").glob("*.csv")}
    for path in (PROJECT_ROOT / "snapshots").glob("*.yml"):
        names |= {s["name"] for s in yaml.safe_load(path.read_text()).get("snapshots", [])}
    return names


def _norm(row: tuple) -> tuple:
    """Doubles compared to 9 decimals (sums of ratios are not exact in binary)."""
    return tuple(round(v, 9) if isinstance(v, float) else v for v in row)


def _rows(wh: BuiltWarehouse, sql: str, params: list | None = None) -> list[tuple]:
    return [_norm(r) for r in wh.query(sql, params)]


def _round1(x: float) -> float:
    """metrics.md rounding: 1 decimal, half away from zero."""
    return math.copysign(math.floor(abs(x) * 10 + 0.5) / 10, x)


# ---------------------------------------------------------------- hand-made: every model


def test_every_model_exists_with_its_row_count(handmade_warehouse: BuiltWarehouse) -> None:
    assert {name.split(".")[1] for name in EXPECTED_ROWS} == _project_relations()
    schemas = sorted({name.split(".")[0] for name in EXPECTED_ROWS})
    found = handmade_warehouse.query(
        "select table_schema || '.' || table_name from information_schema.tables "
        f"where table_schema in ({', '.join('?' for _ in schemas)})", schemas)
    assert {r[0] for r in found} == set(EXPECTED_ROWS)
    counts = {name: handmade_warehouse.query(f"select count(*) from {name}")[0][0]
              for name in EXPECTED_ROWS}
    assert counts == EXPECTED_ROWS


def test_fct_calls_holds_exactly_the_counted_calls(handmade_warehouse: BuiltWarehouse) -> None:
    assert len(COUNTED_IDS) == COUNTED_CALLS
    ids = [r[0] for r in handmade_warehouse.query("select call_id from marts.fct_calls")]
    assert sorted(ids) == sorted(COUNTED_IDS)


def test_fct_calls_parts_per_call(handmade_warehouse: BuiltWarehouse) -> None:
    got = _rows(handmade_warehouse, """
        select call_id, organization_id, agent_id, bucket_start, duration_us, outcome_code,
               outcome_category, is_escalated, has_sentiment, is_positive,
               has_corrections_data, has_zero_corrections, escalation_reason, escalation_us,
               latency_sample_count, latency_ms_sum, token_sample_count, token_ratio_sum,
               confidence_sample_count, confidence_sum, tool_call_count, tool_success_count,
               telemetry_event_count, updated_at
        from marts.fct_calls order by call_id""")
    expected = [
        # c-1 v2: 300 s, resolved, "Positive ", 0 corrections; no transfer, so escalation time
        # is the duration. e-1 (copy once) 400 ms 50/200, e-2 500.5 ms 0/100, e-3 0.9,
        # e-4 "Success", e-5 not JSON (an llm event, no sample); e-6 "video" is not counted.
        ("c-1", "org-1", "a-1", B0900, 300 * S, "resolved", "resolved", 0, 1, 1, 1, 1, None,
         300 * S, 2, 900.5, 2, 0.25, 1, 0.9, 1, 1, 5, ts("2025-01-10 10:00:00")),
        # c-2: 150 s, transferred at +60 s, negative, 2 corrections, reason normalised.
        # e-7 "412" (no ttft) 10/100, e-8 -1 300/200, e-9 300 ms 10/0, e-10 1.2, e-11 true,
        # e-12 "ERROR", e-13 "pending".
        ("c-2", "org-1", "a-1", B0900, 150 * S, "transferred", "transferred", 1, 1, 0, 1, 0,
         "billing dispute", 60 * S, 1, 300.0, 1, 0.1, 0, 0.0, 1, 0, 7,
         ts("2025-01-10 09:20:00")),
        # c-3: 13:59:59.999999 -> 14:01:00 = 60.000001 s, "ESCALATED", blank sentiment, no
        # corrections data, no transferred_at (escalation time = duration); e-19 has no ttft
        # and no cached_tokens.
        ("c-3", "org-1", "a-2", B1345, 60 * S + 1, "escalated", "transferred", 1, 0, 0, 0, 0,
         "billing dispute", 60 * S + 1, 0, 0.0, 0, 0.0, 0, 0.0, 0, 0, 1,
         ts("2025-01-10 14:05:00")),
        # c-4: 600 s, abandoned, neutral, 1 correction; e-22 0, e-23 1.
        ("c-4", "org-1", "a-4", B2330, 600 * S, "abandoned", "abandoned", 0, 1, 0, 1, 0, None,
         600 * S, 0, 0.0, 0, 0.0, 2, 1.0, 0, 0, 2, ts("2025-01-10 23:45:00")),
        # c-5: 60 s, null outcome on an ended call (other), nothing analysed, no agent.
        ("c-5", "org-1", None, B0000, 60 * S, None, "other", 0, 0, 0, 0, 0, None, 60 * S,
         0, 0.0, 0, 0.0, 0, 0.0, 0, 0, 0, ts("2025-01-11 00:02:00")),
        # c-6: 180 s, "Callback-Scheduled" (other), mixed, 0 corrections; e-14 "LLM" 200 ms
        # 100/100, e-15 "STT" 0.8.
        ("c-6", "org-2", "a-3", B1000, 180 * S, "callback-scheduled", "other", 0, 1, 0, 1, 1,
         None, 180 * S, 1, 200.0, 1, 1.0, 1, 0.8, 0, 0, 2, ts("2025-01-10 10:05:00")),
        # c-12: 120 s, "Transferred", transferred_at after the end (escalation time = the
        # duration), positive, 0 corrections; e-20 tool success.
        ("c-12", "org-3", None, B0500, 120 * S, "transferred", "transferred", 1, 1, 1, 1, 1,
         "technical issue requiring specialist", 120 * S, 0, 0.0, 0, 0.0, 0, 0.0, 1, 1, 1,
         ts("2025-01-10 05:10:00")),
    ]
    assert got == sorted((_norm(r) for r in expected), key=lambda r: r[0])


# ---------------------------------------------------------------- hand-made: data quality


def test_left_out_rows_by_table_and_reason(handmade_warehouse: BuiltWarehouse) -> None:
    rows = handmade_warehouse.query(
        "select source_table, reason, is_row_level, row_count from quality.dq_left_out_rows")
    assert {(t, r): n for t, r, _, n in rows} == EXPECTED_LEFT_OUT
    assert all(level == (not reason.startswith("invalid_")) for _, reason, level, _ in rows)


def _raw_row_counts(con: duckdb.DuckDBPyConnection, raw: Path) -> tuple[int, int]:
    """Rows of every raw calls file and every raw telemetry file, read straight from Parquet."""
    [(calls, events)] = con.execute(
        f"select (select count(*) from read_parquet('{raw}/calls/**/*.parquet')), "
        f"(select count(*) from read_parquet('{raw}/telemetry_events/**/*.parquet'))"
    ).fetchall()
    return calls, events


def test_raw_rows_equal_counted_plus_left_out(handmade_warehouse: BuiltWarehouse) -> None:
    with duckdb.connect() as con:
        raw_calls, raw_events = _raw_row_counts(con, handmade_warehouse.raw_dir)
    assert (raw_calls, raw_events) == (RAW_CALL_ROWS, RAW_EVENT_ROWS) == (len(CALLS), len(EVENTS))

    [(counted, attached)] = handmade_warehouse.query(
        "select count(*), sum(telemetry_event_count) from marts.fct_calls")
    left = dict(handmade_warehouse.query("""
        select source_table, sum(row_count) from quality.dq_left_out_rows
        where is_row_level group by source_table"""))
    assert (counted, left["calls"]) == (COUNTED_CALLS, LEFT_OUT_CALL_ROWS)
    assert (attached, left["telemetry_events"]) == (ATTACHED_EVENTS, LEFT_OUT_EVENT_ROWS)
    assert raw_calls == counted + left["calls"]
    assert raw_events == attached + left["telemetry_events"]


def test_unmapped_outcomes(handmade_warehouse: BuiltWarehouse) -> None:
    # c-5: null outcome on an ended call; c-6: "Callback-Scheduled" (not in the seed).
    # c-1's " Resolved " v1 is superseded, c-3's "ESCALATED" is mapped.
    rows = handmade_warehouse.query(
        "select outcome_code, call_count, first_started_at from quality.dq_unmapped_outcomes")
    assert sorted(rows, key=str) == sorted([
        (None, 1, ts("2025-01-11 00:00:00")),
        ("callback-scheduled", 1, ts("2025-01-10 10:00:00")),
    ], key=str)


# ---------------------------------------------------------------- hand-made: dimensions


def test_dimensions(handmade_warehouse: BuiltWarehouse) -> None:
    wh = handmade_warehouse
    assert sorted(wh.query(
        "select agent_id, organization_id, agent_name, status, is_deleted from marts.dim_agents"
    ), key=str) == sorted([
        ("a-1", "org-1", "Ava", "active", False),       # " Active\t"
        ("a-2", "org-1", "Ben", "pending", False),      # "PENDING"
        ("a-3", "org-2", "Cy", "inactive", False),      # "on-leave": reported inactive
        ("a-5", "org-3", "Dee", "cancelled", False),
        # a-4: hard-deleted before the first extract, so the warehouse never saw its name.
        ("a-4", None, "Unknown agent", "deleted", True),
    ], key=str)
    assert sorted(wh.query(
        "select organization_id, reseller_id, timezone, in_latest_extract "
        "from marts.dim_organizations"), key=str) == sorted([
        ("org-1", "r-1", "America/New_York", True),
        ("org-2", None, "UTC", True),                   # no reseller, null time zone
        ("org-3", "r-1", "Asia/Kathmandu", True),
    ], key=str)
    assert sorted(wh.query("select reseller_id, reseller_name from marts.dim_resellers")) == [
        ("r-1", "Acme Voice Partners"), ("r-2", "Reseller Without Orgs")]


# ---------------------------------------------------------------- hand-made: section marts


def _org1(wh: BuiltWarehouse, mart: str, columns: str, order: str = "bucket_start") -> list:
    return _rows(wh, f"select bucket_start, {columns} from marts.{mart} "
                     f"where organization_id = 'org-1' order by {order}")


def test_mart_metrics(handmade_warehouse: BuiltWarehouse) -> None:
    got = _rows(handmade_warehouse, """
        select organization_id, bucket_start, total_calls, resolved_calls, escalated_calls,
               duration_us_sum, latency_sample_count, latency_ms_sum, sentiment_calls,
               positive_calls
        from marts.mart_metrics order by organization_id, bucket_start""")
    assert got == [
        # c-1 + c-2: 450 s; c-1 resolved, c-2 escalated; ttft 400 + 500.5 (c-1) + 300 (c-2);
        # sentiment positive (c-1), negative (c-2).
        ("org-1", B0900, 2, 1, 1, 450 * S, 3, 1200.5, 2, 1),
        ("org-1", B1345, 1, 0, 1, 60 * S + 1, 0, 0.0, 0, 0),   # c-3, blank sentiment
        ("org-1", B2330, 1, 0, 0, 600 * S, 0, 0.0, 1, 0),      # c-4, neutral
        ("org-1", B0000, 1, 0, 0, 60 * S, 0, 0.0, 0, 0),       # c-5
        ("org-2", B1000, 1, 0, 0, 180 * S, 1, 200.0, 1, 0),    # c-6, mixed
        ("org-3", B0500, 1, 0, 1, 120 * S, 0, 0.0, 1, 1),      # c-12, positive
    ]


def test_org1_metrics_parts_give_the_hand_made_payload(handmade_warehouse: BuiltWarehouse
                                                       ) -> None:
    [(calls, resolved, escalated, dur_us, lat_n, lat_ms, sent, pos)] = handmade_warehouse.query(
        """select sum(total_calls), sum(resolved_calls), sum(escalated_calls),
                  sum(duration_us_sum), sum(latency_sample_count), sum(latency_ms_sum),
                  sum(sentiment_calls), sum(positive_calls)
           from marts.mart_metrics where organization_id = 'org-1'""")
    [(agents,)] = handmade_warehouse.query(
        "select count(distinct agent_id) from marts.mart_agent_performance "
        "where organization_id = 'org-1'")
    seconds = dur_us / S
    assert (calls, dur_us) == (5, 1_170_000_001)
    assert {
        "totalCalls": calls, "totalMinutes": _round1(seconds / 60),
        "resolutionRate": _round1(100 * resolved / calls), "avgDuration": _round1(seconds / calls),
        "activeAgents": agents, "responseTime": _round1(lat_ms / lat_n),
        "sentimentPercent": _round1(100 * pos / sent),
        "escalationRate": _round1(100 * escalated / calls),
    } == EXPECTED_ORG1_PAYLOAD["data"]["metrics"]


def test_mart_daily_volume_and_hourly_distribution(handmade_warehouse: BuiltWarehouse) -> None:
    wh = handmade_warehouse
    assert _org1(wh, "mart_daily_volume", "call_date, total_calls, resolved_calls") == [
        (B0900, date(2025, 1, 10), 2, 1),
        (B1345, date(2025, 1, 10), 1, 0),
        (B2330, date(2025, 1, 10), 1, 0),
        (B0000, date(2025, 1, 11), 1, 0),
    ]
    per_day: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for _, day, total, resolved in _org1(wh, "mart_daily_volume",
                                         "call_date, total_calls, resolved_calls"):
        per_day[day.isoformat()][0] += total
        per_day[day.isoformat()][1] += resolved
    assert [{"date": d, "totalCalls": t, "resolvedCalls": r}
            for d, (t, r) in sorted(per_day.items())] == \
        EXPECTED_ORG1_PAYLOAD["data"]["dailyVolume"]

    assert _org1(wh, "mart_hourly_distribution", "hour_of_day, total_calls, duration_us_sum") == [
        (B0900, 9, 2, 450 * S),
        (B1345, 13, 1, 60 * S + 1),
        (B2330, 23, 1, 600 * S),
        (B0000, 0, 1, 60 * S),
    ]


def test_mart_resolution_breakdown(handmade_warehouse: BuiltWarehouse) -> None:
    got = _org1(handmade_warehouse, "mart_resolution_breakdown",
                "total_calls, resolved_calls, transferred_calls, abandoned_calls, other_calls")
    assert got == [
        (B0900, 2, 1, 1, 0, 0),   # c-1 resolved, c-2 transferred
        (B1345, 1, 0, 1, 0, 0),   # c-3 "ESCALATED" -> transferred
        (B2330, 1, 0, 0, 1, 0),   # c-4 abandoned
        (B0000, 1, 0, 0, 0, 1),   # c-5 null outcome -> other
    ]
    totals = [sum(r[i] for r in got) for i in range(2, 6)]
    assert dict(zip(["resolved", "transferred", "abandoned", "other"], totals, strict=True)) \
        == EXPECTED_ORG1_PAYLOAD["data"]["resolutionBreakdown"]
    assert sum(r[1] for r in got) == sum(totals)


def test_mart_escalation_reasons(handmade_warehouse: BuiltWarehouse) -> None:
    # "  Billing   Dispute\n" (c-2) and "billing dispute" (c-3) are one normalised reason.
    got = _rows(handmade_warehouse, """
        select organization_id, bucket_start, reason, escalated_calls, escalation_us_sum
        from marts.mart_escalation_reasons order by organization_id, bucket_start""")
    assert got == [
        ("org-1", B0900, "billing dispute", 1, 60 * S),       # c-2: transferred at +60 s
        ("org-1", B1345, "billing dispute", 1, 60 * S + 1),   # c-3: no transfer time
        ("org-3", B0500, "technical issue requiring specialist", 1, 120 * S),  # c-12
    ]
    [entry] = EXPECTED_ORG1_PAYLOAD["data"]["escalationReasons"]
    org1 = [r for r in got if r[0] == "org-1"]
    assert {r[2] for r in org1} == {entry["reason"]}
    assert sum(r[3] for r in org1) == entry["count"]
    assert _round1(sum(r[4] for r in org1) / S / entry["count"]) \
        == entry["avgTimeBeforeEscalation"]


def test_mart_agent_performance_with_the_deleted_agent(handmade_warehouse: BuiltWarehouse
                                                       ) -> None:
    got = _rows(handmade_warehouse, """
        select p.bucket_start, p.agent_id, a.agent_name, a.status, p.total_calls,
               p.resolved_calls, p.transferred_calls, p.abandoned_calls, p.other_calls,
               p.duration_us_sum, p.sentiment_calls, p.positive_calls
        from marts.mart_agent_performance p
        left join marts.dim_agents a using (agent_id)
        where p.organization_id = 'org-1' order by p.bucket_start""")
    assert got == [
        (B0900, "a-1", "Ava", "active", 2, 1, 1, 0, 0, 450 * S, 2, 1),       # c-1, c-2
        (B1345, "a-2", "Ben", "pending", 1, 0, 1, 0, 0, 60 * S + 1, 0, 0),  # c-3
        # c-4's agent a-4 is missing from the agents table: deleted, name never seen.
        (B2330, "a-4", "Unknown agent", "deleted", 1, 0, 0, 1, 0, 600 * S, 1, 0),
    ]
    expected = {a["agentId"]: a for a in EXPECTED_ORG1_PAYLOAD["data"]["agentPerformance"]}
    assert {r[1]: (r[2], r[3], r[4]) for r in got} == {
        k: (a["agentName"], a["status"], a["totalCalls"]) for k, a in expected.items()}


def test_mart_ai_insights_telemetry_events(handmade_warehouse: BuiltWarehouse) -> None:
    # distinct events per call (fct_calls above): c-1 5 + c-2 7; c-3 1; c-4 2; c-5 none
    got = _org1(handmade_warehouse, "mart_ai_insights", "telemetry_event_count")
    assert got == [(B0900, 12), (B1345, 1), (B2330, 2), (B0000, 0)]


def test_mart_ai_insights(handmade_warehouse: BuiltWarehouse) -> None:
    got = _org1(handmade_warehouse, "mart_ai_insights", """
        total_calls, corrections_calls, zero_correction_calls, token_sample_count,
        token_ratio_sum, confidence_sample_count, confidence_sum, tool_call_count,
        tool_success_count, latency_sample_count, latency_ms_sum""")
    assert got == [_norm(r) for r in [
        # c-1 (0 corrections) + c-2 (2): ratios 0.25, 0 (c-1) and 0.1 (c-2); confidence 0.9;
        # tools "Success" (c-1) and "ERROR" (c-2); ttft 400, 500.5, 300.
        (B0900, 2, 2, 1, 3, 0.35, 1, 0.9, 2, 1, 3, 1200.5),
        (B1345, 1, 0, 0, 0, 0.0, 0, 0.0, 0, 0, 0, 0.0),     # c-3: nothing usable
        (B2330, 1, 1, 0, 0, 0.0, 2, 1.0, 0, 0, 0, 0.0),     # c-4: 1 correction; 0 and 1
        (B0000, 1, 0, 0, 0, 0.0, 0, 0.0, 0, 0, 0, 0.0),     # c-5
    ]]
    t = [sum(r[i] for r in got) for i in range(1, 12)]
    ai = EXPECTED_ORG1_PAYLOAD["data"]["aiInsights"]
    assert {
        "intentAccuracy": _round1(100 * t[2] / t[1]),
        "contextRetention": _round1(100 * t[4] / t[3]),
        "speechRecognition": _round1(100 * t[6] / t[5]),
        "entityExtraction": _round1(100 * t[8] / t[7]),
        "responseLatency": _round1(t[10] / t[9]),
        "trainingSessions": t[0],
    } == {k: v for k, v in ai.items() if k != "responseLatencyPercentiles"}
    # the percentiles come from mart_latency_sketch: tests/test_percentiles.py


# ---------------------------------------------------------------- generated: reconciliation

# The rules of raw-sources.md and metrics.md, written again over the raw Parquet. Reasons are
# exclusive; where several apply, the first in each list below is the one reported.
_INDEPENDENT_CALLS_SQL = """
with raw as (
    select id, organization_id, started_at, ended_at, updated_at
    from read_parquet('{raw}/calls/**/*.parquet', union_by_name = true)
),
versions as (                    -- rows sharing id and updated_at are copies of one version
    select id, updated_at, count(*) as copies,
           any_value(organization_id) as organization_id, any_value(started_at) as started_at,
           any_value(ended_at) as ended_at
    from raw where id is not null and updated_at is not null
    group by id, updated_at
),
ranked as (
    select *, updated_at = max(updated_at) over (partition by id) as is_latest from versions
),
judged as (
    select id, copies, case
        when not is_latest then 'superseded_version'
        when organization_id is null then 'null_organization_id'
        when started_at is null then 'null_started_at'
        when ended_at < started_at then 'ended_before_started'
        when ended_at is null then 'in_progress'
        else 'counted' end as reason
    from ranked
)
select 'null_call_id' as reason, count(*) as n, null as ids from raw where id is null
union all
select 'null_updated_at', count(*), null from raw where id is not null and updated_at is null
union all
select 'duplicate_copy', coalesce(sum(copies - 1), 0), null from versions
union all
select reason, count(*), list(id) from judged group by reason
"""

_INDEPENDENT_EVENTS_SQL = """
with raw as (
    select event_id, call_id, event_type
    from read_parquet('{raw}/telemetry_events/**/*.parquet', union_by_name = true)
),
calls as (
    select distinct id from read_parquet('{raw}/calls/**/*.parquet', union_by_name = true)
    where id is not null and updated_at is not null
),
counted as (select unnest(?::varchar[]) as id),
events as (                      -- an event delivered twice counts once
    select event_id, count(*) as copies, any_value(call_id) as call_id,
           lower(trim(any_value(event_type), ' ' || chr(9) || chr(10) || chr(13))) as type
    from raw where event_id is not null group by event_id
),
judged as (
    select case
        when type is null or type not in ('llm', 'stt', 'tool') then 'unknown_event_type'
        when call_id is null then 'null_call_id'
        when call_id not in (select id from calls) then 'orphan_event'
        when call_id not in (select id from counted) then 'call_not_counted'
        else 'attached' end as reason
    from events
)
select 'null_event_id' as reason, count(*) as n from raw where event_id is null
union all
select 'duplicate_copy', coalesce(sum(copies - 1), 0) from events
union all
select reason, count(*) from judged group by reason
"""


def _independent(raw: Path) -> tuple[dict[str, int], set[str], dict[str, int], int, int]:
    with duckdb.connect() as con:
        raw_calls, raw_events = _raw_row_counts(con, raw)
        call_rows = con.execute(_INDEPENDENT_CALLS_SQL.format(raw=raw)).fetchall()
        counted = {i for reason, _, ids in call_rows if reason == "counted" for i in ids}
        calls = {reason: int(n) for reason, n, _ in call_rows}
        event_rows = con.execute(_INDEPENDENT_EVENTS_SQL.format(raw=raw),
                                 [sorted(counted)]).fetchall()
    events = {reason: int(n) for reason, n in event_rows}
    return calls, counted, events, raw_calls, raw_events


def test_generated_raw_reconciles_with_counted_plus_left_out(
    generated_warehouse: BuiltWarehouse,
) -> None:
    calls, counted_ids, events, raw_calls, raw_events = _independent(generated_warehouse.raw_dir)
    wh = generated_warehouse
    fct_ids = {r[0] for r in wh.query("select call_id from marts.fct_calls")}
    [(attached,)] = wh.query("select sum(telemetry_event_count) from marts.fct_calls")
    dq = {(t, r): n for t, r, n in wh.query(
        "select source_table, reason, row_count from quality.dq_left_out_rows "
        "where is_row_level and source_table in ('calls', 'telemetry_events')")}
    dq_calls = {r: n for (t, r), n in dq.items() if t == "calls"}
    dq_events = {r: n for (t, r), n in dq.items() if t == "telemetry_events"}

    # The independent count adds up by itself, and the warehouse's parts add up the same way.
    assert sum(calls.values()) == raw_calls
    assert sum(events.values()) == raw_events
    assert raw_calls == len(fct_ids) + sum(dq_calls.values())
    assert raw_events == attached + sum(dq_events.values())
    # ... and they agree reason by reason, call by call.
    assert fct_ids == counted_ids
    assert attached == events.pop("attached")
    calls.pop("counted")
    assert {r: n for r, n in dq_calls.items() if n} == {r: n for r, n in calls.items() if n}
    assert {r: n for r, n in dq_events.items() if n} == {r: n for r, n in events.items() if n}
    # The generator's dirt is there at a 5% rate: each kind shows up.
    for reason in ("duplicate_copy", "superseded_version", "null_call_id",
                   "null_organization_id", "null_started_at", "ended_before_started"):
        assert dq_calls.get(reason, 0) > 0, reason
    for reason in ("duplicate_copy", "unknown_event_type", "null_call_id", "orphan_event"):
        assert dq_events.get(reason, 0) > 0, reason
