"""Each side of the band follows its own evidence (a table's upward bursts widen its spike
band and not its drop band), and a slow drift over more than five days is caught while it
lasts."""

from __future__ import annotations

import math
import random
from datetime import date, timedelta

from stackyard.monitors.anomaly import Verdict, detect
from stackyard.monitors.anomaly.spread import calm

START = date(2026, 1, 5)  # a Monday


def _days(n: int) -> list[date]:
    return [START + timedelta(days=i) for i in range(n)]


def _noisy(n: int, seed: int, noise: float = 0.05) -> list[float]:
    rng = random.Random(seed)
    return [round(10_000 * math.exp(rng.gauss(0, noise))) for _ in range(n)]


def _widths(verdict: Verdict) -> tuple[float, float]:
    """The band's half-widths in log units: (drop side, spike side)."""
    assert verdict.expected and verdict.lower and verdict.upper
    return (
        math.log(verdict.expected / verdict.lower),
        math.log(verdict.upper / verdict.expected),
    )


def test_upward_bursts_widen_the_spike_band_and_leave_the_drop_band_alone() -> None:
    n = 180
    plain = _noisy(n, 11)
    rng = random.Random(12)
    # Bursts of 1.3-1.6x on one day in twelve or so: heavy tails, all on the upper side.
    bursty = [v * rng.uniform(1.3, 1.6) if rng.random() < 0.08 else v for v in plain]
    drop_plain, spike_plain = _widths(detect(_days(n + 1), [*plain, 10_000.0]))
    drop_bursty, spike_bursty = _widths(detect(_days(n + 1), [*bursty, 10_000.0]))
    assert spike_bursty > 1.3 * spike_plain
    assert drop_bursty < 1.5 * drop_plain  # read on the same side, the bursts would triple it
    # So a drop the plain table alerts on, the bursty one alerts on too.
    assert detect(_days(n + 1), [*bursty, 7_500.0]).status == "anomaly"


def test_a_slow_drift_down_is_caught_while_it_lasts() -> None:
    # Down 2 % a day for twelve days on 4 % noise: no single day leaves the band, and the
    # mean of five days lags a ramp this slow (caught on 3 of these 8 tables when the test
    # averaged at most five days).
    caught = 0
    for seed in range(8):
        values = _noisy(102, 20 + seed, 0.04)
        series = [*values[:90], *(v * (1 - 0.02 * (i + 1)) for i, v in enumerate(values[90:]))]
        days = _days(len(series))
        alerted: list[date] = []
        hits = []
        for i in range(90, len(series)):
            verdict = detect(days[: i + 1], series[: i + 1], exclude=alerted)
            if verdict.is_anomaly:
                alerted.append(days[i])
                hits.append(verdict)
        caught += any(v.sequential and v.direction == "drop" for v in hits)
    assert caught >= 6


def test_a_table_with_calm_tails_gets_closer_bands_than_a_heavy_tailed_one() -> None:
    # Same median error, different tails: Student-t noise with 3 degrees of freedom makes a
    # day several noise units out now and then, normal noise almost never. The calm table's
    # spike band sits closer to its noise (the previous detector's was 4.2 noise units here),
    # so a spike of 4.2 noise units alerts there and not on the heavy-tailed table, whose own
    # days go that far. Its drop band is narrower too, through its lower empirical floor.
    n, noise = 180, 0.05
    rng = random.Random(21)
    calm_table = [round(10_000 * math.exp(rng.gauss(0, noise))) for _ in range(n)]

    def student_t() -> float:
        chi2 = sum(rng.gauss(0, 1) ** 2 for _ in range(3))
        return rng.gauss(0, 1) / math.sqrt(chi2 / 3)

    # A standard t with 3 degrees of freedom has a median absolute value of 0.765 against a
    # normal's 0.674: scaled so both tables have the same median error.
    heavy = [round(10_000 * math.exp(noise * 0.674 / 0.765 * student_t())) for _ in range(n)]
    for table, expected in ((calm_table, 1.0), (heavy, 0.0)):
        errors = sorted(abs(math.log(v / 10_000)) for v in table)
        assert calm(errors) == expected
    calm_drop, calm_spike = _widths(detect(_days(n + 1), [*calm_table, 10_000.0]))
    heavy_drop, heavy_spike = _widths(detect(_days(n + 1), [*heavy, 10_000.0]))
    assert calm_drop < heavy_drop and calm_spike < heavy_spike
    assert calm_spike / noise < 4.0
    day = round(10_000 * math.exp(4.2 * noise))
    assert detect(_days(n + 1), [*calm_table, day]).is_anomaly
    assert not detect(_days(n + 1), [*heavy, day]).is_anomaly


def test_calm_tails_are_read_from_forty_five_errors_on() -> None:
    # Fewer than 45 errors never read calm: the 98th percentile of so few is the largest error.
    from statistics import NormalDist

    def normal_errors(n: int) -> list[float]:
        # the absolute errors of normal noise (5 %), as evenly spread as n of them can be
        return [0.05 * NormalDist().inv_cdf(0.5 + 0.5 * (i + 0.5) / n) for i in range(n)]

    assert calm(normal_errors(60)) == calm(normal_errors(200)) == 1.0
    assert calm(normal_errors(45)) > 0.5  # its largest error counts as its 98th percentile
    assert calm(normal_errors(44)) == 0.0
