"""Time zones, periods, compare=previous and percentiles against an independent reference:
pandas over the staged calls (tests/reference_metrics.py loads them from staging, not from
the marts), local times by zoneinfo, on the generated warehouse, for random zones, ranges,
granularities and scopes."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from callmetrics.exporter.api import Exporter, Request
from tests.conftest import BuiltWarehouse
from tests.reference_metrics import StagedData, assert_valid_payload, load_staged, round_half_away

SEED = 20251102
ZONES = ["UTC", "America/New_York", "Europe/Berlin", "Asia/Kathmandu", "Australia/Eucla",
         "Asia/Kolkata", "America/St_Johns", "Pacific/Chatham", "Australia/Lord_Howe",
         "Pacific/Kiritimati", "Pacific/Pago_Pago"]
US = timedelta(microseconds=1)


@pytest.fixture(scope="module")
def exporter(generated_warehouse: BuiltWarehouse) -> Iterator[Exporter]:
    with Exporter(generated_warehouse.warehouse) as opened:
        yield opened


@pytest.fixture(scope="module")
def frame(generated_warehouse: BuiltWarehouse) -> tuple[pd.DataFrame, StagedData]:
    staged = load_staged(str(generated_warehouse.warehouse))
    rows = [{"org": c.organization_id, "agent": c.agent_id, "started_us": c.started_us,
             "duration_us": c.duration_us, "resolved": c.category == "resolved",
             "latency": [float(x) for x in c.latency]} for c in staged.calls]
    calls = pd.DataFrame(rows)
    calls["started_at"] = pd.to_datetime(calls["started_us"], unit="us", utc=True)
    return calls, staged


def first_instant(day: date, zone: ZoneInfo) -> datetime:
    """The first instant whose local date is ``day``: scan the local midnight's neighbourhood
    minute by minute (slow, simple, independent of calendar.day_start)."""
    guess = datetime.combine(day, time(0)).replace(tzinfo=UTC) - timedelta(hours=15)
    while guess.astimezone(zone).date() < day:
        guess += timedelta(minutes=15)
    return guess


def utc_bounds(start: str, end: str, zone: ZoneInfo) -> tuple[datetime, datetime]:
    def one(text: str, is_end: bool) -> datetime:
        if len(text) == 10:
            day = date.fromisoformat(text) + timedelta(days=1 if is_end else 0)
            return first_instant(day, zone) - (US if is_end else timedelta(0))
        return datetime.fromisoformat(text).replace(tzinfo=zone).astimezone(UTC)
    return one(start, False), one(end, True)


def period(day: date, unit: str) -> date:
    if unit == "week":
        return day - timedelta(days=day.isoweekday() - 1)
    return day.replace(day=1) if unit == "month" else day


def expected(calls: pd.DataFrame, staged: StagedData, orgs: set[str] | None, lo: datetime,
             hi: datetime, zone: ZoneInfo, unit: str) -> dict:
    chosen = calls[(calls["started_at"] >= lo) & (calls["started_at"] <= hi)]
    if orgs is not None:
        chosen = chosen[chosen["org"].isin(orgs)]
    local = chosen["started_at"].dt.tz_convert(zone)
    chosen = chosen.assign(day=local.dt.date, hour=local.dt.hour)
    chosen = chosen.assign(period=[period(d, unit) for d in chosen["day"]])
    first, last = lo.astimezone(zone).date(), hi.astimezone(zone).date()
    periods, here = [], period(first, unit)
    while here <= last:
        periods.append(here)
        here = (here + timedelta(days={"day": 1, "week": 7}.get(unit, 32)))
        here = period(here, unit)
    grouped = chosen.groupby("period").agg(n=("org", "size"), r=("resolved", "sum"))
    daily = [{"date": p.isoformat(), "totalCalls": int(grouped["n"].get(p, 0)),
              "resolvedCalls": int(grouped["r"].get(p, 0))} for p in periods]
    hours = chosen.groupby("hour").agg(n=("org", "size"), us=("duration_us", "sum"))
    hourly = [{"hour": f"{h:02d}:00", "calls": int(hours["n"].get(h, 0)),
               "minutes": round_half_away(Fraction(int(hours["us"].get(h, 0)), 60_000_000))}
              for h in range(24)]
    samples = sorted(x for values in chosen["latency"] for x in values)
    total = len(chosen)
    metrics = {
        "totalCalls": total,
        "totalMinutes": round_half_away(Fraction(int(chosen["duration_us"].sum()), 60_000_000)),
        "resolutionRate": round_half_away(Fraction(100 * int(chosen["resolved"].sum()), total))
        if total else 0.0,
        "activeAgents": int(chosen["agent"].dropna().nunique()),
    }
    return {"dailyVolume": daily, "hourlyDistribution": hourly, "samples": samples,
            "metrics": metrics}


def scope(exporter: Exporter, rnd: random.Random) -> tuple[str | None, str | None,
                                                           set[str] | None]:
    kind = rnd.choice(["org", "reseller", "all"])
    if kind == "org":
        org = rnd.choice(exporter.organization_ids)
        return org, None, {org}
    if kind == "reseller":
        reseller = rnd.choice(exporter.reseller_ids)
        return None, reseller, set(exporter.organizations_of(reseller))
    return None, None, None


def test_random_zones_ranges_periods_and_scopes(
    exporter: Exporter, frame: tuple[pd.DataFrame, StagedData]
) -> None:
    calls, staged = frame
    rnd = random.Random(SEED)
    first = calls["started_at"].min().to_pydatetime().date()
    span_days = (calls["started_at"].max().to_pydatetime().date() - first).days
    for _ in range(40):
        zone_name = rnd.choice(ZONES)
        zone = ZoneInfo(zone_name)
        day = first + timedelta(days=rnd.randrange(-1, span_days + 1))
        if rnd.random() < 0.5:
            start, end = day.isoformat(), (day + timedelta(days=rnd.randrange(12))).isoformat()
        else:
            begin = datetime.combine(day, time(rnd.randrange(24), rnd.randrange(60),
                                               rnd.randrange(60), rnd.randrange(10**6)))
            finish = begin + timedelta(seconds=rnd.randrange(9 * 86_400))
            start, end = begin.isoformat(), finish.isoformat()
        unit = rnd.choice(["day", "week", "month"])
        org, reseller, orgs = scope(exporter, rnd)
        request = Request.parse(start, end, zone_name, unit, "previous")
        got = exporter.payload(request, org, reseller).to_dict()
        assert_valid_payload(got)
        data = got["data"]
        lo, hi = utc_bounds(start, end, zone)
        assert (request.time_range.start, request.time_range.end) == (lo, hi)
        want = expected(calls, staged, orgs, lo, hi, zone, unit)
        label = f"{zone_name} {start} .. {end} {unit} org={org} reseller={reseller}"
        assert data["dailyVolume"] == want["dailyVolume"], label
        assert data["hourlyDistribution"] == want["hourlyDistribution"], label
        for name, value in want["metrics"].items():
            assert data["metrics"][name] == value, (label, name)
        check_percentiles(data["aiInsights"]["responseLatencyPercentiles"], want["samples"])
        # The previous period: same length (or as many local days) just before.
        if len(start) == 10 and len(end) == 10:
            days = (date.fromisoformat(end) - date.fromisoformat(start)).days + 1
            before = (date.fromisoformat(start) - timedelta(days=days)).isoformat()
            p_lo, p_hi = utc_bounds(before, (date.fromisoformat(start) - timedelta(days=1))
                                    .isoformat(), zone)
        else:
            p_hi = lo - US
            p_lo = p_hi - (hi - lo)
        previous = data["previousPeriod"]
        iso = "%Y-%m-%dT%H:%M:%S.%fZ"
        assert previous["startDate"] == p_lo.strftime(iso), label
        assert previous["endDate"] == p_hi.strftime(iso), label
        want_before = expected(calls, staged, orgs, p_lo, p_hi, zone, "day")["metrics"]
        for name, value in want_before.items():
            assert previous["metrics"][name] == value, (label, "previous", name)
        now, then = want["metrics"]["totalCalls"], want_before["totalCalls"]
        change = Fraction(100 * (now - then), then) if then else None
        assert previous["change"]["totalCalls"] == (
            None if change is None else math.copysign(round_half_away(abs(change)), change)
        ), label


def check_percentiles(got: dict | None, samples: list[float]) -> None:
    if not samples:
        assert got is None
        return
    assert got is not None
    for rank in (50, 90, 95, 99):
        exact = samples[max(1, math.ceil(rank * len(samples) / 100)) - 1]
        assert abs(got[f"p{rank}"] - exact) <= 0.01 * exact * (1 + 1e-9) + 0.05 + 1e-9


def test_export_all_in_a_zone_equals_single_payloads(
    exporter: Exporter, frame: tuple[pd.DataFrame, StagedData]
) -> None:
    first = frame[0]["started_at"].min().to_pydatetime().date() + timedelta(days=3)
    request = Request.parse(first.isoformat(), (first + timedelta(days=6)).isoformat(),
                            "Asia/Kathmandu", "week", "previous")
    everything = exporter.export_all(request)
    for org_id, body in list(everything.organizations.items())[:3]:
        assert body == exporter.payload(request, org_id)
    for reseller_id, body in everything.resellers.items():
        assert body == exporter.payload(request, reseller_id=reseller_id)
    assert everything.all_organizations == exporter.payload(request)
