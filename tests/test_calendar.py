"""Time zones, calendar periods and compare=previous on the hand-made calendar fixture
(tests/fixtures/calendar_raw.py): every expected number is worked out by hand from the calls'
UTC instants and the zones' rules, written in the comments there and here."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from callmetrics.errors import UserError
from callmetrics.exporter import calendar
from callmetrics.exporter.api import Exporter, Request
from callmetrics.exporter.timerange import parse_range
from tests.conftest import BuiltWarehouse, pointed_at, shared_warehouse
from tests.fixtures.calendar_raw import write_calendar_raw
from tests.reference_metrics import assert_valid_payload

NY, BERLIN = "America/New_York", "Europe/Berlin"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture(scope="module")
def calendar_warehouse(tmp_path_factory: pytest.TempPathFactory) -> BuiltWarehouse:
    return shared_warehouse(tmp_path_factory, "calendar", write_calendar_raw)


@pytest.fixture(scope="module")
def exporter(calendar_warehouse: BuiltWarehouse) -> Iterator[Exporter]:
    with Exporter(calendar_warehouse.warehouse) as opened:
        yield opened


def body(exporter: Exporter, org: str | None, start: str, end: str, tz: str | None = None,
         granularity: str | None = None, compare: str | None = None) -> dict[str, Any]:
    request = Request.parse(start, end, tz, granularity, compare)
    payload = exporter.payload(request, org).to_dict()
    assert_valid_payload(payload)
    return payload["data"]


def days(data: dict[str, Any]) -> list[tuple[str, int, int]]:
    return [(d["date"], d["totalCalls"], d["resolvedCalls"]) for d in data["dailyVolume"]]


def busy_hours(data: dict[str, Any]) -> dict[int, int]:
    return {int(h["hour"][:2]): h["calls"] for h in data["hourlyDistribution"] if h["calls"]}


# ---------------------------------------------------------------- reading ranges in a zone


def test_bare_dates_are_whole_local_days() -> None:
    spring = calendar.parse_local_range("2025-03-09", "2025-03-09", NY).time_range
    assert (spring.start, spring.end) == (utc("2025-03-09 05:00"),
                                          utc("2025-03-10 03:59:59.999999"))  # 23 h
    fall = calendar.parse_local_range("2025-11-02", "2025-11-02", NY).time_range
    assert (fall.start, fall.end) == (utc("2025-11-02 04:00"),
                                      utc("2025-11-03 04:59:59.999999"))  # 25 h
    eu = calendar.parse_local_range("2025-03-30", "2025-03-30", BERLIN).time_range
    assert (eu.start, eu.end) == (utc("2025-03-29 23:00"), utc("2025-03-30 21:59:59.999999"))
    kt = calendar.parse_local_range("2025-06-02", "2025-06-02", "Asia/Kathmandu").time_range
    assert (kt.start, kt.end) == (utc("2025-06-01 18:15"), utc("2025-06-02 18:14:59.999999"))
    eucla = calendar.parse_local_range("2025-06-02", "2025-06-02", "Australia/Eucla").time_range
    assert eucla.start == utc("2025-06-01 15:15")


def test_naive_times_are_wall_clock_with_fold_0() -> None:
    # 02:30 does not exist on 2025-03-09 in New York: the offset before the change (-5)
    # applies, so it is 07:30Z = 03:30 EDT.
    skipped = calendar.parse_local_range("2025-03-09T02:30:00", "2025-03-09T03:30:00", NY)
    assert skipped.time_range.start == utc("2025-03-09 07:30")
    assert skipped.time_range.end == utc("2025-03-09 07:30")
    # 01:30 happens twice on 2025-11-02: fold=0 is the first, EDT (-4) = 05:30Z.
    repeated = calendar.parse_local_range("2025-11-02T01:30:00", "2025-11-02T01:30:00", NY)
    assert repeated.time_range.start == utc("2025-11-02 05:30")
    # An offset or Z wins over the zone.
    fixed = calendar.parse_local_range("2025-03-09T02:30:00Z", "2025-03-09T02:30:00-05:00", NY)
    assert (fixed.time_range.start, fixed.time_range.end) == (utc("2025-03-09 02:30"),
                                                              utc("2025-03-09 07:30"))


def test_periods_start_before_the_range() -> None:
    assert calendar.periods(date(2025, 3, 5), date(2025, 3, 10), "week") == [
        date(2025, 3, 3), date(2025, 3, 10)]
    assert calendar.periods(date(2025, 1, 31), date(2025, 3, 1), "month") == [
        date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1)]
    assert calendar.periods(date(9999, 12, 30), date(9999, 12, 31), "month") == [
        date(9999, 12, 1)]


@pytest.mark.parametrize(("option", "value", "words"), [
    ("tz", "Mars/Olympus", "not an IANA time-zone name"),
    ("tz", "../etc/passwd", "not an IANA time-zone name"),
    ("granularity", "fortnight", "not one of day, week, month"),
    ("compare", "next", "the only comparison is previous"),
])
def test_bad_values_are_one_clear_line(
    calendar_warehouse: BuiltWarehouse, capsys: pytest.CaptureFixture[str],
    option: str, value: str, words: str,
) -> None:
    from callmetrics.cli import main

    with pointed_at(calendar_warehouse.raw_dir, calendar_warehouse.warehouse):
        status = main(["export", "--start", "2025-03-09", "--end", "2025-03-09",
                       f"--{option}", value])
    err = capsys.readouterr().err
    assert status != 0
    assert err.count("\n") == 1 and words in err and "Traceback" not in err


# ---------------------------------------------------------------- local days and hours


def test_us_spring_forward(exporter: Exporter) -> None:
    # 03-09 local = 05:00Z .. 04:00Z: n2 (abandoned), n3, n4, n11, n12, n5.
    data = body(exporter, "ny", "2025-03-09", "2025-03-09", NY)
    assert days(data) == [("2025-03-09", 6, 5)]
    assert busy_hours(data) == {0: 1, 1: 1, 3: 3, 23: 1}  # 02:00 was skipped: nothing in it
    # Across the change: n1 is 03-08 23:59:59 EST, n6 03-10 00:00 EDT.
    data = body(exporter, "ny", "2025-03-08", "2025-03-10", NY)
    assert days(data) == [("2025-03-08", 1, 1), ("2025-03-09", 6, 5), ("2025-03-10", 1, 1)]
    assert busy_hours(data) == {0: 2, 1: 1, 3: 3, 23: 2}
    # The same calls in UTC: n1..n12 on 03-09 except n5, n6 (03-10 03:59:59.999999, 04:00).
    data = body(exporter, "ny", "2025-03-09", "2025-03-10")
    assert days(data) == [("2025-03-09", 6, 5), ("2025-03-10", 2, 2)]


def test_us_fall_back_day_has_25_hours(exporter: Exporter) -> None:
    # 11-02 local = 04:00Z .. 05:00Z next day: n7 (01:30 EDT), n8 (01:30 EST, abandoned), n9.
    data = body(exporter, "ny", "2025-11-02", "2025-11-02", NY)
    assert days(data) == [("2025-11-02", 3, 2)]
    assert busy_hours(data) == {1: 2, 23: 1}  # both 01:30s add to the one 01:00 entry


def test_eu_spring_forward(exporter: Exporter) -> None:
    data = body(exporter, "be", "2025-03-29", "2025-03-31", BERLIN)
    assert days(data) == [("2025-03-29", 1, 1), ("2025-03-30", 3, 2), ("2025-03-31", 1, 1)]
    data = body(exporter, "be", "2025-03-30", "2025-03-30", BERLIN)
    assert busy_hours(data) == {0: 1, 3: 1, 23: 1}


@pytest.mark.parametrize(("org", "zone"), [("kt", "Asia/Kathmandu"),
                                           ("eu", "Australia/Eucla")])
def test_quarter_hour_offsets(exporter: Exporter, org: str, zone: str) -> None:
    # k1/e1 are 23:59 local on 06-01; k2/e2 00:00 and k3/e3 09:xx (abandoned) on 06-02.
    data = body(exporter, org, "2025-06-01", "2025-06-02", zone)
    assert days(data) == [("2025-06-01", 1, 1), ("2025-06-02", 2, 1)]
    assert busy_hours(data) == {0: 1, 9: 1, 23: 1}
    # In UTC all three are on 06-01 or 06-02 at other hours.
    utc_data = body(exporter, org, "2025-06-01", "2025-06-02")
    assert sum(busy_hours(utc_data).values()) == 3 and 23 not in busy_hours(utc_data)


def test_naive_times_in_the_skipped_hour_and_partial_buckets(exporter: Exporter) -> None:
    # 02:30 (skipped) .. 03:30 EDT are both 07:30Z: only n12.
    data = body(exporter, "ny", "2025-03-09T02:30:00", "2025-03-09T03:30:00", NY)
    assert data["metrics"]["totalCalls"] == 1
    assert busy_hours(data) == {3: 1}
    # 01:59 EST (06:59Z) .. 02:30 (= 07:30Z): n3, n4, n11, n12 - both edges mid-bucket.
    data = body(exporter, "ny", "2025-03-09T01:59:00", "2025-03-09T02:30:00", NY)
    assert data["metrics"]["totalCalls"] == 4
    assert busy_hours(data) == {1: 1, 3: 3}


def test_week_and_month_periods(exporter: Exporter) -> None:
    # ISO weeks from Monday 03-03 (before the range) and 03-10; 03-05..03-09 local holds n1
    # and the six of 03-09; 03-10 holds n6.
    data = body(exporter, "ny", "2025-03-05", "2025-03-10", NY, granularity="week")
    assert days(data) == [("2025-03-03", 7, 6), ("2025-03-10", 1, 1)]
    # Months March .. November: March holds n1..n6 (8, n2 abandoned), November n10 (11-01
    # local), n7, n8 (abandoned), n9.
    data = body(exporter, "ny", "2025-03-05", "2025-11-02", NY, granularity="month")
    expected = [(f"2025-{m:02d}-01", 0, 0) for m in range(3, 12)]
    expected[0], expected[-1] = ("2025-03-01", 8, 7), ("2025-11-01", 4, 3)
    assert days(data) == expected


# ---------------------------------------------------------------- compare=previous


def test_previous_bare_dates_are_local_days(exporter: Exporter) -> None:
    # 03-09..03-10 local (47 h); previous = 03-07..03-08 local (48 h): only n1.
    data = body(exporter, "ny", "2025-03-09", "2025-03-10", NY, compare="previous")
    previous = data["previousPeriod"]
    assert (previous["startDate"], previous["endDate"]) == (
        "2025-03-07T05:00:00.000000Z", "2025-03-09T04:59:59.999999Z")
    assert previous["metrics"]["totalCalls"] == 1 and data["metrics"]["totalCalls"] == 7
    assert previous["change"]["totalCalls"] == 600.0        # 100 x (7 - 1) / 1
    assert previous["change"]["resolutionRate"] == -14.3    # 100 x (600/7 - 100) / 100
    assert previous["change"]["escalationRate"] is None     # previous 0
    assert previous["change"]["responseTime"] is None       # no samples


def test_previous_instants_across_the_change(exporter: Exporter) -> None:
    # 01:00 EST .. 03:59:59.999999 EDT = 06:00Z .. 07:59:59.999999Z (2 h, not 3);
    # previous = 04:00Z .. 05:59:59.999999Z: n1 and n2 (abandoned). Current: n3, n4, n11, n12.
    data = body(exporter, "ny", "2025-03-09T01:00:00", "2025-03-09T03:59:59.999999", NY,
                compare="previous")
    previous = data["previousPeriod"]
    assert (previous["startDate"], previous["endDate"]) == (
        "2025-03-09T04:00:00.000000Z", "2025-03-09T05:59:59.999999Z")
    assert previous["metrics"]["resolutionRate"] == 50.0
    assert previous["change"] == {
        "totalCalls": 100.0, "totalMinutes": 100.0, "resolutionRate": 100.0,
        "avgDuration": 0.0, "activeAgents": 0.0, "responseTime": None,
        "sentimentPercent": None, "escalationRate": None,
    }


# ---------------------------------------------------------------- defaults and export-all


def test_no_options_is_todays_payload(exporter: Exporter) -> None:
    plain = exporter.payload(parse_range("2025-03-01", "2025-11-30"), "ny").to_json()
    asked = exporter.payload(Request.parse("2025-03-01", "2025-11-30"), "ny").to_json()
    assert plain == asked and "previousPeriod" not in plain


def test_export_all_in_each_organizations_zone(
    calendar_warehouse: BuiltWarehouse, tmp_path: Path
) -> None:
    from callmetrics.cli import main

    out = tmp_path / "all"
    with pointed_at(calendar_warehouse.raw_dir, calendar_warehouse.warehouse):
        assert main(["export-all", "--start", "2025-03-09", "--end", "2025-03-09",
                     "--tz", "org", "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    files = {(f["scope"], f["id"]): f for f in manifest["files"]}
    # New York reads 03-09 as its local day (6 calls); Berlin's 03-09 local has none.
    assert files[("organization", "ny")]["totalCalls"] == 6
    assert files[("organization", "be")]["totalCalls"] == 0
    # The reseller of ny and be stays in UTC: n1..n4, n11, n12 (03-09 UTC).
    assert files[("reseller", "r-1")]["totalCalls"] == 6
    reseller = json.loads((out / files[("reseller", "r-1")]["path"]).read_text())
    assert busy_hours(reseller["data"]) == {4: 1, 5: 1, 6: 1, 7: 3}


def test_the_whole_calendar_in_a_zone(exporter: Exporter) -> None:
    # Every call of every organization (27), whatever the zone; the years 1 and 9999 end the
    # range without overflowing, and a previous period before the year 1 is a clear error.
    for zone in ("Asia/Kolkata", "America/New_York"):
        data = body(exporter, None, "0001-01-01", "9999-12-31", zone, granularity="month")
        assert data["metrics"]["totalCalls"] == 27
        assert sum(d["totalCalls"] for d in data["dailyVolume"]) == 27
    with pytest.raises(UserError, match="before the year 1"):
        exporter.payload(Request.parse("0001-01-01", "0001-01-02", NY, None, "previous"))
