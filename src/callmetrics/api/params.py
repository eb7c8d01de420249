"""``GET /v1/metrics`` query parameters, parsed strictly (``api.md``).

Every name must be one of ``PARAMETERS`` and appear at most once: a typo such as
``organizationID`` is a bad request, never a silently wider scope. Dates follow the
exporter's own parser (``metrics.md``), so the API and ``callmetrics export`` read a range the
same way; ``timeZone``, ``granularity`` and ``compare`` are read by the exporter's own
``Request.parse`` too (``metrics.md``, "Time zones and calendars").
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from zoneinfo import available_timezones

from callmetrics.errors import UserError
from callmetrics.exporter import TimeRange
from callmetrics.exporter.api import Request
from callmetrics.exporter.meta import DEFAULT_GRANULARITY, DEFAULT_TIME_ZONE
from callmetrics.exporter.timerange import parse_instant

PARAMETERS: dict[str, str] = {
    "startDate": "Start of the range, inclusive: an ISO 8601 date (2025-03-01, the whole day) "
    "or instant (2025-03-01T08:00:00Z; without an offset it is UTC). Required.",
    "endDate": "End of the range, inclusive: an ISO 8601 date (2025-03-31, through its last "
    "microsecond) or instant. Required.",
    "organizationId": "One organization the key sees. Without it and resellerId: every "
    "organization the key sees.",
    "resellerId": "A reseller: with a platform key or that reseller's own key. With "
    "organizationId, the organization must belong to it.",
    "timeZone": "IANA time zone of dates, hours and of dates and times without an offset "
    "(default UTC).",
    "granularity": "dailyVolume period: day (default), week (ISO, Monday first) or month.",
    "compare": "previous adds previousPeriod: the same metrics over the period just before.",
}
REQUIRED = ("startDate", "endDate")
GRANULARITIES = ("day", "week", "month")
COMPARES = ("previous",)
MAX_DAYS = 3_660  # ten years and change: a dailyVolume of at most this many entries
_SHOWN = 80


class ParamError(Exception):
    """A bad request: the message is one sentence for the caller."""


@dataclass(frozen=True)
class MetricsRequest:
    time_range: TimeRange
    organization_id: str | None
    reseller_id: str | None
    time_zone: str = DEFAULT_TIME_ZONE
    granularity: str = DEFAULT_GRANULARITY
    request: Request | None = None  # what the exporter answers (range, zone, period, compare)
    compare: bool = False


def show(text: str) -> str:
    """A caller's text quoted for a message, shortened when long."""
    short = text if len(text) <= _SHOWN else text[:_SHOWN] + "..."
    return repr(short)


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _time_zone(value: str) -> str:
    if value == DEFAULT_TIME_ZONE or value in _zones():
        return value
    raise ParamError(f"timeZone {show(value)} is not a known IANA time zone (e.g. UTC)")


def _granularity(value: str) -> str:
    if value in GRANULARITIES:
        return value
    raise ParamError(f"granularity {show(value)} is not one of day, week, month")


def _compare(value: str) -> str:
    if value in COMPARES:
        return value
    raise ParamError(f"compare {show(value)} is not a known comparison (previous)")


def _id(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    if not value.strip():
        raise ParamError(f"{name} is empty: give an id or leave the parameter out")
    return value


def parse_query(items: list[tuple[str, str]]) -> MetricsRequest:
    """The request named by the query's (name, value) pairs, or ``ParamError``."""
    values: dict[str, str] = {}
    for name, value in items:
        if name not in PARAMETERS:
            raise ParamError(
                f"unknown parameter {show(name)}: the parameters are "
                f"{', '.join(PARAMETERS)}"
            )
        if name in values:
            raise ParamError(f"parameter {name} is given more than once: give it once")
        values[name] = value
    for name in REQUIRED:
        if name not in values:
            raise ParamError(f"{name} is missing: give it as an ISO 8601 date or instant")
    start, end = values["startDate"], values["endDate"]
    for name in REQUIRED:
        if len(values[name]) > _SHOWN:
            raise ParamError(f"{name} is too long for an ISO 8601 date or instant")
    try:
        parse_instant(start, "start", "startDate")
        parse_instant(end, "end", "endDate")
        time_zone = _time_zone(values.get("timeZone", DEFAULT_TIME_ZONE))
        granularity = _granularity(values.get("granularity", DEFAULT_GRANULARITY))
        compare = _compare(values["compare"]) if "compare" in values else None
        request = Request.parse(start, end, time_zone, granularity, compare)
    except UserError as exc:
        message = str(exc).replace("--start", "startDate").replace("--end", "endDate")
        raise ParamError(message) from None
    time_range = request.time_range
    days = (time_range.last_date - time_range.first_date).days + 1
    if days > MAX_DAYS:
        raise ParamError(
            f"the range covers {days:,} days: ask for at most {MAX_DAYS:,} days at a time"
        )
    return MetricsRequest(
        time_range=time_range,
        organization_id=_id("organizationId", values.get("organizationId")),
        reseller_id=_id("resellerId", values.get("resellerId")),
        time_zone=request.tz.key,
        granularity=request.granularity,
        request=request,
        compare=request.compare,
    )
