"""The monitor pass that follows a recorded run, and the stamp on what it measured."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from stackyard.errors import StackyardError
from stackyard.results import RunResult, StepResult, StepStatus
from stackyard.session import Session

if TYPE_CHECKING:
    from stackyard.monitors.reuse import Unchanged


def monitor_pass(session: Session, result: RunResult, unchanged: Unchanged | None) -> RunResult:
    """The monitor pass over what the run loaded and built.

    It runs after the run is recorded and never changes the run's outcome: a problem it
    finds is a "warn" step, an alert and a `stackyard health` line.

    Args:
        session: the target's session.
        result: the recorded run.
        unchanged: set when the run changed no table: the last measurements may be reused.

    Returns:
        The run with its ``monitors`` step and report.
    """
    from stackyard.monitors.suite import monitor_run

    project = session.project
    report: Any = None
    session.console.step_started("monitors")
    at, t0 = datetime.now(UTC), time.monotonic()
    try:
        report = monitor_run(
            project=project.config,
            project_dir=project.project_dir,
            transform_dir=project.transform_dir,
            warehouse=session.warehouse,
            run=result,
            console=session.console,
            unchanged=unchanged,
        )
        status: StepStatus = "ok" if report.status == "ok" else "warn"
        detail = report.summary
    except StackyardError as exc:
        status, detail = "warn", f"monitors could not run: {project.secrets.redact(str(exc))}"
    step = StepResult("monitors", status, detail, at, round(time.monotonic() - t0, 3))
    session.console.step_finished("monitors", status, detail)
    return RunResult(**{**result.__dict__, "steps": (*result.steps, step), "monitors": report})


def seal_measurements(session: Session, run_id: str) -> None:
    """Stamp this run's kept measurements once the warehouse is closed: the next run
    reuses them only if nothing has written to it since."""
    from stackyard.monitors.reuse import MeasurementCache

    warehouse = session.warehouse
    cache = MeasurementCache(session.project.project_dir, warehouse.target_name)
    if not cache.kept_by(run_id):
        return  # no pass ran, or the engine keeps nothing
    stamp: str | None = None
    try:
        warehouse.settle()
        stamp = warehouse.write_stamp()
    except StackyardError:
        stamp = None  # the file may change when this process ends: the next pass measures
    finally:
        session.release()
    cache.seal(run_id, stamp)
