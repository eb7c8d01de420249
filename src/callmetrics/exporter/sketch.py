"""Latency percentiles from a mergeable sketch (``metrics.md``, "Latency percentiles").

The warehouse keeps, per organization x bucket, how many latency samples (``ttft_ms``) fell in
each bin of a logarithmic histogram (the DDSketch mapping): a sample ``x > 0`` is in bin
``ceil(log(x) / log(gamma))`` with ``gamma = (1 + a) / (1 - a)``, ``a = 0.01``, and 0 is in a
bin of its own (``ZERO_BIN``). Counts are additive, so any range and scope merge exactly. Bin
``i`` holds the values in ``(gamma^(i-1), gamma^i]``; reporting ``2 gamma^i / (gamma + 1)`` for
it is within ``a`` (1%) of any of them. The bin mapping itself is SQL in the section's
declaration (``models/marts/sections/_sections__models.yml``); this module only reads bins.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from fractions import Fraction

from callmetrics.exporter.parts import Sums
from callmetrics.exporter.payload import LatencyPercentiles
from callmetrics.exporter.rounding import round1

RELATIVE_ACCURACY = 0.01
GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
ZERO_BIN = -(2**31)  # the bin of samples equal to 0 (below every other bin)
COUNT = "latency_sample_count"
RANKS = (50, 90, 95, 99)
_LOG_GAMMA = math.log(GAMMA)
_MIDDLE = math.log(2 / (GAMMA + 1))


def bin_of(value: float) -> int:
    """The bin of one sample (the same mapping as the SQL declaration; used by tests)."""
    return ZERO_BIN if value == 0 else math.ceil(math.log(value) / _LOG_GAMMA)


def bin_value(index: int) -> float:
    """The value reported for a bin: within 1% of every value the bin holds."""
    if index == ZERO_BIN:
        return 0.0
    return math.exp(min(index * _LOG_GAMMA + _MIDDLE, 709.0))


def nearest_rank(count: int, percentile: int) -> int:
    """k = ceil(N / 100 x count), at least 1: the nearest-rank position (exact integers)."""
    return max(1, -(-percentile * count // 100))


def percentiles(bins: Mapping[tuple, Sums]) -> LatencyPercentiles | None:
    """p50, p90, p95 and p99 of the samples counted in ``bins`` (``{(bin,): {COUNT: n}}``);
    ``None`` when there are none."""
    counts = sorted((key[0], int(sums.get(COUNT, 0))) for key, sums in bins.items())
    total = sum(n for _, n in counts)
    if total == 0:
        return None
    values: dict[str, float] = {}
    for rank in RANKS:
        wanted, seen = nearest_rank(total, rank), 0
        for index, n in counts:
            seen += n
            if seen >= wanted:
                values[f"p{rank}"] = round1(Fraction(bin_value(index)))
                break
    return LatencyPercentiles(**values)

