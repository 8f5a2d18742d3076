"""The project as Prefect flows: one per enabled source, plus the transformation's.

A source's flow runs ``stackyard run <source>`` (its load, then the models downstream of it:
transformations follow their upstream loads, not a clock of their own) as one task carrying
the source's ``retries:`` (Prefect's ``retries``, exponential ``retry_delay_seconds`` and
``retry_jitter_factor``) and ``deadline:`` (the task's ``timeout_seconds``). Before it runs,
the flow applies the schedule's ``catch_up:`` to the time the run was scheduled for, so
after downtime the pile of late runs loads once (or each interval, if declared). Runs of the
same source, and every dbt build, take stackyard's leases: an overlapping run waits for the
lease up to its deadline, then fails naming the holder.

Prefect is imported only here (``pip install 'stackyard[prefect]'``).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stackyard.config.orchestration import Schedule
from stackyard.errors import ConfigError
from stackyard.integrations.steps import (
    ALL_MODELS,
    LogConsole,
    load_project,
    require,
    run_step,
    summary,
    worth_retrying,
)
from stackyard.runbooks.deploy import (
    FLOWS_FILE,
    TRANSFORMATION_DEPLOYMENT,
    PrefectDeployment,
    flow_function_name,
    prefect_deployments,
)


def flows(project_dir: str | Path) -> list[Any]:
    """The project's Prefect flow objects, in prefect.yaml's order.

    Each source's flow is named ``<project>-<source>`` and its Python name is
    ``load_<source>``; the transformation's is ``<project>-transformation`` /
    ``transformation``.

    Raises:
        ConfigError: stackyard.yml is invalid.
        ImportError: Prefect is not installed (``pip install 'stackyard[prefect]'``).
    """
    require("prefect")
    project = load_project(project_dir)
    root = project.project_dir.resolve()
    transform = project.config.transform
    out = []
    for deployment in prefect_deployments(project):
        if deployment.name == TRANSFORMATION_DEPLOYMENT:
            out.append(_flow(project.config.name, root, deployment, None, transform.deadline))
        else:
            schedule = project.config.sources[deployment.name].schedule
            out.append(_flow(project.config.name, root, deployment, schedule, transform.deadline))
    return out


def project_directory() -> dict[str, str]:
    """prefect.yaml's build step: the project folder ``prefect deploy`` runs in, which each
    deployment's pull step enters before its run loads ``prefect_flows.py``.

    Returns:
        ``{"directory": …}``, as Prefect's steps hand their outputs on.

    Raises:
        ConfigError: the folder has no prefect_flows.py (``prefect deploy`` ran elsewhere).
    """
    here = Path.cwd().resolve()
    if not (here / FLOWS_FILE).is_file():
        raise ConfigError(
            f"prefect deploy ran in {here}, which has no {FLOWS_FILE}: the deployments' runs "
            "would not find their flows",
            hint="run `prefect deploy --all` in the stackyard project folder, after "
            "`stackyard deploy prefect`",
        )
    return {"directory": str(here)}


def stackyard_flow(project_dir: str | Path, source: str | None) -> Callable[[Any], Any]:
    """A decorator for the generated flows module: it replaces the placeholder function with
    the flow of ``source`` (``None``: the transformation's) built from stackyard.yml.

    Raises:
        ConfigError: stackyard.yml is invalid or has no such enabled source.
    """
    wanted = f"{load_project(project_dir).config.name}-{source or TRANSFORMATION_DEPLOYMENT}"

    def replace(_placeholder: Any) -> Any:
        for found in flows(project_dir):
            if found.name == wanted:
                return found
        raise ConfigError(
            f"stackyard.yml has no enabled source '{source}' for the flow {wanted}",
            hint="run `stackyard deploy prefect` again after changing sources",
        )

    return replace


def _flow(
    project_name: str,
    root: Path,
    deployment: PrefectDeployment,
    schedule: Schedule | None,
    transform_deadline: float,
) -> Any:
    import prefect

    # Typed loosely: mypy checks this module with or without Prefect installed.
    flow: Any = prefect.flow
    task: Any = prefect.task
    get_run_logger: Any = prefect.get_run_logger

    source = deployment.name if schedule is not None else None
    select = [source] if source else [ALL_MODELS]
    # A source's run also builds its downstream models, so its task may take both deadlines,
    # plus a wait for the transformation's lease.
    lease_wait = transform_deadline
    timeout = deployment.deadline_seconds + (2 * transform_deadline if source else 0)

    def run() -> dict[str, Any]:
        from prefect.runtime import task_run

        console = LogConsole(get_run_logger())
        # Attempts 1 … retries are tried again by Prefect if they fail: a failed one is not
        # news yet (each was a failed run with an alert; `stackyard run` retries in silence).
        will_retry = int(task_run.run_count or 1) <= deployment.retries
        return summary(run_step(root, select, lease_wait, console, will_retry=will_retry))

    run.__name__ = f"run_{source or TRANSFORMATION_DEPLOYMENT}"
    step = task(
        name=f"stackyard run {source or 'transformation'}",
        retries=deployment.retries,
        retry_delay_seconds=list(deployment.retry_delays) or 0,
        retry_jitter_factor=deployment.jitter,
        retry_condition_fn=_retry_may_help,
        timeout_seconds=timeout + lease_wait,
    )(run)

    def body() -> dict[str, Any]:
        if schedule is not None:
            reason = schedule.superseded(_scheduled_for(), datetime.now(UTC))
            if reason:
                get_run_logger().info(f"source '{source}': {reason}")
                return {"status": "skipped", "reason": reason}
        result: dict[str, Any] = step()
        return result

    body.__name__ = flow_function_name(source)
    named: Callable[[], dict[str, Any]] = body
    return flow(
        name=f"{project_name}-{source or TRANSFORMATION_DEPLOYMENT}",
        description=(
            f"stackyard: load source '{source}', then build the models downstream of it"
            if source
            else "stackyard: build and test the whole dbt project"
        ),
        timeout_seconds=(timeout + lease_wait) * (deployment.retries + 1)
        + sum(deployment.retry_delays) * (1 + deployment.jitter),
        validate_parameters=False,
    )(named)


def _retry_may_help(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect's ``retry_condition_fn``: a failed attempt is retried unless stackyard says
    another would fail the same way (bad input, a broken contract, a refused connection)."""
    try:
        state.result()
    except Exception as exc:  # the task's own failure, as Prefect kept it
        return worth_retrying(exc)
    return True


def _scheduled_for() -> datetime:
    """When this flow run was scheduled for (now, for a run started by hand)."""
    from prefect.runtime import flow_run

    value = flow_run.scheduled_start_time
    if value is None:
        return datetime.now(UTC)
    return datetime.fromisoformat(str(value)) if not isinstance(value, datetime) else value


def serve(project_dir: str | Path) -> None:
    """Serve every flow with its schedule from this process until interrupted (``stackyard
    serve --orchestrator prefect``): Prefect's own runner, against the Prefect API in
    ``PREFECT_API_URL`` (or a temporary local one)."""
    require("prefect")
    from prefect import serve as prefect_serve
    from prefect.schedules import Cron

    project = load_project(project_dir)
    by_name = {d.name: d for d in prefect_deployments(project)}
    deployments = []
    for flow_object in flows(project_dir):
        name = flow_object.name.removeprefix(f"{project.config.name}-")
        declared = by_name[name]
        schedules = (
            [Cron(declared.cron, timezone=declared.timezone or "UTC")] if declared.cron else None
        )
        deployments.append(
            flow_object.to_deployment(
                name=name, schedules=schedules, tags=["stackyard", project.config.name]
            )
        )
    with _stopped_by_ctrl_c(), _patient_temporary_server():
        prefect_serve(*deployments)


@contextmanager
def _patient_temporary_server() -> Iterator[None]:
    """Give Prefect's temporary API server time to start on a busy machine.

    Prefect waits 20 s for it by default; under load it took longer and ``serve`` failed
    before serving anything. A longer wait set by the user is kept."""
    from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS as wait
    from prefect.settings import temporary_settings

    with temporary_settings(updates={wait: max(wait.value(), _TEMPORARY_SERVER_WAIT)}):
        yield


_TEMPORARY_SERVER_WAIT = 180  # seconds


@contextmanager
def _stopped_by_ctrl_c() -> Iterator[None]:
    """Ctrl-C (or SIGTERM, taken as it) stops ``serve`` as an interrupt, whatever Prefect
    raises on its way out. Its temporary API server stops on the same signal, so the runner's
    last call (pausing the schedules) failed with "All connection attempts failed", which
    read as an unexpected error with exit 1 after a stop the user asked for."""
    stopped = threading.Event()
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    asyncio_level = logging.getLogger("asyncio").level

    def on_stop(signum: int, frame: Any) -> None:
        stopped.set()
        # What fails on the way out is logged by asyncio as it shuts down: the stop says it.
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)
        raise KeyboardInterrupt

    for stop in previous:
        signal.signal(stop, on_stop)
    try:
        yield
    except Exception:
        if stopped.is_set():
            raise KeyboardInterrupt from None
        raise
    else:
        if stopped.is_set():  # Prefect took the interrupt as a clean stop
            raise KeyboardInterrupt
    finally:
        for stop, handler in previous.items():
            signal.signal(stop, handler)
        logging.getLogger("asyncio").setLevel(asyncio_level)
