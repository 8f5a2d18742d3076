"""Partitions are half-open, contiguous, non-overlapping and cover exactly [start, end)."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stackyard.errors import UsageError
from stackyard.runbooks.backfill.partitions import (
    Window,
    check_not_ahead,
    parse_bound,
    partitions,
    time_zone,
)

ZONES = [
    "UTC",
    "Europe/Paris",
    "America/New_York",
    "Australia/Lord_Howe",
    "America/Santiago",
    "Asia/Kolkata",
    "America/Sao_Paulo",
]


@settings(max_examples=300, deadline=None)
@given(
    start=st.dates(date(1999, 1, 1), date(2031, 12, 31)),
    days=st.integers(1, 800),
    grain=st.sampled_from(["day", "month", "hour"]),
    zone=st.sampled_from(ZONES),
)
def test_partitions_tile_the_range_exactly(start: date, days: int, grain: str, zone: str) -> None:
    tz = ZoneInfo(zone)
    if grain == "hour":
        days = min(days, 40)
    lo = parse_bound(start.isoformat(), tz)
    hi = parse_bound((start + timedelta(days=days)).isoformat(), tz)
    windows = partitions(lo, hi, grain, tz)  # type: ignore[arg-type]
    assert windows[0].start == lo.astimezone(UTC)
    assert windows[-1].end == hi.astimezone(UTC)
    for a, b in itertools.pairwise(windows):
        assert a.end == b.start  # contiguous, so no gap and no overlap
    assert all(w.start < w.end for w in windows)
    # Every boundary inside the range is a local grain boundary.
    for w in windows[1:]:
        local = w.start.astimezone(tz)
        if grain == "hour":
            assert w.start.minute == 0 and w.start.second == 0
        else:
            assert (local.hour, local.minute) in {(0, 0), (1, 0), (0, 30)}  # skipped midnights
            if grain == "month":
                assert local.day == 1
    if grain == "day" and zone == "UTC":
        assert len(windows) == days


def test_leap_day_and_month_ends() -> None:
    days = partitions(datetime(2024, 2, 27), datetime(2024, 3, 2), "day", UTC)
    assert [w.start.date().isoformat() for w in days] == [
        "2024-02-27",
        "2024-02-28",
        "2024-02-29",
        "2024-03-01",
    ]
    months = partitions(datetime(2023, 11, 15), datetime(2024, 3, 1), "month", UTC)
    assert next(w.key() for w in months) == (
        "2023-11-15T00:00:00+00:00",
        "2023-12-01T00:00:00+00:00",
    )
    assert len(months) == 4


def test_dst_days_are_23_and_25_hours_long() -> None:
    paris = time_zone("Europe/Paris")
    spring = partitions(
        parse_bound("2024-03-31", paris), parse_bound("2024-04-01", paris), "day", paris
    )
    autumn = partitions(
        parse_bound("2024-10-27", paris), parse_bound("2024-10-28", paris), "day", paris
    )
    assert spring[0].end - spring[0].start == timedelta(hours=23)
    assert autumn[0].end - autumn[0].start == timedelta(hours=25)
    hours = partitions(
        parse_bound("2024-10-27", paris), parse_bound("2024-10-28", paris), "hour", paris
    )
    assert len(hours) == 25


def test_window_round_trips_through_the_ledger_key() -> None:
    w = partitions(datetime(2024, 1, 1), datetime(2024, 1, 2), "day", UTC)[0]
    assert Window.from_key(*w.key()) == w


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [("2024-01-02", "2024-01-01", "must be after"), ("2024-13-01", "2024-01-01", "not a date")],
)
def test_bad_ranges_are_usage_errors(start: str, end: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        partitions(parse_bound(start, UTC), parse_bound(end, UTC), "day", UTC)


def test_unknown_zone_and_grain() -> None:
    with pytest.raises(UsageError, match="unknown time zone"):
        time_zone("Mars/Olympus")
    with pytest.raises(UsageError, match="unknown grain"):
        partitions(datetime(2024, 1, 1), datetime(2024, 1, 2), "week", UTC)  # type: ignore[arg-type]


def test_a_range_of_absurdly_many_partitions_is_refused_at_once() -> None:
    # Before: 2026 to 2099 by the hour (about 640,000 partitions) worked for minutes on the
    # dry run with nothing on screen.
    with pytest.raises(UsageError) as refused:
        partitions(datetime(2026, 1, 1), datetime(2099, 1, 1), "hour", UTC)
    assert "more than 20,000 partitions of one hour" in refused.value.message
    assert "coarser --grain" in str(refused.value.hint)


@pytest.mark.parametrize("grain", ["day", "month"])
def test_a_range_ending_on_the_calendars_last_day_is_cut_not_a_crash(grain: str) -> None:
    # Before: ValueError "year 10000 is out of range", an unexpected error with exit 1.
    windows = partitions(datetime(9999, 11, 1), datetime(9999, 12, 31), grain, UTC)
    assert windows[0].start == datetime(9999, 11, 1, tzinfo=UTC)
    assert windows[-1].end == datetime(9999, 12, 31, tzinfo=UTC)
    assert len(windows) == (60 if grain == "day" else 2)


def test_partitions_after_now_are_refused_when_all_and_warned_of_when_some() -> None:
    now = datetime(2024, 3, 10, 15, 30, tzinfo=UTC)
    days = partitions(datetime(2024, 3, 12), datetime(2024, 3, 15), "day", UTC)
    with pytest.raises(UsageError) as refused:
        check_not_ahead(days, now, UTC)
    assert "2024-03-12 to 2024-03-15 is after today (2024-03-10 15:30 UTC)" in refused.value.message
    assert "--end 2024-03-11" in str(refused.value.hint)
    some = partitions(datetime(2024, 3, 9), datetime(2024, 3, 13), "day", UTC)
    warning = check_not_ahead(some, now, UTC)
    assert warning is not None and warning.startswith("2 of 4 partitions (from 2024-03-11)")
    # Today's partition began before now: it has rows, and is no reason to warn.
    assert check_not_ahead(some[:2], now, UTC) is None
    # Dates in the messages are on the calendar of --tz.
    paris = ZoneInfo("Europe/Paris")
    late = partitions(
        parse_bound("2024-03-11", paris), parse_bound("2024-03-12", paris), "day", paris
    )
    with pytest.raises(
        UsageError, match=r"2024-03-11 to 2024-03-12 is after today \(2024-03-10 16:30 CET\)"
    ):
        check_not_ahead(late, now, paris)
