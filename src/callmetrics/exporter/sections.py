"""The payload sections as the warehouse declares them (``marts.section_columns``).

Each section mart is declared once, in the dbt project
(``models/marts/sections/_sections__models.yml``): its keys, its additive parts (each the sum
of a SQL expression over a ``fct_calls`` row) and the calls it holds. The build records that
declaration, and the bucket width, in ``marts.section_columns``; this module reads it, so the
exporter sums exactly the columns of the marts it reads and computes the partial buckets at a
range's edges with the marts' own expressions. Nothing here restates a section.

The expressions are SQL text written by the dbt build into the warehouse being read (opened
read-only); names are checked to be plain identifiers before they are written into a query.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

import duckdb

from callmetrics.errors import UserError

# The payload's sections, by the name their declaration gives them (``meta.section``).
METRICS = "metrics"
DAILY = "daily_volume"
HOURLY = "hourly_distribution"
RESOLUTION = "resolution_breakdown"
AGENTS = "agent_performance"
INSIGHTS = "ai_insights"
REASONS = "escalation_reasons"
LATENCY = "latency_sketch"  # aiInsights.responseLatencyPercentiles
PAYLOAD_SECTIONS = (METRICS, DAILY, HOURLY, RESOLUTION, AGENTS, INSIGHTS, REASONS, LATENCY)

DECLARATION_TABLE = "section_columns"
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
_REBUILD = "rebuild it with `callmetrics build`"


@dataclass(frozen=True)
class Column:
    """A declared mart column: ``expression`` gives it from one ``fct_calls`` row."""

    name: str
    expression: str
    data_type: str
    bucket_key: str | None = None  # utc_date / utc_hour: a key derived from the bucket

    @property
    def is_double(self) -> bool:
        return self.data_type == "double"


@dataclass(frozen=True)
class Section:
    """A payload section: its mart, its key and part columns, and which calls it holds."""

    name: str
    mart: str
    key_columns: tuple[Column, ...]
    part_columns: tuple[Column, ...]
    calls_held: str = "true"  # a condition on a fct_calls row
    samples: str | None = None  # a list over a fct_calls row: one row per element (`sample`)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.key_columns)

    @property
    def sums(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.part_columns)


@dataclass(frozen=True)
class Declaration:
    """Every section of a warehouse, and the width of its buckets."""

    bucket: timedelta
    sections: tuple[Section, ...]

    def section(self, name: str) -> Section:
        for section in self.sections:
            if section.name == name:
                return section
        raise KeyError(name)

    @property
    def marts(self) -> tuple[str, ...]:
        return tuple(s.mart for s in self.sections)


def load_declaration(con: duckdb.DuckDBPyConnection) -> Declaration:
    """The declaration recorded in the warehouse of ``con`` (``UserError`` when unusable)."""
    rows = con.execute(
        "select section, mart, calls_held, column_role, column_name, sql_expression, data_type, "
        f"bucket_minutes, bucket_key, samples from marts.{DECLARATION_TABLE} "
        "order by section, column_position"
    ).fetchall()
    widths = {row[7] for row in rows}
    if len(widths) != 1:
        raise UserError(f"marts.{DECLARATION_TABLE} declares no sections or several bucket "
                        f"widths ({sorted(widths)}): {_REBUILD}")
    columns: dict[str, dict[str, list[Column]]] = {}
    heads: dict[str, tuple[str, str, str | None]] = {}
    for (section, mart, calls, role, name, expression, data_type, _width, bucket_key,
         samples) in rows:
        for identifier in (section, mart, name):
            if not _IDENTIFIER.match(identifier or ""):
                raise UserError(f"marts.{DECLARATION_TABLE} names {identifier!r}, "
                                f"not a plain identifier: {_REBUILD}")
        heads[section] = (mart, calls, samples)
        columns.setdefault(section, {"key": [], "part": []})[role].append(
            Column(name, expression, data_type, bucket_key)
        )
    missing = [name for name in PAYLOAD_SECTIONS if name not in heads]
    if missing:
        raise UserError(f"the warehouse declares no section {', '.join(missing)}: {_REBUILD}")
    sections = tuple(
        Section(name, heads[name][0], tuple(found["key"]), tuple(found["part"]), heads[name][1],
                heads[name][2])
        for name, found in columns.items()
    )
    found = {name for (name,) in con.execute(
        "select table_name from information_schema.tables where table_schema = 'marts'"
    ).fetchall()}
    absent = [s.mart for s in sections if s.mart not in found]
    if absent:
        raise UserError(f"the warehouse is missing marts.{', marts.'.join(absent)}: {_REBUILD}")
    return Declaration(timedelta(minutes=widths.pop()), sections)
