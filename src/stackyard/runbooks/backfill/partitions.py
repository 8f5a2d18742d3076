"""Cutting a date range into backfill partitions.

Partitions are half-open windows ``[start, end)`` in UTC instants, cut on the calendar of a
time zone: a day is local midnight to local midnight, so across a daylight-saving change a day
lasts 23 or 25 hours, while an hour is always one real hour. Consecutive partitions share their
boundary, none overlap, and together they cover exactly ``[start, end)``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import MAXYEAR, UTC, date, datetime, timedelta, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from stackyard.errors import UsageError

Grain = Literal["hour", "day", "month"]
GRAINS: tuple[Grain, ...] = ("hour", "day", "month")


@dataclass(frozen=True, order=True)
class Window:
    """One partition: the instants ``start <= t < end`` (timezone-aware, UTC)."""

    start: datetime
    end: datetime

    @property
    def label(self) -> str:
        """A short name for messages: the start as ISO text in UTC.

        >>> Window(datetime(2024, 2, 29, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC)).label
        '2024-02-29T00:00:00+00:00'
        """
        return self.start.isoformat()

    def key(self) -> tuple[str, str]:
        """The window as the two ISO strings the ledger stores."""
        return (self.start.isoformat(), self.end.isoformat())

    @classmethod
    def from_key(cls, start: str, end: str) -> Window:
        """The window the ledger recorded (never recomputed from today's date).

        >>> Window.from_key("2024-01-01T00:00:00+00:00", "2024-01-02T00:00:00+00:00").end.day
        2
        """
        return cls(
            datetime.fromisoformat(start).astimezone(UTC),
            datetime.fromisoformat(end).astimezone(UTC),
        )


def time_zone(name: str) -> tzinfo:
    """The IANA time zone called ``name``.

    Raises:
        UsageError: no such time zone.
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(
            f"unknown time zone '{name}'",
            hint="use an IANA name such as UTC, Europe/Paris or America/New_York",
        ) from None


def parse_bound(text: str, zone: tzinfo) -> datetime:
    """A ``--start``/``--end`` value (``YYYY-MM-DD`` or ``YYYY-MM-DDTHH[:MM]``) as a local time.

    >>> parse_bound("2024-02-29", ZoneInfo("UTC")).isoformat()
    '2024-02-29T00:00:00+00:00'

    Raises:
        UsageError: the text is not such a date.
    """
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            value = datetime(day.year, day.month, day.day)
        else:
            value = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"'{text}' is not a date", hint="write YYYY-MM-DD, e.g. --start 2024-01-01"
        ) from None
    if value.tzinfo is not None:
        return value.astimezone(zone)
    return value.replace(tzinfo=zone)


#: More partitions than this are refused (about 2 years of hours, 54 of days): split a
#: longer range into several backfills.
MAX_PARTITIONS = 20_000


def partitions(start: datetime, end: datetime, grain: Grain, zone: tzinfo) -> list[Window]:
    """The partitions of ``[start, end)`` at ``grain`` on ``zone``'s calendar.

    Args:
        start: first instant (inclusive); naive values are read in ``zone``.
        end: last instant (exclusive).
        grain: ``hour``, ``day`` or ``month``.
        zone: the calendar days and months are cut on.

    Returns:
        Windows in order. The first starts at ``start`` and the last ends at ``end``; a bound
        that is not on a grain boundary makes a shorter first or last window rather than
        reaching outside the range.

    Raises:
        UsageError: ``end`` is not after ``start``, the grain is unknown, or the range
            has more than :data:`MAX_PARTITIONS` partitions or ends past year 9999.

    >>> days = partitions(datetime(2024, 2, 28), datetime(2024, 3, 2), "day", UTC)
    >>> [w.start.day for w in days]
    [28, 29, 1]
    """
    if grain not in GRAINS:
        raise UsageError(f"unknown grain '{grain}'", hint="use hour, day or month")
    lo = _aware(start, zone)
    hi = _aware(end, zone)
    if hi <= lo:
        raise UsageError(
            f"--end ({end.date()}) must be after --start ({start.date()})",
            hint="the range is half-open: --start 2024-01-01 --end 2024-01-02 is one day",
        )
    cuts = [lo]
    try:
        for boundary in _boundaries(lo, hi, grain, zone):
            if lo < boundary < hi:
                cuts.append(boundary)
            if len(cuts) > MAX_PARTITIONS:
                # Each partition is a query, a ledger row and a line of the plan: a range
                # this long is a typo in a year or a grain, not a backfill.
                raise UsageError(
                    f"{start.date()} to {end.date()} is more than {MAX_PARTITIONS:,} "
                    f"partitions of one {grain}",
                    hint="check the years of --start and --end, use a coarser --grain, or "
                    "split the range into several backfills",
                )
    except (ValueError, OverflowError):  # a partition ending after year 9999
        raise UsageError(
            f"--end ({end.date()}) is past the last date a partition can end on",
            hint="end the range before 9999-12-01",
        ) from None
    cuts.append(hi)
    return [Window(a, b) for a, b in itertools.pairwise(cuts)]


def check_not_ahead(windows: list[Window], now: datetime, zone: tzinfo) -> str | None:
    """Refuse a range wholly after ``now``; warn of the partitions of one that reaches past it.

    A partition that starts after now can hold no row yet: backfilling only such partitions
    "succeeded" with 0 rows, which reads like a repair that found nothing wrong.

    Args:
        windows: the range's partitions, in order.
        now: the current instant (timezone-aware).
        zone: the calendar of ``--tz``, for the dates in the messages.

    Returns:
        A warning naming the partitions after ``now``, or ``None`` when there are none.

    Raises:
        UsageError: every partition starts at or after ``now`` (nothing is attempted).

    >>> day = partitions(datetime(2024, 1, 1), datetime(2024, 1, 3), "day", UTC)
    >>> check_not_ahead(day, datetime(2024, 1, 1, 12, tzinfo=UTC), UTC)
    '1 of 2 partitions (from 2024-01-02) start after now (2024-01-01 12:00 UTC): they have no data yet and are recorded with 0 rows'
    """
    ahead = [w for w in windows if w.start >= now]
    if not ahead:
        return None
    today = now.astimezone(zone)
    moment = f"{today:%Y-%m-%d %H:%M} {today.tzname()}"
    first = ahead[0].start.astimezone(zone).date()
    if len(ahead) == len(windows):
        raise UsageError(
            f"{windows[0].start.astimezone(zone).date()} to "
            f"{windows[-1].end.astimezone(zone).date()} is after today ({moment}): no "
            "partition of it has data yet, so there is nothing to backfill",
            hint="check the dates; --end is excluded, so a range that includes today ends "
            f"with --end {today.date() + timedelta(days=1)}",
        )
    return (
        f"{len(ahead)} of {len(windows)} partitions (from {first}) start after now "
        f"({moment}): they have no data yet and are recorded with 0 rows"
    )


def _aware(value: datetime, zone: tzinfo) -> datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)


def _boundaries(lo: datetime, hi: datetime, grain: Grain, zone: tzinfo) -> Iterator[datetime]:
    if grain == "hour":
        # Real hours: on the day clocks go back the repeated local hour is two partitions.
        first = lo.replace(minute=0, second=0, microsecond=0)
        step = first
        while step < hi:
            yield step
            step += timedelta(hours=1)
        return
    local = lo.astimezone(zone)
    day = date(local.year, local.month, 1 if grain == "month" else local.day)
    while True:
        # Local midnight; where a zone skips midnight, zoneinfo's fold=0 lands on the instant
        # the clocks jumped, still after the previous boundary.
        boundary = datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
        if boundary >= hi:
            return
        yield boundary
        if (day.year, day.month) == (MAXYEAR, 12) and (grain == "month" or day.day == 31):
            return  # the calendar's last boundary
        day = _next(day, grain)


def _next(day: date, grain: Grain) -> date:
    if grain == "day":
        return day + timedelta(days=1)
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)
