"""The stackyard steps an orchestrator's task calls: the same ``Context.run`` as
``stackyard run``, with the run's leases waited for (up to a deadline) instead of refused,
and failures raised so the orchestrator's retry policy applies."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from stackyard.config.project import Project
from stackyard.console import Console
from stackyard.context import Context
from stackyard.errors import ConfigError, StackyardError
from stackyard.results import RunResult

#: dbt's selector for every node: the transformation's own run loads no source.
ALL_MODELS = "fqn:*"


class StepFailedError(StackyardError):
    """A step an orchestrator ran did its work and something in it failed.

    ``transient`` is False when another attempt would fail the same way (every failure a
    load's bad input, broken contract or refused connection): the orchestrator's retries
    are skipped, as `stackyard run` skips its own.
    """

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


def require(module: str) -> None:
    """Fail with the install command when an orchestrator's extra is missing.

    Raises:
        ConfigError: ``module`` cannot be imported.
    """
    import importlib

    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(
            f"{module} is not installed here ({exc})",
            hint=f"pip install 'stackyard[{module}]' (docs/orchestration.md)",
        ) from None


def load_project(project_dir: str | Path) -> Project:
    """The project's configuration (stackyard.yml validated, secrets resolvable)."""
    return Project.load(Path(project_dir))


def run_step(
    project_dir: str | Path,
    select: Sequence[str],
    lease_wait: float,
    console: Console | None = None,
    retry_loads: bool = False,
    will_retry: bool = False,
) -> RunResult:
    """Run ``stackyard run --select …`` on the default target, as an orchestrator's task.

    Args:
        project_dir: the project folder.
        select: a source name (its load and the models downstream of it), or
            :data:`ALL_MODELS` for the transformation alone.
        lease_wait: how long to wait for another run of the same thing to finish.
        console: where progress goes (the orchestrator's log).
        retry_loads: also apply each source's own ``retries:`` inside the run (off when the
            orchestrator retries the task with that same policy).
        will_retry: the orchestrator runs the task again if this attempt fails: a failed
            attempt's alerts are held.

    Returns:
        The run's result, recorded in ``stackyard.runs``.

    Raises:
        StepFailedError: a load, model, test or freshness check failed (retried by the
            orchestrator's policy).
        RunLeaseHeldError: another run still held a lease when the wait ended.
    """
    with Context(Path(project_dir), console=console) as context:
        result = context.run(
            select=select, lease_wait=lease_wait, retry_loads=retry_loads, will_retry=will_retry
        )
    if result.exit_code:
        again = (
            ""
            if result.worth_retrying
            else " (not retried: another attempt would fail the same way)"
        )
        raise StepFailedError(
            f"run {result.run_id} failed: {failure_summary(result)}{again}",
            transient=result.worth_retrying,
        )
    return result


def worth_retrying(exc: BaseException) -> bool:
    """Whether an orchestrator should retry a task that raised ``exc``: not a step that
    would fail the same way again."""
    return not isinstance(exc, StepFailedError) or exc.transient


def failure_summary(result: RunResult) -> str:
    """What failed in a run, on one line."""
    parts = [f"{s.name}: {s.detail}" for s in result.steps if s.status == "failed"]
    parts += [f"{x.source}: {x.error}" for x in result.loads if x.status == "failed" and x.error]
    return "; ".join(parts) or result.status


def summary(result: RunResult) -> dict[str, Any]:
    """A run as an orchestrator's task returns it (small, JSON-safe)."""
    return {
        "run_id": result.run_id,
        "status": result.status,
        "rows_loaded": sum(load.rows for load in result.loads),
        "models": len([n for n in result.nodes if n.resource_type == "model"]),
    }


class LogConsole:
    """Progress into an orchestrator's logger (anything with ``info`` and ``warning``)."""

    def __init__(self, logger: Any) -> None:
        self.logger = logger

    def step_started(self, step: str, detail: str = "") -> None:
        self.logger.info(f"{step} started {detail}".rstrip())

    def step_progress(self, step: str, detail: str) -> None:
        self.logger.info(f"{step}: {detail}")

    def step_finished(self, step: str, status: str, detail: str = "") -> None:
        log: Callable[[str], None] = (
            self.logger.info if status in ("ok", "skipped") else self.logger.warning
        )
        log(f"{step} {status}: {detail}".rstrip(": "))

    def message(self, level: str, text: str) -> None:
        (self.logger.info if level == "info" else self.logger.warning)(text)
