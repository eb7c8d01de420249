"""Time zones, calendar periods and the previous period (``metrics.md``, "Time zones and
calendars").

A request is read in one IANA time zone (``zoneinfo``; UTC by default):

- an instant with an offset or ``Z`` is that instant; a date-time without one is a wall-clock
  time in the zone, read with ``fold=0`` (the first of a repeated hour; in a skipped hour the
  offset before the change, so ``02:30`` on a spring-forward night is ``03:30`` new time);
- a bare date is the whole local day, from the first instant of that local date through the
  last microsecond before the next one begins (23, 24 or 25 hours).

The warehouse's buckets are UTC and 15 minutes wide; every offset in use is a multiple of 15
minutes, so a local date or hour is a union of whole buckets. ``Calendar.offsets`` gives the
constant-offset spans of a range, from which the exporter derives each bucket's local date and
hour in SQL (``query.py``): the time-zone rules come from ``zoneinfo`` alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from callmetrics.errors import UserError
from callmetrics.exporter.timerange import ONE_US, Instant, TimeRange, parse_instant

Granularity = Literal["day", "week", "month"]
GRANULARITIES: tuple[str, ...] = ("day", "week", "month")
COMPARES: tuple[str, ...] = ("previous",)
DEFAULT_ZONE = "UTC"
_FIRST = datetime.min.replace(tzinfo=UTC)
_LAST = datetime.max.replace(tzinfo=UTC)
_PROBE = timedelta(hours=6)  # offsets are sampled this far apart, then each change bisected


def zone(name: str | None) -> ZoneInfo:
    """The IANA zone called ``name`` (``None``: UTC); an unknown name is a ``UserError``."""
    text = DEFAULT_ZONE if name is None else name.strip()
    try:
        if not text or text.startswith(("/", ".")) or ".." in text:
            raise ValueError(text)
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise UserError(
            f"time zone {name!r} is not an IANA time-zone name: give one such as "
            "UTC, America/New_York or Asia/Kolkata"
        ) from None


def granularity(name: str | None) -> Granularity:
    """``day`` (default), ``week`` or ``month``; anything else is a ``UserError``."""
    text = "day" if name is None else name.strip().lower()
    if text not in GRANULARITIES:
        raise UserError(f"granularity {name!r} is not one of day, week, month")
    return text  # type: ignore[return-value]


def compare(name: str | None) -> bool:
    """Whether ``compare=previous`` was asked (``None``: no comparison)."""
    if name is None:
        return False
    if name.strip().lower() not in COMPARES:
        raise UserError(f"compare {name!r} is not supported: the only comparison is previous")
    return True


def local_date(moment: datetime, tz: ZoneInfo) -> date:
    """The date of ``moment`` in ``tz`` (clamped to the years 1 to 9999)."""
    try:
        return moment.astimezone(tz).date()
    except OverflowError:
        return date.max if moment.year > 5000 else date.min


def day_start(day: date, tz: ZoneInfo) -> datetime:
    """The first instant (UTC) whose local date in ``tz`` is ``day``."""
    if day == date.min:
        return _FIRST  # the first instant datetime can hold (the zone's year 1 starts earlier)
    guess = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
    candidates = [guess, datetime.combine(day, time(0, fold=1), tzinfo=tz).astimezone(UTC)]
    for moment in sorted(candidates):
        if moment == _FIRST or (
            local_date(moment, tz) == day and local_date(moment - ONE_US, tz) < day
        ):
            return moment
    # Midnight itself was skipped (or repeated across the date line): bisect, to the
    # microsecond, for the first instant of the day within a day of the naive guess.
    lo, hi = guess - timedelta(days=1), guess + timedelta(days=1)
    while hi - lo > ONE_US:
        mid = lo + (hi - lo) / 2
        if local_date(mid, tz) >= day:
            hi = mid
        else:
            lo = mid
    return hi


def parse_local(text: str, role: Literal["start", "end"], tz: ZoneInfo) -> tuple[Instant, bool]:
    """One end of a range in zone ``tz``; also whether it was a bare date."""
    raw = text.strip()
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        day = None
    if day is not None:
        try:
            if role == "start":
                return Instant(day_start(day, tz)), True
            if day == date.max:
                return Instant(_LAST), True  # the last instant datetime can hold
            return Instant(day_start(day + timedelta(days=1), tz) - ONE_US), True
        except OverflowError:
            raise UserError(f"--{role} {text!r} is outside the years 1 to 9999") from None
    instant = parse_instant(text, role)
    if not _has_offset(raw):
        wall = instant.moment.replace(tzinfo=None)
        try:
            moment = wall.replace(tzinfo=tz).astimezone(UTC)  # fold=0
        except OverflowError:
            raise UserError(f"--{role} {text!r} is outside the years 1 to 9999") from None
        instant = Instant(moment, instant.extra)
    return instant, False


def _has_offset(text: str) -> bool:
    """Whether an ISO 8601 date-time names its offset (``Z``, ``+05:45``, ``-0300``)."""
    clock = text.upper().replace(" ", "T").partition("T")[2]
    return clock.endswith("Z") or "+" in clock or "-" in clock


@dataclass(frozen=True)
class LocalRange:
    """A request range in a zone: the UTC ``time_range`` (whose ``first_date``/``last_date``
    are local dates) and whether both ends were bare dates."""

    time_range: TimeRange
    tz: ZoneInfo
    bare_dates: bool

    def previous(self) -> TimeRange:
        """The previous period: as many local days just before the first one when both ends
        were bare dates, else the same length to the microsecond ending 1 us before."""
        current = self.time_range
        try:
            if self.bare_dates:
                days = (current.last_date - current.first_date).days + 1
                first = current.first_date - timedelta(days=days)
                start = day_start(first, self.tz)
                end = current.start - ONE_US
                return TimeRange(start, end, first, current.first_date - timedelta(days=1))
            end = current.start - ONE_US
            start = end - (current.end - current.start)
        except (OverflowError, ValueError):
            raise UserError("the previous period would begin before the year 1") from None
        return TimeRange(start, end, local_date(start, self.tz), local_date(end, self.tz))


def parse_local_range(start: str, end: str, tz_name: str | None = None) -> LocalRange:
    """The inclusive range named by two ISO 8601 texts in zone ``tz_name`` (UTC when None)."""
    tz = zone(tz_name)
    first, first_bare = parse_local(start, "start", tz)
    last, last_bare = parse_local(end, "end", tz)
    if (first.moment, first.extra) > (last.moment, last.extra):
        raise UserError(
            f"--start {start!r} is after --end {end!r}: give a start no later than the end"
        )
    begin = first.moment + ONE_US if first.extra else first.moment
    if begin == _FIRST and last.moment > _FIRST:
        # the bucket split reads up to 1 us before the first whole bucket, which datetime
        # cannot hold here; no call starts in that microsecond, so start one later
        begin += ONE_US
    time_range = TimeRange(
        begin, last.moment, local_date(first.moment, tz), local_date(last.moment, tz)
    )
    return LocalRange(time_range, tz, first_bare and last_bare)


def offsets(tz: ZoneInfo, start: datetime, end: datetime) -> list[tuple[datetime, timedelta]]:
    """The constant-offset spans of ``[start, end]``: ``(from, offset)`` pairs, ascending, the
    first ``from`` being ``start``; each offset holds until the next ``from``."""
    spans = [(start, _offset(tz, start))]
    here = start
    while here < end:
        step = min(here + _PROBE, end) if end - here > _PROBE else end
        if _offset(tz, step) != spans[-1][1]:
            lo, hi = here, step  # the change lies in (lo, hi]: bisect to the microsecond
            while hi - lo > ONE_US:
                mid = lo + (hi - lo) // 2
                if _offset(tz, mid) == spans[-1][1]:
                    lo = mid
                else:
                    hi = mid
            spans.append((hi, _offset(tz, hi)))
            here = hi
            continue
        here = step
    return spans


def check_aligned(spans: list[tuple[datetime, timedelta]], bucket: timedelta) -> None:
    """Local dates and hours are unions of buckets only when every offset and change is a
    multiple of the bucket width (true of every zone since the 1970s)."""
    for moment, offset in spans[1:]:
        if (moment - datetime(1970, 1, 1, tzinfo=UTC)) % bucket or offset % bucket:
            raise UserError(
                f"the time zone's offset changes at {moment.isoformat()} to {offset}, not on a "
                f"{int(bucket.total_seconds() // 60)}-minute boundary: ask for a later range "
                "or for UTC"
            )
    if spans and spans[0][1] % bucket:
        raise UserError(
            f"the time zone's offset {spans[0][1]} in this range is not a multiple of "
            f"{int(bucket.total_seconds() // 60)} minutes: ask for a later range or for UTC"
        )


def _offset(tz: ZoneInfo, moment: datetime) -> timedelta:
    return moment.astimezone(tz).utcoffset() or timedelta(0)


def period_start(day: date, unit: Granularity) -> date:
    """The first date of the ``unit`` period holding ``day`` (ISO weeks start on Monday)."""
    if unit == "week":
        return day - timedelta(days=day.weekday())
    if unit == "month":
        return day.replace(day=1)
    return day


def periods(first: date, last: date, unit: Granularity) -> list[date]:
    """First dates of every ``unit`` period overlapping ``[first, last]``, ascending."""
    result = []
    here = period_start(first, unit)
    while here <= last:
        result.append(here)
        try:
            if unit == "day":
                here += timedelta(days=1)
            elif unit == "week":
                here += timedelta(days=7)
            else:
                here = (here.replace(day=28) + timedelta(days=4)).replace(day=1)
        except OverflowError:
            break  # the last period of the year 9999
    return result
