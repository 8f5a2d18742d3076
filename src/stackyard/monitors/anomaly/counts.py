"""The count model, for tables whose days are often empty or hold a few rows.

Log-ratio bands need every day to carry enough rows for a ratio to mean something. A table
where a third of the days naturally have no rows, or where a busy day has twelve, breaks
that: a zero is infinitely far from any level in logs, so every usual empty day would look
like an outage. Such tables are judged as counts instead:

* **Empty days** (a hurdle model: whether a day has rows at all is judged apart from how
  many it has). The share of empty days per weekday, shrunk toward the table's overall share
  when a weekday has few days of history — strongly when the empty days fall alike on every
  weekday, weakly when they cluster on some (then a weekday that is never empty keeps its
  own, near-zero share). A zero on a table that is often empty is ok when it is usual for
  its weekday; a zero on a weekday that is never empty, where the rows of a non-empty day
  make zero implausible, is a drop; a zero on a table that has never been empty is an
  outage, always.
* **Runs of empty days.** A single empty day proves nothing on a table that is empty a
  third of the time, but a run of them does: when the chance of the whole run (the product
  of each day's share of empty days, the shares read on the days before the run began)
  falls below α, the run is an outage.
* **Bands.** The rows of the non-empty days per weekday (a mean, shrunk toward the table's
  mean scaled by the weekday's share) and one over-dispersion for the table, measured by
  moments, give a negative-binomial distribution (Poisson when the counts are no more spread
  than that). The band is its central ``1 − 2α`` interval, α set by the sensitivity:
  ``Φ(−(k − 1))`` for a half-width of k robust standard deviations (medium: k = 4,
  α ≈ 0.0013), in whole rows. Empty days do not widen it: a drop from 900 rows to 200 is
  still a drop on a table that is often empty.
* **Steadier than chance.** A table whose non-empty days vary clearly less than Poisson
  counts (one row per store a day) is judged by its own spread instead
  (:func:`_regular_spread`): Poisson's band passed 1 row on a table of 6 every day.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from datetime import date

from stackyard.monitors.anomaly.config import AnomalyConfig, Direction, Status, Verdict
from stackyard.monitors.anomaly.stats import format_value, median

# Tables whose usual day holds fewer rows than this are counts, not volumes.
_SMALL = 20.0
# ... and so are tables with at least this share (and number) of empty days on weekdays
# that are not always empty.
_EMPTY_SHARE = 0.05
_EMPTY_DAYS = 2
# Pseudo-days that shrink a weekday's figures toward the table's.
_PRIOR_DAYS = 4.0
# 99.5th percentiles of the chi-square distribution by degrees of freedom: above them the
# empty days cluster on some weekdays (strict: a weekday wrongly taken for one that is never
# empty alerts on each of its empty days).
_CLUSTERED_CHI2 = {1: 7.88, 2: 10.60, 3: 12.84, 4: 14.86, 5: 16.75, 6: 18.55}
# A count table's level is followed over the last two weeks' non-empty days.
_DRIFT_DAYS = 14
_DRIFT_MIN_DAYS = 5
# A run of empty days is alerted on for its first days once unusual, not for weeks after:
# a table that stays silent has been reported, and each later day is the same news.
_RUN_ALERT_DAYS = 3
# A run of empty days is judged against this many times α. Its shares are read on the days
# before the run began, so a long run no longer raises the shares it is judged by; with its
# own days counted, a limit of 3α had been needed to catch a broken feed at all, and passed
# a ten-day run on a table empty half the time.
_RUN_ALPHA = 1.0
# An empty day is usual for a weekday when at least this share of its days were empty.
_USUAL_EMPTY = 0.05
# A spike's limit is this many robust standard deviations further out than a drop's.
_SPIKE_EXTRA = 1.5
# Above this mean a normal approximation replaces summing probabilities row by row.
_EXACT_UP_TO = 300.0
# A table whose days vary less than half as much as Poisson counts (a Poisson table reads so
# on four weeks about once in a hundred) is regular: a fixed set of stores, one row each.
_REGULAR_INDEX = 0.5
_REGULAR_MIN_DAYS = 14
_REGULAR_MIN_SPREAD = 0.5
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def applies(base: Sequence[tuple[date, float]], cfg: AnomalyConfig) -> bool:
    """Whether a baseline is better judged as counts than as log-ratios.

    >>> from datetime import timedelta
    >>> days = [date(2026, 1, 5) + timedelta(days=i) for i in range(28)]
    >>> applies([(d, 0.0 if i % 3 == 0 else 40.0) for i, d in enumerate(days)], AnomalyConfig())
    True
    >>> applies([(d, 5000.0) for d in days], AnomalyConfig())
    False
    """
    weekly = cfg.seasonality == "weekly"
    by_day: dict[int, list[float]] = {}
    for d, v in base:
        by_day.setdefault(d.weekday() if weekly else 0, []).append(v)
    # Weekdays that are (almost) always empty are the steady model's business: a table that
    # is closed at weekends is not sparse.
    mixed = [v for vs in by_day.values() if sum(1 for x in vs if x > 0) > len(vs) / 2 for v in vs]
    if not mixed:
        # Empty more often than not on every weekday: a trickle of rows, counted.
        return True
    empty = sum(1 for v in mixed if v == 0)
    if empty >= _EMPTY_DAYS and empty >= _EMPTY_SHARE * len(mixed):
        return True
    return median([v for v in mixed if v > 0]) < _SMALL


def judge(
    day: date,
    value: float,
    base: Sequence[tuple[date, float]],
    cfg: AnomalyConfig,
    recent: Sequence[tuple[date, float]] = (),
) -> Verdict:
    """Judge one day's row count with count bands (see the module docstring).

    Args:
        day: the judged day.
        value: its row count.
        base: the baseline (no holidays, no excluded days).
        cfg: the detector's settings.
        recent: the earlier days of the training window without holidays, excluded days
            included, to find the run of empty days that ends on ``day``.

    Returns:
        The verdict, with ``model="count"`` and whole-row bands.
    """
    weekly = cfg.seasonality == "weekly"

    def slot(d: date) -> int:
        return d.weekday() if weekly else 0

    wd = slot(day)
    by_day: dict[int, list[float]] = {}
    for d, v in base:
        by_day.setdefault(slot(d), []).append(v)
    empty_share = sum(1 for _, v in base if v == 0) / len(base)
    p_empty, clustered = _empty_shares(by_day, empty_share)
    own = by_day.get(wd, [])
    own_empty = sum(1 for v in own if v == 0)

    # The non-empty days carry the level; with none at all the table's mean stands in.
    full: Sequence[tuple[date, float]] = [(d, v) for d, v in base if v > 0] or base
    overall = sum(v for _, v in full) / len(full)
    full_by_day: dict[int, list[float]] = {}
    for d, v in full:
        full_by_day.setdefault(slot(d), []).append(v)
    means = {
        k: (sum(vs) + _PRIOR_DAYS * overall) / (len(vs) + _PRIOR_DAYS)
        for k, vs in full_by_day.items()
    }
    # A table that grows or shrinks: the weekday means are scaled to the last two weeks'
    # level (their rows over what the weekday means predict for them). Dispersion is
    # measured against the same drifting level, so a trend does not pass for noise.
    drift = _drift(day, full, means, slot)
    mu = means.get(wd, overall) * drift(day)
    # Over-dispersion by moments: variance = mean + φ·mean² (φ = 0 is Poisson).
    excess = sum((v - means[slot(d)] * drift(d)) ** 2 for d, v in full) / len(full)
    excess -= sum(means[slot(d)] * drift(d) for d, _ in full) / len(full)
    square = sum((means[slot(d)] * drift(d)) ** 2 for d, _ in full) / len(full)
    phi = max(excess / square, 0.0) if square > 0 else 0.0
    mean_mu = sum(means[slot(d)] * drift(d) for d, _ in full) / len(full)
    regular = _regular_spread(len(full), excess + mean_mu, mean_mu)

    k = cfg.threshold
    alpha = 0.5 * math.erfc((k - 1.0) / math.sqrt(2.0))
    # Too many rows is less urgent than too few, and a few rows' table bursts: a stricter
    # limit for spikes.
    alpha_spike = 0.5 * math.erfc((k - 1.0 + _SPIKE_EXTRA) / math.sqrt(2.0))
    if regular is None:
        lower, upper = _quantile(mu, phi, alpha), _quantile(mu, phi, 1.0 - alpha_spike)
        below, above = _cdf(mu, phi, value), 1.0 - _cdf(mu, phi, value - 1.0)
    else:
        # A table more regular than chance (one row per store a day) is judged by its own
        # spread: Poisson's passed 1 row on a table that had 6 every day for months.
        lower = max(math.ceil(mu - (k - 1.0) * regular - 0.5), 0)
        upper = math.floor(mu + (k - 1.0 + _SPIKE_EXTRA) * regular + 0.5)
        below = 0.5 * math.erfc(-(value + 0.5 - mu) / (regular * math.sqrt(2.0)))
        above = 0.5 * math.erfc((value - 0.5 - mu) / (regular * math.sqrt(2.0)))
    name = _WEEKDAYS[day.weekday()] if weekly else "day"
    usual = f"usual for a {name}" if weekly else "usual for this table"
    rows = format_value(value) + (" row" if value == 1 else " rows")
    outage = False
    direction: Direction | None = None
    note = ""
    run = 0
    if value == 0:
        run_days = _empty_run_days(day, recent)
        run_start = run_days[0]
        # The run is judged against how often the table was empty before it began: its own
        # empty days would otherwise raise the share they are judged by, more with each day
        # the feed stays broken.
        before = [(d, v) for d, v in base if d < run_start]
        run_shares, run_share = p_empty, empty_share
        if len(before) < len(base) and before:
            before_by_day: dict[int, list[float]] = {}
            for d, v in before:
                before_by_day.setdefault(slot(d), []).append(v)
            run_share = sum(1 for _, v in before if v == 0) / len(before)
            run_shares, _ = _empty_shares(before_by_day, run_share)

        def empty_chance(d: date) -> float:
            return run_shares.get(slot(d), run_share)

        chance, unusual_since, unusual_days = _run_chance(
            run_days, empty_chance, alpha * _RUN_ALPHA
        )
        run = len(run_days)
        # A run one of whose days was alerted on is known: each later empty day of it is
        # the same news.
        in_base = {d for d, _ in base}
        known = any(d >= run_start and d not in in_base for d, _ in recent)
        limit = alpha * _RUN_ALPHA
        # Days already alerted on count here: one empty day, even a reported one, means
        # the table can be empty, and each later one is judged by how usual that is.
        if mu >= 1.0 and not any(v == 0 for _, v in recent or base):
            direction, outage = "drop", True
        elif clustered and below < alpha and p_empty.get(wd, empty_share) < _USUAL_EMPTY:
            # Only where the empty days cluster on some weekdays can one be "never empty":
            # when they fall alike on every weekday, an empty day is usual on any of them.
            direction = "drop"
        elif run > 1 and chance < limit and not known and unusual_days <= _RUN_ALERT_DAYS:
            direction, outage = "drop", True
        elif run > 1 and chance < limit:
            note = (
                f"; no rows for {run} days in a row, unusual since {unusual_since} and alerted "
                "on then"
            )
        else:
            # Quote the share the verdict read: the weekday's own only where empty days
            # cluster on some weekdays; else the table's (0 of 8 Fridays read as "usual").
            if weekly and clustered:
                seen = f"{own_empty} of {len(own)} {name}s"
            else:
                seen = f"{sum(1 for _, v in base if v == 0)} of {len(base)} days"
            note = f"; empty days are usual here ({seen} in the baseline had no rows)"
            if p_empty.get(wd, empty_share) < _USUAL_EMPTY:
                # Rarely or never empty before, yet a day this small is empty by chance
                # often enough not to alert: "usual (0 of 8 Fridays … had no rows)" read as
                # a verdict contradicting its own reason.
                usual = f"within chance for a {name}" if weekly else "within chance here"
                note = (
                    f"; rarely empty before ({seen} in the baseline had no rows), but with "
                    f"about {mu:,.1f} rows expected, {below:.1%} of such days have none"
                )
            alerted = [d for d, v in recent if v == 0 and d < day and d not in {b for b, _ in base}]
            if not any(v == 0 for _, v in base) and alerted:
                # Its only empty days were alerted on: "0 of 55 days … had no rows" read as
                # a reason why empty days are usual.
                note = (
                    f"; the table was empty before, on {alerted[-1]} (alerted on then), so an "
                    "empty day can happen here"
                )
    elif overall == 0 or len(full) < _EMPTY_DAYS:
        note = "; the baseline had (almost) no rows to compare with"
    elif below < alpha:
        direction = "drop"
    elif above < alpha_spike:
        direction = "spike"
    band = f"{lower:,}–{upper:,}"

    wanted = {"both": ("drop", "spike"), "drop": ("drop",), "spike": ("spike",)}[cfg.direction]
    status: Status = "anomaly" if direction in wanted else "ok"
    if direction is None and value == 0:
        # The band is the rows of a non-empty day; an empty day is judged apart from it.
        reason = f"{rows} ({usual}){note}"
    elif direction is None:
        reason = f"{rows} is within the expected band {band} ({usual}){note}"
    else:
        side = "below" if direction == "drop" else "above"
        reason = f"{rows} is {side} the expected band {band} ({usual})"
        if outage and run > 1:
            # "Often empty" only where it is: a table empty on a day or two of its baseline
            # (a day already alerted on counts as one) read "often empty" all the same.
            often = "often" if empty_share >= _USUAL_EMPTY else "rarely"
            but = "but" if often == "often" else "and"
            reason = (
                f"no rows for {run} days in a row: the table is {often} empty, {but} a run "
                "this long is not usual for it, an outage"
            )
        elif outage:
            reason += ": the table has never been empty before, an outage"
        elif value == 0:
            reason += f": {name}s are never empty here"
        if status == "ok":
            reason += f", but this monitor only alerts on {cfg.direction}s"
    spread = regular or (math.sqrt(mu + phi * mu * mu) if mu > 0 else 1.0)
    return Verdict(
        status=status,
        reason=reason,
        day=day,
        value=value,
        expected=mu,
        lower=float(lower),
        upper=float(upper),
        score=(value - mu) / spread,
        direction=direction,
        baseline_size=len(base),
        model="count",
    )


def _regular_spread(days: int, variance: float, mean: float) -> float | None:
    """The spread in rows of a table whose non-empty days vary clearly less than Poisson
    counts would (``variance`` under :data:`_REGULAR_INDEX` times the ``mean``, read on at
    least :data:`_REGULAR_MIN_DAYS` days), or None: then the count bands stand.

    The variance is taken at its upper 95 % bound for that many days (a chi-square quantile,
    by Wilson and Hilferty), so a spread read on a few weeks is not taken for less than it
    may be, and never under half a row.

    >>> _regular_spread(60, 0.0, 6.0), _regular_spread(60, 5.5, 6.0), _regular_spread(5, 0.0, 6.0)
    (0.5, None, None)
    >>> round(_regular_spread(28, 2.0, 12.0), 2)
    1.83
    """
    if days < _REGULAR_MIN_DAYS or mean <= 0 or variance >= _REGULAR_INDEX * mean:
        return None
    dof = days - 1
    low = dof * (1.0 - 2.0 / (9 * dof) - 1.645 * math.sqrt(2.0 / (9 * dof))) ** 3
    return max(math.sqrt(max(variance, 0.0) * dof / low), _REGULAR_MIN_SPREAD)


def _drift(
    day: date,
    full: Sequence[tuple[date, float]],
    means: dict[int, float],
    slot: Callable[[date], int],
) -> Callable[[date], float]:
    """For each day, the table's level in the two weeks before it relative to the whole
    baseline's (1.0 with fewer than :data:`_DRIFT_MIN_DAYS` non-empty days to go by)."""
    cache: dict[date, float] = {}

    def level(at: date) -> float:
        if at not in cache:
            near = [(d, v) for d, v in full if 0 < (at - d).days <= _DRIFT_DAYS]
            predicted = sum(means[slot(d)] for d, _ in near)
            if len(near) < _DRIFT_MIN_DAYS or predicted <= 0:
                cache[at] = 1.0
            else:
                # Shrunk toward 1 as if the whole baseline's level were worth a few more days.
                observed = sum(v for _, v in near)
                cache[at] = (observed + _PRIOR_DAYS * predicted / len(near)) / (
                    predicted + _PRIOR_DAYS * predicted / len(near)
                )
        return cache[at]

    return level


def _empty_shares(by_day: dict[int, list[float]], overall: float) -> tuple[dict[int, float], bool]:
    """Each weekday's share of empty days, shrunk toward ``overall``, and whether the empty
    days cluster on some weekdays.

    Strongly (as if the table's share were worth :data:`_PRIOR_DAYS` more days) when the
    weekdays' empty days are consistent with one share for all — a weekday that happens to
    have had none in eight weeks is then luck — and weakly (one day) when a chi-square test
    says they cluster on some weekdays: then a weekday that is never empty really is not.

    >>> by_day = {0: [0.0, 5.0, 0.0, 4.0], 1: [3.0, 4.0, 5.0, 6.0]}
    >>> shares, clustered = _empty_shares(by_day, 0.25)
    >>> round(shares[0], 3), round(shares[1], 3), clustered
    (0.375, 0.125, False)
    """
    cells = [(sum(1 for v in vs if v == 0), len(vs)) for vs in by_day.values()]
    chi2 = 0.0
    if 0 < overall < 1:
        for empty, n in cells:
            expected = overall * n
            chi2 += (empty - expected) ** 2 / (expected * (1 - overall))
    dof = max(len(cells) - 1, 1)
    clustered = chi2 > _CLUSTERED_CHI2.get(dof, 2.5 * dof + 5.0)
    prior = 1.0 if clustered else _PRIOR_DAYS
    shares = {
        k: (sum(1 for v in vs if v == 0) + prior * overall) / (len(vs) + prior)
        for k, vs in by_day.items()
    }
    return shares, clustered


def _empty_run_days(day: date, recent: Sequence[tuple[date, float]]) -> list[date]:
    """The days of the run of empty days that ends on ``day`` (an empty day), ascending."""
    run_days = [day]
    later = day
    for d, v in reversed(recent):
        # A gap of a day (a holiday left out of ``recent``) does not break the run.
        if v != 0 or (later - d).days > 2:
            break
        run_days.append(d)
        later = d
    run_days.reverse()
    return run_days


def _run_chance(
    run_days: Sequence[date], chance_of: Callable[[date], float], alpha: float
) -> tuple[float, date, int]:
    """The chance of a run of empty days when each day is empty with the chance
    ``chance_of`` gives, the first day on which it had become less likely than ``alpha``,
    and how many of its days since then (that day included)."""
    chance, since, unusual = 1.0, run_days[-1], 0
    for d in run_days:
        chance *= chance_of(d)
        if chance < alpha:
            since = since if unusual else d
            unusual += 1
    return chance, since, unusual


def _cdf(mu: float, phi: float, x: float) -> float:
    """P(X ≤ x) for a negative binomial with mean ``mu`` and dispersion ``phi``."""
    if x < 0:
        return 0.0
    if mu <= 0:
        return 1.0
    n = math.floor(x)
    if mu > _EXACT_UP_TO:
        sd = math.sqrt(mu + phi * mu * mu)
        return 0.5 * math.erfc(-(n + 0.5 - mu) / (sd * math.sqrt(2.0)))
    total = 0.0
    for i, p in enumerate(_pmf(mu, phi)):
        if i > n:
            break
        total += p
    return min(total, 1.0)


def _quantile(mu: float, phi: float, q: float) -> int:
    """The smallest whole count whose cumulative probability reaches ``q``."""
    if mu <= 0:
        return 0
    if mu > _EXACT_UP_TO:
        sd = math.sqrt(mu + phi * mu * mu)
        # Inverse of the normal CDF by bisection: exact enough for a band edge in rows.
        lo, hi = -10.0, 10.0
        for _ in range(60):
            mid = (lo + hi) / 2
            if 0.5 * math.erfc(-mid / math.sqrt(2.0)) < q:
                lo = mid
            else:
                hi = mid
        return max(0, round(mu + lo * sd))
    total = 0.0
    for i, p in enumerate(_pmf(mu, phi)):
        total += p
        if total >= q:
            return i
    return math.ceil(mu * 10)


def _pmf(mu: float, phi: float) -> Iterator[float]:
    """Probabilities of 0, 1, 2 … rows, one at a time (by the ratio of successive terms)."""
    if phi <= 1e-9:
        p = math.exp(-mu)
        i = 0
        while True:
            yield p
            i += 1
            p *= mu / i
            if i > 50 * (mu + 10):
                return
    size = 1.0 / phi
    prob = size / (size + mu)
    p = prob**size
    i = 0
    while True:
        yield p
        p *= (i + size) / (i + 1) * (1.0 - prob)
        i += 1
        if i > 50 * (mu + 10) * (1 + phi * mu):
            return
