"""The level model, for a column's daily mean or median: values that may be negative or
zero, where ratios mean nothing, judged in their own units.

The baseline (holidays and excluded days out, the judged day never in) gives a centre and a
spread. Levels drift (the mean of an id grows as new customers arrive, prices creep up), so a
robust trend — the Theil–Sen slope, the median of the slopes between every two baseline
days — is taken out first; a level that does not drift has a slope near zero and is judged
as before. The centre is the median of the detrended points, per weekday when weekly
seasonality is on and the weekday has enough points, else for the whole baseline, carried
forward along the trend to the judged day. The spread is 1.4826 × the median absolute
deviation (robust to the odd bad day) of the weekday's points, but never below that of the
whole baseline around its weekday centres: a handful of same-weekday points can sit close
together by chance, and a band drawn from them alone alerts on ordinary days. It is floored
at a small share of the centre so a column that never moves does not alert on rounding.
The band is centre ± threshold × spread.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, timedelta

from stackyard.monitors.anomaly.config import AnomalyConfig, Direction, Status, Verdict
from stackyard.monitors.anomaly.stats import as_date, median, validated

_MAD_TO_SIGMA = 1.4826
# A weekday gets its own centre and spread with at least this many points.
_WEEKDAY_POINTS = 5
# The spread is at least this share of the centre's size (and never zero).
_MIN_RELATIVE_SPREAD = 0.01
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def detect_level(
    dates: Sequence[date],
    values: Sequence[float],
    *,
    holidays: Iterable[date] = (),
    exclude: Iterable[date] = (),
    config: AnomalyConfig | None = None,
    what: str = "the value",
) -> Verdict:
    """Judge the last point of a daily series of levels (a mean, a median) against the
    points before it.

    Args:
        dates: one date per point, strictly ascending.
        values: the level of each date; finite (negative allowed).
        holidays: days not judged and kept out of the baseline.
        exclude: days kept out of the baseline.
        config: how to judge; ``AnomalyConfig()`` when omitted.
        what: what a value is, for the reason ("the mean of amount").

    Returns:
        The verdict on the last point (``model="level"``).

    Raises:
        ValueError: the series is empty, the lengths differ or the dates are not ascending.

    >>> days = [date(2026, 3, 2) + timedelta(days=i) for i in range(22)]
    >>> detect_level(days, [10.0 + (i % 3) * 0.1 for i in range(21)] + [-4.0]).status
    'anomaly'
    """
    cfg = config if config is not None else AnomalyConfig()
    # validated() refuses negative volumes; a level may be negative, so shift for the check.
    given = list(values)
    try:
        lowest = min((float(v) for v in given), default=0.0)
    except (TypeError, ValueError):
        lowest = 0.0  # validated() names the value that is not a number
    days, shifted = validated(dates, [_minus(v, min(lowest, 0.0)) for v in given])
    vals = [v + min(lowest, 0.0) for v in shifted]
    day, value = days[-1], vals[-1]
    holiday_set = {as_date(d) for d in holidays}
    if day in holiday_set:
        return Verdict("ok", f"{day} is a holiday: not judged", day, value, model="level")
    excluded = {as_date(d) for d in exclude} | holiday_set
    start = day - timedelta(days=cfg.training_days)
    base = [
        (d, v)
        for d, v in zip(days[:-1], vals[:-1], strict=True)
        if d >= start and d not in excluded
    ]
    if len(base) < cfg.min_history:
        return Verdict(
            "insufficient_history",
            f"only {len(base)} usable day(s) of history; {cfg.min_history} are needed",
            day,
            value,
            baseline_size=len(base),
            model="level",
        )
    slope = _theil_sen(base)
    # Each baseline point moved along the trend to the judged day.
    moved = [(d, v + slope * (day - d).days) for d, v in base]
    same_day = [v for d, v in moved if d.weekday() == day.weekday()]
    weekly = cfg.seasonality == "weekly" and len(same_day) >= _WEEKDAY_POINTS
    points = same_day if weekly else [v for _, v in moved]
    centre = median(points)
    spread = _MAD_TO_SIGMA * median([abs(v - centre) for v in points])
    spread = max(spread, _pooled_spread(moved, weekly))
    spread = max(spread, _MIN_RELATIVE_SPREAD * abs(centre), 1e-9)
    k = cfg.threshold
    lower, upper = centre - k * spread, centre + k * spread
    score = (value - centre) / spread
    direction: Direction | None = "drop" if value < lower else "spike" if value > upper else None
    wanted = {"both": ("drop", "spike"), "drop": ("drop",), "spike": ("spike",)}[cfg.direction]
    status: Status = "anomaly" if direction in wanted else "ok"
    usual = f"usual for a {_WEEKDAYS[day.weekday()]}" if weekly else "usual for this column"
    band = f"{_fmt(lower)} to {_fmt(upper)}"
    if direction is None:
        reason = f"{what} is {_fmt(value)}, within {band} ({usual})"
    else:
        side = "below" if direction == "drop" else "above"
        reason = f"{what} is {_fmt(value)}, {side} {band} ({usual})"
        if status == "ok":
            reason += f", but this monitor only alerts on {cfg.direction}s"
    return Verdict(
        status=status,
        reason=reason,
        day=day,
        value=value,
        expected=centre,
        lower=lower,
        upper=upper,
        score=score,
        direction=direction,
        baseline_size=len(base),
        model="level",
    )


def _theil_sen(points: Sequence[tuple[date, float]]) -> float:
    """The median of the slopes (per day) between every two points: a trend that a few bad
    days cannot tilt (up to about three in ten).

    >>> start = date(2026, 3, 2)
    >>> _theil_sen([(start + timedelta(days=i), 5.0 + 2 * i) for i in range(10)])
    2.0
    >>> _theil_sen([(start + timedelta(days=i), 7.0) for i in range(10)])
    0.0
    """
    slopes = [
        (b - a) / (e - d).days
        for i, (d, a) in enumerate(points)
        for e, b in points[i + 1 :]
        if e != d
    ]
    return median(slopes) if slopes else 0.0


def _pooled_spread(points: Sequence[tuple[date, float]], weekly: bool) -> float:
    """1.4826 × the median absolute deviation of every point from its own weekday's median
    (from the baseline's median when not weekly)."""
    groups: dict[int, list[float]] = {}
    for d, v in points:
        groups.setdefault(d.weekday() if weekly else 0, []).append(v)
    deviations = [abs(v - median(vs)) for vs in groups.values() for v in vs]
    return _MAD_TO_SIGMA * median(deviations) if deviations else 0.0


def _fmt(value: float) -> str:
    """Four significant digits, thousands separated.

    >>> _fmt(1234.5678), _fmt(-0.012345)
    ('1,235', '-0.01235')
    """
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def _minus(value: object, shift: float) -> object:
    """``value - shift`` for a number; anything else as it is, for validated() to refuse."""
    try:
        return float(value) - shift  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return value
