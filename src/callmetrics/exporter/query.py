"""Read-only queries: the additive parts of every payload section for a range.

The marts hold parts at organization x 15-minute UTC bucket grain. A range is split into
(``TimeRange.whole_buckets``):

- whole buckets, summed from the seven section marts: one small grouped query per mart,
  sent together as one statement (``union all by name``, each row tagged with its section),
  so that a payload costs one round trip to DuckDB, not seven;
- at most two partial buckets at the edges, ``[start, first whole bucket)`` and
  ``[end of the last whole bucket, end]``, read call by call from ``fct_calls`` in one
  query and added up here with the same part definitions the marts use. Each edge is under
  15 minutes, so this reads a handful of calls, however long the range; a range that starts
  and ends on bucket boundaries (whole days, whole hours) has no edge and skips the query.

Together they are exactly the calls with ``start <= started_at <= end``, to the microsecond,
for any range: a call is in a whole bucket or in an edge, never both, never neither. (A
one-microsecond grain would make this unnecessary but the marts as large as the fact table.)

Every value that varies (instants, organization ids) is a bound parameter; only the fixed
table and column names below are ever written into SQL text. Telemetry sums (doubles) are
cast to ``decimal(38, 10)`` row by row (the one rounding, far below the payload's 0.1) and
then added exactly, so no result depends on the order DuckDB or Python adds rows in: a
reseller's payload is the same whether summed in SQL or from its organizations' parts.

Filters are plain ranges on ``bucket_start``/``started_at`` and equality on
``organization_id`` so that DuckDB's zone maps can skip row groups.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb

from callmetrics.exporter.parts import ScopeParts, to_exact
from callmetrics.exporter.timerange import ONE_US, TimeRange

METRICS = "metrics"
DAILY = "daily_volume"
HOURLY = "hourly_distribution"
RESOLUTION = "resolution_breakdown"
AGENTS = "agent_performance"
INSIGHTS = "ai_insights"
REASONS = "escalation_reasons"

# How one row of fct_calls contributes to each part column (the marts' own definitions).
PART_EXPRESSIONS: dict[str, str] = {
    "total_calls": "1",
    "resolved_calls": "is_resolved",
    "transferred_calls": "is_transferred",
    "abandoned_calls": "is_abandoned",
    "other_calls": "is_other",
    "escalated_calls": "is_escalated",
    "duration_us_sum": "duration_us",
    "sentiment_calls": "has_sentiment",
    "positive_calls": "is_positive",
    "corrections_calls": "has_corrections_data",
    "zero_correction_calls": "has_zero_corrections",
    "latency_sample_count": "latency_sample_count",
    "latency_ms_sum": "latency_ms_sum",
    "token_sample_count": "token_sample_count",
    "token_ratio_sum": "token_ratio_sum",
    "confidence_sample_count": "confidence_sample_count",
    "confidence_sum": "confidence_sum",
    "tool_call_count": "tool_call_count",
    "tool_success_count": "tool_success_count",
    "escalation_us_sum": "escalation_us",
}
# Section keys: the mart column and how a call's key is derived (UTC date and hour).
KEY_EXPRESSIONS: dict[str, str] = {
    "call_date": "cast(timezone('UTC', started_at) as date)",
    "hour_of_day": "hour(timezone('UTC', started_at))",
    "agent_id": "agent_id",
    "reason": "escalation_reason",
}
# Double-valued sums: exact decimal addition, see the module doc.
_DOUBLE_SUMS = frozenset({"latency_ms_sum", "token_ratio_sum", "confidence_sum"})


@dataclass(frozen=True)
class Section:
    """A payload section: its mart, its key and part columns, and which calls it holds."""

    name: str
    mart: str
    keys: tuple[str, ...]
    sums: tuple[str, ...]
    calls_held: str = "true"  # which fct_calls rows the mart holds (a boolean expression)


SECTIONS: tuple[Section, ...] = (
    Section(METRICS, "mart_metrics", (),
            ("total_calls", "resolved_calls", "escalated_calls", "duration_us_sum",
             "latency_sample_count", "latency_ms_sum", "sentiment_calls", "positive_calls")),
    Section(DAILY, "mart_daily_volume", ("call_date",), ("total_calls", "resolved_calls")),
    Section(HOURLY, "mart_hourly_distribution", ("hour_of_day",),
            ("total_calls", "duration_us_sum")),
    Section(RESOLUTION, "mart_resolution_breakdown", (),
            ("total_calls", "resolved_calls", "transferred_calls", "abandoned_calls",
             "other_calls")),
    Section(AGENTS, "mart_agent_performance", ("agent_id",),
            ("total_calls", "resolved_calls", "transferred_calls", "abandoned_calls",
             "other_calls", "duration_us_sum", "sentiment_calls", "positive_calls"),
            calls_held="agent_id is not null"),
    Section(INSIGHTS, "mart_ai_insights", (),
            ("corrections_calls", "zero_correction_calls", "token_sample_count",
             "token_ratio_sum", "confidence_sample_count", "confidence_sum", "tool_call_count",
             "tool_success_count")),
    Section(REASONS, "mart_escalation_reasons", ("reason",),
            ("escalated_calls", "escalation_us_sum"),
            calls_held="is_escalated = 1 and escalation_reason is not null"),
)

SECTIONS_BY_NAME = {section.name: section for section in SECTIONS}

REQUIRED_TABLES = tuple(s.mart for s in SECTIONS) + (
    "fct_calls", "dim_organizations", "dim_resellers", "dim_agents",
)


def _as_summable(column: str, expression: str) -> str:
    if column in _DOUBLE_SUMS:
        return f"cast({expression} as decimal(38, 10))"
    return expression


def _scope_filter(org_count: int | None) -> str:
    if org_count is None:
        return ""
    if org_count == 1:
        return " and organization_id = $org_0"
    return f" and organization_id in ({', '.join(f'$org_{n}' for n in range(org_count))})"


SECTION_COLUMN = "section"


def mart_sql(section: Section, *, by_org: bool, org_count: int | None) -> str:
    """Sum one section's mart over the whole buckets ``[$first_bucket, $stop_bucket)``; each
    row is tagged with the section's name (column ``section``)."""
    groups = (["organization_id"] if by_org else []) + list(section.keys)
    sums = [f"sum({_as_summable(c, c)}) as {c}" for c in section.sums]
    group_by = f"\ngroup by {', '.join(groups)}" if groups else ""
    return (
        f"select '{section.name}' as {SECTION_COLUMN}, {', '.join(groups + sums)}\n"
        f"from marts.{section.mart}\n"
        f"where bucket_start >= $first_bucket and bucket_start < $stop_bucket"
        f"{_scope_filter(org_count)}{group_by}"
    )


def marts_sql(*, by_org: bool, org_count: int | None) -> str:
    """Every section's mart query as one statement: columns are matched by name, and a
    section's rows hold nulls in the other sections' columns."""
    return "\nunion all by name\n".join(
        f"({mart_sql(section, by_org=by_org, org_count=org_count)})" for section in SECTIONS
    )


def edge_sql(org_count: int | None) -> str:
    """Every call of the edges ``[$lo_0, $hi_0]`` and ``[$lo_1, $hi_1]`` with its parts."""
    columns = ["organization_id"]
    columns += [f"{e} as {k}" for k, e in KEY_EXPRESSIONS.items()]
    columns += [f"{s.calls_held} as in_{s.name}" for s in SECTIONS]
    columns += [f"{_as_summable(c, e)} as {c}" for c, e in PART_EXPRESSIONS.items()]
    return (
        f"select {', '.join(columns)}\n"
        "from marts.fct_calls\n"
        "where ((started_at >= $lo_0 and started_at <= $hi_0)"
        " or (started_at >= $lo_1 and started_at <= $hi_1))"
        f"{_scope_filter(org_count)}"
    )


def fetch_parts(
    con: duckdb.DuckDBPyConnection,
    time_range: TimeRange,
    org_ids: Sequence[str] | None,
    *,
    by_org: bool,
) -> dict[str | None, ScopeParts]:
    """Parts of the calls in range of ``org_ids`` (``None``: every organization).

    With ``by_org`` the result maps each organization with calls in range to its own parts
    (still one query per section, whatever the number of organizations); without, it maps
    ``None`` to the parts of the whole scope. Organizations without calls are absent.
    """
    result: dict[str | None, ScopeParts] = {}
    if org_ids is not None and not org_ids:
        return result
    org_count = None if org_ids is None else len(org_ids)
    scope = {f"org_{n}": org_id for n, org_id in enumerate(org_ids or ())}

    def parts_of(org_id: str | None) -> ScopeParts:
        key = org_id if by_org else None
        if key not in result:
            result[key] = ScopeParts()
        return result[key]

    buckets = time_range.whole_buckets()
    if buckets is None:
        edges = [(time_range.start, time_range.end)] * 2
    else:
        first, stop = buckets
        edges = [(time_range.start, first - ONE_US), (stop, time_range.end)]
        params = {"first_bucket": first, "stop_bucket": stop, **scope}
        cursor = con.execute(marts_sql(by_org=by_org, org_count=org_count), params)
        column = {d[0]: n for n, d in enumerate(cursor.description)}
        for row in cursor.fetchall():
            section = SECTIONS_BY_NAME[row[column[SECTION_COLUMN]]]
            sums = {c: to_exact(row[column[c]]) for c in section.sums}
            if any(sums.values()):  # skip the all-null row of an ungrouped empty sum
                target = parts_of(row[column["organization_id"]] if by_org else None)
                target.add_row(section.name, tuple(row[column[k]] for k in section.keys), sums)
    if all(lo > hi for lo, hi in edges):
        return result  # the range starts and ends on bucket boundaries: no partial bucket
    edge_params: dict[str, Any] = dict(scope)
    for n, (lo, hi) in enumerate(edges):
        edge_params[f"lo_{n}"], edge_params[f"hi_{n}"] = lo, hi
    cursor = con.execute(edge_sql(org_count), edge_params)
    names = [d[0] for d in cursor.description]
    for values in cursor.fetchall():
        call = dict(zip(names, values, strict=True))
        target = parts_of(call["organization_id"])
        for section in SECTIONS:
            if call[f"in_{section.name}"]:
                key = tuple(call[k] for k in section.keys)
                target.add_row(section.name, key, {c: to_exact(call[c]) for c in section.sums})
    return result
