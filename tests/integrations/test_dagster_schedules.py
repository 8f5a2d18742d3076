"""The Dagster schedules, with time driven rather than waited for: each tick is evaluated at a
chosen moment, as Dagster's scheduler does, and the runs it asks for are executed in process.
Catch-up after downtime follows the schedule's `catch_up:`, an overlapping run is refused naming
the lease holder, and a hanging source fails at its deadline."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from stackyard import Context
from stackyard.config.orchestration import Schedule
from stackyard.metadata.run_leases import RunLeases
from tests.ingest.test_attempts import project as hanging_project
from tests.integrations.test_dagster import make_project

dg = pytest.importorskip("dagster", reason="pip install 'stackyard[dagster]'")

SCHEDULE = "schedule: {cron: '30 6 * * 1-5', timezone: Europe/Berlin}"
DAY = timedelta(days=1)


def shop(root: Path, schedule: str, transform: str = "retries: {count: 0}") -> Path:
    make_project(root)
    path = root / "stackyard.yml"
    text = path.read_text().replace(SCHEDULE, f"schedule: {schedule}")
    path.write_text(text + f"transform: {{{transform}}}\n")
    return root


# A daily tick twelve hours away from now: the latest one cannot change while a test runs.
CRON = f"0 {(datetime.now(UTC).hour + 12) % 24} * * *"


def latest_tick() -> datetime:
    """The latest tick of CRON before now (the op judges catch-up against real time)."""
    return Schedule(cron=CRON).latest_tick(datetime.now(UTC))


def tick(defs: Any, name: str, at: datetime, instance: Any) -> list[Any]:
    """What the schedule asks for when its tick for ``at`` is evaluated."""
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=at)
    data = defs.resolve_schedule_def(name).evaluate_tick(context)
    return list(data.run_requests or [])


def launch(defs: Any, job: str, request: Any, at: datetime, instance: Any) -> Any:
    """Execute a requested run in process, tagged as the scheduler tags it."""
    tags = {
        **request.tags,
        "dagster/schedule_name": f"{job.removeprefix('load_')}_schedule",
        "dagster/scheduled_execution_time": at.isoformat(),
    }
    return defs.resolve_job_def(job).execute_in_process(
        instance=instance, tags=tags, raise_on_error=False
    )


def failure(result: Any) -> str:
    return " ".join(
        e.event_specific_data.error.to_string() for e in result.all_events if e.is_step_failure
    )


def recorded(root: Path) -> list[tuple[str, int]]:
    with Context(root) as context:
        if not context.sql(
            "select count(*) from information_schema.tables where table_schema = 'stackyard' "
            "and table_name = 'runs'"
        ).rows[0][0]:
            return []
        rows = context.sql("select status, rows_loaded from stackyard.runs order by started_at")
    return [(str(r[0]), int(r[1])) for r in rows.rows]


@pytest.fixture
def instance() -> Iterator[Any]:
    """A Dagster instance in a temporary folder, as the scheduler's (runs kept, tags queried)."""
    with dg.instance_for_test() as found:
        yield found


def test_catch_up_each_runs_every_interval_missed_oldest_first(
    tmp_path: Path, instance: Any
) -> None:
    from stackyard.integrations.dagster import SCHEDULED_FOR, definitions

    root = shop(tmp_path / "shop", f"{{cron: '{CRON}', catch_up: each}}")
    defs = definitions(root)
    latest = latest_tick()

    (first,) = tick(defs, "orders_schedule", latest - 3 * DAY, instance)
    assert launch(defs, "load_orders", first, latest - 3 * DAY, instance).success
    assert recorded(root) == [("success", 3)]

    # Down for three days: the next tick asks for each missed interval, oldest first.
    missed = tick(defs, "orders_schedule", latest, instance)
    wanted = [latest - 2 * DAY, latest - DAY, latest]
    assert [datetime.fromisoformat(r.tags[SCHEDULED_FOR]) for r in missed] == wanted
    assert len({r.run_key for r in missed}) == 3
    for request in missed:
        assert launch(defs, "load_orders", request, latest, instance).success
    assert recorded(root) == [("success", 3)] + [("success", 0)] * 3


def test_catch_up_once_runs_the_latest_interval_only(tmp_path: Path, instance: Any) -> None:
    from stackyard.integrations.dagster import SCHEDULED_FOR, definitions

    root = shop(tmp_path / "shop", f"{{cron: '{CRON}', catch_up: once}}")
    defs = definitions(root)
    latest = latest_tick()

    (request,) = tick(defs, "orders_schedule", latest, instance)
    assert datetime.fromisoformat(request.tags[SCHEDULED_FOR]) == latest
    # A run for an interval missed during the downtime (queued before it) is skipped ...
    (stale,) = tick(defs, "orders_schedule", latest - 2 * DAY, instance)
    skipped = launch(defs, "load_orders", stale, latest - 2 * DAY, instance)
    assert skipped.success
    assert skipped.get_asset_materialization_events() == []
    assert recorded(root) == []
    # ... and the latest one loads what is new since the last load.
    done = launch(defs, "load_orders", request, latest, instance)
    assert done.success
    materialised = {tuple(e.asset_key.path) for e in done.get_asset_materialization_events()}
    assert ("orders", "orders") in materialised
    assert recorded(root) == [("success", 3)]


def test_an_overlapping_run_is_refused_naming_the_lease_holder(
    tmp_path: Path, instance: Any
) -> None:
    from stackyard.integrations.dagster import definitions

    # A scheduled run waits for a held lease up to the transformation's deadline.
    root = shop(tmp_path / "shop", f"{{cron: '{CRON}'}}", "deadline: 2s, retries: {count: 0}")
    defs = definitions(root)
    latest = latest_tick()
    with Context(root) as context:
        leases = RunLeases(context.warehouse())
        leases.ensure()
        leases.acquire(["source:orders"], "earlier-run", seconds=600)
    try:
        (request,) = tick(defs, "orders_schedule", latest, instance)
        refused = launch(defs, "load_orders", request, latest, instance)
    finally:
        with Context(root) as context:
            RunLeases(context.warehouse()).release(["source:orders"], "earlier-run")
    assert not refused.success
    said = " ".join(failure(refused).split())
    assert "source 'orders' is being run by" in said, said
    assert f"pid {os.getpid()} (run earlier-run" in said, said
    assert [s for s, _ in recorded(root)] == []  # the refused run ran and recorded nothing


def test_a_hanging_source_fails_the_scheduled_run_at_its_deadline(
    tmp_path: Path, instance: Any
) -> None:
    from stackyard.integrations.dagster import definitions

    root = hanging_project(
        tmp_path / "p",
        "{fails: 0}",
        f"    deadline: 5m\n    retries: {{count: 0}}\n    schedule: {{cron: '{CRON}'}}\n",
    )
    config = root / "stackyard.yml"
    config.write_text(config.read_text() + "transform: {retries: {count: 0}}\n")
    with Context(root) as context:
        first = context.run()  # the table exists now: the source's asset is known
    assert first.loads[0].status == "loaded", first.steps
    text = config.read_text().replace("{fails: 0}", "{fails: 0, hang: 600}")
    config.write_text(text.replace("deadline: 5m", "deadline: 3s"))
    defs = definitions(root)
    latest = latest_tick()
    (request,) = tick(defs, "events_schedule", latest, instance)
    result = launch(defs, "load_events", request, latest, instance)
    assert not result.success
    said = " ".join(failure(result).split())
    assert "loading source 'events' did not finish within its deadline of 3s" in said, said
    assert [s for s, _ in recorded(root)] == [first.status, "failed"]
