"""Latency percentiles: the sketch's bound against exact nearest-rank percentiles (hypothesis),
and the payload's field on the hand-made calendar fixture (tests/fixtures/calendar_raw.py)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callmetrics.exporter.api import Exporter, Request
from callmetrics.exporter.sketch import COUNT, RANKS, bin_of, percentiles
from tests.conftest import BuiltWarehouse, shared_warehouse
from tests.fixtures.calendar_raw import write_calendar_raw


def exact_nearest_rank(samples: list[float], rank: int) -> float:
    """The k-th smallest sample, k = ceil(rank / 100 x n) (computed independently)."""
    ordered = sorted(samples)
    k = max(1, math.ceil(rank * len(ordered) / 100))
    return ordered[k - 1]


def within_bound(reported: float, exact: float) -> bool:
    """At most 1% of the exact value away, plus the 0.05 of rounding to one decimal."""
    return abs(reported - exact) <= 0.01 * exact * (1 + 1e-9) + 0.05 + 1e-9


def sketch_of(samples: list[float]) -> dict[tuple, dict]:
    bins = Counter(bin_of(x) for x in samples)
    return {(index,): {COUNT: n} for index, n in bins.items()}


latencies = st.one_of(
    st.just(0.0),
    st.floats(min_value=1e-3, max_value=1e12, allow_nan=False, allow_infinity=False),
    st.sampled_from([0.5, 1.0, 100.0, 250.0, 1000.0]),  # ties
)


@settings(max_examples=300, deadline=None)
@given(st.lists(latencies, min_size=1, max_size=200))
def test_sketch_within_one_percent_of_nearest_rank(samples: list[float]) -> None:
    got = percentiles(sketch_of(samples))
    assert got is not None
    for rank in RANKS:
        exact = exact_nearest_rank(samples, rank)
        reported = getattr(got, f"p{rank}")
        assert within_bound(reported, exact), (rank, exact, reported)


@settings(max_examples=100, deadline=None)
@given(st.lists(latencies, min_size=1, max_size=50), st.lists(latencies, min_size=1,
                                                              max_size=50))
def test_sketches_merge_exactly(first: list[float], second: list[float]) -> None:
    merged: dict[tuple, dict] = {}
    for part in (sketch_of(first), sketch_of(second)):
        for key, sums in part.items():
            merged.setdefault(key, {COUNT: 0})[COUNT] += sums[COUNT]
    assert percentiles(merged) == percentiles(sketch_of(first + second))


def test_no_samples_is_null() -> None:
    assert percentiles({}) is None


@pytest.fixture(scope="module")
def exporter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exporter]:
    built: BuiltWarehouse = shared_warehouse(tmp_path_factory, "calendar", write_calendar_raw)
    with Exporter(built.warehouse) as opened:
        yield opened


def reported(exporter: Exporter, start: str, end: str, org: str | None = "pc") -> dict | None:
    data = exporter.payload(Request.parse(start, end), org).to_dict()["data"]
    return data["aiInsights"]["responseLatencyPercentiles"]


def test_one_sample(exporter: Exporter) -> None:
    got = reported(exporter, "2025-07-01", "2025-07-01")  # p1: 250 ms
    assert got is not None
    assert all(within_bound(got[f"p{r}"], 250.0) for r in RANKS)


def test_ties(exporter: Exporter) -> None:
    # p2, p3: 100, 100, 100, 100, 5000. p50 = 3rd = 100; p90, p95, p99 = 5th = 5000.
    got = reported(exporter, "2025-07-02", "2025-07-02")
    assert got is not None
    assert within_bound(got["p50"], 100.0)
    assert all(within_bound(got[f"p{r}"], 5000.0) for r in (90, 95, 99))


def test_wide_spread_over_a_range_and_the_edges(exporter: Exporter) -> None:
    # All 13 samples: 0, 0.5, 10, 100 x5, 250, 1000, 5000, 10000, 100000.
    # p50 = 7th = 100; p90 = 12th = 10000; p95 = p99 = 13th = 100000.
    got = reported(exporter, "2025-07-01", "2025-07-03")
    assert got is not None
    assert within_bound(got["p50"], 100.0) and within_bound(got["p90"], 10_000.0)
    assert within_bound(got["p95"], 100_000.0) and within_bound(got["p99"], 100_000.0)
    # p4 alone, read from its partial bucket (10:00:00 .. 10:00:30): 0 .. 100000, 7 samples:
    # p50 = 4th = 100, p90 = p95 = p99 = 7th = 100000.
    got = reported(exporter, "2025-07-03T09:59:59.5Z", "2025-07-03T10:00:30Z")
    assert got is not None
    assert within_bound(got["p50"], 100.0) and within_bound(got["p99"], 100_000.0)
    assert reported(exporter, "2025-03-09", "2025-03-09", "ny") is None


def test_sketch_bins_agree_with_the_python_mapping(exporter: Exporter) -> None:
    """The SQL mapping (macros/latency_sketch.sql) and sketch.bin_of put the fixture's
    samples in the same bins."""
    rows = exporter._con.execute(  # noqa: SLF001 - a test reads the warehouse it opened
        "select latency_bin, sum(latency_sample_count) from marts.mart_latency_sketch "
        "where organization_id = 'pc' group by 1"
    ).fetchall()
    samples = [0.0, 0.5, 10.0, 100.0, 100.0, 100.0, 100.0, 100.0, 250.0, 1000.0, 5000.0,
               10_000.0, 100_000.0]
    assert dict(rows) == dict(Counter(bin_of(x) for x in samples))
