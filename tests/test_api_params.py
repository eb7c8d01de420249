"""The API's query parser (`callmetrics.api.params`), property-tested with hypothesis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callmetrics.api.params import MAX_DAYS, PARAMETERS, MetricsRequest, ParamError, parse_query
from callmetrics.exporter import Exporter
from callmetrics.exporter.commands import request_range
from tests.conftest import BuiltWarehouse

NAMES = list(PARAMETERS)
texts = st.text(max_size=40)
any_name = st.one_of(st.sampled_from(NAMES), texts)
instants = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2030, 12, 31),
                        timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)),
                                                   timezone(timedelta(hours=-3))]))


def iso_text(moment: datetime, style: int) -> str:
    """One of several spellings of the same instant."""
    if style == 0:
        return moment.isoformat()
    if style == 1:
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if style == 2:
        return moment.astimezone(UTC).replace(tzinfo=None).isoformat()  # no offset: UTC
    return moment.date().isoformat()  # a bare date


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(any_name, texts), max_size=8))
def test_any_query_is_a_request_or_a_param_error(items: list[tuple[str, str]]) -> None:
    try:
        request = parse_query(items)
    except ParamError as exc:
        message = str(exc)
        assert message and "\n" not in message and len(message) < 400
    else:
        assert isinstance(request, MetricsRequest)
        assert request.time_range.start <= request.time_range.end + timedelta(microseconds=1)
        assert {n for n, _ in items} <= set(PARAMETERS)


@settings(max_examples=300, deadline=None)
@given(instants, instants, st.integers(0, 3), st.integers(0, 3),
       st.one_of(st.none(), texts.filter(str.strip)))
def test_valid_ranges_read_like_the_exporter(a: datetime, b: datetime, sa: int, sb: int,
                                             org: str | None) -> None:
    start, end = iso_text(min(a, b), sa), iso_text(max(a, b), sb)
    items = [("startDate", start), ("endDate", end)]
    items += [("organizationId", org)] if org is not None else []
    try:
        expected = request_range(start, end)
    except Exception:  # noqa: BLE001 (a date spelling may cross: then both refuse)
        try:
            parse_query(items)
        except ParamError:
            return
        raise AssertionError("the API accepted a range the exporter refuses") from None
    days = (expected.last_date - expected.first_date).days + 1
    if days > MAX_DAYS:
        return
    request = parse_query(items)
    assert request.time_range == expected
    assert request.organization_id == org and request.reseller_id is None
    assert (request.time_zone, request.granularity) == ("UTC", "day")


@settings(max_examples=100, deadline=None)
@given(texts.filter(lambda n: n not in PARAMETERS), texts)
def test_an_unknown_name_is_refused_whatever_else(name: str, value: str) -> None:
    items = [("startDate", "2025-01-01"), ("endDate", "2025-01-02"), (name, value)]
    try:
        parse_query(items)
    except ParamError as exc:
        assert "unknown parameter" in str(exc)
    else:
        raise AssertionError(f"{name!r} was accepted")


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(NAMES), texts, texts)
def test_a_repeated_name_is_refused(name: str, first: str, second: str) -> None:
    items = [("startDate", "2025-01-01"), ("endDate", "2025-01-02"), (name, first),
             (name, second)]
    if name in ("startDate", "endDate"):
        items = items[1:] if name == "startDate" else [items[0], *items[2:]]
    try:
        parse_query(items)
    except ParamError as exc:
        assert "more than once" in str(exc)
    else:
        raise AssertionError(f"{name} given twice was accepted")


@pytest.fixture(scope="module")
def exporter(handmade_warehouse: BuiltWarehouse) -> Exporter:
    with Exporter(handmade_warehouse.warehouse) as opened:
        yield opened


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59)),
       st.integers(0, 40 * 86_400_000_000), st.integers(0, 3), st.integers(0, 3))
def test_every_accepted_range_is_answered(exporter: Exporter, start: datetime, span_us: int,
                                          sa: int, sb: int) -> None:
    """From the first microsecond of year 1 to the last of 9999: what the parser accepts, the
    exporter answers (no overflow at either end)."""
    try:
        end = start + timedelta(microseconds=span_us)
    except OverflowError:
        end = datetime(9999, 12, 31, 23, 59, 59, 999_999)
    items = [("startDate", iso_text(start.replace(tzinfo=UTC), sa)),
             ("endDate", iso_text(end.replace(tzinfo=UTC), sb))]
    try:
        request = parse_query(items)
    except ParamError:
        return
    answer = exporter.answer(request.time_range, "org-1")
    assert answer.data.metrics.total_calls >= 0
