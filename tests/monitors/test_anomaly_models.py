"""The detector's models beyond one day's band: the sequential test for steps and drifts,
noise per weekday, the count model for sparse tables and the level model for column means."""

from __future__ import annotations

import math
import random
from datetime import date, timedelta

import pytest

from stackyard.monitors.anomaly import detect, detect_level

START = date(2026, 1, 5)  # a Monday


def _days(n: int) -> list[date]:
    return [START + timedelta(days=i) for i in range(n)]


def _noisy(n: int, noise: float, seed: int, level: float = 10_000.0) -> list[float]:
    rng = random.Random(seed)
    return [round(level * math.exp(rng.gauss(0, noise))) for _ in range(n)]


def test_a_step_down_no_single_day_shows_is_caught_within_four_days() -> None:
    caught = 0
    for seed in range(20):
        values = _noisy(70, 0.06, seed)
        stepped = values[:60] + [v * 0.75 for v in values[60:]]
        alerted: list[date] = []
        days = _days(70)
        first = None
        for i in range(60, 64):
            verdict = detect(days[: i + 1], stepped[: i + 1], exclude=alerted)
            if verdict.is_anomaly:
                alerted.append(days[i])
                first = first or verdict
        if first is not None:
            caught += 1
    assert caught >= 18  # a −25 % step on 6 % noise: caught nearly always, and quickly


def test_the_sequential_verdict_says_it_is_a_step() -> None:
    rng = random.Random(1)
    values = [10_000 * math.exp(rng.gauss(0, 0.05)) for _ in range(60)]
    # −12 %: on a calm table a −15 % day is already outside the one-day band.
    values += [8_800 * math.exp(rng.gauss(0, 0.05)) for _ in range(5)]
    verdicts = [detect(_days(k + 1), values[: k + 1]) for k in range(60, 65)]
    sequential = [v for v in verdicts if v.sequential]
    assert sequential and sequential[0].status == "anomaly"
    assert sequential[0].lower is not None and sequential[0].lower < sequential[0].value
    assert "below the level before them: a step or a slow drift" in sequential[0].reason


def test_a_noisy_weekday_gets_its_own_wider_band() -> None:
    rng = random.Random(3)
    days = _days(57)
    values = [1000.0 * math.exp(rng.gauss(0, 0.4 if d.weekday() == 6 else 0.03)) for d in days[:-1]]
    sunday = [d for d in days if d.weekday() == 6][-1]
    tuesday = [d for d in days if d.weekday() == 1][-1]
    upto_sunday = [d for d in days if d <= sunday]
    upto_tuesday = [d for d in days if d <= tuesday]
    on_sunday = detect(upto_sunday, [*values[: len(upto_sunday) - 1], 1600.0])
    on_tuesday = detect(upto_tuesday, [*values[: len(upto_tuesday) - 1], 1600.0])
    assert on_sunday.status == "ok" and on_tuesday.status == "anomaly"


def test_a_sparse_table_is_judged_as_counts_in_whole_rows() -> None:
    rng = random.Random(8)
    values = [0.0 if rng.random() < 0.3 else float(rng.randint(2, 12)) for _ in range(57)]
    usual_zero = detect(_days(57), [*values[:-1], 0.0])
    assert usual_zero.status == "ok" and usual_zero.model == "count"
    assert "empty days are usual here" in usual_zero.reason
    assert usual_zero.lower == int(usual_zero.lower or 0)
    flood = detect(_days(57), [*values[:-1], 90.0])
    assert flood.status == "anomaly" and flood.direction == "spike"


def test_an_outage_on_a_small_table_that_is_never_empty_always_alerts() -> None:
    rng = random.Random(9)
    values = [float(rng.randint(1, 6)) for _ in range(40)]
    verdict = detect(_days(41), [*values, 0.0])
    assert verdict.model == "count" and verdict.status == "anomaly"
    assert "never been empty before, an outage" in verdict.reason


def test_a_small_table_steadier_than_chance_is_judged_by_its_own_spread() -> None:
    """A table of six rows a day, every day (one per store), passed 1 row: the count bands
    were Poisson's (0–20), which no table varies less than. Its band is its own now, and a
    table whose counts vary as chance makes them keeps the count bands."""
    steady = [6.0] * 90
    lost = detect(_days(91), [*steady, 1.0])
    assert (lost.model, lost.status, lost.direction) == ("count", "anomaly", "drop")
    assert "1 row is below the expected band 4–8" in lost.reason
    assert detect(_days(91), [*steady, 5.0]).status == "ok"
    assert detect(_days(91), [*steady, 12.0]).direction == "spike"  # loaded twice
    rng = random.Random(3)
    stores = [float(sum(rng.random() < 0.9 for _ in range(14))) for _ in range(90)]
    assert detect(_days(91), [*stores, 6.0]).status == "anomaly"
    chance = [float(rng.randint(1, 11)) for _ in range(90)]  # as spread as Poisson's 6
    verdict = detect(_days(91), [*chance, 1.0])
    assert verdict.status == "ok" and verdict.model == "count"


def test_a_level_series_catches_a_unit_change_and_accepts_negative_values() -> None:
    days = _days(29)
    means = [-2.0 + 0.05 * (i % 4) for i in range(28)]
    assert detect_level(days, [*means, -1.95]).status == "ok"
    cents = detect_level(days, [*means, -190.0], what="the mean of delta")
    assert cents.status == "anomaly" and cents.direction == "drop"
    assert cents.reason.startswith("the mean of delta is -190")
    np = pytest.importorskip("numpy")
    as_arrays = detect_level(np.array(days, dtype="datetime64[D]"), np.array([*means, -190.0]))
    assert as_arrays == detect_level(days, [*means, -190.0])


def test_a_drifting_level_is_judged_along_its_trend() -> None:
    # The daily mean of an id: new customers get higher ids, so the level climbs about one a
    # day, with the noise of a mean over ~100 rows. Judged day by day, over 20 series and 60
    # days each, an ordinary day is (almost) never an anomaly — and a unit change still is.
    days = _days(181)
    false_alerts = 0
    for seed in range(20):
        rng = random.Random(seed)
        means = [600 + 1.2 * i + rng.gauss(0, 40) for i in range(180)]
        false_alerts += sum(
            detect_level(days[: i + 1], means[: i + 1]).is_anomaly for i in range(120, 180)
        )
        assert detect_level(days, [*means, means[-1] * 100]).direction == "spike"
    assert false_alerts <= 12  # 1 % of 1,200 judged days


def _student_t(rng: random.Random, dof: int) -> float:
    chi2 = sum(rng.gauss(0, 1) ** 2 for _ in range(dof))
    return rng.gauss(0, 1) / math.sqrt(chi2 / dof)


def test_a_table_with_heavy_tailed_noise_gets_a_wider_one_day_band() -> None:
    # Same typical day-to-day wobble (median absolute error), but one table has the odd
    # wild day as part of its normal life: its band must leave room for those days.
    n = 200
    normal_rng, heavy_rng = random.Random(4), random.Random(4)
    normal = [10_000 * math.exp(0.06 * normal_rng.gauss(0, 1)) for _ in range(n)]
    heavy = [10_000 * math.exp(0.06 / 1.22 * _student_t(heavy_rng, 3)) for _ in range(n)]
    days = _days(n + 1)
    calm, wild = detect(days, [*normal, 10_000.0]), detect(days, [*heavy, 10_000.0])
    assert calm.upper is not None and wild.upper is not None
    assert math.log(wild.upper / 10_000) > 1.5 * math.log(calm.upper / 10_000)
    # ... and still no room for a tenfold day.
    assert detect(days, [*heavy, 100_000.0]).status == "anomaly"


def _month_end_table(n: int) -> tuple[list[date], list[float]]:
    # Steady volume with ±4 % noise; the last day of every month closes the books at 2.5x.
    rng = random.Random(12)
    days = [date(2026, 1, 1) + timedelta(days=i) for i in range(n)]
    values = [
        1000.0
        * (2.5 if (d + timedelta(days=1)).day == 1 else 1.0)
        * math.exp(0.04 * rng.gauss(0, 1))
        for d in days
    ]
    return days, values


def test_a_month_end_close_seen_in_earlier_months_does_not_alert() -> None:
    days, values = _month_end_table(151)  # up to 31 May 2026
    assert days[-1] == date(2026, 5, 31)
    # Every earlier month-end alerted and was excluded, as a monitor does: still learnt.
    alerted = [d for d in days[:-1] if (d + timedelta(days=1)).day == 1]
    close = detect(days, values, exclude=alerted)
    assert close.status == "ok", close.reason
    assert "the last day of a month" in close.reason
    # The same 2.5x on an ordinary day is a spike ...
    ordinary = detect(days[:-1], [*values[:-2], 2500.0], exclude=alerted)
    assert ordinary.status == "anomaly" and ordinary.direction == "spike"
    # ... and a month-end that does not close is a drop.
    missed = detect(days, [*values[:-1], 1000.0], exclude=alerted)
    assert missed.status == "anomaly" and missed.direction == "drop"


def test_a_month_end_needs_two_earlier_months_to_be_learnt() -> None:
    days, values = _month_end_table(59)  # up to 28 February: only January before
    assert days[-1] == date(2026, 2, 28)
    assert detect(days, values).status == "anomaly"
    days, values = _month_end_table(90)  # up to 31 March: January and February before
    alerted = [date(2026, 1, 31), date(2026, 2, 28)]
    close = detect(days, values, exclude=alerted)
    assert close.status == "ok", close.reason
    assert "the last day of a month" in close.reason


def test_a_drop_on_a_table_that_is_often_empty_still_alerts() -> None:
    rng = random.Random(13)
    values = [
        0.0 if rng.random() < 0.33 else 1000.0 * math.exp(0.08 * rng.gauss(0, 1)) for _ in range(56)
    ]
    days = _days(57)
    assert detect(days, [*values, 0.0]).status == "ok"
    assert detect(days, [*values, 1050.0]).status == "ok"
    drop = detect(days, [*values, 350.0])
    assert drop.model == "count" and drop.status == "anomaly" and drop.direction == "drop"


def test_the_reasons_of_a_small_table_empty_only_on_a_day_alerted_on_say_so() -> None:
    rng = random.Random(3)
    days = [date(2026, 9, 1) + timedelta(days=i) for i in range(70)]
    values = [float(rng.choice([8, 9, 10, 11, 12, 14])) for _ in days]
    values[-20] = 0.0  # an outage, alerted on then
    values[-2] = values[-1] = 0.0
    run = detect(days, values, exclude=[days[-20]])
    # Before: "the table is often empty, but a run this long …" for a table empty one day.
    assert run.model == "count" and run.status == "anomaly"
    assert "the table is rarely empty, and a run this long is not usual" in run.reason
    one = detect(days[:-1], values[:-1], exclude=[days[-20]])
    # Before: "empty days are usual here (0 of 55 days in the baseline had no rows)".
    assert "0 of 55 days" not in one.reason
    assert f"the table was empty before, on {days[-20]} (alerted on then)" in one.reason


def test_an_empty_day_that_is_rare_but_within_chance_says_so() -> None:
    """A table of a few rows on weekdays and none at weekends: an empty Friday is within
    chance for its ~4 rows (no alert), but not "usual" when no Friday was empty before."""
    rng = random.Random(11)
    days = [date(2026, 8, 8) + timedelta(days=i) for i in range(119)]
    values = [0.0 if d.weekday() >= 5 else float(rng.randint(2, 8)) for d in days]
    assert days[-1].weekday() == 4
    values[-1] = 0.0
    verdict = detect(days, values)
    assert verdict.model == "count" and verdict.status == "ok"
    # Before: "0 rows (usual for a Friday); empty days are usual here (0 of 8 Fridays in the
    # baseline had no rows)": a verdict against its own reason.
    assert "usual" not in verdict.reason, verdict.reason
    assert "within chance for a Friday" in verdict.reason
    assert "rarely empty before (0 of" in verdict.reason
