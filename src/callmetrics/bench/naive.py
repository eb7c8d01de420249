"""The naive alternative: what a user might write instead of the warehouse.

A pandas script that reads the raw Parquet every time it is asked, keeps one organization's
calls in a range and computes that organization's payload from them, following
``metrics.md`` to the letter. It reads every call version (pandas, whole table), and the
telemetry of the calls it kept (pyarrow's filter push-down on ``call_id``: reading every event
into pandas does not fit in memory at ten million calls, so even a naive user would filter).

It has no history: an agent missing from the latest agents extract is ``"Unknown agent"`` here,
where the warehouse remembers the last name it saw.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from datetime import date, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from callmetrics.exporter.timerange import parse_range

WS = " \t\n\r"
CATEGORIES = ("resolved", "transferred", "abandoned", "other")
OUTCOME_CATEGORY = {
    "resolved": "resolved",
    "transferred": "transferred",
    "escalated": "transferred",
    "abandoned": "abandoned",
}
AGENT_STATUSES = {"active", "inactive", "cancelled", "pending"}
CALL_COLUMNS = [
    "id", "organization_id", "agent_id", "started_at", "ended_at", "outcome", "transferred_at",
    "sentiment", "user_corrections", "escalation_reason", "updated_at",
]  # fmt: skip
EVENT_COLUMNS = ["event_id", "call_id", "event_type", "payload"]
_SPACES = re.compile(r"\s+")


# metrics.md "Latency percentiles": the warehouse answers from a DDSketch (1% relative
# accuracy). Computed here the direct way: the exact nearest-rank sample, then the value the
# sketch reports for that sample's bin, 2 gamma^i / (gamma + 1) with i = ceil(log_gamma(x)).
_GAMMA = 1.01 / 0.99


def _latency_percentiles(samples: list[float]) -> dict[str, float] | None:
    if not samples:
        return None
    ordered = sorted(samples)
    result = {}
    for rank in (50, 90, 95, 99):
        x = ordered[max(1, -(-rank * len(ordered) // 100)) - 1]
        if x == 0:
            result[f"p{rank}"] = 0.0
            continue
        index = math.ceil(math.log(x) / math.log(_GAMMA))
        result[f"p{rank}"] = round1(Fraction(2 * _GAMMA**index / (_GAMMA + 1)))
    return result


def round1(value: Fraction | int | float) -> float:
    """One decimal place, half away from zero (``metrics.md``), on the exact value."""
    tenths = Fraction(value) * 10
    magnitude = (abs(tenths) + Fraction(1, 2)).__floor__()
    return float(Fraction(-magnitude if tenths < 0 else magnitude, 10))


def _pct(part: int, whole: int) -> float | None:
    return None if whole == 0 else round1(Fraction(100 * part, whole))


def _mean(total: Fraction | int | float, count: int) -> float | None:
    return None if count == 0 else round1(Fraction(total) / count)


def _files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.parquet"))


def _read(folder: Path, columns: list[str], filters: Any = None) -> pd.DataFrame:
    frames = []
    for path in _files(folder):
        table = pq.read_table(path, filters=filters)
        table = table.select([c for c in columns if c in table.column_names])
        frames.append(table.to_pandas())
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    for column in columns:
        if column not in frame.columns:
            frame[column] = None
    return frame


def _text(value: Any) -> str:
    return value.strip(WS) if isinstance(value, str) else ""


def _number(doc: dict, key: str) -> float | None:
    value = doc.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _micros(series: pd.Series) -> pd.Series:
    return series.dt.tz_convert("UTC").dt.as_unit("us").astype("int64")


def _counted_calls(raw_dir: Path, organization_id: str, start: Any, end: Any) -> pd.DataFrame:
    calls = _read(raw_dir / "calls", CALL_COLUMNS)
    calls = calls[calls["id"].notna()]
    calls = calls.sort_values("updated_at", kind="stable").drop_duplicates("id", keep="last")
    valid = (
        calls["organization_id"].notna()
        & calls["started_at"].notna()
        & calls["ended_at"].notna()
    )
    calls = calls[valid]
    calls = calls[calls["ended_at"] >= calls["started_at"]]
    calls = calls[calls["organization_id"] == organization_id]
    calls = calls[(calls["started_at"] >= start) & (calls["started_at"] <= end)].copy()
    started, ended = _micros(calls["started_at"]), _micros(calls["ended_at"])
    calls["duration_us"] = ended - started
    transferred = calls["transferred_at"]
    inside = transferred.notna() & (transferred >= calls["started_at"]) & (
        transferred <= calls["ended_at"]
    )
    escalation = calls["duration_us"].copy()
    if inside.any():
        escalation[inside] = _micros(transferred[inside]) - started[inside]
    calls["escalation_us"] = escalation
    calls["category"] = [
        OUTCOME_CATEGORY.get(_text(v).lower(), "other") for v in calls["outcome"]
    ]
    sentiment = [_text(v).lower() for v in calls["sentiment"]]
    calls["has_sentiment"] = [s != "" for s in sentiment]
    calls["positive"] = [s == "positive" for s in sentiment]
    calls["reason"] = [
        _SPACES.sub(" ", _text(v).lower()) or None for v in calls["escalation_reason"]
    ]
    calls["day"] = calls["started_at"].dt.tz_convert("UTC").dt.date
    calls["hour"] = calls["started_at"].dt.tz_convert("UTC").dt.hour
    return calls


def _telemetry(raw_dir: Path, call_ids: Iterable[str]) -> dict[str, Any]:
    ids = sorted(set(call_ids))
    parts: dict[str, Any] = {
        "latency": [], "ratios": [], "confidence": [], "tools": 0, "tool_success": 0,
    }  # fmt: skip
    if not ids:
        return parts
    events = _read(
        raw_dir / "telemetry_events", EVENT_COLUMNS, filters=[("call_id", "in", ids)]
    )
    events = events.drop_duplicates("event_id")
    for event_type, payload in zip(events["event_type"], events["payload"], strict=True):
        kind = _text(event_type).lower()
        if kind not in ("llm", "stt", "tool"):
            continue
        try:
            doc = json.loads(payload)
        except (TypeError, ValueError):
            continue
        if not isinstance(doc, dict):
            continue
        if kind == "llm":
            ttft = _number(doc, "ttft_ms")
            if ttft is not None and ttft >= 0:
                parts["latency"].append(ttft)
            cached, total = _number(doc, "cached_tokens"), _number(doc, "total_tokens")
            if cached is not None and total is not None and total > 0 and 0 <= cached <= total:
                parts["ratios"].append(cached / total)
        elif kind == "stt":
            confidence = _number(doc, "confidence")
            if confidence is not None and 0 <= confidence <= 1:
                parts["confidence"].append(confidence)
        else:
            status = doc.get("status")
            if isinstance(status, str) and status.lower() in ("success", "error"):
                parts["tools"] += 1
                parts["tool_success"] += status.lower() == "success"
    return parts


def _agents(raw_dir: Path) -> dict[str, tuple[str, str]]:
    agents = _read(raw_dir / "agents", ["id", "name", "status"])
    found: dict[str, tuple[str, str]] = {}
    for agent_id, name, status in zip(agents["id"], agents["name"], agents["status"], strict=True):
        clean = _text(status).lower()
        found[agent_id] = (name, clean if clean in AGENT_STATUSES else "inactive")
    return found


def _agent_rows(calls: pd.DataFrame, agents: dict[str, tuple[str, str]]) -> list[dict]:
    rows = []
    for agent_id, group in calls[calls["agent_id"].notna()].groupby("agent_id"):
        total = len(group)
        counts = {c: int((group["category"] == c).sum()) for c in CATEGORIES}
        name, status = agents.get(str(agent_id), ("Unknown agent", "deleted"))
        rows.append(
            {
                "agentId": agent_id,
                "agentName": name,
                "totalCalls": total,
                **counts,
                **{f"{c}Percent": _pct(counts[c], total) for c in CATEGORIES},
                "avgDuration": _mean(int(group["duration_us"].sum()), total * 1_000_000),
                "sentimentPercent": _pct(
                    int(group["positive"].sum()), int(group["has_sentiment"].sum())
                ),
                "status": status,
            }
        )
    rows.sort(key=lambda r: (-r["totalCalls"], r["agentId"]))
    return rows


def _reason_rows(calls: pd.DataFrame) -> list[dict]:
    escalated = calls[calls["category"] == "transferred"]
    rows = [
        {
            "reason": reason,
            "count": len(group),
            "percentOfTotal": _pct(len(group), len(escalated)),
            "avgTimeBeforeEscalation": _mean(int(group["escalation_us"].sum()), len(group) * 10**6),
        }
        for reason, group in escalated[escalated["reason"].notna()].groupby("reason")
    ]
    rows.sort(key=lambda r: (-r["count"], r["reason"]))
    return rows


def naive_payload(raw_dir: Path, organization_id: str, start: str, end: str) -> dict[str, Any]:
    """One organization's payload over ``[start, end]``, computed from the raw Parquet."""
    window = parse_range(start, end)
    calls = _counted_calls(raw_dir, organization_id, window.start, window.end)
    tele = _telemetry(raw_dir, calls["id"])
    total = len(calls)
    counts = {c: int((calls["category"] == c).sum()) for c in CATEGORIES}
    duration_us = int(calls["duration_us"].sum())
    with_corrections = calls[calls["user_corrections"].notna()]
    latency = _mean(Fraction(sum(tele["latency"])), len(tele["latency"]))
    days = calls.groupby("day")["category"].agg(["size", lambda s: int((s == "resolved").sum())])
    day_counts = {d: (int(r.iloc[0]), int(r.iloc[1])) for d, r in days.iterrows()}
    hours = calls.groupby("hour")["duration_us"].agg(["size", "sum"])
    hour_counts = {int(h): (int(r["size"]), int(r["sum"])) for h, r in hours.iterrows()}
    first: date = window.first_date
    dates = [first + timedelta(days=n) for n in range((window.last_date - first).days + 1)]
    agents = _agent_rows(calls, _agents(raw_dir))
    data = {
        "metrics": {
            "totalCalls": total,
            "totalMinutes": round1(Fraction(duration_us, 60_000_000)),
            "resolutionRate": _pct(counts["resolved"], total) or 0.0,
            "avgDuration": _mean(duration_us, total * 1_000_000) or 0.0,
            "activeAgents": len(agents),
            "responseTime": latency,
            "sentimentPercent": _pct(
                int(calls["positive"].sum()), int(calls["has_sentiment"].sum())
            ),
            "escalationRate": _pct(counts["transferred"], total),
        },
        "dailyVolume": [
            {"date": d.isoformat(), "totalCalls": day_counts.get(d, (0, 0))[0],
             "resolvedCalls": day_counts.get(d, (0, 0))[1]}
            for d in dates
        ],  # fmt: skip
        "hourlyDistribution": [
            {"hour": f"{h:02d}:00", "calls": hour_counts.get(h, (0, 0))[0],
             "minutes": round1(Fraction(hour_counts.get(h, (0, 0))[1], 60_000_000))}
            for h in range(24)
        ],  # fmt: skip
        "resolutionBreakdown": counts,
        "agentPerformance": agents,
        "aiInsights": {
            "intentAccuracy": _pct(
                int((with_corrections["user_corrections"] == 0).sum()), len(with_corrections)
            ),
            "contextRetention": _mean(Fraction(sum(tele["ratios"])) * 100, len(tele["ratios"])),
            "speechRecognition": _mean(
                Fraction(sum(tele["confidence"])) * 100, len(tele["confidence"])
            ),
            "entityExtraction": _pct(tele["tool_success"], tele["tools"]),
            "responseLatency": latency,
            "trainingSessions": total,
            "responseLatencyPercentiles": _latency_percentiles(tele["latency"]),
        },
        "escalationReasons": _reason_rows(calls),
    }
    return {"data": data}
