"""Generator B for the anomaly benchmark, written apart from generator A; like A, some of
its seeds are for tuning and others are held out (bench/anomaly_detector.py).

It differs from A on purpose: weekday profiles of other shapes (a Monday peak, a mid-week
hump, a busy weekend, a Sunday-only dip, random), a monthly cycle, heavy-tailed noise
(Student-t with 3-6 degrees of freedom, scaled to a drawn spread of 2-30 %), counting noise on
small tables (daily means down to 8 rows, sampled as Poisson), 180-260 days, three incidents
per table instead of four, another calendar and year, and incident sizes drawn from their
own ranges.
"""

from __future__ import annotations

import math
import random
from datetime import date, timedelta

from anomaly_data import Incident, Table

FIRST_DAY = date(2025, 2, 3)
MIN_LENGTH, MAX_LENGTH = 180, 260
CALENDAR = frozenset({date(2025, 2, 17), date(2025, 5, 26), date(2025, 7, 4), date(2025, 9, 1)})
SORTS = (
    "outage",
    "partial_drop",
    "late_arrival",
    "duplicate_spike",
    "step_down",
    "small_drop",
    "slow_drift",
)


def _student_t(rng: random.Random, dof: int) -> float:
    chi2 = sum(rng.gauss(0, 1) ** 2 for _ in range(dof))
    # Scaled to unit variance so that "noise" means the same spread as a Gaussian's.
    return rng.gauss(0, 1) / math.sqrt(chi2 / dof) * math.sqrt((dof - 2) / dof)


def _poisson(rng: random.Random, mean: float) -> int:
    if mean > 200:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _profile(rng: random.Random) -> list[float]:
    shape = rng.choice(("flat", "monday", "hump", "weekend", "sunday", "random"))
    if shape == "flat":
        return [1.0] * 7
    if shape == "monday":
        return [rng.uniform(1.3, 1.8), 1.1, 1.0, 1.0, 0.95, rng.uniform(0.3, 0.7), 0.5]
    if shape == "hump":
        peak = rng.uniform(1.1, 1.5)
        return [0.9, 1.0, peak, 1.0, 0.9, rng.uniform(0.4, 0.8), rng.uniform(0.4, 0.8)]
    if shape == "weekend":  # consumer traffic: busier at the weekend
        up = rng.uniform(1.2, 2.0)
        return [1.0, 1.0, 1.0, 1.0, 1.1, up, up * 0.9]
    if shape == "sunday":
        return [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, rng.uniform(0.2, 0.5)]
    return [math.exp(rng.gauss(0, 0.25)) for _ in range(7)]


def make_table(seed: int, index: int) -> Table:
    """One held-out table of generator B."""
    rng = random.Random(seed * 100_003 + index * 7919)
    small = rng.random() < 0.25
    mean = rng.uniform(8, 150) if small else math.exp(rng.uniform(math.log(300), math.log(3e6)))
    weekday = _profile(rng)
    month_amp = rng.uniform(0.0, 0.12)
    month_phase = rng.uniform(0, 2 * math.pi)
    growth = rng.uniform(-0.002, 0.003)
    sd = rng.uniform(0.02, 0.30)
    dof = rng.choice((3, 4, 5, 6, 30))
    holiday_level = rng.uniform(0.05, 0.7)

    days = [FIRST_DAY + timedelta(days=n) for n in range(rng.randint(MIN_LENGTH, MAX_LENGTH))]
    starts = _spaced_starts(rng, days)
    # Holidays next to an incident are dropped from this table's calendar, so a holiday never
    # masks or fakes one.
    near = {days[p + k] for p in starts for k in range(-1, 16) if p + k < len(days)}
    calendar = CALENDAR - near
    expected = []
    for n, d in enumerate(days):
        level = mean * weekday[d.weekday()] * math.exp(growth * n)
        level *= 1 + month_amp * math.sin(2 * math.pi * d.day / 30.5 + month_phase)
        if d in calendar:
            level *= holiday_level
        expected.append(level * math.exp(sd * _student_t(rng, dof)))

    # Incidents change the expected volume; counting noise is applied afterwards, as in life.
    chosen = rng.sample(SORTS, 3)
    incidents = [_apply(rng, kind, s, expected) for kind, s in zip(chosen, starts, strict=True)]
    values = [float(_poisson(rng, v)) if small else float(round(v)) for v in expected]
    return Table(f"b{seed}_{index:03d}", days, values, calendar, incidents, sd, dof, small)


def _spaced_starts(rng: random.Random, days: list[date]) -> list[int]:
    # At least 30 days apart, drawn as gaps rather than by rejection (short tables leave
    # little slack).
    slack = len(days) - 24 - 70 - 1 - 60
    offsets = sorted(rng.randint(0, slack) for _ in range(3))
    return [70 + o + 30 * i for i, o in enumerate(offsets)]


def _apply(rng: random.Random, kind: str, s: int, x: list[float]) -> Incident:
    if kind == "outage":
        span = [s] if rng.random() < 0.6 else [s, s + 1]
        for n in span:
            x[n] = 0.0
        return Incident(kind, s, tuple(span), tuple(span))
    if kind == "partial_drop":
        keep = 1 - rng.triangular(0.3, 0.7, 0.5)
        span = [s] if rng.random() < 0.5 else [s, s + 1]
        for n in span:
            x[n] *= keep
        return Incident(kind, s, tuple(span), tuple(span))
    if kind == "late_arrival":
        moved = x[s] * rng.triangular(0.35, 0.65, 0.5)
        x[s] -= moved
        x[s + 1] += moved
        return Incident(kind, s, (s, s + 1), (s, s + 1))
    if kind == "duplicate_spike":
        x[s] *= rng.uniform(1.6, 2.5)
        return Incident(kind, s, (s,), (s,))
    if kind == "step_down":
        drop = rng.uniform(0.65, 0.85)
        for n in range(s, len(x)):
            x[n] *= drop
        return Incident(kind, s, tuple(range(s, s + 4)), tuple(range(s, s + 8)))
    if kind == "small_drop":
        x[s] *= rng.uniform(0.72, 0.88)
        return Incident(kind, s, (s,), (s,))
    ramp = rng.randint(5, 15)
    floor = rng.uniform(0.5, 0.7)
    for n in range(s, len(x)):
        x[n] *= floor ** min(1.0, (n - s + 1) / ramp)
    return Incident(kind, s, tuple(range(s, s + ramp + 3)), tuple(range(s, s + ramp + 8)))
