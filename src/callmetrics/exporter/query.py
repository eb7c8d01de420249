"""Read-only queries: the additive parts of every payload section for a range.

The marts hold parts at organization x UTC bucket grain (15 minutes). A range is split into
(``TimeRange.whole_buckets``):

- whole buckets, summed from the seven section marts: one small grouped query per mart,
  sent together as one statement (``union all by name``, each row tagged with its section),
  so that a payload costs one round trip to DuckDB, not seven;
- at most two partial buckets at the edges, ``[start, first whole bucket)`` and
  ``[end of the last whole bucket, end]``, read call by call from ``fct_calls`` in one
  query and added up here with the expressions the marts were built with (``sections.py``
  reads them from the warehouse). Each edge is shorter than a bucket, so this reads a handful
  of calls, however long the range; a range that starts and ends on bucket boundaries (whole
  days, whole hours) has no edge and skips the query.

Together they are exactly the calls with ``start <= started_at <= end``, to the microsecond,
for any range: a call is in a whole bucket or in an edge, never both, never neither. (A
one-microsecond grain would make this unnecessary but the marts as large as the fact table.)

Every value that varies (instants, organization ids) is a bound parameter; only the names and
expressions of the warehouse's own section declaration are written into SQL text. Telemetry
sums (doubles) are cast to ``decimal(38, 10)`` row by row (the one rounding, far below the
payload's 0.1) and then added exactly, so no result depends on the order DuckDB or Python
adds rows in: a reseller's payload is the same whether summed in SQL or from its
organizations' parts.

Filters are plain ranges on ``bucket_start``/``started_at`` and equality on
``organization_id`` so that DuckDB's zone maps can skip row groups.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import duckdb

from callmetrics.exporter.parts import ScopeParts, to_exact
from callmetrics.exporter.sections import Column, Declaration, Section, load_declaration
from callmetrics.exporter.timerange import ONE_US, TimeRange

SECTION_COLUMN = "section"
_WALL_CLOCK = {"utc_date": "cast({} as date)", "utc_hour": "cast(hour({}) as integer)"}


@dataclass(frozen=True)
class LocalClock:
    """A time zone's offsets over a range (``calendar.offsets``): ``(from, offset)`` spans,
    ascending. Keys derived from the bucket (its date, its hour) are then the bucket's local
    date and hour instead of its UTC ones; every offset is a whole number of buckets, so a
    bucket lies in one local hour. The spans are bound parameters."""

    spans: tuple[tuple[datetime, timedelta], ...]

    def wall_sql(self, column: str) -> str:
        """The local wall-clock time (a timestamp without zone) of the instant ``column``."""
        offset = "$tz_offset_0"
        for n in range(len(self.spans) - 1, 0, -1):
            offset = f"case when {column} >= $tz_from_{n} then $tz_offset_{n} else {offset} end"
        return f"(({column} at time zone 'UTC') + to_minutes(cast({offset} as bigint)))"

    def key_sql(self, kind: str, column: str) -> str:
        return _WALL_CLOCK[kind].format(self.wall_sql(column))

    def params(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for n, (moment, offset) in enumerate(self.spans):
            values[f"tz_from_{n}"] = moment
            values[f"tz_offset_{n}"] = offset // timedelta(minutes=1)
        return values


def _key_select(column: Column, clock: LocalClock | None, *, stored: bool) -> str:
    """How a key is read: the stored mart column (``stored``) or the declared expression over
    a fct_calls row; a bucket key on a local clock is derived from ``bucket_start``."""
    if clock is not None and column.bucket_key:
        return clock.key_sql(column.bucket_key, "bucket_start")
    return column.name if stored else column.expression


def cast_exact(expression: str) -> str:
    """A double cast to an exact decimal before it is added (see the module doc)."""
    return f"cast({expression} as decimal(38, 10))"


def bound(sql: str, params: dict[str, Any]) -> dict[str, Any]:
    """The parameters ``sql`` names (DuckDB refuses values it does not use)."""
    return {name: value for name, value in params.items() if f"${name}" in sql}


def _scope_filter(org_count: int | None) -> str:
    if org_count is None:
        return ""
    if org_count == 1:
        return " and organization_id = $org_0"
    return f" and organization_id in ({', '.join(f'$org_{n}' for n in range(org_count))})"


def mart_sql(
    section: Section, *, by_org: bool, org_count: int | None, clock: LocalClock | None = None
) -> str:
    """Sum one section's mart over the whole buckets ``[$first_bucket, $stop_bucket)``; each
    row is tagged with the section's name (column ``section``)."""
    keys = [_key_select(c, clock, stored=True) for c in section.key_columns]
    groups = (["organization_id"] if by_org else []) + keys
    selected = (["organization_id"] if by_org else []) + [
        key if key == c.name else f"{key} as {c.name}"
        for key, c in zip(keys, section.key_columns, strict=True)
    ]
    sums = [
        f"sum({cast_exact(c.name) if c.is_double else c.name}) as {c.name}"
        for c in section.part_columns
    ]
    group_by = f"\ngroup by {', '.join(groups)}" if groups else ""
    return (
        f"select '{section.name}' as {SECTION_COLUMN}, {', '.join(selected + sums)}\n"
        f"from marts.{section.mart}\n"
        f"where bucket_start >= $first_bucket and bucket_start < $stop_bucket"
        f"{_scope_filter(org_count)}{group_by}"
    )


def marts_sql(
    declaration: Declaration, *, by_org: bool, org_count: int | None,
    clock: LocalClock | None = None,
) -> str:
    """Every section's mart query as one statement: columns are matched by name, and a
    section's rows hold nulls in the other sections' columns."""
    return "\nunion all by name\n".join(
        f"({mart_sql(section, by_org=by_org, org_count=org_count, clock=clock)})"
        for section in declaration.sections
    )


def edge_expression(column: Column, clock: LocalClock | None) -> str:
    """A key's or part's SQL over one fct_calls row (a local bucket key on a local clock)."""
    return _key_select(column, clock, stored=False)


def edge_aliases(
    declaration: Declaration, clock: LocalClock | None = None
) -> dict[tuple[str, bool], str]:
    """Each distinct key or part expression of the sections (with whether it is a double
    sum) -> its column in the edge query: a part shared by several sections is read once."""
    aliases: dict[tuple[str, bool], str] = {}
    for section in declaration.sections:
        for column in (*section.key_columns, *section.part_columns):
            key = (edge_expression(column, clock), column.is_double)
            aliases.setdefault(key, f"e_{len(aliases)}")
    return aliases


def edge_sql(
    declaration: Declaration, org_count: int | None, clock: LocalClock | None = None
) -> str:
    """Every call of the edges ``[$lo_0, $hi_0]`` and ``[$lo_1, $hi_1]`` with its parts (for a
    declaration whose sections count list elements, ``Section.samples``: every element)."""
    samples = {s.samples for s in declaration.sections}
    if len(samples) != 1:
        raise ValueError("one edge query reads sections of one kind of row")
    listed = samples.pop()
    columns = ["organization_id"]
    columns += [f"({s.calls_held}) as in_{s.name}" for s in declaration.sections]
    columns += [
        f"{cast_exact(expression) if is_double else expression} as {alias}"
        for (expression, is_double), alias in edge_aliases(declaration, clock).items()
    ]
    where = (
        "where ((started_at >= $lo_0 and started_at <= $hi_0)"
        " or (started_at >= $lo_1 and started_at <= $hi_1))"
        f"{_scope_filter(org_count)}"
    )
    if listed:
        return (
            f"select {', '.join(columns)}\n"
            f"from (select *, unnest({listed}) as sample from marts.fct_calls\n{where})"
        )
    return f"select {', '.join(columns)}\nfrom marts.fct_calls\n{where}"


def fetch_parts(
    con: duckdb.DuckDBPyConnection,
    time_range: TimeRange,
    org_ids: Sequence[str] | None,
    *,
    by_org: bool,
    declaration: Declaration | None = None,
    clock: LocalClock | None = None,
) -> dict[str | None, ScopeParts]:
    """Parts of the calls in range of ``org_ids`` (``None``: every organization).

    With ``by_org`` the result maps each organization with calls in range to its own parts
    (still one query per section, whatever the number of organizations); without, it maps
    ``None`` to the parts of the whole scope. Organizations without calls are absent.
    ``declaration`` is the warehouse's (read from ``con`` when not given). With a ``clock``
    the keys derived from the bucket are local dates and hours (see ``LocalClock``).
    """
    result: dict[str | None, ScopeParts] = {}
    if org_ids is not None and not org_ids:
        return result
    if declaration is None:
        declaration = load_declaration(con)
    org_count = None if org_ids is None else len(org_ids)
    scope: dict[str, Any] = {f"org_{n}": org_id for n, org_id in enumerate(org_ids or ())}
    if clock is not None:
        scope.update(clock.params())

    def parts_of(org_id: str | None) -> ScopeParts:
        key = org_id if by_org else None
        if key not in result:
            result[key] = ScopeParts()
        return result[key]

    buckets = time_range.whole_buckets(declaration.bucket)
    if buckets is None:
        edges = [(time_range.start, time_range.end)] * 2
    else:
        first, stop = buckets
        edges = [(time_range.start, first - ONE_US), (stop, time_range.end)]
        params = {"first_bucket": first, "stop_bucket": stop, **scope}
        sql = marts_sql(declaration, by_org=by_org, org_count=org_count, clock=clock)
        cursor = con.execute(sql, bound(sql, params))
        column = {d[0]: n for n, d in enumerate(cursor.description)}
        for row in cursor.fetchall():
            section = declaration.section(row[column[SECTION_COLUMN]])
            sums = {c: to_exact(row[column[c]]) for c in section.sums}
            if any(sums.values()):  # skip the all-null row of an ungrouped empty sum
                target = parts_of(row[column["organization_id"]] if by_org else None)
                target.add_row(section.name, tuple(row[column[k]] for k in section.keys), sums)
    if all(lo > hi for lo, hi in edges):
        return result  # the range starts and ends on bucket boundaries: no partial bucket
    edge_params: dict[str, Any] = dict(scope)
    for n, (lo, hi) in enumerate(edges):
        edge_params[f"lo_{n}"], edge_params[f"hi_{n}"] = lo, hi
    for kind in dict.fromkeys(section.samples for section in declaration.sections):
        same_rows = replace(declaration, sections=tuple(
            section for section in declaration.sections if section.samples == kind))
        _add_edges(con, same_rows, edge_params, org_count, clock, parts_of)
    return result


def _add_edges(
    con: duckdb.DuckDBPyConnection,
    declaration: Declaration,
    params: dict[str, Any],
    org_count: int | None,
    clock: LocalClock | None,
    parts_of: Callable[[str], ScopeParts],
) -> None:
    """Add the parts of the edges' calls (or list elements) of ``declaration``'s sections."""
    sql = edge_sql(declaration, org_count, clock)
    cursor = con.execute(sql, bound(sql, params))
    names = [d[0] for d in cursor.description]
    aliases = edge_aliases(declaration, clock)

    def alias(column: Column) -> str:
        return aliases[(edge_expression(column, clock), column.is_double)]

    for values in cursor.fetchall():
        call = dict(zip(names, values, strict=True))
        target = parts_of(call["organization_id"])
        for section in declaration.sections:
            if call[f"in_{section.name}"]:
                key = tuple(call[alias(c)] for c in section.key_columns)
                sums = {c.name: to_exact(call[alias(c)]) for c in section.part_columns}
                target.add_row(section.name, key, sums)
