"""Generator C for the anomaly benchmark, written without looking at the detector's models.

Where A and B are mostly steady tables with a weekly cycle, C draws the shapes that broke
detectors on real projects, each feature independently per table:

* **Weekly and monthly seasonality together:** a month-end close (the last one to three days
  of each month 1.2–2.5x busier), a mid-month payroll day, or a quiet first week.
* **Trend changes:** the growth rate is redrawn at one to three change points.
* **Sparse tables:** a quarter of the tables count a few rows a day (mean 0.5–30) with extra
  empty days (up to half of them), some only on certain weekdays; counts are drawn as
  negative-binomial numbers, not rounded volumes.
* **Bursty, heavy-tailed tables:** occasional legitimate bursts (x1.4–3 for a day, 1–5 % of
  days) and noise with Student-t tails.
* **Legitimate level shifts:** a new customer or a new source (x1.3–2.0 from a day on, away
  from every incident). Alerts on them count as false: nobody has to act.
* Another calendar (US holidays of 2023), 200–330 days, four incidents of the same seven kinds
  as A and B, sizes drawn from C's own ranges; on sparse tables an outage is a run of empty
  days long enough to be unusual for the table.

Seeds are split into tuning and held-out ones by bench/anomaly_detector.py.
"""

from __future__ import annotations

import calendar
import math
import random
from collections.abc import Callable
from datetime import date, timedelta

from anomaly_data import Incident, Table

FIRST = date(2023, 1, 2)
US_2023 = frozenset(
    {
        date(2023, 1, 16),
        date(2023, 2, 20),
        date(2023, 5, 29),
        date(2023, 7, 4),
        date(2023, 9, 4),
        date(2023, 10, 9),
        date(2023, 11, 23),
        date(2023, 11, 24),
        date(2023, 12, 25),
    }
)
ORDER = (
    "outage",
    "partial_drop",
    "late_arrival",
    "duplicate_spike",
    "step_down",
    "small_drop",
    "slow_drift",
)
N_INCIDENTS = 4
EARLIEST = 70
GAP = 30


def _gamma_poisson(rng: random.Random, mean: float, shape: float) -> int:
    """A negative-binomial draw: Poisson with a gamma-distributed rate (shape = 1/φ)."""
    if mean <= 0:
        return 0
    rate = rng.gammavariate(shape, mean / shape)
    if rate > 500:
        return max(0, round(rng.gauss(rate, math.sqrt(rate))))
    threshold, k, product = math.exp(-rate), 0, rng.random()
    while product > threshold:
        k += 1
        product *= rng.random()
    return k


def _t_noise(rng: random.Random, dof: float) -> float:
    # Student-t with unit variance, by the ratio of a normal to a chi distribution.
    chi = rng.gammavariate(dof / 2, 2.0) / dof
    return rng.gauss(0, 1) / math.sqrt(chi) * math.sqrt((dof - 2) / dof)


def _monthly(rng: random.Random) -> Callable[[date], float]:
    style = rng.choice(("none", "none", "close", "payroll", "quiet_start"))
    amp = rng.uniform(1.2, 2.5)
    span = rng.randint(1, 3)

    def factor(d: date) -> float:
        last = calendar.monthrange(d.year, d.month)[1]
        if style == "close" and d.day > last - span:
            return amp
        if style == "payroll" and d.day in (15, last):
            return 0.5 + amp / 2
        if style == "quiet_start" and d.day <= 7:
            return 1 / (0.5 + amp / 2)
        return 1.0

    return factor


def make_table(seed: int, index: int) -> Table:
    """One table of generator C (see the module docstring)."""
    rng = random.Random(f"generator-c/{seed}/{index}")
    n = rng.randint(200, 330)
    dates = [FIRST + timedelta(days=i) for i in range(n)]
    sparse = rng.random() < 0.25
    bursty = not sparse and rng.random() < 0.3
    shifts = rng.random() < 0.3

    week = [math.exp(rng.gauss(0, 0.15)) for _ in range(7)]
    if rng.random() < 0.6:
        low = rng.uniform(0.15, 0.9)
        week[5] *= low
        week[6] *= low * rng.uniform(0.7, 1.2)
    monthly = _monthly(rng)

    # Piecewise growth: one to three change points, a new daily rate after each.
    cuts = sorted(rng.sample(range(30, n - 10), rng.randint(1, 3)))
    rates = [math.log(1 + rng.uniform(-0.5, 1.2)) / 365 for _ in range(len(cuts) + 1)]
    trend, level = [], 0.0
    for i in range(n):
        level += rates[sum(1 for c in cuts if c <= i)]
        trend.append(level)

    # Incident starts first: legitimate shifts and bursts keep away from them.
    slack = n - 25 - EARLIEST - (N_INCIDENTS - 1) * GAP
    offsets = sorted(rng.randint(0, max(slack, 0)) for _ in range(N_INCIDENTS))
    starts = [EARLIEST + o + GAP * i for i, o in enumerate(offsets)]
    busy = {s + o for s in starts for o in range(-3, 20)}
    free = [i for i in range(40, n) if i not in busy]

    shift_mult = [1.0] * n
    if shifts and free:
        for at in rng.sample(free, min(rng.randint(1, 2), len(free))):
            jump = rng.uniform(1.3, 2.0)
            for i in range(at, n):
                shift_mult[i] *= jump

    # Sorted: a set of dates iterates in an order that changes from process to process.
    kept = sorted(h for h in US_2023 if h in set(dates) and dates.index(h) not in busy)
    holidays = frozenset(rng.sample(kept, min(len(kept), rng.randint(2, 6))))
    holiday_dip = rng.uniform(0.05, 0.8)

    values: list[float] = []
    if sparse:
        mean = 10 ** rng.uniform(-0.3, 1.5)
        shape = rng.uniform(1.0, 20.0)
        # Extra empty days: everywhere alike, or concentrated on some weekdays.
        empty = [rng.uniform(0.0, 0.5)] * 7
        if rng.random() < 0.4:
            empty = [rng.choice((0.0, rng.uniform(0.3, 0.8))) for _ in range(7)]
        for i, d in enumerate(dates):
            mu = mean * week[d.weekday()] * monthly(d) * math.exp(trend[i]) * shift_mult[i]
            if d in holidays:
                mu *= holiday_dip
            values.append(
                0.0 if rng.random() < empty[d.weekday()] else _gamma_poisson(rng, mu, shape)
            )
    else:
        base = 10 ** rng.uniform(1.8, 6.5)
        spread = rng.uniform(0.02, 0.3)
        dof = rng.uniform(2.5, 8.0) if bursty or rng.random() < 0.3 else 0.0
        burst_rate = rng.uniform(0.01, 0.05) if bursty else 0.0
        ar = rng.uniform(0.0, 0.8)
        drift = 0.0
        for i, d in enumerate(dates):
            shock = _t_noise(rng, dof) if dof else rng.gauss(0, 1)
            drift = ar * drift + math.sqrt(1 - ar * ar) * spread * shock
            mu = base * week[d.weekday()] * monthly(d) * math.exp(trend[i] + drift)
            mu *= shift_mult[i]
            if burst_rate and i not in busy and rng.random() < burst_rate:
                mu *= rng.uniform(1.4, 3.0)
            if d in holidays:
                mu *= holiday_dip
            values.append(float(_gamma_poisson(rng, mu, 200.0)) if mu < 2000 else round(mu))

    kinds = list(ORDER)
    rng.shuffle(kinds)
    incidents = [
        _incident(rng, kind, start, values, sparse)
        for kind, start in zip(kinds[:N_INCIDENTS], starts, strict=True)
    ]
    return Table(
        f"c{seed}_{index:03d}", dates, [float(v) for v in values], holidays, incidents, 0.0
    )


def _incident(
    rng: random.Random, kind: str, start: int, values: list[float], sparse: bool
) -> Incident:
    n = len(values)

    def scale(days: range | tuple[int, ...], factor: float) -> None:
        for i in days:
            values[i] = float(round(values[i] * factor)) if sparse else values[i] * factor

    if kind == "outage":
        if sparse:
            # A broken feed of a table that is often empty stays broken until someone notices:
            # as many empty days as it takes for the run to be unusual (one in a thousand).
            share = sum(1 for v in values[:start] if v == 0) / max(start, 1)
            length = 1 if share == 0 else min(10, max(2, math.ceil(-3 / math.log10(share))))
        else:
            length = rng.choice((1, 1, 2, 3))
        days = range(start, min(n, start + length))
        for i in days:
            values[i] = 0.0
        return Incident(kind, start, tuple(days), tuple(days))
    if kind == "partial_drop":
        days = range(start, start + rng.randint(1, 3 if sparse else 2))
        scale(days, rng.uniform(0.15, 0.45) if sparse else rng.uniform(0.25, 0.65))
        return Incident(kind, start, tuple(days), tuple(days))
    if kind == "late_arrival":
        moved = values[start] * rng.uniform(0.4, 0.8)
        values[start] -= moved
        values[start + 1] += moved
        if sparse:
            values[start], values[start + 1] = (
                float(round(values[start])),
                float(round(values[start + 1])),
            )
        days = (start, start + 1)
        return Incident(kind, start, days, days)
    if kind == "duplicate_spike":
        length = rng.choice((1, 1, 2))
        days = range(start, start + length)
        scale(days, rng.uniform(2.0, 3.0) if sparse else rng.uniform(1.5, 3.0))
        return Incident(kind, start, tuple(days), tuple(days))
    if kind == "step_down":
        scale(range(start, n), rng.uniform(0.35, 0.6) if sparse else rng.uniform(0.6, 0.82))
        return Incident(kind, start, tuple(range(start, start + 4)), tuple(range(start, start + 9)))
    if kind == "small_drop":
        scale((start,), rng.uniform(0.4, 0.6) if sparse else rng.uniform(0.7, 0.85))
        return Incident(kind, start, (start,), (start,))
    length = rng.randint(4, 14)
    target = math.log(rng.uniform(0.3, 0.5) if sparse else rng.uniform(0.45, 0.72))
    for i in range(start, n):
        factor = math.exp(target * min(1.0, (i - start + 1) / length))
        values[i] = float(round(values[i] * factor)) if sparse else values[i] * factor
    return Incident(
        kind,
        start,
        tuple(range(start, start + length + 3)),
        tuple(range(start, start + length + 9)),
    )
