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

from collections.abc import Sequence
from typing import Any

import duckdb

from callmetrics.exporter.parts import ScopeParts, to_exact
from callmetrics.exporter.sections import Column, Declaration, Section, load_declaration
from callmetrics.exporter.timerange import ONE_US, TimeRange

SECTION_COLUMN = "section"


def cast_exact(expression: str) -> str:
    """A double cast to an exact decimal before it is added (see the module doc)."""
    return f"cast({expression} as decimal(38, 10))"


def _scope_filter(org_count: int | None) -> str:
    if org_count is None:
        return ""
    if org_count == 1:
        return " and organization_id = $org_0"
    return f" and organization_id in ({', '.join(f'$org_{n}' for n in range(org_count))})"


def mart_sql(section: Section, *, by_org: bool, org_count: int | None) -> str:
    """Sum one section's mart over the whole buckets ``[$first_bucket, $stop_bucket)``; each
    row is tagged with the section's name (column ``section``)."""
    groups = (["organization_id"] if by_org else []) + list(section.keys)
    sums = [
        f"sum({cast_exact(c.name) if c.is_double else c.name}) as {c.name}"
        for c in section.part_columns
    ]
    group_by = f"\ngroup by {', '.join(groups)}" if groups else ""
    return (
        f"select '{section.name}' as {SECTION_COLUMN}, {', '.join(groups + sums)}\n"
        f"from marts.{section.mart}\n"
        f"where bucket_start >= $first_bucket and bucket_start < $stop_bucket"
        f"{_scope_filter(org_count)}{group_by}"
    )


def marts_sql(declaration: Declaration, *, by_org: bool, org_count: int | None) -> str:
    """Every section's mart query as one statement: columns are matched by name, and a
    section's rows hold nulls in the other sections' columns."""
    return "\nunion all by name\n".join(
        f"({mart_sql(section, by_org=by_org, org_count=org_count)})"
        for section in declaration.sections
    )


def edge_aliases(declaration: Declaration) -> dict[tuple[str, bool], str]:
    """Each distinct key or part expression of the sections (with whether it is a double
    sum) -> its column in the edge query: a part shared by several sections is read once."""
    aliases: dict[tuple[str, bool], str] = {}
    for section in declaration.sections:
        for column in (*section.key_columns, *section.part_columns):
            aliases.setdefault((column.expression, column.is_double), f"e_{len(aliases)}")
    return aliases


def edge_sql(declaration: Declaration, org_count: int | None) -> str:
    """Every call of the edges ``[$lo_0, $hi_0]`` and ``[$lo_1, $hi_1]`` with its parts."""
    columns = ["organization_id"]
    columns += [f"({s.calls_held}) as in_{s.name}" for s in declaration.sections]
    columns += [
        f"{cast_exact(expression) if is_double else expression} as {alias}"
        for (expression, is_double), alias in edge_aliases(declaration).items()
    ]
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
    declaration: Declaration | None = None,
) -> dict[str | None, ScopeParts]:
    """Parts of the calls in range of ``org_ids`` (``None``: every organization).

    With ``by_org`` the result maps each organization with calls in range to its own parts
    (still one query per section, whatever the number of organizations); without, it maps
    ``None`` to the parts of the whole scope. Organizations without calls are absent.
    ``declaration`` is the warehouse's (read from ``con`` when not given).
    """
    result: dict[str | None, ScopeParts] = {}
    if org_ids is not None and not org_ids:
        return result
    if declaration is None:
        declaration = load_declaration(con)
    org_count = None if org_ids is None else len(org_ids)
    scope = {f"org_{n}": org_id for n, org_id in enumerate(org_ids or ())}

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
        sql = marts_sql(declaration, by_org=by_org, org_count=org_count)
        cursor = con.execute(sql, params)
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
    cursor = con.execute(edge_sql(declaration, org_count), edge_params)
    names = [d[0] for d in cursor.description]
    aliases = edge_aliases(declaration)

    def alias(column: Column) -> str:
        return aliases[(column.expression, column.is_double)]

    for values in cursor.fetchall():
        call = dict(zip(names, values, strict=True))
        target = parts_of(call["organization_id"])
        for section in declaration.sections:
            if call[f"in_{section.name}"]:
                key = tuple(call[alias(c)] for c in section.key_columns)
                sums = {c.name: to_exact(call[alias(c)]) for c in section.part_columns}
                target.add_row(section.name, key, sums)
    return result
