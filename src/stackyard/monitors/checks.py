"""The checks: pure functions from measured metrics and their history to verdicts.

Nothing here touches the warehouse; the suite gathers the numbers and calls these, so every
rule can be tested with plain lists.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta

from stackyard.config.monitors import MonitorsConfig, TableMonitor
from stackyard.errors import counted
from stackyard.monitors.anomaly import AnomalyConfig, days_read, detect, format_value, median
from stackyard.monitors.health import Check

# A load time this far ahead of the clock is "in the future", not clock jitter.
_FUTURE_TOLERANCE = timedelta(minutes=5)
# How many recent measurements make a null-rate or duplicate baseline.
_BASELINE_POINTS = 14


def anomaly_config(settings: TableMonitor) -> AnomalyConfig:
    """The detector's settings for a table's monitor settings.

    >>> anomaly_config(TableMonitor(sensitivity="high")).threshold
    3.5
    """
    return AnomalyConfig(
        sensitivity=settings.sensitivity,
        direction=settings.direction,
        seasonality=settings.seasonality,
    )


def volume_checks(
    series: Mapping[date, float],
    judge: Sequence[date],
    *,
    unit: str,
    holidays: Iterable[date],
    exclude: Iterable[date],
    config: AnomalyConfig,
    known: Iterable[date] = (),
) -> list[Check]:
    """Judge some days of a daily volume series with the anomaly detector.

    Days are judged oldest first; a day found anomalous is kept out of the baselines of the
    later ones, as a monitor running daily would have done.

    Args:
        series: rows per day (gaps are days without rows only where the caller filled them).
        judge: the days to judge, each present in ``series``.
        unit: what a value counts, for the reason ("rows on 2026-03-01", "rows loaded").
        holidays: the business calendar.
        exclude: days kept out of every baseline (earlier alerts, declared incidents).
        config: the detector's settings.
        known: days marked as a known incident: found anomalous, they are said as known
            (``ok``) beside the latest judged day's check.

    Returns:
        One check per anomalous day; without any, one check for the latest judged day
        (after those of known incidents).
    """
    excluded = set(exclude)
    marked = set(known)
    acknowledged: list[Check] = []
    days = sorted(series)
    found: list[Check] = []
    last: Check | None = None
    for day in sorted(judge):
        upto = [d for d in days if d <= day]
        verdict = detect(
            upto,
            [series[d] for d in upto],
            holidays=holidays,
            exclude=excluded - {day},
            config=config,
        )
        status = {"ok": "ok", "anomaly": "anomaly", "insufficient_history": "learning"}[
            verdict.status
        ]
        reason = f"{unit} {day}: {verdict.reason}"
        if verdict.status == "insufficient_history":
            reason = (
                f"{unit} {day}: {format_value(verdict.value)}; learning the baseline "
                f"({verdict.baseline_size} of {config.min_history} usable days of history)"
            )
        check = Check(
            "volume",
            status,  # type: ignore[arg-type]
            reason,
            day=day,
            value=verdict.value,
            expected=verdict.expected,
            # In whole rows, as the verdict judged and said them: `health --json` gave
            # 107.11 where the text said 107, and a value of 107 read as out of its band.
            lower=None if verdict.lower is None else float(math.floor(verdict.lower)),
            upper=None if verdict.upper is None else float(math.ceil(verdict.upper)),
        )
        if verdict.is_anomaly:
            excluded.add(day)
            if day in marked:
                # Known: still said, no longer an anomaly (health's exit code, alerts and
                # `incident open` are for what nobody has looked at yet).
                check = replace(check, status="ok", reason=f"a known incident (marked): {reason}")
                acknowledged.append(check)
            else:
                found.append(check)
        last = check
    if found:
        return [_with_run_end(check, series, max(judge), found) for check in found]
    if last is None or last in acknowledged:
        return acknowledged
    return [*acknowledged, last]


def _with_run_end(
    check: Check, series: Mapping[date, float], until: date, found: Sequence[Check]
) -> Check:
    """An alert on an empty day says how long the emptiness lasted, when the days judged
    after it in the same pass were empty too but not alerted on (the same outage, known):
    without it, a four-day gap read as one that ended on the day alerted on."""
    if check.value != 0 or check.day is None:
        return check
    alerted = {c.day for c in found}
    start = end = check.day
    while series.get(start - timedelta(days=1)) == 0:
        start -= timedelta(days=1)
    while (
        end < until
        and series.get(end + timedelta(days=1)) == 0
        and end + timedelta(days=1) not in alerted
    ):
        end += timedelta(days=1)
    if end == check.day:
        return check
    days = (end - start).days + 1
    return replace(
        check, reason=f"{check.reason}; still no rows through {end} ({days} days from {start})"
    )


def known_incidents(checks: Iterable[Check], marked: set[date]) -> list[Check]:
    """Checks of a day marked as a known incident: an anomaly there is said as known
    (``ok``), whatever the check (a dimension or distinct count on the day of a marked outage
    is the same incident; health's exit code and alerts are for what nobody has seen yet).

    >>> day = date(2026, 3, 7)
    >>> [c.status for c in known_incidents([Check("distinct", "anomaly", "low", day=day)], {day})]
    ['ok']
    """
    return [
        replace(check, status="ok", reason=f"a known incident (marked): {check.reason}")
        if check.status == "anomaly" and check.day in marked
        else check
        for check in checks
    ]


def volume_history_start(today: date, monitors: MonitorsConfig) -> date:
    """The first day of stored volume a pass (and the report) reads: as far back as the
    detector reads before the oldest day a pass judges again, and a week more.

    >>> volume_history_start(date(2026, 12, 5), MonitorsConfig())
    datetime.date(2026, 5, 23)
    """
    return today - timedelta(days=days_read() + monitors.recheck_days + 7)


def emptied_until(stored: Iterable[date], days: Iterable[date], today: date) -> date | None:
    """The last day an earlier pass counted rows on after the newest day that has rows now:
    the days between lost every row (deleted), and are judged as the empty days they are,
    not passed over for older ones. None when nothing newer was counted.

    >>> emptied_until([date(2026, 1, 4), date(2026, 1, 5)], [date(2026, 1, 3)], date(2026, 1, 5))
    datetime.date(2026, 1, 5)
    """
    newest = max(days, default=None)
    if newest is None:
        return None
    return max((d for d in stored if newest < d <= today), default=None)


def fill_days(days: Mapping[date, float], until: date | None = None) -> dict[date, float]:
    """A day-by-day series from the first day to the last (or ``until``), gaps as 0 rows.

    A day with no rows does not appear in a GROUP BY; here it becomes the 0 it is.

    >>> fill_days({date(2026, 1, 1): 5, date(2026, 1, 3): 7})
    {datetime.date(2026, 1, 1): 5, datetime.date(2026, 1, 2): 0.0, datetime.date(2026, 1, 3): 7}
    """
    if not days:
        return {}
    start = min(days)
    end = until or max(days)
    return {
        start + timedelta(days=i): days.get(start + timedelta(days=i), 0.0)
        for i in range((end - start).days + 1)
    }


def freshness_check(
    last: datetime | None,
    now: datetime,
    *,
    warn_hours: float,
    error_hours: float,
    what: str,
) -> Check:
    """Judge how long ago a table last received data (or, for a model, was built).

    Args:
        last: the latest load or build time, or ``None`` when unknown.
        now: the current time.
        warn_hours: age that warns.
        error_hours: age that is an anomaly.
        what: "loaded" or "built", for the reason.

    Returns:
        The check; a time in the future is a ``warn`` (a clock or time-zone problem upstream),
        never a crash and never "fresh".
    """
    if last is None:
        return Check("freshness", "ok", f"not judged: no {what} time known yet")
    age_hours = (now - last).total_seconds() / 3600
    stamp = last.isoformat(timespec="seconds")
    if last > now + _FUTURE_TOLERANCE:
        return Check(
            "freshness",
            "warn",
            f"last {what} at {stamp}, {-age_hours:.1f} h in the future: a clock or time-zone "
            "problem where the data is stamped; freshness not judged",
            value=round(age_hours, 2),
        )
    age = _hours(age_hours)
    if age_hours > error_hours:
        status, limit = "anomaly", f"over the {error_hours:g} h error limit"
    elif age_hours > warn_hours:
        status, limit = "warn", f"over the {warn_hours:g} h warn limit"
    else:
        status, limit = "ok", f"within {warn_hours:g} h"
    return Check(
        "freshness",
        status,  # type: ignore[arg-type]
        f"last {what} {age} ago ({stamp}), {limit}",
        value=round(max(age_hours, 0.0), 2),
        upper=warn_hours,
    )


def null_rate_checks(
    rates: Mapping[str, float | None],
    history: Mapping[str, Sequence[float]],
    *,
    increase: float,
) -> list[Check]:
    """Judge each column's null rate against its recent median.

    A rise of ``increase`` or more (absolute) is an anomaly: the classic silent failure is an
    upstream rename that leaves the old column NULL on every new row. A column that has always
    been NULL stays ``ok``: that is its normal state.

    Args:
        rates: the current null rate per column (``None`` for an empty table).
        history: earlier null rates per column, oldest first (incident days already removed).
        increase: the rise that alerts, e.g. 0.1 for 10 percentage points.

    Returns:
        One check per column that has a rate; those without history are ``ok`` and say so.

    >>> [c.status for c in null_rate_checks({"a": 1.0, "b": 0.0}, {"a": [0.0], "b": [0.0]},
    ...                                     increase=0.1)]
    ['anomaly', 'ok']
    """
    checks = []
    for column, rate in rates.items():
        if rate is None:
            continue
        past = list(history.get(column, ()))[-_BASELINE_POINTS:]
        if not past:
            checks.append(
                Check(
                    "null_rate",
                    "ok",
                    f"{_pct(rate)} NULL (first measurement)",
                    column=column,
                    value=rate,
                )
            )
            continue
        baseline = median(past)
        upper = min(baseline + increase, 1.0)
        if rate - baseline >= increase - 1e-12:
            what = "every value is NULL" if rate >= 1.0 else f"{_pct(rate)} NULL"
            reason = (
                f"{what}, up from {_pct(baseline)} usually: a column renamed or no longer "
                "filled upstream?"
            )
            status = "anomaly"
        else:
            reason = f"{_pct(rate)} NULL (usually {_pct(baseline)})"
            status = "ok"
        checks.append(
            Check(
                "null_rate",
                status,  # type: ignore[arg-type]
                reason,
                column=column,
                value=rate,
                expected=baseline,
                lower=0.0,
                upper=upper,
            )
        )
    return checks


def duplicates_check(duplicates: int, key: Sequence[str], history: Sequence[float]) -> Check:
    """Judge how many rows repeat a key another row already has.

    Any duplicate on a key is an anomaly unless the table has always had that many or more
    (then only an increase is).

    >>> duplicates_check(0, ["id"], []).status, duplicates_check(40, ["id"], [0, 0]).status
    ('ok', 'anomaly')
    """
    names = ", ".join(key)
    baseline = median(list(history)[-_BASELINE_POINTS:]) if history else 0.0
    if duplicates > baseline:
        usual = f" (usually {format_value(baseline)})" if baseline else ""
        return Check(
            "duplicates",
            "anomaly",
            f"{format_value(duplicates)} rows repeat a key ({names}) another row has{usual}: "
            "a day or a file loaded twice?",
            value=duplicates,
            expected=baseline,
            upper=baseline,
        )
    return Check(
        "duplicates",
        "ok",
        f"{format_value(duplicates)} duplicate keys ({names})",
        value=duplicates,
        expected=baseline,
        upper=baseline,
    )


def schema_checks(previous: Mapping[str, str] | None, current: Mapping[str, str]) -> list[Check]:
    """Schema drift since the last snapshot: added columns warn; removed columns and changed
    types are anomalies (whatever reads them breaks or silently changes).

    >>> [(c.status, c.column) for c in schema_checks({"a": "INT", "b": "INT"},
    ...                                              {"a": "VARCHAR", "c": "INT"})]
    [('anomaly', 'a'), ('anomaly', 'b'), ('warn', 'c')]
    """
    if previous is None:
        return []
    checks = []
    added = [c for c in current if c not in previous]
    removed = [c for c in previous if c not in current]
    for column in current:
        if column in previous and previous[column] != current[column]:
            checks.append(
                Check(
                    "schema",
                    "anomaly",
                    f"type changed from {previous[column]} to {current[column]}",
                    column=column,
                )
            )
    for column in removed:
        hint = ""
        twins = [a for a in added if current[a] == previous[column]]
        if len(removed) == 1 and len(twins) == 1:
            hint = f": renamed to {twins[0]}?"
        checks.append(
            Check("schema", "anomaly", f"column removed ({previous[column]}){hint}", column=column)
        )
    for column in added:
        checks.append(Check("schema", "warn", f"column added ({current[column]})", column=column))
    return checks


def tests_check(failed: Sequence[tuple[str, int | None]], total: int) -> Check | None:
    """The dbt tests on a model in the latest build.

    Args:
        failed: ``(test name, failing rows)`` of each failing test.
        total: how many tests ran on the model.

    Returns:
        The check, or ``None`` when no test ran on the model.
    """
    if total == 0:
        return None
    if not failed:
        return Check("tests", "ok", f"{counted(total, 'dbt test')} passed", value=0)
    names = ", ".join(
        f"{name} ({rows} failing row{'s' if rows != 1 else ''})" if rows is not None else name
        for name, rows in failed
    )
    return Check(
        "tests",
        "anomaly",
        f"{len(failed)} of {counted(total, 'dbt test')} failed: {names}",
        value=len(failed),
    )


def _pct(rate: float) -> str:
    return f"{rate * 100:.1f} %"


def _hours(hours: float) -> str:
    if hours < 1:
        return f"{max(hours * 60, 0):.0f} min"
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} days"
