"""Behaviour of the volume anomaly detector that a user would notice in their alerts."""

from __future__ import annotations

import doctest
import math
import random
from datetime import date, datetime, timedelta

import pytest
from pydantic import ValidationError

from stackyard.monitors import anomaly
from stackyard.monitors.anomaly import AnomalyConfig, Verdict, detect

START = date(2024, 1, 1)  # a Monday
WEEKLY = (1.0, 1.05, 1.0, 0.98, 0.95, 0.4, 0.35)  # business table: quiet weekends


def series(
    days: int, *, level: float = 1000.0, noise: float = 0.05, weekly: bool = True, seed: int = 1
) -> tuple[list[date], list[float]]:
    """A daily row-count series with a weekly cycle and multiplicative noise."""
    rng = random.Random(seed)
    dates = [START + timedelta(days=i) for i in range(days)]
    values = [
        level * (WEEKLY[d.weekday()] if weekly else 1.0) * math.exp(rng.gauss(0, noise))
        for d in dates
    ]
    return dates, values


def band(verdict: Verdict) -> tuple[float | None, float | None, float | None]:
    return verdict.expected, verdict.lower, verdict.upper


def test_an_outage_is_an_anomaly() -> None:
    dates, values = series(60)
    verdict = detect(dates, [*values[:-1], 0])
    assert verdict.status == "anomaly"
    assert verdict.direction == "drop"
    assert "outage" in verdict.reason


def test_an_outage_is_flagged_even_on_a_very_noisy_table() -> None:
    # Noise this wide puts a zero inside a purely statistical band; an empty table is still
    # an incident.
    dates, values = series(60, noise=0.6)
    assert detect(dates, [*values[:-1], 0]).status == "anomaly"


def test_a_normal_day_is_ok_and_its_reason_names_the_band() -> None:
    dates, values = series(60)
    verdict = detect(dates, values)
    assert verdict.status == "ok"
    assert verdict.lower is not None and verdict.upper is not None
    assert verdict.lower < values[-1] < verdict.upper
    assert "within the expected band" in verdict.reason


def test_the_usual_weekend_dip_is_not_an_anomaly_but_a_weekday_at_weekend_level_is() -> None:
    dates, values = series(62)
    assert dates[-1].weekday() == 5
    saturday = detect(dates, values)
    assert saturday.status == "ok"
    assert "Saturday" in saturday.reason

    weekday_dates, weekday_values = series(59)
    assert weekday_dates[-1].weekday() == 2
    at_weekend_level = [*weekday_values[:-1], 1000 * WEEKLY[5]]
    assert detect(weekday_dates, at_weekend_level).status == "anomaly"


def test_the_judged_point_is_not_part_of_its_own_baseline() -> None:
    dates, values = series(30)
    normal = detect(dates, values)
    huge = detect(dates, [*values[:-1], 1e9])
    assert band(huge) == band(normal)
    assert huge.status == "anomaly" and huge.direction == "spike"


def test_a_doubled_day_is_caught_with_short_history_where_elementary_style_scoring_misses_it() -> (
    None
):
    dates, values = series(15)  # 14 days of history, the minimum
    spiked = [*values[:-1], 2 * values[-8]]  # twice last week's same weekday
    assert detect(dates, spiked).status == "anomaly"

    # Elementary's default: mean and stddev over 14 buckets that include the scored one.
    window = spiked[-14:]
    mean = sum(window) / len(window)
    stddev = math.sqrt(sum((x - mean) ** 2 for x in window) / (len(window) - 1))
    assert abs(spiked[-1] - mean) / stddev < 3


def test_a_holiday_is_not_judged() -> None:
    dates, values = series(60)
    verdict = detect(dates, [*values[:-1], 50], holidays=[dates[-1]])
    assert verdict.status == "ok"
    assert "holiday" in verdict.reason


def test_holidays_do_not_pollute_the_baseline() -> None:
    dates, values = series(60)
    holidays = {dates[-3], dates[-10], dates[-24]}
    quiet = [v * 0.2 if d in holidays else v for d, v in zip(dates, values, strict=True)]
    with_holidays = detect(dates, quiet, holidays=holidays)
    kept = [(d, v) for d, v in zip(dates, quiet, strict=True) if d not in holidays]
    without_them = detect([d for d, _ in kept], [v for _, v in kept])
    assert band(with_holidays) == band(without_them)
    assert band(detect(dates, quiet)) != band(without_them)


def test_excluded_days_stay_out_of_the_baseline() -> None:
    dates, values = series(60)
    incident = set(dates[-5:-2])  # three days at half volume, last week
    hurt = [v * 0.5 if d in incident else v for d, v in zip(dates, values, strict=True)]
    excluded = detect(dates, hurt, exclude=incident)
    kept = [(d, v) for d, v in zip(dates, hurt, strict=True) if d not in incident]
    assert band(excluded) == band(detect([d for d, _ in kept], [v for _, v in kept]))

    polluted = detect(dates, hurt)
    assert polluted.expected is not None and excluded.expected is not None
    assert polluted.expected < excluded.expected


def test_an_excluded_earlier_outage_leaves_the_band_as_if_it_never_happened() -> None:
    dates, values = series(60)
    outage_day = dates[-4]
    broken = [0.0 if d == outage_day else v for d, v in zip(dates, values, strict=True)]
    kept = [(d, v) for d, v in zip(dates, broken, strict=True) if d != outage_day]
    assert band(detect(dates, broken, exclude=[outage_day])) == band(
        detect([d for d, _ in kept], [v for _, v in kept])
    )


def test_a_step_change_is_alerted_then_becomes_normal_within_a_week() -> None:
    dates, values = series(120, seed=3)
    change = 70
    shifted = [v * 1.5 if i >= change else v for i, v in enumerate(values)]
    alerted: list[date] = []
    statuses = {}
    for i in range(change, len(dates)):
        # Replayed as a daily monitor runs it: every alert is excluded from later baselines.
        verdict = detect(dates[: i + 1], shifted[: i + 1], exclude=alerted)
        statuses[i - change] = verdict.status
        if verdict.is_anomaly:
            alerted.append(dates[i])
    assert statuses[0] == "anomaly"
    assert [after for after, status in statuses.items() if status == "anomaly" and after > 7] == []


def test_a_two_day_incident_is_not_taken_for_a_new_level() -> None:
    dates, values = series(60)
    dropped = [*values[:-2], values[-2] * 0.4, values[-1] * 0.4]
    first = detect(dates[:-1], dropped[:-1])
    second = detect(dates, dropped, exclude=[dates[-2]])
    assert first.status == second.status == "anomaly"
    assert not second.reanchored


def test_too_little_history_is_insufficient_not_a_pass() -> None:
    dates, values = series(10)
    verdict = detect(dates, [*values[:-1], 0])
    assert verdict.status == "insufficient_history"
    assert verdict.expected is None
    assert "9 usable" in verdict.reason


def test_excluded_and_holiday_days_do_not_count_as_history() -> None:
    dates, values = series(30)
    # 29 earlier days, 11 excluded and 5 holidays: 13 usable, one short of the default 14.
    verdict = detect(dates, values, exclude=dates[:11], holidays=dates[11:16])
    assert verdict.status == "insufficient_history"
    assert verdict.baseline_size == 13


def test_direction_drop_ignores_spikes_but_still_catches_outages() -> None:
    dates, values = series(60)
    drop_only = AnomalyConfig(direction="drop")
    spike = detect(dates, [*values[:-1], values[-1] * 5], config=drop_only)
    assert spike.status == "ok"
    assert spike.direction == "spike"
    assert "only alerts on drops" in spike.reason
    assert detect(dates, [*values[:-1], 0], config=drop_only).status == "anomaly"


def test_direction_spike_ignores_drops() -> None:
    dates, values = series(60)
    verdict = detect(dates, [*values[:-1], 0], config=AnomalyConfig(direction="spike"))
    assert verdict.status == "ok"


def test_a_table_with_no_weekly_cycle_can_turn_seasonality_off() -> None:
    dates, values = series(60, weekly=False)
    verdict = detect(dates, values, config=AnomalyConfig(seasonality="none"))
    assert verdict.status == "ok"
    assert "usual for this table" in verdict.reason


def test_higher_sensitivity_means_a_narrower_band() -> None:
    dates, values = series(60)
    widths = []
    for sensitivity in ("high", "medium", "low"):
        verdict = detect(dates, values, config=AnomalyConfig(sensitivity=sensitivity))
        assert verdict.lower is not None and verdict.upper is not None
        widths.append(verdict.upper - verdict.lower)
    assert widths == sorted(widths)
    assert AnomalyConfig(sensitivity=2.5).threshold == 2.5


def test_datetimes_are_accepted_as_dates() -> None:
    dates, values = series(30)
    stamps = [datetime(d.year, d.month, d.day, 6, 30) for d in dates]
    assert band(detect(stamps, values)) == band(detect(dates, values))


@pytest.mark.parametrize(
    ("dates", "values", "message"),
    [
        ([START, START + timedelta(days=1)], [1.0], "same length"),
        ([], [], "empty"),
        ([START + timedelta(days=1), START], [1.0, 2.0], "strictly ascending"),
        ([START, START], [1.0, 2.0], "strictly ascending"),
        ([START, START + timedelta(days=1)], [1.0, -5.0], "non-negative"),
        ([START, START + timedelta(days=1)], [1.0, float("nan")], "finite"),
        ([START, "yesterday"], [1.0, 2.0], "expected an ISO date"),
        ([START, 20240102], [1.0, 2.0], "expected a date"),
        ([START, START + timedelta(days=1)], [1.0, None], "finite"),
    ],
)
def test_invalid_input_is_refused_with_a_clear_message(
    dates: list[date], values: list[float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        detect(dates, values)


def test_arrays_strings_and_generators_are_judged_as_lists_are() -> None:
    np = pytest.importorskip("numpy")
    dates, values = series(90)
    values[-1] = 0.0
    expected = detect(dates, values, holidays=[dates[40]], exclude=[dates[50]])
    assert expected.status == "anomaly"
    for given_dates, given_values, holidays, exclude in [
        (np.array(dates, dtype="datetime64[D]"), np.array(values), [dates[40]], [dates[50]]),
        (
            np.array(dates, dtype="datetime64[ns]"),
            list(np.array(values)),
            np.array([dates[40]], dtype="datetime64[D]"),
            np.array([dates[50]], dtype="datetime64[s]"),
        ),
        ([d.isoformat() for d in dates], values, [dates[40].isoformat()], [dates[50]]),
        ((d for d in dates), (v for v in values), (dates[40],), {dates[50]}),
    ]:
        assert detect(given_dates, given_values, holidays=holidays, exclude=exclude) == expected


def test_config_rejects_unknown_keys_and_impossible_history() -> None:
    with pytest.raises(ValidationError, match="sensitivty"):
        AnomalyConfig.model_validate({"sensitivty": "high"})
    with pytest.raises(ValidationError, match="min_history"):
        AnomalyConfig(min_history=60, training_days=28)
    with pytest.raises(ValidationError):
        AnomalyConfig.model_validate({"direction": "down"})


def test_verdicts_and_configs_are_immutable() -> None:
    dates, values = series(30)
    verdict = detect(dates, values)
    with pytest.raises(AttributeError):
        verdict.status = "anomaly"
    with pytest.raises(ValidationError):
        AnomalyConfig().direction = "drop"


def test_doctest_examples_hold() -> None:
    assert doctest.testmod(anomaly).failed == 0


def test_a_table_empty_every_weekend_is_ok_on_sunday_and_an_outage_on_monday() -> None:
    dates, values = series(63, noise=0.05)  # ends on a Sunday
    assert dates[-1].weekday() == 6
    weekdays_only = [0.0 if d.weekday() >= 5 else v for d, v in zip(dates, values, strict=True)]
    assert detect(dates, weekdays_only).status == "ok"
    monday_dates, monday_values = dates[:-6], weekdays_only[:-6]
    assert monday_dates[-1].weekday() == 0
    assert detect(monday_dates, [*monday_values[:-1], 0]).status == "anomaly"
