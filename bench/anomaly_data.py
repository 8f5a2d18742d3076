"""Generator A for the anomaly benchmark: broad synthetic daily row counts with incidents.

Each table draws its own length (180–300 days), level, weekly profile (weekend factor
0.2–1.0, or none), trend, autocorrelated wander, log-noise from 2 % to 30 %, two to seven
holidays with their own dip, and four incidents from the seven kinds below, each with a size
and duration drawn from a wide range. Tables are numbered within a seed; the benchmark tunes
on some seeds and reports on others it never saw (bench/anomaly_detector.py).

A second, independently written generator (bench/anomaly_data_b.py) is split the same way.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

START = date(2024, 1, 1)
# Each table's length is drawn from this range.
MIN_DAYS, MAX_DAYS = 180, 300
KINDS = (
    "outage",
    "partial_drop",
    "late_arrival",
    "duplicate_spike",
    "step_down",
    "small_drop",
    "slow_drift",
)
INCIDENTS_PER_TABLE = 4
# Incidents start once every detector has a full training window and some slack.
FIRST_INCIDENT_DAY = 63
# A step down must be caught within 4 days; alerts up to 8 days after it are still about it.
STEP_CATCH_DAYS = 4
STEP_ALLOWED_DAYS = 8
# A plausible European business calendar for 2024; each table keeps two to seven of them.
HOLIDAYS = frozenset(
    date(2024, m, d)
    for m, d in [(1, 1), (3, 29), (4, 1), (5, 1), (5, 9), (5, 20), (8, 15), (10, 3)]
)


@dataclass(frozen=True)
class Incident:
    """One injected incident.

    Attributes:
        kind: one of :data:`KINDS`.
        start: index of its first day.
        window: days on which an alert catches it.
        allowed: days on which an alert is a true alert (a superset of ``window``).
    """

    kind: str
    start: int
    window: tuple[int, ...]
    allowed: tuple[int, ...]


@dataclass(frozen=True)
class Table:
    """One synthetic table.

    Attributes:
        noise: the spread of its log-noise (0.0 where the generator records none).
        tails: the Student-t degrees of freedom of that noise; ``None`` for Gaussian noise.
        counted: whether each day's count was drawn as a Poisson number around its volume.
    """

    name: str
    dates: list[date]
    values: list[float]
    holidays: frozenset[date]
    incidents: list[Incident]
    noise: float
    tails: float | None = None
    counted: bool = False


def make_table(seed: int, index: int) -> Table:
    """One table of generator A: 180–300 days with four incidents injected."""
    rng = random.Random(f"anomaly-a-{seed}-{index}")
    dates = [START + timedelta(days=i) for i in range(rng.randint(MIN_DAYS, MAX_DAYS))]
    starts = _starts(rng, dates)
    # Holidays stay clear of incidents, so every alert belongs to at most one incident and a
    # holiday never masks or fakes one.
    near = {dates[i + o] for i in starts for o in range(-1, 14) if i + o < len(dates)}
    free = sorted(HOLIDAYS - near)
    holidays = frozenset(rng.sample(free, min(rng.randint(2, 7), len(free))))
    base = 10 ** rng.uniform(2.5, 6)
    if rng.random() < 0.75:
        weekend = rng.uniform(0.2, 1.0)
        weekly = [1 + rng.uniform(-0.1, 0.1) for _ in range(5)]
        weekly += [weekend, weekend * rng.uniform(0.8, 1.1)]
    else:
        weekly = [1.0] * 7
    holiday_factor = rng.uniform(0.1, 0.9)
    slope = math.log(1 + rng.uniform(-0.4, 1.0)) / 365
    noise = rng.uniform(0.02, 0.30)
    wander, wander_sd = 0.0, rng.uniform(0.0, 0.3) * noise

    values = []
    for i, d in enumerate(dates):
        wander = 0.9 * wander + rng.gauss(0, wander_sd)
        v = base * weekly[d.weekday()] * math.exp(slope * i + wander + rng.gauss(0, noise))
        values.append(v * holiday_factor if d in holidays else v)

    kinds = list(KINDS)
    rng.shuffle(kinds)
    incidents = []
    for kind, start in zip(kinds[:INCIDENTS_PER_TABLE], starts, strict=True):
        incidents.append(_inject(rng, kind, start, values))
    return Table(
        f"a{seed}_{index:03d}",
        dates,
        [float(round(v)) for v in values],
        holidays,
        incidents,
        noise,
    )


def _inject(rng: random.Random, kind: str, start: int, values: list[float]) -> Incident:
    def one(days: Sequence[int]) -> Incident:
        return Incident(kind, start, tuple(days), tuple(days))

    if kind == "outage":
        days = range(start, start + (1 if rng.random() < 0.7 else 2))
        for i in days:
            values[i] = 0.0
        return one(days)
    if kind == "partial_drop":
        factor = rng.uniform(0.3, 0.7)
        days = range(start, start + rng.choice((1, 2)))
        for i in days:
            values[i] *= factor
        return one(days)
    if kind == "late_arrival":
        late = values[start] * rng.uniform(0.3, 0.7)
        values[start] -= late
        values[start + 1] += late
        return one((start, start + 1))
    if kind == "duplicate_spike":
        values[start] *= rng.uniform(1.6, 2.6)
        return one((start,))
    if kind == "step_down":
        factor = rng.uniform(0.65, 0.85)
        for i in range(start, len(values)):
            values[i] *= factor
        return Incident(
            kind,
            start,
            tuple(range(start, start + STEP_CATCH_DAYS)),
            tuple(range(start, start + STEP_ALLOWED_DAYS)),
        )
    if kind == "small_drop":
        values[start] *= rng.uniform(0.72, 0.88)
        return one((start,))
    # slow_drift: volume slides down by 30-50 % over 5-15 days, then stays there.
    total = math.log(rng.uniform(0.5, 0.7))
    length = rng.randint(5, 15)
    for i in range(start, len(values)):
        values[i] *= math.exp(total * min(1.0, (i - start + 1) / length))
    return Incident(
        kind,
        start,
        tuple(range(start, start + length + 3)),
        tuple(range(start, start + length + STEP_ALLOWED_DAYS)),
    )


def _starts(rng: random.Random, dates: Sequence[date]) -> list[int]:
    # At least 28 days apart, so every alert belongs to at most one incident. Drawn as gaps,
    # not by rejection: short tables leave little slack.
    slack = len(dates) - 22 - FIRST_INCIDENT_DAY - 1 - (INCIDENTS_PER_TABLE - 1) * 28
    offsets = sorted(rng.randint(0, slack) for _ in range(INCIDENTS_PER_TABLE))
    return [FIRST_INCIDENT_DAY + o + 28 * i for i, o in enumerate(offsets)]
