"""The detector's tail readings: quantiles read between order statistics, so a table's bands
do not jump when one ordinary day joins its history."""

from __future__ import annotations

import random

from hypothesis import example, given
from hypothesis import strategies as st

from stackyard.monitors.anomaly.spread import empirical_floor, tail_widening
from stackyard.monitors.anomaly.stats import quantile


def _errors(n: int, seed: int = 7) -> list[float]:
    rng = random.Random(seed)
    return sorted(abs(rng.gauss(0, 0.1)) for _ in range(n))


def test_the_rare_day_floor_does_not_jump_when_one_ordinary_day_is_added() -> None:
    # Fifty errors whose largest stands well above the next: read as the order statistic at
    # int(0.98 n), the 98th percentile was the largest at fifty errors and the second largest
    # at fifty-one, and the floor moved by a third overnight.
    errors = sorted([*_errors(48), 0.2, 0.3])
    before = empirical_floor(errors, 1.0)
    after = empirical_floor(sorted([*errors, 0.05]), 1.0)
    assert abs(after - before) / before < 0.05


def test_tail_readings_move_smoothly_as_history_grows() -> None:
    # The same table day after day: each reading may drift as errors arrive, but none leaps
    # when one error that is neither large nor small joins the history.
    errors = _errors(40, seed=3)
    rng = random.Random(11)
    for _ in range(60):
        middle = errors[len(errors) // 2] * rng.uniform(0.8, 1.2)
        grown = sorted([*errors, middle])
        floor, widening = empirical_floor(errors, 1.0), tail_widening(errors, 0.1)
        assert abs(empirical_floor(grown, 1.0) - floor) <= 0.05 * floor
        # The widening grows exponentially with the reading; it leapt by 30 % here before.
        assert abs(tail_widening(grown, 0.1) - widening) <= 0.15 * widening
        errors = grown


@given(
    st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=300),
    st.floats(0, 1),
    st.floats(0, 1),
)
# A weighted sum of the two neighbours rounded a hair above the upper one here.
@example([0.0] * 18 + [510448.70454672043] * 2 + [510449.0] * 12, 0.5949878352192574, 0.5952791)
def test_a_quantile_lies_within_the_values_and_grows_with_q(
    values: list[float], q: float, r: float
) -> None:
    ordered = sorted(values)
    low, high = sorted((q, r))
    assert ordered[0] <= quantile(ordered, low) <= quantile(ordered, high) <= ordered[-1]


def test_a_quantile_of_normal_errors_is_close_to_unbiased_at_every_size() -> None:
    # The mean reading of the 98th percentile of |N(0, 1)| (2.326) over many samples of each
    # size: the order statistic at int(0.98 n) read 2.1-2.6 depending on n alone.
    rng = random.Random(5)
    for n in (40, 45, 50, 51, 60, 85, 120, 170):
        readings = [
            quantile(sorted(abs(rng.gauss(0, 1)) for _ in range(n)), 0.98) for _ in range(400)
        ]
        assert abs(sum(readings) / len(readings) - 2.326) < 0.12, n
