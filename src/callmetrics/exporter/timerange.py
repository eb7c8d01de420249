"""Request ranges: ISO 8601 text to an inclusive ``[start, end]`` of UTC instants.

Rules (``metrics.md``): an instant without an offset is UTC; a bare date means that whole UTC
day (its first microsecond for a start, its last for an end); both ends are inclusive to the
microsecond. Calls are stored to the microsecond, so an end given finer than that is rounded
*inward* (a start up to the next microsecond, an end down), which keeps exactly the same calls.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction
from typing import Literal

from callmetrics.errors import UserError

ONE_US = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# A time of day with a fraction of a second: "...T10:00:00.1234567" or "...T10:00:00,5".
_FRACTION = re.compile(r"^(?P<head>.*[T ]\d{2}:?\d{2}:?\d{2})[.,](?P<digits>\d+)(?P<tail>.*)$")
_EXAMPLE = "e.g. 2025-03-10 or 2025-03-10T08:00:00Z"

Role = Literal["start", "end"]


@dataclass(frozen=True)
class Instant:
    """A parsed instant: ``moment`` (UTC, floored to the microsecond) plus ``extra``, the
    fraction of a microsecond below it (0 <= extra < 1)."""

    moment: datetime
    extra: Fraction = Fraction(0)


@dataclass(frozen=True)
class TimeRange:
    """Calls count when ``start <= started_at <= end`` (aware UTC datetimes, microseconds).

    ``start == end + 1 us`` is allowed: a range narrower than a microsecond that holds none.
    ``first_date`` and ``last_date`` are the UTC dates of the range as the user gave it
    (``dailyVolume`` lists them all); by default the dates of ``start`` and ``end``.
    """

    start: datetime
    end: datetime
    first_date: date = field(default=None)  # type: ignore[assignment]
    last_date: date = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        for value in (self.start, self.end):
            if value.tzinfo is None or value.utcoffset() != timedelta(0):
                raise ValueError("TimeRange needs aware UTC datetimes")
        if self.start - self.end > ONE_US:
            raise UserError(
                f"the start {iso(self.start)} is after the end {iso(self.end)}: "
                "give a start no later than the end"
            )
        if self.first_date is None:
            object.__setattr__(self, "first_date", min(self.start, self.end).date())
        if self.last_date is None:
            object.__setattr__(self, "last_date", self.end.date())

    def dates(self) -> list[date]:
        """Every UTC date from the start's to the end's, both included."""
        days = (self.last_date - self.first_date).days
        return [self.first_date + timedelta(days=n) for n in range(days + 1)]

    def whole_buckets(self, bucket: timedelta) -> tuple[datetime, datetime] | None:
        """``[first, stop)``: the UTC buckets of width ``bucket`` (the warehouse's, see
        ``sections.py``) lying entirely inside the range.

        ``None`` when no bucket fits. The calls of the partial buckets at the two edges,
        ``[start, first)`` and ``[stop, end]``, must be read call by call.
        """
        width = bucket // ONE_US
        first = _bucket_at(-(-_micros(self.start) // width), width)
        stop_us = (_micros(self.end) + 1) // width  # end + 1 us is the exclusive stop
        # At the end of year 9999 the stop itself is not a datetime: read the last bucket
        # call by call instead.
        stop = _bucket_at(stop_us, width) or _bucket_at(stop_us - 1, width)
        if first is None or stop is None or first >= stop:
            return None
        return first, stop


def iso(value: datetime) -> str:
    """``2025-03-10T08:00:00.000000Z``: UTC, always with microseconds."""
    naive = value.astimezone(UTC).replace(tzinfo=None)
    return naive.isoformat(timespec="microseconds") + "Z"


def parse_instant(text: str, role: Role, label: str | None = None) -> Instant:
    """Parse one end of a range; ``role`` decides what a bare date means."""
    label = label or f"--{role}"
    raw = text.strip()
    if not raw:
        raise UserError(f"{label} is empty: give an ISO 8601 date or timestamp ({_EXAMPLE})")
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        day = None
    if day is not None:
        clock = time(0) if role == "start" else time(23, 59, 59, 999_999)
        return Instant(datetime.combine(day, clock, tzinfo=UTC))
    digits = ""
    match = _FRACTION.match(raw)
    if match:
        digits = match["digits"]
        raw = match["head"] + match["tail"]
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise UserError(
            f"{label} {text!r} is not an ISO 8601 date or timestamp ({_EXAMPLE})"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.replace(microsecond=int((digits + "000000")[:6]))
    extra = Fraction(int(digits[6:]), 10 ** len(digits[6:])) if len(digits) > 6 else Fraction(0)
    try:
        return Instant(moment.astimezone(UTC), extra)
    except OverflowError:
        raise UserError(f"{label} {text!r} is outside the years 1 to 9999") from None


def parse_range(start: str, end: str) -> TimeRange:
    """The inclusive range named by two ISO 8601 texts (``UserError`` when they are not)."""
    first, last = parse_instant(start, "start"), parse_instant(end, "end")
    if (first.moment, first.extra) > (last.moment, last.extra):
        raise UserError(
            f"--start {start!r} is after --end {end!r}: give a start no later than the end"
        )
    begin = first.moment
    if first.extra:
        try:
            begin = first.moment + ONE_US  # the first whole microsecond at or after the start
        except OverflowError:
            raise UserError(f"--start {start!r} is outside the years 1 to 9999") from None
    return TimeRange(begin, last.moment, first.moment.date(), last.moment.date())


def _micros(value: datetime) -> int:
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _bucket_at(index: int, width_us: int) -> datetime | None:
    try:
        return _EPOCH + timedelta(microseconds=index * width_us)
    except OverflowError:
        return None
