"""An independent, straightforward computation of the Get Metrics payload, for tests only.

It reads the *staged* calls, events, agents and organizations (dbt staging models, one row
per latest call version / distinct event / current agent / organization) and applies
``shared/spec/metrics.md`` call by call in plain Python with exact ``Fraction`` arithmetic:
validity, outcome categories, telemetry validity, ranges, scopes, ratios and rounding. It
shares no code with ``callmetrics.exporter``, so the two implementations check each other.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import jsonschema

CATEGORIES = {
    "resolved": "resolved",
    "transferred": "transferred",
    "escalated": "transferred",
    "abandoned": "abandoned",
}
KNOWN_STATUSES = ("active", "inactive", "cancelled", "pending")
_SPACE = re.compile(r"[ \t\n\r\f\v]+")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _us(value: datetime) -> int:
    """Microseconds since the epoch, exactly."""
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _clean(text: str | None) -> str | None:
    if text is None:
        return None
    text = text.strip(" \t\n\r").lower()
    return text or None


def _reason(text: str | None) -> str | None:
    if text is None:
        return None
    folded = _SPACE.sub(" ", text.lower()).strip(" ")
    return folded or None


@dataclass
class Call:
    call_id: str
    organization_id: str
    agent_id: str | None
    started_us: int
    duration_us: int
    category: str
    has_sentiment: bool
    positive: bool
    corrections: int | None
    reason: str | None
    before_escalation_us: int
    latency: list[Fraction]
    token_ratios: list[Fraction]
    confidences: list[Fraction]
    tools: list[bool]  # True: success
    sums: dict[str, Fraction] = field(default_factory=dict)  # exact sum of each list above

    def total(self, samples: str) -> tuple[Fraction, int]:
        """(exact sum, count) of one kind of sample of this call."""
        return self.sums[samples], len(getattr(self, samples))

    @property
    def started_at(self) -> datetime:
        return _EPOCH + timedelta(microseconds=self.started_us)


@dataclass
class StagedData:
    calls: list[Call]
    org_reseller: dict[str, str | None]
    agents: dict[str, tuple[str, str]]  # agent id -> (name, status)


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    cursor = con.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def load_staged(warehouse: str) -> StagedData:
    """Everything the reference needs, read from the staging models (and the agents snapshot
    for the last name of a deleted agent)."""
    con = duckdb.connect(warehouse, read_only=True)
    try:
        con.execute("set TimeZone = 'UTC'")
        con.execute("set enable_progress_bar = false")
        call_rows = _rows(con, "select * from staging.stg_platform__calls")
        event_rows = _rows(
            con,
            "select event_id, call_id, event_type, ttft_ms, cached_tokens, total_tokens, "
            "confidence, tool_status from staging.stg_telemetry__events "
            "where event_id is not null",
        )
        org_rows = _rows(con, "select * from staging.stg_platform__organizations")
        agent_rows = _rows(con, "select * from staging.stg_platform__agents")
        history = _rows(
            con,
            "select agent_id, agent_name, dbt_valid_from, dbt_is_deleted "
            "from snapshots.snp_platform__agents",
        )
    finally:
        con.close()

    return _assemble(call_rows, event_rows, org_rows, agent_rows, history)


def _assemble(
    call_rows: list[dict[str, Any]],
    event_rows: list[dict[str, Any]],
    org_rows: list[dict[str, Any]],
    agent_rows: list[dict[str, Any]],
    history: list[dict[str, Any]],
) -> StagedData:
    """The reference's calls, organizations and agents from one row per latest call version,
    event rows (copies are skipped here), organization and agent rows, and agent history."""
    events: dict[str, list[dict[str, Any]]] = defaultdict(list)
    seen_events: set[str] = set()
    for event in event_rows:
        if event["event_id"] in seen_events:
            continue
        seen_events.add(event["event_id"])
        if event["call_id"] is not None:
            events[event["call_id"]].append(event)

    calls = []
    for row in call_rows:
        if row["organization_id"] is None or row["started_at"] is None:
            continue
        if row["ended_at"] is None or row["ended_at"] < row["started_at"]:
            continue
        start, end = _us(row["started_at"]), _us(row["ended_at"])
        duration = end - start
        transferred = row["transferred_at"]
        before = duration
        if transferred is not None and start <= _us(transferred) <= end:
            before = _us(transferred) - start
        sentiment = _clean(row["sentiment"])
        call = Call(
            call_id=row["call_id"],
            organization_id=row["organization_id"],
            agent_id=row["agent_id"],
            started_us=start,
            duration_us=duration,
            category=CATEGORIES.get(_clean(row["outcome_code"]) or "", "other"),
            has_sentiment=sentiment is not None,
            positive=sentiment == "positive",
            corrections=row["user_corrections"],
            reason=_reason(row["escalation_reason"]),
            before_escalation_us=before,
            latency=[], token_ratios=[], confidences=[], tools=[],
        )
        for event in events.get(call.call_id, []):
            _attach(call, event)
        for samples in ("latency", "token_ratios", "confidences"):
            call.sums[samples] = sum(getattr(call, samples), Fraction(0))
        calls.append(call)

    org_reseller = {r["organization_id"]: r["reseller_id"] for r in org_rows}
    for call in calls:
        org_reseller.setdefault(call.organization_id, None)  # known through its calls

    agents: dict[str, tuple[str, str]] = {}
    for row in agent_rows:
        status = _clean(row["raw_status"])
        agents[row["agent_id"]] = (
            row["agent_name"], status if status in KNOWN_STATUSES else "inactive"
        )
    last_names: dict[str, tuple[datetime, str]] = {}
    for row in history:
        if str(row["dbt_is_deleted"]) == "True" or row["agent_name"] is None:
            continue
        seen = last_names.get(row["agent_id"])
        if seen is None or row["dbt_valid_from"] > seen[0]:
            last_names[row["agent_id"]] = (row["dbt_valid_from"], row["agent_name"])
    for agent_id, (_, name) in last_names.items():
        agents.setdefault(agent_id, (name, "deleted"))
    return StagedData(calls, org_reseller, agents)


def _json_number(fields: dict[str, Any], name: str) -> float | None:
    value = fields.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _payload_fields(payload: str | None) -> dict[str, Any]:
    """The typed fields of a raw payload, as raw-sources.md says (Python's own JSON parser)."""
    def no_constants(name: str) -> None:
        raise ValueError(name)

    try:
        parsed = json.loads(payload, parse_constant=no_constants) if payload else None
    except ValueError:
        parsed = None
    fields = parsed if isinstance(parsed, dict) else {}
    status = fields.get("status")
    return {
        "ttft_ms": _json_number(fields, "ttft_ms"),
        "cached_tokens": _json_number(fields, "cached_tokens"),
        "total_tokens": _json_number(fields, "total_tokens"),
        "confidence": _json_number(fields, "confidence"),
        "tool_status": status.lower() if isinstance(status, str) else None,
    }


def load_raw(raw_dir: Path) -> StagedData:
    """The reference's data read straight from a raw directory's Parquet files (DuckDB only
    reads the files): the latest version of each call chosen here, events deduplicated and
    their payloads parsed here, organizations and agents from their current extracts.
    Independent of every dbt model, so it checks the loading itself. Agents missing from the
    agents extract are unknown here (a warehouse that saw them before keeps their last name)."""
    def read(con: duckdb.DuckDBPyConnection, table: str) -> list[dict[str, Any]]:
        pattern = str(raw_dir / table / "**" / "*.parquet").replace("'", "''")
        return _rows(con, f"select * from read_parquet('{pattern}', union_by_name = true, "
                          "filename = true, hive_partitioning = false) order by filename")

    con = duckdb.connect()
    try:
        con.execute("set TimeZone = 'UTC'")
        raw_calls, raw_events = read(con, "calls"), read(con, "telemetry_events")
        raw_orgs, raw_agents = read(con, "organizations"), read(con, "agents")
    finally:
        con.close()
    latest: dict[str, dict[str, Any]] = {}
    for row in raw_calls:
        if row["id"] is None or row["updated_at"] is None:
            continue
        held = latest.get(row["id"])
        if held is None or row["updated_at"] > held["updated_at"]:
            latest[row["id"]] = row
    call_rows = [
        {**row, "call_id": row["id"], "outcome_code": row["outcome"]} for row in latest.values()
    ]
    event_rows = [
        {"event_id": e["event_id"], "call_id": e["call_id"], "event_type": e["event_type"],
         **_payload_fields(e["payload"])}
        for e in raw_events if e["event_id"] is not None
    ]
    orgs: dict[str, dict[str, Any]] = {}
    for row in raw_orgs:  # the last file wins
        if row["id"] is not None:
            orgs[row["id"]] = {"organization_id": row["id"], "reseller_id": row["reseller_id"]}
    agents: dict[str, dict[str, Any]] = {}
    for row in sorted(
        (r for r in raw_agents if r["id"] is not None),
        key=lambda r: (r["updated_at"] is not None, r["updated_at"] or _EPOCH, r["filename"]),
    ):
        name = (row["name"] or "").strip(" \t\n\r") or None
        agents[row["id"]] = {"agent_id": row["id"], "agent_name": name,
                             "raw_status": row["status"]}
    return _assemble(call_rows, event_rows, list(orgs.values()), list(agents.values()), [])


def _attach(call: Call, event: dict[str, Any]) -> None:
    """Add one distinct event's valid samples to its call (float comparisons are exact)."""
    kind = _clean(event["event_type"])
    if kind == "llm":
        ttft = event["ttft_ms"]
        if ttft is not None and ttft >= 0:
            call.latency.append(Fraction(ttft))
        cached, total = event["cached_tokens"], event["total_tokens"]
        if cached is not None and total is not None and total > 0 and 0 <= cached <= total:
            call.token_ratios.append(Fraction(cached) / Fraction(total))
    elif kind == "stt":
        confidence = event["confidence"]
        if confidence is not None and 0 <= confidence <= 1:
            call.confidences.append(Fraction(confidence))
    elif kind == "tool":
        status = _clean(event["tool_status"])
        if status in ("success", "error"):
            call.tools.append(status == "success")


# ---------------------------------------------------------------- the payload


def round_half_away(value: Fraction) -> float:
    """One decimal place, half away from zero (values here are never negative)."""
    assert value >= 0
    return math.floor(value * 10 + Fraction(1, 2)) / 10


def _pct(count: int | Fraction, total: int) -> Fraction | None:
    return None if total == 0 else Fraction(count) * 100 / total


def _mean(calls: list[Call], samples: str) -> Fraction | None:
    """Mean of every sample of one kind over the calls; None when there is none."""
    total, count = Fraction(0), 0
    for call in calls:
        call_sum, call_count = call.total(samples)
        total += call_sum
        count += call_count
    return total / count if count else None


def _times100(value: Fraction | None) -> Fraction | None:
    return None if value is None else value * 100


def _or_zero(value: Fraction | None) -> float:
    return 0.0 if value is None else round_half_away(value)


def _or_null(value: Fraction | None) -> float | None:
    return None if value is None else round_half_away(value)


def reference_payload(
    data: StagedData,
    start: datetime,
    end: datetime,
    organization_id: str | None = None,
    reseller_id: str | None = None,
    first_date: date | None = None,
    last_date: date | None = None,
) -> dict[str, Any]:
    """The payload's JSON (as a dict) for calls with ``start <= started_at <= end``."""
    lo, hi = _us(start), _us(end)
    if organization_id is not None:
        orgs = {organization_id}
    elif reseller_id is not None:
        orgs = {o for o, r in data.org_reseller.items() if r == reseller_id}
    else:
        orgs = None
    calls = [
        c for c in data.calls
        if lo <= c.started_us <= hi and (orgs is None or c.organization_id in orgs)
    ]
    total = len(calls)
    duration = sum(c.duration_us for c in calls)
    response = _or_null(_mean(calls, "latency"))
    with_sentiment = [c for c in calls if c.has_sentiment]
    escalated = [c for c in calls if c.category == "transferred"]

    by_agent: dict[str, list[Call]] = defaultdict(list)
    for c in calls:
        if c.agent_id is not None:
            by_agent[c.agent_id].append(c)
    agents = []
    for agent_id, own in by_agent.items():
        n = len(own)
        counts = {k: sum(1 for c in own if c.category == k)
                  for k in ("resolved", "transferred", "abandoned", "other")}
        sent = [c for c in own if c.has_sentiment]
        name, status = data.agents.get(agent_id, ("Unknown agent", "deleted"))
        agents.append({
            "agentId": agent_id, "agentName": name, "totalCalls": n,
            **counts,
            "resolvedPercent": _or_zero(_pct(counts["resolved"], n)),
            "transferredPercent": _or_zero(_pct(counts["transferred"], n)),
            "abandonedPercent": _or_zero(_pct(counts["abandoned"], n)),
            "otherPercent": _or_zero(_pct(counts["other"], n)),
            "avgDuration": round_half_away(
                Fraction(sum(c.duration_us for c in own), n * 1_000_000)
            ),
            "sentimentPercent": _or_null(_pct(sum(c.positive for c in sent), len(sent))),
            "status": status,
        })
    agents.sort(key=lambda a: (-a["totalCalls"], a["agentId"]))

    first_date = first_date or start.astimezone(UTC).date()
    last_date = last_date or end.astimezone(UTC).date()
    by_day: dict[date, list[Call]] = defaultdict(list)
    by_hour: dict[int, list[Call]] = defaultdict(list)
    for c in calls:
        by_day[c.started_at.date()].append(c)
        by_hour[c.started_at.hour].append(c)
    daily = []
    day = first_date
    while day <= last_date:
        own = by_day.get(day, [])
        daily.append({"date": day.isoformat(), "totalCalls": len(own),
                      "resolvedCalls": sum(1 for c in own if c.category == "resolved")})
        day += timedelta(days=1)
    hourly = []
    for hour in range(24):
        own = by_hour.get(hour, [])
        hourly.append({"hour": f"{hour:02d}:00", "calls": len(own),
                       "minutes": round_half_away(
                           Fraction(sum(c.duration_us for c in own), 60_000_000))})

    reasons: dict[str, list[Call]] = defaultdict(list)
    for c in escalated:
        if c.reason is not None:
            reasons[c.reason].append(c)
    reason_rows = sorted(
        ({"reason": r, "count": len(own),
          "percentOfTotal": round_half_away(Fraction(len(own) * 100, len(escalated))),
          "avgTimeBeforeEscalation": round_half_away(
              Fraction(sum(c.before_escalation_us for c in own), len(own) * 1_000_000))}
         for r, own in reasons.items()),
        key=lambda r: (-r["count"], r["reason"]),
    )
    with_corrections = [c for c in calls if c.corrections is not None]
    tools = [x for c in calls for x in c.tools]
    return {
        "data": {
            "metrics": {
                "totalCalls": total,
                "totalMinutes": round_half_away(Fraction(duration, 60_000_000)),
                "resolutionRate": _or_zero(
                    _pct(sum(1 for c in calls if c.category == "resolved"), total)
                ),
                "avgDuration": _or_zero(
                    Fraction(duration, total * 1_000_000) if total else None
                ),
                "activeAgents": len(by_agent),
                "responseTime": response,
                "sentimentPercent": _or_null(
                    _pct(sum(c.positive for c in with_sentiment), len(with_sentiment))
                ),
                "escalationRate": _or_null(_pct(len(escalated), total)),
            },
            "dailyVolume": daily,
            "hourlyDistribution": hourly,
            "resolutionBreakdown": {
                k: sum(1 for c in calls if c.category == k)
                for k in ("resolved", "transferred", "abandoned", "other")
            },
            "agentPerformance": agents,
            "aiInsights": {
                "intentAccuracy": _or_null(
                    _pct(sum(1 for c in with_corrections if c.corrections == 0),
                         len(with_corrections))
                ),
                "contextRetention": _or_null(_times100(_mean(calls, "token_ratios"))),
                "speechRecognition": _or_null(_times100(_mean(calls, "confidences"))),
                "entityExtraction": _or_null(_pct(sum(tools), len(tools))),
                "responseLatency": response,
                "trainingSessions": total,
                "responseLatencyPercentiles": latency_percentiles(
                    [x for c in calls for x in c.latency]
                ),
            },
            "escalationReasons": reason_rows,
        }
    }


_GAMMA = (1 + 0.01) / (1 - 0.01)


def latency_percentiles(samples: list[Fraction]) -> dict[str, float] | None:
    """metrics.md "Latency percentiles" as the sketch reports them: the exact nearest-rank
    sample (k = ceil(N / 100 x n)), then the value of its sketch bin, 2 gamma^i / (gamma + 1)
    with i = ceil(log_gamma(x)) (0 for 0), rounded once."""
    if not samples:
        return None
    ordered = sorted(samples)
    result = {}
    for rank in (50, 90, 95, 99):
        x = float(ordered[max(1, math.ceil(rank * len(ordered) / 100)) - 1])
        if x == 0:
            result[f"p{rank}"] = 0.0
            continue
        index = math.ceil(math.log(x) / math.log(_GAMMA))
        result[f"p{rank}"] = round_half_away(Fraction(2 * _GAMMA ** index / (_GAMMA + 1)))
    return result


# Fields computed from double-valued telemetry: the warehouse sums stored doubles per bucket,
# the reference sums each event exactly, so the two may land on opposite sides of an exact
# rounding tie (and only there).
TELEMETRY_FIELDS = {
    ("metrics", "responseTime"),
    ("aiInsights", "responseLatency"),
    ("aiInsights", "contextRetention"),
    ("aiInsights", "speechRecognition"),
}


def exact_telemetry(data: StagedData, start: datetime, end: datetime,
                    org_ids: set[str] | None) -> dict[tuple[str, str], Fraction | None]:
    """The unrounded values of the telemetry fields, to tell a rounding tie from a bug."""
    lo, hi = _us(start), _us(end)
    calls = [c for c in data.calls
             if lo <= c.started_us <= hi and (org_ids is None or c.organization_id in org_ids)]
    mean_latency = _mean(calls, "latency")
    return {
        ("metrics", "responseTime"): mean_latency,
        ("aiInsights", "responseLatency"): mean_latency,
        ("aiInsights", "contextRetention"): _times100(_mean(calls, "token_ratios")),
        ("aiInsights", "speechRecognition"): _times100(_mean(calls, "confidences")),
    }


def payload_differences(
    got: dict[str, Any], expected: dict[str, Any],
    exact: dict[tuple[str, str], Fraction | None] | None = None,
) -> list[str]:
    """Every field where ``got`` differs from ``expected``; a telemetry field may differ by
    0.1 only when its exact value lies within 1e-9 of a rounding tie."""
    problems = []
    got_data, want_data = got["data"], expected["data"]
    for section in want_data:
        g, w = got_data[section], want_data[section]
        if isinstance(w, dict):
            for field_name in w:
                if g[field_name] == w[field_name]:
                    continue
                value = (exact or {}).get((section, field_name))
                if (section, field_name) in TELEMETRY_FIELDS and value is not None:
                    tenths = value * 10 - math.floor(value * 10)
                    if abs(tenths - Fraction(1, 2)) < Fraction(1, 10**9) and \
                            abs(g[field_name] - w[field_name]) <= 0.1 + 1e-9:
                        continue
                problems.append(f"{section}.{field_name}: got {g[field_name]!r}, "
                                f"expected {w[field_name]!r}")
        elif g != w:
            for n, (gi, wi) in enumerate(zip(g, w, strict=False)):
                if gi != wi:
                    problems.append(f"{section}[{n}]: got {gi!r}, expected {wi!r}")
                    break
            if len(g) != len(w):
                problems.append(f"{section}: got {len(g)} entries, expected {len(w)}")
    return problems


# ---------------------------------------------------------------- the JSON Schema

# The contract's schema lives beside the project (../shared/spec/); CI clones the repository
# alone, so the tests read a copy kept in the repository, and test_payload_schema_copy.py checks
# that the copy still equals the contract wherever the contract is present.
SPEC_SCHEMA_PATH = (
    Path(__file__).resolve().parents[2] / "shared" / "spec" / "metrics-payload.schema.json"
)
SCHEMA_PATH = Path(__file__).resolve().parent / "fixtures" / "metrics-payload.schema.json"


def assert_valid_payload(payload: dict[str, Any]) -> None:
    """Validate a payload against the contract's metrics-payload.schema.json."""
    jsonschema.Draft202012Validator(_schema()).validate(payload)


@cache
def _schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())
