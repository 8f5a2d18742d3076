"""schedule:, retries: and deadline: in stackyard.yml: defaults, validation, catch-up."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from stackyard.config.model import ProjectConfig
from stackyard.config.orchestration import Schedule


def source(**extra: object) -> dict[str, object]:
    return {
        "kind": "filesystem",
        "url": "files",
        "tables": {"t": {"glob": "t.csv"}},
        **extra,
    }


def config(**extra: object) -> ProjectConfig:
    return ProjectConfig.model_validate({"name": "p", "sources": {"s": source(**extra)}})


def test_defaults_follow_the_runbook() -> None:
    s = config().sources["s"]
    assert (s.schedule.cron, s.schedule.timezone, s.schedule.catch_up) == (
        "0 7 * * *",
        "UTC",
        "once",
    )
    assert (s.retries.count, s.retries.backoff_factor, s.retries.jitter) == (3, 10.0, 0.5)
    assert s.deadline == 7200


def test_a_cron_string_is_short_for_a_schedule_and_durations_take_units() -> None:
    s = config(schedule="*/15 * * * *", deadline="90s").sources["s"]
    assert s.schedule.cron == "*/15 * * * *" and s.deadline == 90


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        ({"schedule": {"cron": "0 7 * *"}}, "5-field cron"),
        ({"schedule": {"cron": "0 25 * * *"}}, "not a valid cron"),
        ({"schedule": {"cron": "0 7 31 2 *"}}, "never fires"),  # no 31 February
        ({"schedule": "0 7 30 2 *"}, "never fires"),
        ({"schedule": {"cron": "0 7 * * *", "timezone": "Mars/Olympus"}}, "not a time zone"),
        ({"schedule": {"cron": "0 7 * * *", "catch_up": "all"}}, "catch_up"),
        ({"schedule": {"cron": "0 7 * * *", "every": 1}}, "every"),
        ({"retries": {"count": 3, "backoff": 10}}, "backoff"),
        ({"deadline": "soon"}, "not a duration"),
        ({"deadline": 0}, "greater than 0"),
    ],
)
def test_bad_settings_are_refused_naming_the_key(extra: dict[str, object], said: str) -> None:
    with pytest.raises(ValidationError) as caught:
        config(**extra)
    assert said in str(caught.value)


def test_catch_up_each_runs_every_missed_interval() -> None:
    each = Schedule(cron="0 7 * * *", catch_up="each")
    now = datetime(2026, 1, 4, 9, tzinfo=UTC)
    missed = each.ticks(datetime(2026, 1, 1, 8, tzinfo=UTC), now)
    assert [each.superseded(t, now) for t in missed] == [None, None, None]
    once = Schedule(cron="0 7 * * *")
    assert [once.superseded(t, now) is None for t in missed] == [False, False, True]


def test_a_schedule_runs_on_its_time_zones_clock() -> None:
    berlin = Schedule(cron="0 7 * * *", timezone="Europe/Berlin")
    (summer,) = berlin.ticks(datetime(2026, 7, 1, tzinfo=UTC), datetime(2026, 7, 1, 23, tzinfo=UTC))
    (winter,) = berlin.ticks(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 23, tzinfo=UTC))
    assert summer.astimezone(ZoneInfo("Europe/Berlin")).hour == 7
    assert (summer.astimezone(UTC).hour, winter.astimezone(UTC).hour) == (5, 6)
