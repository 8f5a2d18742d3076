"""Volume anomaly detection: is this day's row count unusual for this table?

:func:`detect` judges the last point of a daily series against the points before it and
returns a :class:`Verdict`. It is stateless — every call sees the whole history it needs —
so a monitor can call it once a day, a backfill can replay it, and a test can feed it a list.

The baseline is the earlier points of the last ``training_days`` days, minus holidays and
minus the dates in ``exclude`` (earlier alerts, declared incidents). The judged point is
never part of its own baseline: a baseline that contains the outlier it is judging widens its
own band and hides it (Elementary's default does this). Two models judge against it:

* :mod:`~stackyard.monitors.anomaly.steady` — log-ratio bands with weekly seasonality, noise
  per weekday, separate drop and spike thresholds and a sequential test over the last days
  for steps and slow drifts; for tables with steady volume;
* :mod:`~stackyard.monitors.anomaly.counts` — count bands (the share of empty days per
  weekday, negative-binomial quantiles); for tables with frequent empty days or a few rows a
  day, where ratios are meaningless;
* :func:`detect_level` (:mod:`~stackyard.monitors.anomaly.levels`) — additive bands for a
  column's daily mean or median, which may be zero or negative.

docs/observability.md has the long form and the benchmark.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, timedelta

from stackyard.monitors.anomaly import counts, spread, steady
from stackyard.monitors.anomaly.config import (
    SENSITIVITY_THRESHOLDS,
    AnomalyConfig,
    Direction,
    Status,
    Verdict,
)
from stackyard.monitors.anomaly.levels import detect_level
from stackyard.monitors.anomaly.stats import (
    as_date,
    format_value,
    median,
    validated,
    window_bounds,
)

__all__ = [
    "SENSITIVITY_THRESHOLDS",
    "AnomalyConfig",
    "Direction",
    "Status",
    "Verdict",
    "as_date",
    "days_read",
    "detect",
    "detect_level",
    "format_value",
    "median",
    "window_bounds",
]


def days_read(config: AnomalyConfig | None = None) -> int:
    """How many days before the judged day :func:`detect` reads: a caller that keeps the
    series (a monitor's metric store) must hand it at least this much, or the verdicts
    differ from the ones the detector was measured with.

    >>> days_read()
    182
    """
    cfg = config if config is not None else AnomalyConfig()
    return max(cfg.training_days, spread.TAIL_DAYS)


def detect(
    dates: Sequence[date],
    values: Sequence[float],
    *,
    holidays: Iterable[date] = (),
    exclude: Iterable[date] = (),
    config: AnomalyConfig | None = None,
) -> Verdict:
    """Judge the last point of a daily volume series against the points before it.

    Holidays are not judged: a holiday's verdict is ``"ok"`` with a reason saying so, because
    a business calendar's quiet days are expected, and a band wide enough to pass them would
    also pass real incidents. Holidays and excluded dates never enter the baseline.

    Args:
        dates: one date per point, ascending, no repeats (``datetime`` values are reduced to
            their date; ISO date strings and NumPy ``datetime64`` values are read too). Gaps
            are allowed. Any iterable: a list, a NumPy array, a data frame's column.
        values: the volume (row count) of each date; finite and non-negative.
        holidays: dates of the business calendar's holidays.
        exclude: dates to keep out of the baseline, such as days already alerted on or
            declared incidents.
        config: how to judge; ``AnomalyConfig()`` when omitted.

    Returns:
        The verdict on the last point.

    Raises:
        ValueError: the series is empty, the lengths differ, the dates are not strictly
            ascending, or a value is negative or not a finite number.

    >>> days = [date(2026, 3, 2) + timedelta(days=i) for i in range(29)]
    >>> detect(days, [1000.0 + 10 * (i % 3) for i in range(28)] + [0.0]).status
    'anomaly'
    """
    cfg = config if config is not None else AnomalyConfig()
    days, vals = validated(dates, values)
    day, value = days[-1], vals[-1]
    holiday_set = {as_date(d) for d in holidays}
    excluded = {as_date(d) for d in exclude}
    if day in holiday_set:
        return Verdict(
            status="ok",
            reason=f"{day} is a holiday: not judged, and kept out of later baselines",
            day=day,
            value=value,
        )

    # Only the training window matters; walking back from the end keeps long histories cheap.
    start = day - timedelta(days=cfg.training_days)
    first = len(days) - 1
    while first > 0 and days[first - 1] >= start:
        first -= 1
    window = list(zip(days[first:-1], vals[first:-1], strict=True))
    base = [(d, v) for d, v in window if d not in holiday_set and d not in excluded]
    if len(base) < cfg.min_history:
        return Verdict(
            status="insufficient_history",
            reason=(
                f"only {len(base)} usable day(s) of history in the last {cfg.training_days} "
                f"days (holidays and excluded days do not count); {cfg.min_history} are needed"
            ),
            day=day,
            value=value,
            baseline_size=len(base),
        )
    if counts.applies(base, cfg):
        recent = [(d, v) for d, v in window if d not in holiday_set]
        return counts.judge(day, value, base, cfg, recent)
    # A longer stretch measures how heavy the table's tails are (see spread.TAIL_DAYS).
    tail_start = day - timedelta(days=spread.TAIL_DAYS)
    first_tail = first
    while first_tail > 0 and days[first_tail - 1] >= tail_start:
        first_tail -= 1
    longer = [
        (d, v)
        for d, v in zip(days[first_tail:-1], vals[first_tail:-1], strict=True)
        if d not in holiday_set
    ]
    history = [(d, v) for d, v in longer if d not in excluded]
    # Monthly effects are learnt with the days alerted on: a month-end close that alerted
    # the first times it was seen is exactly the evidence that it is usual.
    return steady.judge(day, value, window, base, holiday_set, cfg, history, longer)
