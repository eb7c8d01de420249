"""Additive parts: what the warehouse returns, before any ratio is taken.

A scope's parts are, per payload section, a mapping from the section's key (``()`` for a
section with one row, ``(date,)``, ``(hour,)``, ``(agent_id,)``, ``(reason,)``) to sums of
counts and measures. Every value is an ``int`` or an exact ``Fraction``, so adding the parts
of two organizations gives exactly the parts of their union, in any order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

Number = int | Fraction
Sums = dict[str, Number]
Key = tuple
SectionParts = dict[Key, Sums]


def to_exact(value: object) -> Number:
    """A value fetched from DuckDB (int, Decimal, float or NULL) as an exact number."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal | float):
        return Fraction(value)
    raise TypeError(f"not a number: {value!r}")


@dataclass
class ScopeParts:
    """The parts of one scope (an organization, or the sum of several)."""

    sections: dict[str, SectionParts] = field(default_factory=dict)

    def section(self, name: str) -> SectionParts:
        return self.sections.get(name, {})

    def add_row(self, name: str, key: Key, sums: Mapping[str, Number]) -> None:
        target = self.sections.setdefault(name, {}).setdefault(key, {})
        for column, value in sums.items():
            target[column] = target.get(column, 0) + value

    def add(self, other: ScopeParts) -> None:
        for name, rows in other.sections.items():
            for key, sums in rows.items():
                self.add_row(name, key, sums)


def merge(parts: Iterable[ScopeParts]) -> ScopeParts:
    """The parts of the union of disjoint scopes."""
    merged = ScopeParts()
    for item in parts:
        merged.add(item)
    return merged
