"""The metric formulas of ``metrics.md``: parts in, payload out.

This is the only place where ratios are taken and values rounded, for every scope
(organization, reseller, all) alike; ``rounding.py`` holds the rounding rule itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

from callmetrics.exporter import sections as q
from callmetrics.exporter.calendar import Granularity, period_start, periods
from callmetrics.exporter.parts import Number, ScopeParts, Sums
from callmetrics.exporter.payload import (
    AgentPerformance,
    AgentStatus,
    AiInsights,
    DailyVolume,
    EscalationReason,
    HourlyDistribution,
    Metrics,
    MetricsChange,
    MetricsData,
    MetricsPayload,
    PreviousPeriod,
    ResolutionBreakdown,
)
from callmetrics.exporter.rounding import ratio_or_none, ratio_or_zero, round1
from callmetrics.exporter.sketch import percentiles
from callmetrics.exporter.timerange import TimeRange, iso

US_PER_SECOND = 1_000_000
US_PER_MINUTE = 60 * US_PER_SECOND

AgentLookup = Callable[[str], tuple[str, AgentStatus]]
_EMPTY: Sums = {}


def percent(count: Number, total: Number) -> float:
    """100 x count / total, 0 when total is 0 (a ``number`` field)."""
    return ratio_or_zero(count, total, scale=100)


def percent_or_null(count: Number, total: Number) -> float | None:
    """100 x count / total, null when total is 0 (a ``number | null`` field)."""
    return ratio_or_none(count, total, scale=100)


def mean_seconds(duration_us: Number, calls: Number) -> float:
    """Mean duration in seconds; 0 when there are no calls."""
    return ratio_or_zero(duration_us, calls * US_PER_SECOND)


def minutes(duration_us: Number) -> float:
    return round1(duration_us, US_PER_MINUTE)


def _exact_ratio(numerator: Number, denominator: Number, scale: int = 1) -> Fraction | None:
    return None if denominator == 0 else Fraction(numerator * scale) / denominator


def metric_values(parts: ScopeParts) -> dict[str, Number | None]:
    """The eight ``metrics`` fields, exact and unrounded (``None``: null), by Python name."""
    m = parts.section(q.METRICS).get((), _EMPTY)
    total = m.get("total_calls", 0)
    duration = m.get("duration_us_sum", 0)
    return {
        "total_calls": total,
        "total_minutes": Fraction(duration, US_PER_MINUTE),
        "resolution_rate": _exact_ratio(m.get("resolved_calls", 0), total, 100) or 0,
        "avg_duration": _exact_ratio(duration, total * US_PER_SECOND) or 0,
        "active_agents": len(parts.section(q.AGENTS)),
        "response_time": _exact_ratio(
            m.get("latency_ms_sum", 0), m.get("latency_sample_count", 0)
        ),
        "sentiment_percent": _exact_ratio(
            m.get("positive_calls", 0), m.get("sentiment_calls", 0), 100
        ),
        "escalation_rate": _exact_ratio(m.get("escalated_calls", 0), total, 100),
    }


def _rounded(value: Number | None) -> float | None:
    return None if value is None else round1(value)


def build_metrics(values: dict[str, Number | None]) -> Metrics:
    """``metrics`` from its exact values: counts as they are, the rest rounded once."""
    return Metrics(**{
        name: value if name in ("total_calls", "active_agents") else _rounded(value)
        for name, value in values.items()
    })


def change(
    current: dict[str, Number | None], previous: dict[str, Number | None]
) -> MetricsChange:
    """100 x (current - previous) / previous per field, from unrounded values, rounded once;
    null when the previous value is 0 or null or the current one is null."""
    result: dict[str, float | None] = {}
    for name, now in current.items():
        before = previous[name]
        if now is None or not before:
            result[name] = None
        else:
            result[name] = round1(100 * (now - before), before)
    return MetricsChange(**result)


@dataclass(frozen=True)
class Comparison:
    """The previous period of a request (``compare=previous``) and its parts."""

    time_range: TimeRange
    parts: ScopeParts


def build_payload(
    parts: ScopeParts,
    time_range: TimeRange,
    agent_lookup: AgentLookup,
    granularity: Granularity = "day",
    previous: Comparison | None = None,
) -> MetricsPayload:
    """The payload of one scope from its parts; ``agent_lookup`` names an agent id.

    ``dailyVolume`` lists the ``granularity`` periods overlapping the range's dates (the
    daily section's dates are already local when a time zone was asked); ``previous`` adds
    ``previousPeriod``.
    """
    m = parts.section(q.METRICS).get((), _EMPTY)
    total = m.get("total_calls", 0)
    response_time = ratio_or_none(m.get("latency_ms_sum", 0), m.get("latency_sample_count", 0))
    agents = _agents(parts, agent_lookup)
    values = metric_values(parts)
    metrics = build_metrics(values)
    by_period: dict = {}
    for (day,), sums in parts.section(q.DAILY).items():
        target = by_period.setdefault(period_start(day, granularity), {})
        for column, value in sums.items():
            target[column] = target.get(column, 0) + value
    daily_volume = [
        DailyVolume(
            date=first.isoformat(),
            total_calls=by_period.get(first, _EMPTY).get("total_calls", 0),
            resolved_calls=by_period.get(first, _EMPTY).get("resolved_calls", 0),
        )
        for first in periods(time_range.first_date, time_range.last_date, granularity)
    ]
    hourly = parts.section(q.HOURLY)
    hourly_distribution = [
        HourlyDistribution(
            hour=f"{hour:02d}:00",
            calls=hourly.get((hour,), _EMPTY).get("total_calls", 0),
            minutes=minutes(hourly.get((hour,), _EMPTY).get("duration_us_sum", 0)),
        )
        for hour in range(24)
    ]
    r = parts.section(q.RESOLUTION).get((), _EMPTY)
    breakdown = ResolutionBreakdown(
        resolved=r.get("resolved_calls", 0),
        transferred=r.get("transferred_calls", 0),
        abandoned=r.get("abandoned_calls", 0),
        other=r.get("other_calls", 0),
    )
    i = parts.section(q.INSIGHTS).get((), _EMPTY)
    insights = AiInsights(
        intent_accuracy=percent_or_null(
            i.get("zero_correction_calls", 0), i.get("corrections_calls", 0)
        ),
        context_retention=percent_or_null(
            i.get("token_ratio_sum", 0), i.get("token_sample_count", 0)
        ),
        speech_recognition=percent_or_null(
            i.get("confidence_sum", 0), i.get("confidence_sample_count", 0)
        ),
        entity_extraction=percent_or_null(
            i.get("tool_success_count", 0), i.get("tool_call_count", 0)
        ),
        response_latency=response_time,  # the same number as metrics.responseTime
        training_sessions=total,
        response_latency_percentiles=percentiles(parts.section(q.LATENCY)),
    )
    previous_period = None
    if previous is not None:
        before = metric_values(previous.parts)
        previous_period = PreviousPeriod(
            start_date=iso(previous.time_range.start),
            end_date=iso(previous.time_range.end),
            metrics=build_metrics(before),
            change=change(values, before),
        )
    return MetricsPayload(
        data=MetricsData(
            metrics=metrics,
            daily_volume=daily_volume,
            hourly_distribution=hourly_distribution,
            resolution_breakdown=breakdown,
            agent_performance=agents,
            ai_insights=insights,
            escalation_reasons=_reasons(parts, m.get("escalated_calls", 0)),
            previous_period=previous_period,
        )
    )


def _agents(parts: ScopeParts, agent_lookup: AgentLookup) -> list[AgentPerformance]:
    rows = sorted(
        ((key[0], sums) for key, sums in parts.section(q.AGENTS).items()),
        key=lambda item: (-item[1]["total_calls"], item[0]),
    )
    agents = []
    for agent_id, s in rows:
        calls = s["total_calls"]
        name, status = agent_lookup(agent_id)
        agents.append(
            AgentPerformance(
                agent_id=agent_id,
                agent_name=name,
                total_calls=calls,
                resolved=s.get("resolved_calls", 0),
                transferred=s.get("transferred_calls", 0),
                abandoned=s.get("abandoned_calls", 0),
                other=s.get("other_calls", 0),
                resolved_percent=percent(s.get("resolved_calls", 0), calls),
                transferred_percent=percent(s.get("transferred_calls", 0), calls),
                abandoned_percent=percent(s.get("abandoned_calls", 0), calls),
                other_percent=percent(s.get("other_calls", 0), calls),
                avg_duration=mean_seconds(s.get("duration_us_sum", 0), calls),
                sentiment_percent=percent_or_null(
                    s.get("positive_calls", 0), s.get("sentiment_calls", 0)
                ),
                status=status,
            )
        )
    return agents


def _reasons(parts: ScopeParts, escalated_calls: Number) -> list[EscalationReason]:
    rows = sorted(
        ((key[0], sums) for key, sums in parts.section(q.REASONS).items()),
        key=lambda item: (-item[1]["escalated_calls"], item[0]),
    )
    return [
        EscalationReason(
            reason=reason,
            count=s["escalated_calls"],
            percent_of_total=percent(s["escalated_calls"], escalated_calls),
            avg_time_before_escalation=mean_seconds(
                s.get("escalation_us_sum", 0), s["escalated_calls"]
            ),
        )
        for reason, s in rows
    ]
