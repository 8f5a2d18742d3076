"""The log-ratio model, for tables whose volume is steady enough to be judged in ratios.

Steps, in the order :func:`judge` applies them (docs/observability.md has the long form):

1. **Weekly seasonality.** Each point is divided by the median of the week around it; the
   median of those ratios per weekday is that weekday's factor (local medians make the
   factors indifferent to trend and to level shifts), read over the last half year.
2. **Noise.** Every baseline point is predicted the way the judged point will be; 1.4826 ×
   the median absolute log-error is the noise (a MAD), read over the last half year unless
   the training window's is clearly larger. Where the data support it, each weekday gets
   its own noise, shrunk toward the table's. Heavy tails widen the one-day band, and no
   band is narrower than 1.6 times the table's 98th-percentile error (a fifth less on a
   table with calm tails), each side read apart (:mod:`~.spread` measures all this). A young
   table gets bands 1.5 times wider and no sequential test.
3. **Level.** The median of the last seven deseasonalised non-empty points (fourteen on a
   table whose days are independent, :data:`~.spread.LONG_WINDOW`). When the last four days
   (none empty) are each more than one noise unit from it on the same side, the level
   re-anchors to them, so a genuine step stops alerting within a week. Monthly effects (a
   month-end close, :mod:`~.months`) scale the expected value, and a trend read over the
   longer stretch (:func:`~.sequential.trend`) moves the level from the days it was read on
   to today.
4. **One day.** The log-ratio of value to expected in units of the weekday's noise; drops
   and spikes have their own thresholds (0.85 of the configured half-width for a drop, 1.15
   of it for a spike, 0.80 on a table with calm tails: a drop is what breaks dashboards),
   judged in whole rows. An empty day where volume was expected is an outage.
5. **Several days.** For m = 2 … 8, the mean log-ratio of the last m days (today included)
   to the level of the days before them (over step 3's window), in units of that
   statistic's spread measured over the baseline's own history (its geometric mean with
   the spread independent days would give), so a table whose volume wanders for days gets
   a wider limit; the trend is taken out of every day first. It alerts on a step or a slow drift no single day
   shows, when today leans the same way, the last days also stand apart from the whole
   baseline (a return to normal is not a step), and no day in the stretch was alerted on.
   Drops only: a sustained rise is growth far more often than an incident. Rows that
   arrive a day late (a low day, then a high one) are judged on the two days' difference.
6. **Repeats and bursts** (:mod:`~stackyard.monitors.anomaly.episodes`): a rise that
   continues a change already alerted on is not alerted again, and a table with earlier
   isolated spikes gets a spike band as wide as the smallest of them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, timedelta

from stackyard.monitors.anomaly import episodes, months, sequential
from stackyard.monitors.anomaly.config import (
    SENSITIVITY_THRESHOLDS,
    AnomalyConfig,
    Direction,
    Status,
    Verdict,
)
from stackyard.monitors.anomaly.spread import (
    FLOOR_RATIO,
    NEAR_ZERO,
    TAIL_MIN_ERRORS,
    WINDOW,
    calm,
    empirical_floor,
    noise,
    noise_scale,
    tail_widening,
    weekday_factors,
)
from stackyard.monitors.anomaly.stats import format_value, median, whole_rows_band

# A level shift must hold this many consecutive days, and this far out, before it is trusted.
_SHIFT_DAYS = 4
_SHIFT_SIGMAS = 1.0
# A young table (fewer errors than that to measure its tails on) may have heavy ones: until
# they are measured its one-day bands are this much wider, and it gets no sequential test
# (a few weeks of history cannot tell a step from the way the table wanders).
_YOUNG_WIDEN = 1.5
# Single-day thresholds as shares of the configured band half-width. The spike band is the
# wider: with the noise no longer overstated, a band at the full half-width alerted on
# bursts and the first day of legitimate rises about as often as on duplicated loads.
_DROP_SHARE = 0.85
_SPIKE_SHARE = 1.15
# A table whose errors show calm, normal tails (spread.calm) has its spike threshold and its
# empirical floor lowered by up to these shares: the wide spike band is for tables with
# bursts and heavy tails; on normal tables it passed about half the duplicated loads. A calm
# table's spike band comes down to 0.80 of the half-width (3.2 noise units). Its drop band
# stays at 0.85: at 0.75 it raised most false alerts on generator D (the replay), and
# the precision that freed bought more incidents on the spike side and in the sequential test.
_CALM_SPIKE = 0.35
_CALM_FLOOR = 0.2
# A weekday this much noisier than the table (a quiet Sunday) gets no sequential test.
_SCAN_NOISY_DAY = 1.5
# The training window's noise replaces the longer stretch's only when it is this much larger.
_NOISIER_LATELY = 1.5
# The late-arrival test: its limit (share of the threshold) on the two days' difference, and
# how far, in noise units, each day must lean its own way.
_LATE_SHARE = 0.85
_LATE_LEG = 1.0
# ... and how far today's extra rows may be from yesterday's missing ones (a ratio).
_LATE_BALANCE = 0.5
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def judge(
    day: date,
    value: float,
    window: Sequence[tuple[date, float]],
    base: Sequence[tuple[date, float]],
    holidays: set[date],
    cfg: AnomalyConfig,
    history: Sequence[tuple[date, float]] = (),
    calendar: Sequence[tuple[date, float]] = (),
) -> Verdict:
    """Judge one day against its baseline with log-ratio bands.

    Args:
        day: the judged day.
        value: its volume.
        window: every earlier point of the training window (holidays and excluded included).
        base: the baseline: ``window`` without holidays and excluded days.
        holidays: the business calendar.
        cfg: the detector's settings.
        history: the earlier points of the last :data:`~.spread.TAIL_DAYS` days without
            holidays and excluded days, to measure how heavy the table's tails are; ``base``
            when empty.
        calendar: the same stretch with excluded days, to learn monthly effects from
            (:mod:`~stackyard.monitors.anomaly.months`); ``history`` when empty.

    Returns:
        The verdict.
    """
    weekly = cfg.seasonality == "weekly"
    longer = weekly and len(history) > len(base)
    # The weekly pattern is read over the longer stretch when the baseline is its last
    # days: eight points per weekday give factors whose own error, carried into every
    # prediction, made the band half again as wide as the table's noise.
    same_days = longer and history[len(history) - len(base)][0] == base[0][0]
    factors, loo_factors = (
        weekday_factors(base) if weekly and not same_days else ([1.0] * 7, [1.0] * len(base))
    )
    long_factors, long_noise = factors, None
    if longer:
        long_factors, long_loo = weekday_factors(history)
        long_ys = [
            v / long_factors[d.weekday()] if long_factors[d.weekday()] >= NEAR_ZERO else None
            for d, v in history
        ]
        long_noise = noise(history, long_ys, long_loo)
        if same_days:
            factors, loo_factors = long_factors, long_loo[len(history) - len(base) :]
    # Weekdays that are normally empty carry no level information; they are judged below.
    ys = [v / factors[d.weekday()] if factors[d.weekday()] >= NEAR_ZERO else None for d, v in base]
    if long_noise is None:
        scale, by_weekday, errors, spread_out, sides, win = noise(base, ys, loo_factors)
        # How much noisier than the table the judged weekday is, for the empirical floor.
        own_noise = by_weekday[day.weekday()] / scale
    else:
        # Only the training window's scale is read: the rest comes from the longer stretch.
        scale = noise_scale(base, ys, loo_factors)
        long_scale, long_by_weekday, errors, spread_out, sides, win = long_noise
        own_noise = long_by_weekday[day.weekday()] / long_scale
        # The table's noise, too, unless the training window's is clearly larger (a table
        # grown noisier lately): fifty errors measure it about a sixth off either way, and
        # the larger of the MAD and the tail read on them was often a third too wide.
        if scale < _NOISIER_LATELY * long_scale:
            scale = long_scale
        # How much noisier one weekday is than the others is read over the longer stretch
        # too: the training window holds eight errors per weekday, and their spread alone
        # made a steady weekday look half again as noisy as the rest now and then. The
        # table's own noise stays the training window's, which follows a table that grows
        # calmer or noisier.
        by_weekday = [scale * own / long_scale for own in long_by_weekday]
    young = len(errors) < TAIL_MIN_ERRORS
    heavy = _YOUNG_WIDEN if young else tail_widening(errors, scale)
    # Each side of the band is widened for its own tail: bursts widen the spike band only.
    heavy_drop, heavy_spike = heavy, heavy
    if not young and sides:
        heavy_drop = tail_widening(errors, scale, sides["drop"][0])
        heavy_spike = tail_widening(errors, scale, sides["spike"][0])
    # Empty days on weekdays that carry volume are outages or a sparse table's gaps, not a
    # level: a level of zero would make every later row a spike.
    levels = [y for y in ys if y is not None and y > 0] or [0.0]
    level = median(levels[-win:])

    # Excluded days count here on purpose: after a step change every day may have been
    # alerted on and excluded, and the baseline must still learn the new level.
    recent = [
        v / factors[d.weekday()]
        for d, v in window
        if d not in holidays
        and d >= day - timedelta(days=WINDOW)
        and factors[d.weekday()] >= NEAR_ZERO
    ][-_SHIFT_DAYS:]
    reanchored = _is_level_shift(recent, level, scale)
    sigma = by_weekday[day.weekday()] * heavy
    sigma_drop = by_weekday[day.weekday()] * heavy_drop
    sigma_spike = by_weekday[day.weekday()] * heavy_spike
    if reanchored:
        level = median(recent)
        # A median of four days is a noisier level than the median of seven the scale was
        # measured with (π/2n: the asymptotic variance of a sample median over the noise's).
        noisier = math.sqrt((1 + math.pi / (2 * _SHIFT_DAYS)) / (1 + math.pi / (2 * win)))
        sigma, sigma_drop, sigma_spike = (
            sigma * noisier,
            sigma_drop * noisier,
            sigma_spike * noisier,
        )

    k = cfg.threshold
    calmness = 0.0 if young else calm(errors)
    k_drop = k * _DROP_SHARE
    k_spike = k * (_SPIKE_SHARE - calmness * _CALM_SPIKE)
    factor = factors[day.weekday()]
    expected = level * factor
    bursts = 0.0
    usual = f"usual for a {WEEKDAYS[day.weekday()]}" if weekly else "usual for this table"
    effects = months.PlaceEffects(max((calendar, history, base), key=len), long_factors, scale)
    place = effects(day)
    # The level is the median of the last days, centred days ago: a trend moves it on to
    # today (not after a re-anchoring, whose four days are the new level as they stand).
    slope = sequential.trend(history or base, long_factors, effects, day)
    if slope and not reanchored:
        used = [
            d.toordinal() for (d, _), y in zip(base, ys, strict=True) if y is not None and y > 0
        ]
        used = used[-win:]
        if used:
            moved = math.exp(slope * (day.toordinal() - sum(used) / len(used)))
            level *= moved
            expected *= moved
    if place is not None and factor >= NEAR_ZERO:
        expected *= math.exp(place[0])
        usual += f" and for {place[1]}"

    if factor < NEAR_ZERO:
        # A weekday that is normally empty: a log-ratio is meaningless against ~0, so the
        # band is the table's usual noise measured in absolute rows.
        lower = 0.0
        upper = expected + level * (math.exp(k_spike * sigma) - 1.0)
        score = (value - expected) / max(level * sigma, 1e-12)
    else:
        # Never narrower than the table's own rare days: the errors it makes once in fifty
        # days, with a margin, whatever the noise model says (heavy tails, bursts).
        # Measured on errors scaled to the judged weekday's noise: a quiet Sunday's swings
        # do not widen a steady Tuesday's band.
        share = k / SENSITIVITY_THRESHOLDS["medium"] * (1.0 - calmness * _CALM_FLOOR)
        floor = own_noise * empirical_floor(spread_out, share)
        # Each side's own rare days, once it has enough of them to measure.
        floor_drop, floor_spike = (
            own_noise * empirical_floor(sides[side][1], share) or floor if sides else floor
            for side in ("drop", "spike")
        )
        lower = expected * math.exp(-max(k_drop * sigma_drop, floor_drop))
        spike = max(k_spike * sigma_spike, floor_spike)
        own = by_weekday[day.weekday()]
        bursts = episodes.spike_floor(
            effects.errors,
            spike,
            effects.shift,
            lambda d: by_weekday[d.weekday()] / own,
        )
        spike = max(spike, bursts)
        upper = expected * math.exp(spike)
        score = math.log(max(value / expected, FLOOR_RATIO)) / sigma if expected > 0 else 0.0

    # An empty day is an outage unless the table has had empty days that were not excluded
    # (on weekdays that normally carry volume): then emptiness is part of its normal life.
    empty_days_seen = any(
        v <= NEAR_ZERO * level * factors[d.weekday()]
        for d, v in base
        if factors[d.weekday()] >= NEAR_ZERO
    )
    outage = expected > 0 and factor >= NEAR_ZERO and value <= NEAR_ZERO * expected
    outage = outage and not empty_days_seen
    # Judged in whole rows, as the band is said: a band whose lower edge is below one row
    # admits an empty day (a noisy table of a few rows), whatever its float edge.
    direction: Direction | None = (
        "drop"
        if value < math.floor(lower) or outage
        else "spike"
        if value > math.ceil(upper)
        else None
    )
    # A day that continues a change one of the last days was alerted on is the same news.
    in_base = {d for d, _ in base}
    excluded = {d for d, _ in window if d not in in_base and d not in holidays}
    continues = None
    # Rises only: a drop that lasts is still data missing every day it lasts.
    if direction == "spike" and not reanchored and factor >= NEAR_ZERO:
        deviation = episodes.log_ratio(value, expected)
        recent_devs = [
            (d, episodes.log_ratio(v, level * factors[d.weekday()] * math.exp(effects.shift(d))))
            for d, v in window
            if d not in holidays and d >= day - timedelta(days=WINDOW)
        ]
        if deviation is not None:
            continues = episodes.continued_from(
                day, deviation, direction, recent_devs, excluded, sigma, _SHIFT_SIGMAS
            )
    # The sequential test runs on a clean stretch only: an alert (an excluded day) among the
    # days it would sum or measure them against means people already know of this shift, and
    # the baseline's gap would stretch "the last days" back across it.
    span = day - timedelta(days=sequential.SPAN_DAYS)
    clean = not any(d >= span and d not in holidays and d not in in_base for d, _ in window)
    run = None
    # A weekday much noisier than the table's others (a quiet Sunday) adds no evidence to a
    # sum whose spread was measured mostly on the steady days.
    steady_day = by_weekday[day.weekday()] <= _SCAN_NOISY_DAY * scale
    # An empty day is the one-day rules' business: in logs it is a shift of any size.
    judged = not young and not reanchored and clean and steady_day and value > 0
    judged = judged and factor >= NEAR_ZERO
    if direction is None and judged:
        # The one-day band's half-widths in logs, for the days before today (see sequential).
        widths = (
            (math.log(expected / lower), math.log(upper / expected))
            if lower > 0
            else (math.inf, math.inf)
        )
        run = sequential.step_or_drift(
            day, value, base, factors, scale, k, effects, win, widths, slope
        )
        if run is not None:
            direction = run[0]
    late = None
    if direction is None and not young and not reanchored and factor >= NEAR_ZERO and value > 0:
        late = _late_arrival(
            day, value, expected, sigma, base, level, factors, by_weekday, heavy, k, effects
        )
        if late is not None:
            direction = "spike"

    # Volumes are whole rows: the band is said in whole rows, as it is judged.
    band = whole_rows_band(lower, upper)
    shifted = "; the baseline re-anchored to the last days' new level" if reanchored else ""
    wanted = {"both": ("drop", "spike"), "drop": ("drop",), "spike": ("spike",)}[cfg.direction]
    side = "below" if direction == "drop" else "above"
    status: Status
    if direction is None:
        status = "ok"
        reason = f"{format_value(value)} rows is within the expected band {band} ({usual})"
    elif late is not None:
        status = "anomaly" if direction in wanted else "ok"
        reason = (
            f"{format_value(value)} rows is within the band {band} ({usual}), but yesterday "
            f"had {late:.0%} fewer rows than expected and today has more: rows that arrived "
            "a day late"
        )
        if status == "ok":
            reason += f", but this monitor only alerts on {cfg.direction}s"
    elif run is not None:
        _, days, change = run
        status = "anomaly" if direction in wanted else "ok"
        reason = (
            f"{format_value(value)} rows is within the band {band} ({usual}), but the last "
            f"{days} days sit {abs(change):.0%} {side} the level before them: a step or a "
            "slow drift"
        )
        if status == "ok":
            reason += f", but this monitor only alerts on {cfg.direction}s"
    elif continues is not None:
        status = "ok"
        reason = (
            f"{format_value(value)} rows is {side} the expected band {band} ({usual}), as on "
            f"{continues}, which was alerted on: the same change, not alerted again"
        )
    elif direction not in wanted:
        status = "ok"
        reason = (
            f"{format_value(value)} rows is {side} the expected band {band} ({usual}), "
            f"but this monitor only alerts on {cfg.direction}s"
        )
    else:
        status = "anomaly"
        reason = f"{format_value(value)} rows is {side} the expected band {band} ({usual})"
        if outage and value >= math.floor(lower):
            # Empty on a table that never is, though a band this wide reaches 0.
            reason = f"0 rows on a table never empty before ({usual}, band {band})"
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
        sequential=run is not None or late is not None,
    )


def _late_arrival(
    day: date,
    value: float,
    expected: float,
    sigma: float,
    base: Sequence[tuple[date, float]],
    level: float,
    factors: Sequence[float],
    by_weekday: Sequence[float],
    heavy: float,
    k: float,
    effects: months.PlaceEffects,
) -> float | None:
    # Rows that arrive a day late make a low day followed by a high one. Each day alone may
    # sit inside its band, but the two together lean apart by more than either: their
    # difference, in units of its own spread (√2 noise units for independent days), is the
    # evidence. Both days must lean their own way, so a single odd day is not read as half
    # of a pair, and today's extra rows must be about the rows yesterday missed: late rows
    # are the same rows, and a busy day after a quiet one is not a late arrival.
    # Yesterday must be in the baseline: a day alerted on is already known.
    # Returns yesterday's shortfall (a share of its expected rows), or None.
    yesterday = day - timedelta(days=1)
    if not base or base[-1][0] != yesterday:
        return None
    before_value = base[-1][1]
    factor = factors[yesterday.weekday()]
    if factor < NEAR_ZERO or before_value <= 0:
        return None
    before_expected = level * factor * math.exp(effects.shift(yesterday))
    if before_expected <= 0:
        return None
    today = math.log(value / expected) / sigma
    before = math.log(before_value / before_expected) / (by_weekday[yesterday.weekday()] * heavy)
    if before > -_LATE_LEG or today < _LATE_LEG:
        return None
    if (today - before) / math.sqrt(2.0) < k * _LATE_SHARE:
        return None
    missed, extra = before_expected - before_value, value - expected
    if not _LATE_BALANCE <= extra / missed <= 1.0 / _LATE_BALANCE:
        return None
    return missed / before_expected


def _is_level_shift(recent: Sequence[float], level: float, scale: float) -> bool:
    # A shift is believed only when it has held for several days, each of them well away
    # from the level on the same side: one or two bad days (an incident) never move the
    # level, and an empty day (an outage) is never evidence of a new normal.
    if len(recent) < _SHIFT_DAYS or level <= 0 or min(recent) <= NEAR_ZERO * level:
        return False
    deviations = [math.log(max(y / level, FLOOR_RATIO)) for y in recent]
    threshold = _SHIFT_SIGMAS * scale
    return all(dev > threshold for dev in deviations) or all(dev < -threshold for dev in deviations)
