"""Rows that stop arriving, on a table judged by a time column.

Volume judges the complete days before the newest day that has rows (the newest is still
arriving). A table whose rows stop coming — a model whose filter broke, a source whose API
answers with nothing new while its loads still succeed — then keeps judging the same old
days, and stays "ok". So each table learns how soon a day's rows usually arrive: the time
between a day and the pass that first saw rows for it, over the last weeks (days a first
pass found all at once are left out). When days that usually have rows are overdue past
that, with a day's grace, the table is said to have stopped receiving rows.

A table that lags by design learns its lag; one that never gets new days (a list of stores
by opening date) learns nothing and is never judged here.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import date, datetime, timedelta

from stackyard.monitors.health import Check

#: How far back arrivals are read, and how many are needed to trust the usual lag.
LEARN_DAYS = 28
MIN_ARRIVALS = 5
#: A day is overdue only this many days after its usual lag: a load an hour late is news
#: for freshness, not a reason to say rows stopped.
GRACE_DAYS = 1
#: A weekday usually has rows when at least this share of its recent days had some (a table
#: empty on Sundays is not overdue on a Sunday); judged on at least this many of them.
USUAL_SHARE = 0.8
MIN_WEEKDAY_DAYS = 4
WEEKDAY_DAYS = 56


def arrival_check(
    series: Mapping[date, float],
    last: date,
    today: date,
    arrivals: Mapping[date, datetime],
    holidays: Collection[date],
    time_column: str,
) -> Check | None:
    """An ``arrival`` anomaly when days that usually have rows are overdue, else ``None``.

    Args:
        series: rows per day by the time column (days without rows as 0).
        last: the newest day that has rows.
        today: the pass's day.
        arrivals: when each recent day first had rows (:meth:`MetricStore.arrivals`).
        holidays: the business calendar's holidays (never overdue).
        time_column: the column the days are read from, for the message.

    >>> from datetime import UTC
    >>> days = {date(2026, 11, 1) + timedelta(days=i): 10.0 for i in range(30)}
    >>> seen = {d: datetime(d.year, d.month, d.day, 6, tzinfo=UTC) + timedelta(days=1)
    ...         for d in days if d >= date(2026, 11, 20)}
    >>> arrival_check(days, date(2026, 11, 30), date(2026, 12, 1), seen, (), "at") is None
    True
    >>> late = arrival_check(days, date(2026, 11, 30), date(2026, 12, 4), seen, (), "at")
    >>> late.status, late.day
    ('anomaly', datetime.date(2026, 12, 2))
    """
    learnt = [
        (seen.date() - day).days
        for day, seen in arrivals.items()
        if day >= today - timedelta(days=LEARN_DAYS)
    ]
    if len(learnt) < MIN_ARRIVALS:
        return None
    usual = max(0, *learnt)
    due = today - timedelta(days=usual + GRACE_DAYS)
    overdue = [
        day
        for day in (last + timedelta(days=i) for i in range(1, (due - last).days + 1))
        if day not in holidays and _usually_has_rows(series, day, today, holidays)
    ]
    if not overdue:
        return None
    span = f"{overdue[0]}" + (f" to {overdue[-1]}" if len(overdue) > 1 else "")
    return Check(
        "arrival",
        "anomaly",
        f"no rows with {time_column} after {last}: rows for a day usually arrive within "
        f"{usual} day(s), and {len(overdue)} day(s) that usually have rows have none ({span})",
        day=overdue[-1],
        value=0,
    )


def _usually_has_rows(
    series: Mapping[date, float], day: date, today: date, holidays: Collection[date]
) -> bool:
    since = today - timedelta(days=WEEKDAY_DAYS)
    alike = [
        v
        for d, v in series.items()
        if d >= since and d.weekday() == day.weekday() and d not in holidays
    ]
    if len(alike) < MIN_WEEKDAY_DAYS:
        return False
    return sum(v > 0 for v in alike) >= USUAL_SHARE * len(alike)
