"""How noisy a table is: weekday factors, the one-day noise per weekday, heavy tails and
the floor a table's own rare days set (the log-ratio model's measurements, see
:mod:`~stackyard.monitors.anomaly.steady`)."""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections.abc import Sequence
from datetime import date
from typing import NamedTuple

from stackyard.monitors.anomaly.stats import median, quantile, window_bounds

# 1.4826 turns a median absolute deviation into a standard deviation for normal noise.
MAD_TO_SIGMA = 1.4826
# A perfectly flat table would otherwise get a zero-width band and alert on a one-row change.
MIN_SCALE = 0.02
# Seven points cover each weekday once, so a local median is not pulled by the weekly cycle.
WINDOW = 7
# A table whose days are independent is better predicted by a longer level: the median of
# seven carries a fifth of a day's noise variance into every prediction (pi/2n), of fourteen
# half that. A table that wanders for days needs the week's level, which follows it. The
# longer level is taken when, on the same baseline points (at least this many), its median
# absolute error is clearly below the week's (the gain on independent days is about 5 %).
LONG_WINDOW = 14
_LONG_MIN_PAIRS = 30
_LONG_GAIN = 0.97
# A prediction error counts toward the scale only when at least this many days precede it.
_MIN_PREDECESSORS = 4
# Below this fraction of the expected value a day counts as empty (an outage, not a dip).
NEAR_ZERO = 0.01
# log() needs a positive ratio; an empty day is scored as this ratio of expected.
FLOOR_RATIO = 1e-6
# Too few points to measure the noise (heavy exclusions): assume a wide ±25 % per sigma.
_UNKNOWN_SCALE = 0.25
# A weekday's own noise is used only when the weekdays' noises differ by more than their
# MADs' own sampling error says (:func:`_weekdays_alike`): on a table whose weekdays are
# alike, seven MADs read on a few dozen errors each gave one weekday a band a sixth too
# narrow now and then, and most false one-day drops on such tables came from those. A
# weekday's own noise needs this many errors; it is shrunk toward the table's noise as if
# the table's were worth this many more. Strongly: a weekday's MAD read on a few dozen
# errors is a fifth off either way, and a steady weekday taken for a noisy one gets a band
# wide enough to pass the incidents it is there for; a weekday really twice as noisy as the
# rest still reads about 1.6 times.
_WEEKDAY_MIN_ERRORS = 4
_WEEKDAY_PRIOR = 30
# The noise is at least this share of the 90th-percentile error read as a normal quantile:
# MAD alone is blind to heavy tails, and heavy-tailed tables would alert on their usual days.
# The one-day errors are absolute values, so their 90th percentile is a normal's 95th
# (1.645 standard deviations): read as its 90th (1.2816), it made every normal table's noise
# 15 % wider than its MAD. The sequential test's spread keeps the stricter reading, which
# its limit was chosen with.
_TAIL_QUANTILE = 0.9
_ERROR_TAIL_Z = 1.645
_TAIL_Z = 1.2816
_TAIL_WEIGHT = 0.9
_TAIL_CAP = 2.0
# Heavy tails. The ratio of the 95th-percentile prediction error to the median one is 2.91
# for normal noise and grows with the tails (about 3.4, 3.5, 3.75 and 4.2 for Student-t with
# 6, 5, 4 and 3 degrees of freedom). The error a normal table reaches once in a thousand days
# is then reached about exp(1.03 × (ratio − 2.91)) times further out, so a table whose errors
# show such tails gets its one-day band widened by that much. The ratio is measured over up
# to half a year of history (a few dozen errors would be too noisy), only its excess beyond
# a margin counts, and the widening is capped.
TAIL_DAYS = 182
TAIL_MIN_ERRORS = 40
_TAIL_RATIO_QUANTILE = 0.95
_TAIL_RATIO_NORMAL = 2.91
# The margin: a 95th percentile read on a side's forty-odd errors is itself about 0.4 off
# for normal noise, and a smaller margin widened normal tables' bands at random.
_TAIL_RATIO_MARGIN = 0.5
_TAIL_GROWTH = 1.03
_TAIL_WIDEN_CAP = 3.0
# The one-day band is at least this margin times this quantile of the table's absolute
# prediction errors over the last half year (at medium sensitivity; scaled with it; a fifth
# less on a table with calm tails, see steady._CALM_FLOOR).
_FLOOR_QUANTILE = 0.98
_FLOOR_MARGIN = 1.6
# Calm tails. The ratio of the 98th-percentile absolute error to the median one is 3.45 for
# normal noise; over half a year of a normal table's errors (a few incidents among them) it
# read 3.4-4.5 on the tuning seeds, and on Student-t tables with 3-4 degrees of freedom
# 4.4-7. A table reading at most the first value below is calm (1.0), at least the second
# not at all (0.0), linear between (:func:`calm`). Of the two pairs tried (4.0-5.0 and
# 3.6-4.4, with slightly different shares) the results were within noise of each other.
# Read from 45 errors on (it was 90: with 45 to 60 the 98th percentile is about the largest
# error, and a Student-t table with so little history reads calm now and then; but at 90 a
# normal table stayed "not calm" for its first three months, and on the generator written
# from the replay most incidents fell in them, behind bands 4.6 noise units wide).
_CALM_RATIO = 3.6
_UNCALM_RATIO = 4.4
_CALM_MIN_ERRORS = 45


def weekday_factors(points: Sequence[tuple[date, float]]) -> tuple[list[float], list[float]]:
    """Each weekday's usual share of the local weekly level, and per point its weekday's
    factor learnt without that point (0.0 when it is its weekday's only point).

    The ratio is to the local weekly median, not to a global one, so that a trend or a level
    shift inside the training window does not leak into the weekday pattern.
    """
    vals = [v for _, v in points]
    weekdays = [d.weekday() for d, _ in points]
    size = len(vals)
    ratios: list[list[float]] = [[] for _ in range(7)]
    own: list[float | None] = []
    # The centred window slides one point at a time (window_bounds), so it is kept sorted as
    # it goes (bisect, not a sort per point: this runs over half a year of points).
    start, stop = window_bounds(0, size, WINDOW)
    week = sorted(vals[start:stop])
    full = len(week) == WINDOW
    last_start = max(size - WINDOW, 0)
    for i, v in enumerate(vals):
        # window_bounds(i, size, WINDOW), inline: its call overhead doubled this loop's time.
        if min(max(i - WINDOW // 2, 0), last_start) != start:
            del week[bisect_left(week, vals[start])]
            insort(week, vals[stop])
            start += 1
            stop += 1
        local = week[WINDOW // 2] if full else median(week)
        ratio = v / local if local > 0 else None
        own.append(ratio)
        if ratio is not None:
            ratios[weekdays[i]].append(ratio)
    factors = [median(r) if r else 1.0 for r in ratios]
    ordered = [sorted(r) for r in ratios]
    leave_one_out = [
        _median_without(ordered[wd], ratio) for wd, ratio in zip(weekdays, own, strict=True)
    ]
    return factors, leave_one_out


def _median_without(ordered: list[float], value: float | None) -> float:
    """The median of ``ordered`` (sorted) with one occurrence of ``value`` left out (none
    when ``value`` is ``None``); 0.0 when nothing is left. Read by index, without a copy.

    >>> _median_without([1.0, 2.0, 3.0, 4.0], 2.0), _median_without([1.0, 2.0], None)
    (3.0, 1.5)
    """
    if value is None:
        return median(ordered) if ordered else 0.0
    n = len(ordered) - 1
    if n <= 0:
        return 0.0
    gone = bisect_left(ordered, value)
    # ordered[i] with the value left out is ordered[i] before it and ordered[i + 1] from it.
    mid = n // 2
    if n % 2:
        return ordered[mid] if mid < gone else ordered[mid + 1]
    low = ordered[mid - 1] if mid - 1 < gone else ordered[mid]
    high = ordered[mid] if mid < gone else ordered[mid + 1]
    return (low + high) / 2.0


class Noise(NamedTuple):
    """What :func:`noise` measures.

    Attributes:
        scale: the table's noise in log units (a robust standard deviation).
        by_weekday: each weekday's noise, shrunk toward ``scale``.
        errors: the absolute prediction errors it was measured on, sorted.
        spread_out: the same errors each divided by its weekday's noise relative to the
            table's, sorted.
        sides: ``errors`` and ``spread_out`` of the days below their prediction (drops) and
            of those above it (spikes), each sorted: a table's tails need not be alike on
            both sides (bursts are all on the upper one).
        window: how many deseasonalised points the level is the median of: :data:`WINDOW`,
            or :data:`LONG_WINDOW` where that predicted the baseline clearly better.
    """

    scale: float
    by_weekday: list[float]
    errors: list[float]
    spread_out: list[float]
    sides: dict[str, tuple[list[float], list[float]]]
    window: int = WINDOW


def noise(
    points: Sequence[tuple[date, float]],
    ys: Sequence[float | None],
    loo_factors: Sequence[float],
) -> Noise:
    """The table's noise and each weekday's, in log units (robust standard deviations), and
    the prediction errors they were measured on (see :class:`Noise`).

    The noise is measured the way the judged day will be predicted: each baseline point
    against the median of the seven (or :data:`LONG_WINDOW`, see :attr:`Noise.window`)
    deseasonalised points before it, times its weekday's factor learnt without it. In-sample
    residuals would understate the error badly with two or three weeks of history, when
    weekday factors rest on two or three points each.
    """
    errors, below, window = _prediction_errors(points, ys, loo_factors)
    every, mad, scale = _scale(errors)
    if mad is None:
        return Noise(scale, [scale] * 7, every, every, {}, window)
    by_weekday = []
    alike = _weekdays_alike(errors, scale)
    for per_day in errors:
        if alike or len(per_day) < _WEEKDAY_MIN_ERRORS:
            by_weekday.append(scale)
            continue
        own = MAD_TO_SIGMA * median(per_day)
        n = len(per_day)
        shrunk = math.sqrt((n * own**2 + _WEEKDAY_PRIOR * scale**2) / (n + _WEEKDAY_PRIOR))
        by_weekday.append(max(shrunk, MIN_SCALE))
    spread_out: list[float] = []
    drops: tuple[list[float], list[float]] = ([], [])
    spikes: tuple[list[float], list[float]] = ([], [])
    for wd, per_day in enumerate(errors):
        weekday_noise = by_weekday[wd]
        for e, low in zip(per_day, below[wd], strict=True):
            evened = e * scale / weekday_noise
            spread_out.append(evened)
            side = drops if low else spikes
            side[0].append(e)
            side[1].append(evened)
    spread_out.sort()
    for side_lists in (drops, spikes):
        side_lists[0].sort()
        side_lists[1].sort()
    return Noise(scale, by_weekday, every, spread_out, {"drop": drops, "spike": spikes}, window)


def noise_scale(
    points: Sequence[tuple[date, float]],
    ys: Sequence[float | None],
    loo_factors: Sequence[float],
) -> float:
    """:attr:`Noise.scale` alone, as :func:`noise` measures it (half its work)."""
    errors, _, _ = _prediction_errors(points, ys, loo_factors)
    return _scale(errors)[2]


def _prediction_errors(
    points: Sequence[tuple[date, float]],
    ys: Sequence[float | None],
    loo_factors: Sequence[float],
) -> tuple[list[list[float]], list[list[bool]], int]:
    """Each weekday's absolute prediction errors and whether each was a drop, and the level's
    window (see :func:`noise`)."""
    previous: list[float] = []
    # The last seven and fourteen points kept sorted as they slide (bisect, not a sort per
    # point: this loop runs over half a year of points twice per verdict).
    week: list[float] = []
    fortnight: list[float] = []
    half = LONG_WINDOW // 2
    log = math.log
    # Each point's error under the week's level and under the longer one (see LONG_WINDOW).
    # An empty day is no measure of noise: it is infinitely far in logs, and one of them
    # would set a table's rare-day floor for half a year. Empty days are judged apart.
    short: list[tuple[int, float]] = []
    longer: list[float | None] = []
    seen = 0
    for (d, v), y, factor in zip(points, ys, loo_factors, strict=True):
        if y is None or v <= 0:
            continue
        if seen >= _MIN_PREDECESSORS and factor >= NEAR_ZERO:
            middle = week[WINDOW // 2] if seen >= WINDOW else median(week)
            predicted = middle * factor
            if predicted > 0:
                short.append((d.weekday(), log(max(v / predicted, FLOOR_RATIO))))
                alt = None
                if seen >= LONG_WINDOW:
                    long_predicted = (fortnight[half - 1] + fortnight[half]) / 2.0 * factor
                    if long_predicted > 0:
                        alt = log(max(v / long_predicted, FLOOR_RATIO))
                longer.append(alt)
        previous.append(y)
        seen += 1
        insort(week, y)
        if seen > WINDOW:
            del week[bisect_left(week, previous[-WINDOW - 1])]
        insort(fortnight, y)
        if seen > LONG_WINDOW:
            del fortnight[bisect_left(fortnight, previous[-LONG_WINDOW - 1])]
    window = WINDOW
    pairs = [(abs(a), abs(b)) for (_, a), b in zip(short, longer, strict=True) if b is not None]
    if len(pairs) >= _LONG_MIN_PAIRS:
        week_error = median([a for a, _ in pairs])
        if median([b for _, b in pairs]) < _LONG_GAIN * week_error:
            window = LONG_WINDOW
    errors: list[list[float]] = [[] for _ in range(7)]
    below: list[list[bool]] = [[] for _ in range(7)]
    for (wd, error), alt in zip(short, longer, strict=True):
        if window == LONG_WINDOW and alt is not None:
            error = alt
        errors[wd].append(abs(error))
        below[wd].append(error < 0)
    return errors, below, window


def _scale(errors: list[list[float]]) -> tuple[list[float], float | None, float]:
    """All errors sorted, their MAD read as a standard deviation (``None`` with too few
    errors) and the table's noise (see :func:`noise`)."""
    every = sorted(e for per_day in errors for e in per_day)
    if len(every) < _MIN_PREDECESSORS:
        return every, None, _UNKNOWN_SCALE
    mad = MAD_TO_SIGMA * median(every)
    # Tails are read after each weekday's own spread is taken out: one noisy weekday (a quiet
    # Sunday) is that weekday's noise, not heavy tails on every day.
    wider = [
        max(MAD_TO_SIGMA * median(per_day) / mad, 1.0)
        if len(per_day) >= _WEEKDAY_MIN_ERRORS and mad > 0
        else 1.0
        for per_day in errors
    ]
    evened = sorted(e / wider[wd] for wd, per_day in enumerate(errors) for e in per_day)
    tail = quantile(evened, _TAIL_QUANTILE) / _ERROR_TAIL_Z
    # Capped: a baseline that holds a broken week (more than a tenth of its days) must not
    # widen the band a hundredfold, only as far as heavy tails plausibly do.
    return every, mad, max(mad, min(_TAIL_WEIGHT * tail, _TAIL_CAP * mad), MIN_SCALE)


def tail_widening(
    errors: Sequence[float], scale: float, side: Sequence[float] | None = None
) -> float:
    """How much wider than ``scale`` a one-day band must be for the tails ``errors`` (sorted
    absolute prediction errors) show; 1.0 for normal tails or too few errors.

    With ``side`` (the sorted absolute errors of one side only, when there are at least
    :data:`TAIL_MIN_ERRORS` of them), the tail is read on that side against the median of
    all errors: a bursty table is heavy-tailed upward, not downward.

    >>> tail_widening([0.01 * i for i in range(1, 101)], 0.05)
    1.0
    """
    if len(errors) < TAIL_MIN_ERRORS:
        return 1.0
    mid = median(errors)
    if mid <= 0:
        return 1.0
    tail = side if side is not None and len(side) >= TAIL_MIN_ERRORS else errors
    ratio = quantile(tail, _TAIL_RATIO_QUANTILE) / mid
    excess = ratio - _TAIL_RATIO_NORMAL - _TAIL_RATIO_MARGIN
    if excess <= 0:
        return 1.0
    # Relative to the scale already chosen, which may carry part of the tail.
    wanted = MAD_TO_SIGMA * mid * math.exp(_TAIL_GROWTH * excess)
    return min(max(wanted / scale, 1.0), _TAIL_WIDEN_CAP)


def robust_spread(deviations: list[float]) -> float:
    """A tail-aware spread of absolute deviations (sorted in place): their MAD, raised
    toward their 90th percentile read as a normal quantile, at most twice the MAD.

    The same rule as the one-day noise: a MAD alone is blind to a table whose runs of days
    wander now and then, and the sequential test would alert on each.

    >>> round(robust_spread([0.01] * 80 + [0.2] * 20), 4)
    0.0297
    """
    deviations.sort()
    mad = MAD_TO_SIGMA * median(deviations)
    tail = quantile(deviations, _TAIL_QUANTILE) / _TAIL_Z
    return max(mad, min(_TAIL_WEIGHT * tail, _TAIL_CAP * mad), MIN_SCALE)


def calm(errors: Sequence[float]) -> float:
    """How sure the table's errors (sorted absolute prediction errors over up to half a year)
    are to have normal tails: 1.0 for clearly normal ones, 0.0 for heavy ones or too few
    errors to tell, linear between.

    A calm table's rare days are as rare as its noise says, so its bands can sit closer to
    that noise; a heavy-tailed one keeps the wider bands its bursts need.

    >>> calm([0.01 * i for i in range(1, 101)]), calm([0.01] * 90 + [1.0] * 10)
    (1.0, 0.0)
    """
    if len(errors) < _CALM_MIN_ERRORS:
        return 0.0
    mid = median(errors)
    if mid <= 0:
        return 0.0
    ratio = quantile(errors, _FLOOR_QUANTILE) / mid
    return min(max((_UNCALM_RATIO - ratio) / (_UNCALM_RATIO - _CALM_RATIO), 0.0), 1.0)


def empirical_floor(errors: Sequence[float], share: float) -> float:
    """The narrowest one-day half-width (log units) a table's own rare days allow: a margin
    times the 98th percentile of ``errors`` (sorted absolute prediction errors over up to
    half a year), times ``share``; 0.0 with too few errors.

    >>> round(empirical_floor([0.01 * i for i in range(100)], 1.0), 3)
    1.562
    """
    if len(errors) < TAIL_MIN_ERRORS:
        return 0.0
    return share * _FLOOR_MARGIN * quantile(errors, _FLOOR_QUANTILE)


# The variance of the log of a MAD read on n normal errors is about 1.35 / n (the MAD's
# efficiency is 37 %); the weekdays count as alike unless their squared log-distances from
# the table's noise, in those units, sum beyond this many standard deviations of a
# chi-square with one degree per weekday (about 1 % of alike tables are read as unlike).
_LOG_MAD_VARIANCE = 1.35
_ALIKE_Z = 2.33


def _weekdays_alike(errors: list[list[float]], scale: float) -> bool:
    """Whether each weekday's errors (absolute, per weekday) are as spread as ``scale``
    says, up to their own sampling error: then every weekday gets the table's noise.

    >>> _weekdays_alike([[0.1, 0.2, 0.05, 0.15] * 5 for _ in range(7)], 0.15)
    True
    >>> _weekdays_alike([[0.1, 0.2, 0.05, 0.15] * 5] * 5 + [[0.6, 0.9, 0.7, 1.0] * 5] * 2, 0.15)
    False
    """
    q, k = 0.0, 0
    for per_day in errors:
        if len(per_day) < _WEEKDAY_MIN_ERRORS:
            continue
        own = MAD_TO_SIGMA * median(per_day)
        if own <= 0 or scale <= 0:
            return False
        q += math.log(own / scale) ** 2 * len(per_day) / _LOG_MAD_VARIANCE
        k += 1
    return k > 0 and q <= k + _ALIKE_Z * math.sqrt(2 * k)
