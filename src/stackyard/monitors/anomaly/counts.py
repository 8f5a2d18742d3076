"""The count model, for tables whose days are often empty or hold a few rows.

Log-ratio bands need every day to carry enough rows for a ratio to mean something. A table
where a third of the days naturally have no rows, or where a busy day has twelve, breaks
that: a zero is infinitely far from any level in logs, so every usual empty day would look
like an outage. Such tables are judged as counts instead:

* **Empty days.** The share of empty days per weekday (shrunk toward the table's overall
  share when a weekday has few days of history). A zero on a table that is often empty is
  ok; a zero on a table that has never been empty is an outage, always.
* **Bands.** The rows per weekday (a mean, shrunk toward the table's mean scaled by the
  weekday's share) and one over-dispersion for the table, measured by moments, give a
  negative-binomial distribution (Poisson when the counts are no more spread than that).
  The band is its central ``1 − 2α`` interval, α set by the sensitivity: ``Φ(−(k − 1))`` for
  a half-width of k robust standard deviations (medium: k = 4, α ≈ 0.0013), in whole rows.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
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
# An empty day is usual for a weekday when at least this share of its days were empty.
_USUAL_EMPTY = 0.05
# Above this mean a normal approximation replaces summing probabilities row by row.
_EXACT_UP_TO = 300.0
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
        return False
    empty = sum(1 for v in mixed if v == 0)
    if empty >= _EMPTY_DAYS and empty >= _EMPTY_SHARE * len(mixed):
        return True
    return median([v for v in mixed if v > 0]) < _SMALL


def judge(
    day: date, value: float, base: Sequence[tuple[date, float]], cfg: AnomalyConfig
) -> Verdict:
    """Judge one day's row count with count bands (see the module docstring).

    Args:
        day: the judged day.
        value: its row count.
        base: the baseline (no holidays, no excluded days).
        cfg: the detector's settings.

    Returns:
        The verdict, with ``model="count"`` and whole-row bands.
    """
    weekly = cfg.seasonality == "weekly"
    wd = day.weekday() if weekly else 0
    by_day: dict[int, list[float]] = {}
    for d, v in base:
        by_day.setdefault(d.weekday() if weekly else 0, []).append(v)
    overall = sum(v for _, v in base) / len(base)
    empty_share = sum(1 for _, v in base if v == 0) / len(base)

    def shrunk_mean(values: Sequence[float]) -> float:
        return (sum(values) + _PRIOR_DAYS * overall) / (len(values) + _PRIOR_DAYS)

    means = {k: shrunk_mean(vs) for k, vs in by_day.items()}
    own = by_day.get(wd, [])
    mu = means.get(wd, overall)
    own_empty = sum(1 for v in own if v == 0)
    p_empty = (own_empty + _PRIOR_DAYS * empty_share) / (len(own) + _PRIOR_DAYS)
    # Over-dispersion by moments: variance = mean + φ·mean² (φ = 0 is Poisson).
    excess = sum((v - means[d.weekday() if weekly else 0]) ** 2 for d, v in base) / len(base)
    excess -= sum(means[d.weekday() if weekly else 0] for d, _ in base) / len(base)
    square = sum(means[d.weekday() if weekly else 0] ** 2 for d, _ in base) / len(base)
    phi = max(excess / square, 0.0) if square > 0 else 0.0

    k = cfg.threshold
    alpha = 0.5 * math.erfc((k - 1.0) / math.sqrt(2.0))
    lower, upper = _quantile(mu, phi, alpha), _quantile(mu, phi, 1.0 - alpha)
    below, above = _cdf(mu, phi, value), 1.0 - _cdf(mu, phi, value - 1.0)
    name = _WEEKDAYS[day.weekday()] if weekly else "day"
    usual = f"usual for a {name}" if weekly else "usual for this table"
    band = f"{lower:,}–{upper:,}"
    rows = format_value(value)
    outage = False
    direction: Direction | None = None
    note = ""
    if value == 0:
        if empty_share == 0 and mu >= 1.0:
            direction, outage = "drop", True
        elif below < alpha and p_empty < _USUAL_EMPTY:
            direction = "drop"
        else:
            seen = f"{own_empty} of {len(own)} {name}s" if weekly else f"{own_empty} days"
            note = f"; empty days are usual here ({seen} in the baseline had no rows)"
    elif below < alpha:
        direction = "drop"
    elif above < alpha:
        direction = "spike"

    wanted = {"both": ("drop", "spike"), "drop": ("drop",), "spike": ("spike",)}[cfg.direction]
    status: Status = "anomaly" if direction in wanted else "ok"
    if direction is None:
        reason = f"{rows} rows is within the expected band {band} ({usual}){note}"
    else:
        side = "below" if direction == "drop" else "above"
        reason = f"{rows} rows is {side} the expected band {band} ({usual})"
        if outage:
            reason += ": the table has never been empty before, an outage"
        if status == "ok":
            reason += f", but this monitor only alerts on {cfg.direction}s"
    spread = math.sqrt(mu + phi * mu * mu) if mu > 0 else 1.0
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
