"""When and how hard each step runs: ``schedule:``, ``retries:`` and ``deadline:``.

Every source has the three keys (defaults follow the runbook: daily at 07:00 UTC, 3 retries
with backoff factor 10 and jitter 0.5, a two-hour deadline); ``transform:`` has ``retries:``
and ``deadline:``. ``stackyard run`` reads the retries and deadlines; the orchestrator
integrations (``stackyard deploy prefect``, the Dagster definitions) read all three, so a
schedule is declared once and means the same thing everywhere.
"""

from __future__ import annotations

import random
import re
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator

from stackyard.config.base import StrictModel

# The runbook's default: daily at 07:00 UTC, after the overnight source exports.
DEFAULT_SCHEDULE = "0 7 * * *"
DEFAULT_DEADLINE_SECONDS = 7200.0

CatchUp = Literal["once", "each"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def duration_seconds(value: Any) -> Any:
    """A duration as seconds: a number of seconds, or a string such as ``90s``, ``30m``, ``2h``.

    >>> duration_seconds("30m"), duration_seconds(45), duration_seconds("1.5h")
    (1800.0, 45, 5400.0)
    """
    if isinstance(value, str):
        found = _DURATION.match(value)
        if not found:
            raise ValueError(
                f"'{value}' is not a duration: write seconds (90) or a number with a unit, "
                "e.g. 500ms, 90s, 30m, 2h, 1d"
            )
        return float(found.group(1)) * _UNIT_SECONDS[found.group(2)]
    return value


#: Seconds, written as a number or with a unit (``30m``).
Duration = Annotated[float, BeforeValidator(duration_seconds), Field(gt=0, le=7 * 86400)]


class Schedule(StrictModel):
    """When a source is loaded by an orchestrator: a cron expression in a time zone, and what
    happens to the intervals missed while nothing ran (``catch_up``).

    ``schedule: "0 7 * * *"`` is short for ``schedule: {cron: "0 7 * * *"}``.
    """

    cron: str = Field(DEFAULT_SCHEDULE, description="5-field cron expression.")
    timezone: str = Field("UTC", description="IANA time zone the cron is read in.")
    catch_up: CatchUp = Field(
        "once",
        description="After downtime: once runs the missed work a single time; each runs one "
        "load per missed interval, oldest first.",
    )

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        from croniter import CroniterBadDateError, croniter  # type: ignore[import-untyped]

        if len(value.split()) != 5:
            raise ValueError(f"schedule must be a 5-field cron expression, got '{value}'")
        if not croniter.is_valid(value):
            raise ValueError(f"'{value}' is not a valid cron expression")
        try:
            croniter(value, datetime(2000, 1, 1)).get_next(datetime)
        except CroniterBadDateError:
            raise ValueError(
                f"'{value}' never fires: no date matches it (e.g. 31 February)"
            ) from None
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"'{value}' is not a time zone: use an IANA name such as UTC or Europe/Berlin"
            ) from None
        return value

    def ticks(self, after: datetime, until: datetime) -> list[datetime]:
        """The scheduled times in ``(after, until]``, in the schedule's time zone.

        >>> from datetime import UTC
        >>> s = Schedule(cron="0 7 * * *")
        >>> [t.day for t in s.ticks(datetime(2026, 1, 1, 8, tzinfo=UTC),
        ...                         datetime(2026, 1, 4, 7, tzinfo=UTC))]
        [2, 3, 4]
        """
        from zoneinfo import ZoneInfo

        from croniter import croniter

        zone = ZoneInfo(self.timezone)
        found: list[datetime] = []
        walker = croniter(self.cron, after.astimezone(zone))
        while True:
            tick: datetime = walker.get_next(datetime)
            if tick > until:
                return found
            found.append(tick)

    def latest_tick(self, now: datetime) -> datetime:
        """The most recent scheduled time at or before ``now``."""
        from zoneinfo import ZoneInfo

        from croniter import croniter

        start = (now + timedelta(seconds=1)).astimezone(ZoneInfo(self.timezone))
        walker = croniter(self.cron, start)
        tick: datetime = walker.get_prev(datetime)
        return tick

    def superseded(self, scheduled_for: datetime, now: datetime) -> str | None:
        """Why a run scheduled for ``scheduled_for`` is skipped at ``now``, or ``None`` to run
        it. With ``catch_up: once``, of the intervals missed while nothing ran only the
        latest is loaded (it reads everything new since the last load anyway); with
        ``each``, every missed interval runs, oldest first.

        >>> from datetime import UTC
        >>> s = Schedule(cron="0 7 * * *")
        >>> now = datetime(2026, 1, 4, 9, tzinfo=UTC)
        >>> print(s.superseded(datetime(2026, 1, 2, 7, tzinfo=UTC), now))
        skipped: catch_up is once and the run scheduled for 2026-01-04 07:00 UTC covers it
        >>> print(s.superseded(datetime(2026, 1, 4, 7, tzinfo=UTC), now))
        None
        """
        if self.catch_up == "each":
            return None
        latest = self.latest_tick(now)
        if scheduled_for >= latest:
            return None
        return (
            "skipped: catch_up is once and the run scheduled for "
            f"{latest:%Y-%m-%d %H:%M} {self.timezone} covers it"
        )


def _schedule_from_cron(value: Any) -> Any:
    return {"cron": value} if isinstance(value, str) else value


#: A schedule: a cron string, or ``{cron, timezone, catch_up}``.
ScheduleField = Annotated[Schedule, BeforeValidator(_schedule_from_cron)]


class Retries(StrictModel):
    """How a failed step is tried again: ``count`` more times, waiting ``backoff_factor × 2^n``
    seconds before retry ``n + 1``, each wait stretched by a random share up to ``jitter``
    (so many pipelines failing together do not retry together)."""

    count: int = Field(3, ge=0, le=20, description="Retries after the first attempt.")
    backoff_factor: float = Field(10.0, ge=0, description="First wait, in seconds; doubles.")
    jitter: float = Field(0.5, ge=0, le=10, description="Random extra share of each wait.")

    def base_delays(self) -> list[float]:
        """The waits before each retry, without jitter.

        >>> Retries().base_delays()
        [10.0, 20.0, 40.0]
        """
        return [self.backoff_factor * 2**n for n in range(self.count)]

    def delay(self, retry: int, rng: random.Random | None = None) -> float:
        """The wait before retry number ``retry`` (1-based), jitter included.

        >>> Retries(jitter=0).delay(2)
        20.0
        """
        base = self.backoff_factor * 2 ** (retry - 1)
        return base * (1 + self.jitter * (rng or random).random())


class StepPolicy(StrictModel):
    """``retries:`` and ``deadline:`` of a step that has no schedule of its own."""

    retries: Retries = Field(default_factory=Retries)
    deadline: Duration = Field(
        DEFAULT_DEADLINE_SECONDS, description="Longest one attempt may take (seconds or 30m/2h)."
    )
