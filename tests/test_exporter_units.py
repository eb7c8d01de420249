"""Exporter pieces that need no warehouse: ranges, rounding, file names, atomic writes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import pytest

from callmetrics.errors import UserError
from callmetrics.exporter.commands import file_name, write_atomic
from callmetrics.exporter.rounding import ratio_or_none, ratio_or_zero, round1
from callmetrics.exporter.timerange import TimeRange, iso, parse_instant, parse_range

QUARTER = timedelta(minutes=15)  # the bucket width the tests build with


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


# ---------------------------------------------------------------- ranges


def test_bare_dates_cover_whole_utc_days() -> None:
    r = parse_range("2025-03-10", "2025-03-11")
    assert r.start == utc(2025, 3, 10, 0, 0, 0, 0)
    assert r.end == utc(2025, 3, 11, 23, 59, 59, 999_999)
    assert r.dates() == [date(2025, 3, 10), date(2025, 3, 11)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-01-01T00:00:00.000Z", utc(2025, 1, 1)),
        ("2025-01-01T00:00:00Z", utc(2025, 1, 1)),
        ("2025-01-01T00:00:00", utc(2025, 1, 1)),  # no offset: UTC
        ("2025-01-01 08:30", utc(2025, 1, 1, 8, 30)),
        ("2025-01-01T05:45:00+05:45", utc(2025, 1, 1)),  # Kathmandu
        ("2024-12-31T19:00:00-05:00", utc(2025, 1, 1)),
        ("2025-01-01T00:00:00.000001Z", utc(2025, 1, 1, 0, 0, 0, 1)),
        ("2025-01-01T00:00:00,5Z", utc(2025, 1, 1, 0, 0, 0, 500_000)),
    ],
)
def test_instants(text: str, expected: datetime) -> None:
    assert parse_instant(text, "start").moment == expected


def test_a_finer_fraction_rounds_inward() -> None:
    # Calls are stored to the microsecond: a start between two microseconds begins at the
    # next one, an end between two ends at the previous one.
    r = parse_range("2025-01-01T00:00:00.0000001Z", "2025-01-01T00:00:00.0000019Z")
    assert (r.start, r.end) == (utc(2025, 1, 1, 0, 0, 0, 1), utc(2025, 1, 1, 0, 0, 0, 1))
    # A range narrower than a microsecond, between two of them, holds no call at all.
    empty = parse_range("2025-01-01T00:00:00.0000001Z", "2025-01-01T00:00:00.0000002Z")
    assert empty.start > empty.end
    assert empty.dates() == [date(2025, 1, 1)]


def test_dates_follow_the_utc_instants() -> None:
    # 2025-03-10T23:30-05:00 is 2025-03-11T04:30Z: dates are UTC.
    r = parse_range("2025-03-10T23:30:00-05:00", "2025-03-11T06:00:00Z")
    assert r.dates() == [date(2025, 3, 11)]


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("2025-13-01", "2025-12-31", "--start '2025-13-01' is not an ISO 8601 date or timestamp"),
        ("2025-01-01", "yesterday", "--end 'yesterday' is not an ISO 8601 date or timestamp"),
        ("2025-02-30T00:00:00Z", "2025-03-01", "--start '2025-02-30T00:00:00Z' is not an ISO"),
        ("", "2025-03-01", "--start is empty"),
        ("2025-03-02", "2025-03-01", "--start '2025-03-02' is after --end '2025-03-01'"),
        ("2025-03-01T00:00:00.000001Z", "2025-03-01T00:00:00Z", "is after --end"),
    ],
)
def test_bad_ranges(start: str, end: str, message: str) -> None:
    with pytest.raises(UserError) as caught:
        parse_range(start, end)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_whole_buckets_split_a_range_exactly() -> None:
    r = parse_range("2025-01-01T10:07:00Z", "2025-01-01T11:44:59.999999Z")
    assert r.whole_buckets(QUARTER) == (utc(2025, 1, 1, 10, 15), utc(2025, 1, 1, 11, 45))
    cut = parse_range("2025-01-01T10:07:00Z", "2025-01-01T11:44:59.999998Z")
    assert cut.whole_buckets(QUARTER) == (utc(2025, 1, 1, 10, 15), utc(2025, 1, 1, 11, 30))
    aligned = parse_range("2025-01-01T10:00:00Z", "2025-01-01T10:14:59.999999Z")
    assert aligned.whole_buckets(QUARTER) == (utc(2025, 1, 1, 10, 0), utc(2025, 1, 1, 10, 15))
    # Ending exactly on a bucket's first microsecond: that bucket is an edge.
    on_start = parse_range("2025-01-01T10:00:00Z", "2025-01-01T10:15:00Z")
    assert on_start.whole_buckets(QUARTER) == (utc(2025, 1, 1, 10, 0), utc(2025, 1, 1, 10, 15))
    inside = parse_range("2025-01-01T10:00:00.000001Z", "2025-01-01T10:14:59.999999Z")
    assert inside.whole_buckets(QUARTER) is None
    day = parse_range("2025-01-01", "2025-01-01")
    assert day.whole_buckets(QUARTER) == (utc(2025, 1, 1), utc(2025, 1, 2))


def test_extreme_years() -> None:
    r = parse_range("0001-01-01", "9999-12-31")
    assert iso(r.start) == "0001-01-01T00:00:00.000000Z"
    assert iso(r.end) == "9999-12-31T23:59:59.999999Z"
    # The bucket after the last one is not a datetime: the last bucket is read call by call.
    assert r.whole_buckets(QUARTER) == (utc(1, 1, 1), utc(9999, 12, 31, 23, 45))
    with pytest.raises(UserError, match="outside the years 1 to 9999"):
        parse_range("0001-01-01T00:00:00+01:00", "0001-01-02")


def test_time_range_needs_utc() -> None:
    with pytest.raises(ValueError):
        TimeRange(datetime(2025, 1, 1), utc(2025, 1, 2))


# ---------------------------------------------------------------- rounding


@pytest.mark.parametrize(
    ("value", "divisor", "expected"),
    [
        (1, 20, 0.1),  # 0.05: half away from zero
        (3, 20, 0.2),  # 0.15 (a binary float would say 0.1)
        (49, 20, 2.5),  # 2.45
        (Fraction(49_999, 1_000_000), 1, 0.0),
        (-1, 20, -0.1),
        (784, 10, 78.4),
        (1_170_000_001, 5_000_000, 234.0),  # avgDuration of the hand-made org-1
        (1_170_000_001, 60_000_000, 19.5),  # its totalMinutes
        (2, 3, 0.7),
        (1, 3, 0.3),
        (Fraction(0.1) + Fraction(0.2), 1, 0.3),
    ],
)
def test_round1_half_away_from_zero(value: int | Fraction, divisor: int, expected: float) -> None:
    assert round1(value, divisor) == expected


def test_ratio_null_or_zero_when_no_data() -> None:
    assert ratio_or_none(3, 0, scale=100) is None
    assert ratio_or_zero(3, 0, scale=100) == 0.0
    assert ratio_or_none(1, 3, scale=100) == 33.3
    assert ratio_or_zero(2, 3, scale=100) == 66.7


# ---------------------------------------------------------------- files


def test_file_names_are_safe_and_distinct() -> None:
    uuid = "98cb8112-872c-4176-9eac-88371ca9c4e2"
    assert file_name(uuid) == f"{uuid}.json"
    hostile = ["../etc/passwd", ".", "..", "a/b", "a%2Fb", "x'; drop table y;--", "", "é"]
    names = [file_name(h) for h in hostile]
    assert len(set(names)) == len(names)
    for name in names:
        assert "/" not in name and not name.startswith(".") and name.endswith(".json")
    long_names = {file_name("x" * 300 + str(n)) for n in range(3)}
    assert len(long_names) == 3 and all(len(n) < 200 for n in long_names)


def test_write_atomic_replaces_and_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "payload.json"
    write_atomic(target, "first\n")
    write_atomic(target, "second\n")
    assert target.read_text() == "second\n"
    assert [p.name for p in target.parent.iterdir()] == ["payload.json"]


def test_write_atomic_reports_an_unwritable_place(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(UserError, match="cannot write"):
        write_atomic(blocker / "payload.json", "{}")
