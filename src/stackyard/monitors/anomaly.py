"""Volume anomaly detection: is today's row count unusual for this table?

:func:`detect` judges the last point of a daily series against the points before it and
returns a :class:`Verdict`. It is stateless — every call sees the whole history it needs —
so a monitor can call it once a day, a backfill can replay it, and a test can feed it a list.

The model, in the order :func:`detect` applies it (docs/observability.md has the long form):

1. **Baseline.** The earlier points of the last ``training_days`` days, minus holidays and
   minus the dates in ``exclude`` (earlier alerts, declared incidents). The judged point is
   never part of its own baseline: a baseline that contains the outlier it is judging widens
   its own band and hides it (Elementary's default does this).
2. **Weekly seasonality.** Each point is divided by the median of the week around it; the
   median of those ratios per weekday is that weekday's factor. Local medians make the
   factors indifferent to trend and to level shifts inside the training window.
3. **Scale.** Every baseline point is predicted the way the judged point will be (the median
   of the seven deseasonalised points before it, times its weekday's factor learnt without
   it); 1.4826 × the median absolute log-error of those predictions is the noise (a MAD, so
   a few bad days do not inflate it, and honest even with two weeks of history).
4. **Level.** The median of the last seven deseasonalised baseline points, so the baseline
   follows the recent level rather than a long average. When the last four days (excluded
   or not) all sit well away from that level on the same side, the table has moved: the level
   re-anchors to those four days, so a genuine step change stops alerting within a week even
   when every day of it was alerted on and excluded.
5. **Band and score.** expected = level × weekday factor; the band is expected ×
   exp(± threshold × scale), the score the log-ratio of value to expected in units of scale.
   A value at or near zero where volume was expected is always an anomaly (an outage),
   whatever the threshold, unless the baseline itself had near-empty days.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, model_validator

Status = Literal["ok", "anomaly", "insufficient_history"]
Direction = Literal["drop", "spike"]

#: Band half-width, in robust standard deviations, for each named sensitivity. Chosen with
#: bench/anomaly_detector.py: on its synthetic tables "medium" keeps alert precision near 0.95,
#: "high" near 0.90.
SENSITIVITY_THRESHOLDS: dict[str, float] = {"high": 3.5, "medium": 4.0, "low": 5.0}

# 1.4826 turns a median absolute deviation into a standard deviation for normal noise.
_MAD_TO_SIGMA = 1.4826
# A perfectly flat table would otherwise get a zero-width band and alert on a one-row change.
_MIN_SCALE = 0.02
# Seven points cover each weekday once, so a local median is not pulled by the weekly cycle.
_WINDOW = 7
# A prediction error counts toward the scale only when at least this many days precede it.
_MIN_PREDECESSORS = 4
# A level shift must hold this many consecutive days, and this far out, before it is trusted.
_SHIFT_DAYS = 4
_SHIFT_SIGMAS = 2.0
# Below this fraction of the expected value a day counts as empty (an outage, not a dip).
_NEAR_ZERO = 0.01
# log() needs a positive ratio; an empty day is scored as this ratio of expected.
_FLOOR_RATIO = 1e-6
# Too few points to measure the noise (heavy exclusions): assume a wide ±25 % per sigma.
_UNKNOWN_SCALE = 0.25
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class AnomalyConfig(BaseModel):
    """How one table's volume is judged; the defaults work without tuning.

    Meant to sit under a table in stackyard.yml, so every field has a user-facing description.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    sensitivity: Literal["low", "medium", "high"] | PositiveFloat = Field(
        "medium",
        description=(
            "How readily to alert: 'high' alerts on smaller deviations, 'low' only on large "
            "ones. A number sets the band half-width in robust standard deviations directly "
            "(medium = 4.0; larger means fewer alerts)."
        ),
    )
    direction: Literal["both", "drop", "spike"] = Field(
        "both",
        description="Alert on drops, spikes or both ('drop' ignores days with too many rows).",
    )
    seasonality: Literal["weekly", "none"] = Field(
        "weekly",
        description="'weekly' learns a usual level per weekday; 'none' treats all days alike.",
    )
    min_history: int = Field(
        14,
        ge=14,
        description=(
            "Fewest usable earlier days (not holidays, not excluded) needed to judge a day; "
            "with fewer, the verdict is 'insufficient_history'."
        ),
    )
    training_days: int = Field(
        56,
        ge=14,
        le=3660,
        description="How many days back the baseline looks (8 weeks by default).",
    )

    @model_validator(mode="after")
    def _history_fits_training_window(self) -> AnomalyConfig:
        if self.min_history > self.training_days:
            raise ValueError(
                f"min_history ({self.min_history}) is larger than training_days "
                f"({self.training_days}): no day could ever be judged; lower min_history "
                "or raise training_days"
            )
        return self

    @property
    def threshold(self) -> float:
        """The band half-width in robust standard deviations this sensitivity stands for."""
        if isinstance(self.sensitivity, str):
            return SENSITIVITY_THRESHOLDS[self.sensitivity]
        return float(self.sensitivity)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The judgement of one day's volume.

    Attributes:
        status: ``"ok"``, ``"anomaly"`` or ``"insufficient_history"``.
        reason: one sentence a person can act on, e.g. "0 rows is below the expected band
            950–1,120 (usual for a Tuesday): the table looks empty, an outage".
        day: the judged date.
        value: the judged value.
        expected: the value the baseline predicts for this day, or ``None`` without a baseline.
        lower: lower edge of the band of normal values, or ``None``.
        upper: upper edge of the band of normal values, or ``None``.
        score: log-ratio of value to expected in robust standard deviations (negative for a
            drop); ``None`` without a baseline. Beyond ±threshold is outside the band.
        direction: ``"drop"`` or ``"spike"`` when the value is outside the band, else ``None``.
        baseline_size: how many earlier days the baseline was built from.
        reanchored: ``True`` when the last days were taken as a new level (a step change).
    """

    status: Status
    reason: str
    day: date
    value: float
    expected: float | None = None
    lower: float | None = None
    upper: float | None = None
    score: float | None = None
    direction: Direction | None = None
    baseline_size: int = 0
    reanchored: bool = False

    @property
    def is_anomaly(self) -> bool:
        """Whether this verdict should raise an alert."""
        return self.status == "anomaly"


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
            their date). Gaps are allowed.
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
    """
    cfg = config if config is not None else AnomalyConfig()
    days, vals = _validated(dates, values)
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
    window = [(d, v) for d, v in zip(days[first:-1], vals[first:-1], strict=True)]
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

    weekly = cfg.seasonality == "weekly"
    factors, loo_factors = _weekday_factors(base) if weekly else ([1.0] * 7, [1.0] * len(base))
    # Weekdays that are normally empty carry no level information; they are judged below.
    ys = [v / factors[d.weekday()] if factors[d.weekday()] >= _NEAR_ZERO else None for d, v in base]
    scale = _prediction_scale(base, ys, loo_factors)
    level = median([y for y in ys if y is not None][-_WINDOW:])

    # Excluded days count here on purpose: after a step change every day may have been
    # alerted on and excluded, and the baseline must still learn the new level.
    recent = [
        v / factors[d.weekday()]
        for d, v in window
        if d not in holiday_set
        and d >= day - timedelta(days=_WINDOW)
        and factors[d.weekday()] >= _NEAR_ZERO
    ][-_SHIFT_DAYS:]
    reanchored = _is_level_shift(recent, level, scale)
    sigma = scale
    if reanchored:
        level = median(recent)
        # A median of four days is a noisier level than the median of seven the scale was
        # measured with (π/2n: the asymptotic variance of a sample median over the noise's).
        sigma *= math.sqrt((1 + math.pi / (2 * _SHIFT_DAYS)) / (1 + math.pi / (2 * _WINDOW)))

    k = cfg.threshold
    factor = factors[day.weekday()]
    expected = level * factor
    usual = f"usual for a {_WEEKDAYS[day.weekday()]}" if weekly else "usual for this table"

    if factor < _NEAR_ZERO:
        # A weekday that is normally empty: a log-ratio is meaningless against ~0, so the
        # band is the table's usual noise measured in absolute rows.
        lower = 0.0
        upper = expected + level * (math.exp(k * sigma) - 1.0)
        score = (value - expected) / max(level * sigma, 1e-12)
    else:
        lower = expected * math.exp(-k * sigma)
        upper = expected * math.exp(k * sigma)
        score = math.log(max(value / expected, _FLOOR_RATIO)) / sigma if expected > 0 else 0.0

    # An empty day is an outage unless the table has had empty days that were not excluded
    # (on weekdays that normally carry volume): then emptiness is part of its normal life.
    empty_days_seen = any(
        v <= _NEAR_ZERO * level * factors[d.weekday()]
        for d, v in base
        if factors[d.weekday()] >= _NEAR_ZERO
    )
    outage = expected > 0 and factor >= _NEAR_ZERO and value <= _NEAR_ZERO * expected
    outage = outage and not empty_days_seen
    drop = value < lower or outage
    spike = value > upper
    band = f"{format_value(lower)}–{format_value(upper)}"
    shifted = "; the baseline re-anchored to the last days' new level" if reanchored else ""
    alerting_on = {"both": ("drop", "spike"), "drop": ("drop",), "spike": ("spike",)}
    wanted = alerting_on[cfg.direction]

    direction: Direction | None = "drop" if drop else "spike" if spike else None
    if direction is None:
        status: Status = "ok"
        reason = f"{format_value(value)} rows is within the expected band {band} ({usual})"
    elif direction not in wanted:
        status = "ok"
        side = "below" if direction == "drop" else "above"
        reason = (
            f"{format_value(value)} rows is {side} the expected band {band} ({usual}), "
            f"but this monitor only alerts on {cfg.direction}s"
        )
    else:
        status = "anomaly"
        side = "below" if direction == "drop" else "above"
        reason = f"{format_value(value)} rows is {side} the expected band {band} ({usual})"
        if outage:
            reason += ": the table looks empty, an outage"
    return Verdict(
        status=status,
        reason=reason + shifted,
        day=day,
        value=value,
        expected=expected,
        lower=lower,
        upper=upper,
        score=score,
        direction=direction,
        baseline_size=len(base),
        reanchored=reanchored,
    )


# --------------------------------------------------------------------------- helpers


def as_date(value: date) -> date:
    """Reduce a ``datetime`` to its date; leave a ``date`` alone.

    Args:
        value: a date or datetime.

    Returns:
        The calendar date.

    Raises:
        ValueError: ``value`` is neither a date nor a datetime.

    >>> as_date(datetime(2024, 3, 5, 17, 30))
    datetime.date(2024, 3, 5)
    """
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    raise ValueError(f"expected a date or datetime, got {value!r} ({type(value).__name__})")


def median(values: Sequence[float]) -> float:
    """The median of a non-empty sequence (the mean of the two middle values when even).

    Faster than :func:`statistics.median` on the short lists the detector uses.

    Args:
        values: at least one number.

    Returns:
        The median.

    >>> median([3.0, 1.0, 2.0]), median([4.0, 1.0, 2.0, 3.0])
    (2.0, 2.5)
    """
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return float(ordered[mid])
    return (ordered[mid - 1] + ordered[mid]) / 2.0


def window_bounds(index: int, size: int, width: int) -> tuple[int, int]:
    """The slice of ``width`` points centred on ``index``, slid inward at the edges.

    Sliding (rather than clipping) keeps every window the same width, so near the ends of the
    series a local median still covers each weekday once.

    Args:
        index: position of the point.
        size: length of the series.
        width: points per window.

    Returns:
        ``(start, stop)`` for slicing.

    >>> window_bounds(0, 10, 7), window_bounds(5, 10, 7), window_bounds(9, 10, 7)
    ((0, 7), (2, 9), (3, 10))
    """
    start = min(max(index - width // 2, 0), max(size - width, 0))
    return start, min(start + width, size)


def format_value(value: float) -> str:
    """Format a volume for a sentence: thousands separators, decimals only for small values.

    Args:
        value: the number.

    Returns:
        A short human-readable string.

    >>> format_value(1234.6), format_value(0), format_value(2.345)
    ('1,235', '0', '2.35')
    """
    if abs(value) >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:,.3g}"


def _validated(dates: Sequence[date], values: Sequence[float]) -> tuple[list[date], list[float]]:
    if len(dates) != len(values):
        raise ValueError(
            f"dates and values must have the same length, got {len(dates)} dates and "
            f"{len(values)} values"
        )
    if not dates:
        raise ValueError("the series is empty: give at least the day to judge")
    days = [as_date(d) for d in dates]
    for i in range(1, len(days)):
        if days[i] <= days[i - 1]:
            raise ValueError(
                f"dates must be strictly ascending (one value per day): {days[i]} at position "
                f"{i} follows {days[i - 1]}; sort the series and sum rows of the same day"
            )
    vals: list[float] = []
    for d, v in zip(days, values, strict=True):
        number = float(v)
        if not math.isfinite(number) or number < 0:
            raise ValueError(
                f"the value for {d} is {v!r}; volumes must be finite, non-negative numbers"
            )
        vals.append(number)
    return days, vals


def _weekday_factors(points: Sequence[tuple[date, float]]) -> tuple[list[float], list[float]]:
    # Ratio to the local weekly median, not to a global one, so that a trend or a level
    # shift inside the training window does not leak into the weekday pattern. Besides each
    # weekday's factor, returns for every point the factor its weekday would have without it
    # (0.0 when it is its weekday's only point), for honest prediction errors.
    vals = [v for _, v in points]
    ratios: list[list[float]] = [[] for _ in range(7)]
    own: list[float | None] = []
    for i, (d, v) in enumerate(points):
        start, stop = window_bounds(i, len(vals), _WINDOW)
        local = median(vals[start:stop])
        ratio = v / local if local > 0 else None
        own.append(ratio)
        if ratio is not None:
            ratios[d.weekday()].append(ratio)
    factors = [median(r) if r else 1.0 for r in ratios]
    leave_one_out = []
    for (d, _), ratio in zip(points, own, strict=True):
        others = list(ratios[d.weekday()])
        if ratio is not None:
            others.remove(ratio)
        leave_one_out.append(median(others) if others else 0.0)
    return factors, leave_one_out


def _prediction_scale(
    points: Sequence[tuple[date, float]],
    ys: Sequence[float | None],
    loo_factors: Sequence[float],
) -> float:
    # The noise is measured the way the judged day will be predicted: each baseline point
    # against the median of the seven deseasonalised points before it, times its weekday's
    # factor learnt without it. In-sample residuals would understate the error badly with
    # two or three weeks of history, when weekday factors rest on two or three points each.
    residuals = []
    previous: list[float] = []
    for (_, v), y, factor in zip(points, ys, loo_factors, strict=True):
        if y is None:
            continue
        if len(previous) >= _MIN_PREDECESSORS and factor >= _NEAR_ZERO:
            predicted = median(previous[-_WINDOW:]) * factor
            if predicted > 0:
                residuals.append(abs(math.log(max(v / predicted, _FLOOR_RATIO))))
        previous.append(y)
    if len(residuals) < _MIN_PREDECESSORS:
        return _UNKNOWN_SCALE
    return max(_MAD_TO_SIGMA * median(residuals), _MIN_SCALE)


def _is_level_shift(recent: Sequence[float], level: float, scale: float) -> bool:
    # A shift is believed only when it has held for several days, consistently on one side:
    # one or two bad days (an incident) never move the level, and an empty table (an outage
    # that lasts) is never accepted as the new normal.
    if len(recent) < _SHIFT_DAYS or level <= 0 or median(recent) <= _NEAR_ZERO * level:
        return False
    deviations = [math.log(max(y / level, _FLOOR_RATIO)) for y in recent]
    threshold = _SHIFT_SIGMAS * scale
    return all(dev > threshold for dev in deviations) or all(dev < -threshold for dev in deviations)
