"""A run stopped by Ctrl-C: recorded as it stands, with the rows it loaded.

Loaded rows belong to a run: a source that finished before the interrupt counts in this run
(its load package is done, so no later run counts it), and ``stackyard status`` shows the run
as ``interrupted`` with them. A source stopped mid-load left a pending package, which the next
run finishes and counts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from stackyard.errors import Abandoned, Interrupted, StackyardError
from stackyard.metadata.history import History
from stackyard.results import RunResult, StepResult

if TYPE_CHECKING:
    from stackyard.runner.run import RunJob

HINT = (
    "run `{command}` again: it finishes any load left pending (without duplicate rows) "
    "and builds on what is loaded"
)


def run_again(target: str, default_target: str, select: Sequence[str] = ()) -> str:
    """The command that takes up an interrupted run: its target (a bare `stackyard run`
    would go to the default one) and selection.

    >>> run_again("prod", "dev", ["shop"]), run_again("dev", "dev")
    ('stackyard run --select shop --target prod', 'stackyard run')
    """
    chosen = f" --select {' '.join(select)}" if select else ""
    return f"stackyard run{chosen}" + (f" --target {target}" if target != default_target else "")


def record_stopped(
    job: RunJob, run_id: str, started_at: datetime, select: Sequence[str], exc: KeyboardInterrupt
) -> Interrupted:
    """Record a run as Ctrl-C left it (every thread it started has stopped by now): what it
    loaded and, once its build ended, what that built.

    Returns:
        The exception that tells the user what was kept and what to do.
    """
    if job._recorded is not None:
        return monitors_interrupted(job._recorded)
    step = job._current or "run"
    at, t0 = job._since
    detail = getattr(exc, "message", None) or "interrupted (Ctrl-C)"
    job.console.step_finished(step, "interrupted", detail)
    stopped = StepResult(step, "interrupted", detail, at, round(time.monotonic() - t0, 3))
    result = _as_it_stands(job, run_id, started_at, select, stopped, job._build)
    # A recording Ctrl-C cut short is replaced, not written a second time.
    again = run_again(job.warehouse.target_name, job.project.defaults.target, select)
    return record_interrupted(
        History(job.warehouse),
        result,
        step,
        job.secrets.redact,
        replace=job._recording,
        command=again,
    )


def record_interrupted(
    history: History,
    result: RunResult,
    step: str,
    redact: Callable[[str], str],
    *,
    replace: bool = False,
    command: str = "stackyard run",
) -> Interrupted:
    """Write an interrupted run to the history tables.

    Args:
        history: the target's history tables.
        result: the run as it stood, its last step ``interrupted``.
        step: the step Ctrl-C stopped.
        redact: hides secrets in a message.
        replace: the run's own recording had started: what it wrote is replaced.
        command: the command that takes the run up again.

    Returns:
        The exception to raise: what was kept, whether it is recorded, what to do next.
    """
    rows = f"{result.counts.rows_loaded:,} rows loaded"
    try:
        history.record(result, replace=replace)
    except StackyardError as error:
        return Interrupted(
            f"run {result.run_id} interrupted during {step} ({rows}); it could not be "
            f"recorded: {redact(error.message)}",
            hint=HINT.format(command=command),
            done=(result,),
        )
    return Interrupted(
        f"run {result.run_id} interrupted during {step}; recorded as interrupted with {rows}",
        hint=HINT.format(command=command),
        done=(result,),
    )


def monitors_interrupted(recorded: RunResult) -> Interrupted:
    """Ctrl-C during the monitor pass: the run itself finished and is recorded as it ended."""
    return Interrupted(
        f"interrupted during the monitor pass: run {recorded.run_id} itself finished and is "
        f"recorded as {recorded.status}",
        hint="the next `stackyard run` measures the tables again",
        done=(recorded,),
    )


def not_recorded(run_id: str, abandoned: Abandoned) -> Abandoned:
    """A second Ctrl-C while the build was stopping: the run is left as it is."""
    return Abandoned(
        f"run {run_id}: {abandoned.message}; the run is not recorded and its leases are held "
        "until they expire",
        hint="check `stackyard status` once the warehouse is idle, then run `stackyard run` again",
    )


def record_refused(
    job: RunJob, run_id: str, started_at: datetime, select: Sequence[str], exc: StackyardError
) -> None:
    """Record a run whose build was refused after its sources loaded (``--engine sql`` met a
    node only dbt builds): the rows are in the warehouse and no model was built on them.
    Unrecorded, the next run found nothing new since the last one that built and skipped its
    build, and the models stayed behind their sources."""
    at, t0 = job._since
    took = round(time.monotonic() - t0, 3)
    refused = StepResult("dbt build", "failed", job.secrets.redact(exc.message), at, took)
    History(job.warehouse).record(_as_it_stands(job, run_id, started_at, select, refused, "built"))


def _as_it_stands(
    job: RunJob,
    run_id: str,
    started_at: datetime,
    select: Sequence[str],
    last: StepResult,
    build: Literal["built", "skipped", "not run"],
) -> RunResult:
    """The run as far as it got, ``last`` the step it stopped in."""
    return RunResult(
        run_id=run_id,
        project=job.project.name,
        target=job.warehouse.target_name,
        started_at=started_at,
        finished_at=datetime.now(UTC),
        steps=(*job._steps, last),
        loads=tuple(job._loads),
        nodes=tuple(job._nodes),
        freshness=tuple(job._freshness),
        skipped=tuple(job._skipped),
        selected=tuple(select),
        build=build,
    )
