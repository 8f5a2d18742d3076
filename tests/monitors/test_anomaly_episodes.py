"""A change already alerted on is not alerted again; a table that bursts gets a wider spike
band; a broken feed of an often-empty table is caught as a run of empty days."""

from __future__ import annotations

import math
import random
from datetime import date, timedelta

from stackyard.monitors.anomaly import detect

START = date(2026, 1, 5)  # a Monday


def _days(n: int) -> list[date]:
    return [START + timedelta(days=i) for i in range(n)]


def _noisy(n: int, seed: int, noise: float = 0.03) -> list[float]:
    rng = random.Random(seed)
    return [round(10_000 * math.exp(rng.gauss(0, noise))) for _ in range(n)]


def test_a_rise_alerted_on_is_not_alerted_again_the_next_days() -> None:
    days = _days(62)
    values = [*_noisy(60, 1), 18_000.0, 18_200.0]
    first = detect(days[:61], values[:61])
    assert first.status == "anomaly" and first.direction == "spike"
    # The next day at the same new level continues the change the first alert reported.
    second = detect(days, values, exclude=[days[60]])
    assert second.status == "ok", second.reason
    assert second.direction == "spike"
    assert f"as on {days[60]}, which was alerted on" in second.reason
    # Without the earlier alert it is news, and alerts.
    assert detect(days, values).status == "anomaly"
    # A day that goes much further than the day alerted on is news again.
    further = detect(days, [*values[:61], 60_000.0], exclude=[days[60]])
    assert further.status == "anomaly"


def test_a_drop_alerted_on_keeps_alerting_while_it_lasts() -> None:
    days = _days(62)
    values = [*_noisy(60, 2), 4_000.0, 4_100.0]
    assert detect(days[:61], values[:61]).status == "anomaly"
    assert detect(days, values, exclude=[days[60]]).status == "anomaly"


def test_a_table_with_earlier_bursts_gets_a_wider_spike_band() -> None:
    n = 150
    days = _days(n + 1)
    plain = _noisy(n, 3)
    bursty = [v * 2.2 if i in (40, 75, 110) else v for i, v in enumerate(plain)]
    burst_days = [days[i] for i in (40, 75, 110)]
    # Each earlier burst was alerted on and excluded, as a monitor does; still remembered.
    assert detect(days, [*bursty, 19_000.0], exclude=burst_days).status == "ok"
    assert detect(days, [*plain, 19_000.0]).status == "anomaly"
    # Drops keep their band on a table that bursts.
    assert detect(days, [*bursty, 5_000.0], exclude=burst_days).status == "anomaly"


def test_a_broken_feed_of_an_often_empty_table_alerts_as_a_run() -> None:
    rng = random.Random(4)
    n = 70
    values = [0.0 if rng.random() < 0.4 else float(rng.randint(1, 9)) for _ in range(n)]
    days = _days(n + 8)
    run = [*values, *([0.0] * 8)]
    verdicts = [detect(days[: n + i + 1], run[: n + i + 1]) for i in range(8)]
    assert verdicts[0].status == "ok"  # one empty day is usual here
    assert any(v.status == "anomaly" and v.model == "count" for v in verdicts)
