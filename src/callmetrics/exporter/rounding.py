"""Exact ratios and the one rounding rule of ``metrics.md``.

Every number that is not a count is rounded once, on the final value, to one decimal place,
half away from zero. Inputs are exact: counts and durations (integer microseconds) are
``int``; telemetry sums are exact ``Fraction``s of what the warehouse stored. The ratio is
rounded with integer arithmetic on numerator and denominator, so nothing is rounded before.
"""

from __future__ import annotations

from fractions import Fraction

Number = int | Fraction


def _parts(value: Number) -> tuple[int, int]:
    if isinstance(value, int):
        return value, 1
    return value.numerator, value.denominator


def round1(value: Number, divisor: Number = 1) -> float:
    """``value / divisor`` rounded to one decimal place, half away from zero.

    ``0.05 -> 0.1``, ``0.04999 -> 0.0``, ``-0.05 -> -0.1``. ``divisor`` must not be 0.
    """
    num_p, num_q = _parts(value)
    div_p, div_q = _parts(divisor)
    if div_p == 0:
        raise ZeroDivisionError("round1 with a zero divisor")
    # value / divisor = p / q with q > 0
    p, q = num_p * div_q, num_q * div_p
    if q < 0:
        p, q = -p, -q
    tenths = (20 * abs(p) + q) // (2 * q)  # floor(10 * |x| + 1/2)
    return (tenths if p >= 0 else -tenths) / 10


def ratio_or_none(numerator: Number, denominator: Number, scale: int = 1) -> float | None:
    """``scale * numerator / denominator`` rounded; ``None`` (JSON null) when it is 0/0."""
    if denominator == 0:
        return None
    return round1(numerator * scale, denominator)


def ratio_or_zero(numerator: Number, denominator: Number, scale: int = 1) -> float:
    """The same, for a field typed ``number``: 0 when the denominator is 0."""
    if denominator == 0:
        return 0.0
    return round1(numerator * scale, denominator)
