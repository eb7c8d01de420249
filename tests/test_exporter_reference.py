"""The exporter against the independent reference (tests/reference_metrics.py) on generated
data: many seeded random ranges and scopes, and the edge instants that break bucketed code."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from callmetrics.exporter import Exporter, TimeRange
from tests.conftest import BuiltWarehouse
from tests.reference_metrics import (
    StagedData,
    assert_valid_payload,
    exact_telemetry,
    load_staged,
    payload_differences,
    reference_payload,
)

US = timedelta(microseconds=1)
SEED = 20250310


@pytest.fixture(scope="module")
def exporter(generated_warehouse: BuiltWarehouse) -> Iterator[Exporter]:
    with Exporter(generated_warehouse.warehouse) as opened:
        yield opened


@pytest.fixture(scope="module")
def staged(generated_warehouse: BuiltWarehouse) -> StagedData:
    data = load_staged(str(generated_warehouse.warehouse))
    assert len(data.calls) > 500, "the generated fixture should hold a few thousand calls"
    return data


def org_set(exporter: Exporter, org: str | None, reseller: str | None) -> set[str] | None:
    if org is not None:
        return {org}
    if reseller is not None:
        return set(exporter.organizations_of(reseller))
    return None


def check(exporter: Exporter, staged: StagedData, start: datetime, end: datetime,
          org: str | None = None, reseller: str | None = None) -> dict:
    got = exporter.payload(TimeRange(start, end), org, reseller).to_dict()
    assert_valid_payload(got)
    expected = reference_payload(staged, start, end, org, reseller)
    exact = exact_telemetry(staged, start, end, org_set(exporter, org, reseller))
    problems = payload_differences(got, expected, exact)
    assert not problems, f"[{start.isoformat()}, {end.isoformat()}] org={org} " \
                         f"reseller={reseller}: " + "; ".join(problems[:6])
    return got


def scopes(exporter: Exporter, rnd: random.Random) -> tuple[str | None, str | None]:
    kind = rnd.choice(["org", "reseller", "both", "all"])
    if kind in ("org", "both"):
        org = rnd.choice(exporter.organization_ids)
        reseller = exporter.reseller_of(org) if kind == "both" else None
        return org, reseller
    if kind == "reseller":
        return None, rnd.choice(exporter.reseller_ids)
    return None, None


def span(staged: StagedData) -> tuple[datetime, datetime]:
    instants = [c.started_at for c in staged.calls]
    return min(instants), max(instants)


def test_random_ranges_and_scopes(exporter: Exporter, staged: StagedData) -> None:
    rnd = random.Random(SEED)
    first, last = span(staged)
    lengths = [0, 1, 999_999, 15 * 60 * 10**6, 3600 * 10**6, 86_400 * 10**6,
               7 * 86_400 * 10**6, 31 * 86_400 * 10**6]
    whole = int((last - first) / US) + 2 * 86_400 * 10**6
    for _ in range(60):
        start = first - timedelta(days=1) + rnd.randrange(whole) * US
        length = rnd.choice(lengths)
        end = start + (rnd.randrange(length + 1) if rnd.random() < 0.5 else length) * US
        check(exporter, staged, start, end, *scopes(exporter, rnd))


def test_ranges_bounded_by_a_call(exporter: Exporter, staged: StagedData) -> None:
    # A range that starts or ends exactly on a call's started_at, or one microsecond on
    # either side, each way: the call is in or out to the microsecond.
    rnd = random.Random(SEED + 1)
    for call in rnd.sample(staged.calls, 12):
        at = call.started_at
        org = call.organization_id
        for shift in (-1, 0, 1):
            edge = at + shift * US
            inside_start = check(exporter, staged, edge, edge + timedelta(hours=3), org)
            inside_end = check(exporter, staged, edge - timedelta(hours=3), edge, org)
            if shift == 0:
                assert inside_start["data"]["metrics"]["totalCalls"] >= 1
                assert inside_end["data"]["metrics"]["totalCalls"] >= 1
        check(exporter, staged, at, at, org)  # a single microsecond
        check(exporter, staged, at + US, at + 40 * 60 * 10**6 * US)  # all organizations


def test_midnights_hours_and_buckets(exporter: Exporter, staged: StagedData) -> None:
    rnd = random.Random(SEED + 2)
    for call in rnd.sample(staged.calls, 8):
        day = datetime.combine(call.started_at.date(), datetime.min.time(), tzinfo=UTC)
        hour = call.started_at.replace(minute=0, second=0, microsecond=0)
        org = call.organization_id
        reseller = staged.org_reseller.get(org)
        check(exporter, staged, day, day + timedelta(days=1) - US, org)  # the whole day
        check(exporter, staged, day - US, day + US, None, reseller)  # around midnight
        check(exporter, staged, day, day + timedelta(days=2), org)  # ends at a midnight
        check(exporter, staged, hour + timedelta(minutes=3), hour + timedelta(minutes=41), org)
        check(exporter, staged, hour + 1 * US, hour + timedelta(minutes=15) - 2 * US, org)
        check(exporter, staged, hour - timedelta(minutes=15), hour + timedelta(minutes=15))


def test_the_whole_history(exporter: Exporter, staged: StagedData) -> None:
    first, last = span(staged)
    everything = check(exporter, staged, first - timedelta(days=2), last + timedelta(days=2))
    assert everything["data"]["metrics"]["totalCalls"] == len(staged.calls)
    for reseller in exporter.reseller_ids:
        check(exporter, staged, first, last, None, reseller)


def test_export_all_equals_single_payloads_and_the_reference(
    exporter: Exporter, staged: StagedData
) -> None:
    first, last = span(staged)
    start = first + (last - first) / 3
    end = start + timedelta(days=9, hours=5, microseconds=17)
    time_range = TimeRange(start, end)
    everything = exporter.export_all(time_range)
    assert sorted(everything.organizations) == exporter.organization_ids
    assert sorted(everything.resellers) == exporter.reseller_ids
    for org_id, body in everything.organizations.items():
        assert body == exporter.payload(time_range, org_id)
        expected = reference_payload(staged, start, end, organization_id=org_id)
        assert not payload_differences(body.to_dict(), expected,
                                       exact_telemetry(staged, start, end, {org_id}))
    for reseller_id, body in everything.resellers.items():
        # A reseller's payload is the direct computation over the union of its orgs' calls.
        assert body == exporter.payload(time_range, reseller_id=reseller_id)
        orgs = set(exporter.organizations_of(reseller_id))
        expected = reference_payload(staged, start, end, reseller_id=reseller_id)
        assert not payload_differences(body.to_dict(), expected,
                                       exact_telemetry(staged, start, end, orgs))
    assert everything.all_organizations is not None
    assert everything.all_organizations == exporter.payload(time_range)
    # The all-organizations payload counts the organizations without a reseller too.
    direct = [o for o in exporter.organization_ids if exporter.reseller_of(o) is None]
    direct_calls = sum(everything.organizations[o].data.metrics.total_calls for o in direct)
    reseller_calls = sum(b.data.metrics.total_calls for b in everything.resellers.values())
    assert direct_calls > 0, "the generated data should have direct customers with calls"
    assert everything.all_organizations.data.metrics.total_calls == direct_calls + reseller_calls
