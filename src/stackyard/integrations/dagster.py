"""The project as Dagster definitions: every source table and dbt model an asset, the
monitors as asset checks, the sources' schedules as Dagster schedules.

All assets come from one subsettable multi-asset whose computation is ``stackyard run``:
materialising everything is exactly one ``stackyard run`` (recorded in ``stackyard.runs``);
a subset runs ``stackyard run --select`` with the sources and models chosen (a source's run
also builds what is downstream of it, as ``stackyard run <source>`` does). Each source keeps
its own ``retries:`` and ``deadline:`` inside the run; the run as a whole carries the
transformation's retry policy (Dagster's ``RetryPolicy``, exponential backoff with jitter)
and the sum of the deadlines as its ``dagster/max_runtime``. A scheduled run applies the
schedule's ``catch_up:`` to the interval it stands for (``each``: the schedule asks for one
run per missed interval; ``once``: a run for an interval a later tick covers is skipped); runs
never overlap (stackyard's leases; a
run waits for a held one up to the transformation's deadline, then fails naming the holder).

Dagster is imported only here (``pip install 'stackyard[dagster]'``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stackyard.config.project import Project
from stackyard.integrations.steps import (
    LogConsole,
    StepFailedError,
    load_project,
    require,
    run_step,
)
from stackyard.results import RunResult
from stackyard.transform.staging import dbt_source_names

CHECK = "stackyard_monitors"
#: The interval a scheduled run stands for (the tick it was asked for, maybe a missed one).
SCHEDULED_FOR = "stackyard/scheduled_for"


def definitions(project_dir: str | Path) -> Any:
    """The project's ``dagster.Definitions``.

    Raises:
        ConfigError: stackyard.yml is invalid, or Dagster is not installed.
    """
    require("dagster")
    import dagster as dg

    project = load_project(project_dir)
    root = project.project_dir.resolve()
    tables = _source_tables(root, project)
    models = _models(root)
    by_dbt_source = {n: s for s in tables for n in dbt_source_names(s)}
    specs = [
        dg.AssetSpec(
            key=dg.AssetKey([source, table]),
            group_name=source,
            kinds={"dlt"},
            skippable=True,
            description=f"Table {table} of source '{source}', loaded by stackyard.",
        )
        for source, names in tables.items()
        for table in names
    ]
    for name, node in models.items():
        deps = [dg.AssetKey([d]) for d in node["models"]]
        deps += [
            dg.AssetKey([by_dbt_source.get(src, src), table]) for src, table in node["sources"]
        ]
        specs.append(
            dg.AssetSpec(
                key=dg.AssetKey([name]),
                deps=deps,
                group_name="transform",
                kinds={"dbt"},
                skippable=True,
                description=node["description"] or f"dbt model {name}.",
            )
        )
    checks = [dg.AssetCheckSpec(name=CHECK, asset=spec.key) for spec in specs]
    config = project.config
    retries = config.transform.retries
    runtime = config.transform.deadline * 2 + sum(
        s.deadline * (s.retries.count + 1) for s in config.sources.values() if s.enabled
    )
    model_keys = {dg.AssetKey([m]) for m in models}
    order = {
        path: n
        for n, path in enumerate(
            [(s, t) for s, names in tables.items() for t in names]
            + [(m,) for m in _upstream_first(models)]
        )
    }

    @dg.multi_asset(
        name="stackyard_run",
        specs=specs,
        check_specs=checks,
        can_subset=True,
        retry_policy=dg.RetryPolicy(
            max_retries=retries.count,
            delay=retries.backoff_factor,
            backoff=dg.Backoff.EXPONENTIAL,
            jitter=dg.Jitter.PLUS_MINUS if retries.jitter else None,
        ),
        op_tags={"dagster/max_runtime": int(runtime)},
    )
    def stackyard_run(context):  # type: ignore[no-untyped-def]  # Dagster reads the annotation
        selected = set(context.selected_asset_keys)
        sources = sorted({k.path[0] for k in selected if k not in model_keys})
        every = len(selected) == len(specs)
        skipped = _caught_up(project, sources, context.run.tags, every)
        if skipped:
            context.log.info(skipped)
            return
        select = [] if every else [*sources, *(k.path[0] for k in selected & model_keys)]
        # Dagster runs a failed attempt again while retries are left: not news yet.
        will_retry = int(getattr(context, "retry_number", 0) or 0) < retries.count
        try:
            result = run_step(
                root,
                select,
                config.transform.deadline,
                LogConsole(context.log),
                retry_loads=True,
                will_retry=will_retry,
            )
        except StepFailedError as failed:
            if failed.transient:
                raise
            # Another attempt would fail the same way: skip the retry policy.
            raise dg.Failure(str(failed), allow_retries=False) from None
        yield from _results(dg, context, result, selected, order)

    jobs = [dg.define_asset_job("stackyard_all", selection=dg.AssetSelection.all())]
    schedules = []
    for source, names in tables.items():
        job = dg.define_asset_job(
            f"load_{source}",
            selection=dg.AssetSelection.assets(*(dg.AssetKey([source, t]) for t in names)),
            tags={"stackyard/source": source},
        )
        jobs.append(job)
        schedules.append(_schedule(dg, project, source, job))
    return dg.Definitions(assets=[stackyard_run], jobs=jobs, schedules=schedules)


def _schedule(dg: Any, project: Project, source: str, job: Any) -> Any:
    """A source's schedule. Dagster's scheduler launches only the latest missed tick of a
    schedule like this one after downtime; with ``catch_up: each`` the tick asks for one run
    per interval missed since the schedule's last run, oldest first (each tagged with the
    interval it stands for)."""
    declared = project.config.sources[source].schedule
    name = f"{source}_schedule"

    @dg.schedule(
        name=name,
        job=job,
        cron_schedule=declared.cron,
        execution_timezone=declared.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
    def tick(context):  # type: ignore[no-untyped-def]  # Dagster reads the annotation
        now = context.scheduled_execution_time or datetime.now(UTC)
        due = [now]
        last = _last_scheduled(context.instance, name) if declared.catch_up == "each" else None
        if last is not None:
            due = declared.ticks(last, now) or [now]
        for moment in due:
            yield dg.RunRequest(
                run_key=f"{source}@{moment.isoformat()}",
                tags={SCHEDULED_FOR: moment.isoformat(), "stackyard/source": source},
            )

    return tick


def _last_scheduled(instance: Any, schedule_name: str) -> datetime | None:
    """The interval the schedule's latest run stood for, from its tags (``None``: no run)."""
    if instance is None:
        return None
    import dagster as dg

    for run in instance.get_runs(
        filters=dg.RunsFilter(tags={"dagster/schedule_name": schedule_name}), limit=1
    ):
        value = run.tags.get(SCHEDULED_FOR) or run.tags.get("dagster/scheduled_execution_time")
        if value:
            return datetime.fromisoformat(value)
    return None


def _results(
    dg: Any,
    context: Any,
    result: RunResult,
    selected: set[Any],
    order: dict[tuple[str, ...], int],
) -> Iterator[Any]:
    """Materialisations of what the run loaded and built (upstream first, as Dagster wants
    them), and the monitors' verdicts."""
    rows = {(load.source, t.table): t.rows for load in result.loads for t in load.tables}
    built = {n.name: n.status for n in result.nodes if n.resource_type == "model"}
    for key in sorted(selected, key=lambda k: order.get(tuple(k.path), len(order))):
        metadata: dict[str, Any] = {"stackyard/run_id": result.run_id}
        if len(key.path) == 2:
            metadata["rows_loaded"] = rows.get((key.path[0], key.path[1]), 0)
        elif key.path[0] not in built:
            continue  # not part of this run's dbt build (skipped: nothing changed)
        else:
            metadata["dbt_status"] = built[key.path[0]]
        yield dg.MaterializeResult(asset_key=key, metadata=metadata)
    verdicts = _verdicts(result)
    for check in context.selected_asset_check_keys:
        key = tuple(check.asset_key.path)
        status, detail = verdicts.get(key, ("ok", "no monitor found a problem"))
        yield dg.AssetCheckResult(
            asset_key=check.asset_key,
            check_name=CHECK,
            passed=status == "ok",
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"status": status, "detail": detail},
        )


def _verdicts(result: RunResult) -> dict[tuple[str, ...], tuple[str, str]]:
    """Each monitored table's worst status and its problems, by asset key path."""
    report = result.monitors
    out: dict[tuple[str, ...], tuple[str, str]] = {}
    for table in getattr(report, "tables", ()) or ():
        path = tuple(table.node.split(".", 1)) if table.kind == "source" else (table.node,)
        detail = "; ".join(str(getattr(c, "reason", c)) for c in table.problems)
        out[path] = (str(table.status), detail or "ok")
    return out


def _caught_up(project: Project, sources: Sequence[str], tags: Any, every: bool) -> str | None:
    """Why a scheduled run is skipped under its source's ``catch_up: once``, or ``None``."""
    scheduled = tags.get(SCHEDULED_FOR) or tags.get("dagster/scheduled_execution_time")
    if not scheduled or every or len(sources) != 1:
        return None
    schedule = project.config.sources[sources[0]].schedule
    reason = schedule.superseded(datetime.fromisoformat(scheduled), datetime.now(UTC))
    return f"source '{sources[0]}': {reason}" if reason else None


def _upstream_first(models: dict[str, dict[str, Any]]) -> list[str]:
    """Model names, each after the models it selects from.

    >>> _upstream_first({"b": {"models": ["a"]}, "a": {"models": []}})
    ['a', 'b']
    """
    done: list[str] = []

    def visit(name: str, seen: frozenset[str]) -> None:
        if name in done or name in seen or name not in models:
            return
        for upstream in models[name]["models"]:
            visit(upstream, seen | {name})
        done.append(name)

    for name in sorted(models):
        visit(name, frozenset())
    return done


def _source_tables(root: Path, project: Project) -> dict[str, list[str]]:
    """Each enabled source's tables: declared in stackyard.yml, else those it loaded."""
    from stackyard.context import Context

    out: dict[str, list[str]] = {}
    undeclared = []
    for name, source in project.config.sources.items():
        if not source.enabled:
            continue
        out[name] = list(source.declared_tables())
        if not out[name]:
            undeclared.append(name)
    if undeclared:
        with Context(root) as context:
            warehouse = context.warehouse()
            for name in undeclared:
                schema = project.config.dataset_for(name)
                if warehouse.schema_exists(schema):
                    out[name] = [
                        t
                        for t in warehouse.tables_in(schema)
                        if not t.startswith("_dlt") and not t.startswith("_rejected")
                    ]
    return out


def _models(root: Path) -> dict[str, dict[str, Any]]:
    """The dbt project's models with their upstream models and sources (from dbt parse)."""
    from stackyard.context import Context

    with Context(root) as context:
        manifest = context.dbt().manifest()
    nodes = manifest.get("nodes", {})
    sources = manifest.get("sources", {})
    out: dict[str, dict[str, Any]] = {}
    for node in nodes.values():
        if node.get("resource_type") != "model":
            continue
        upstream = node.get("depends_on", {}).get("nodes", [])
        out[node["name"]] = {
            "models": [nodes[u]["name"] for u in upstream if u in nodes],
            "sources": [
                (sources[u]["source_name"], sources[u]["name"]) for u in upstream if u in sources
            ],
            "description": node.get("description", ""),
        }
    return out


DEFINITIONS_FILE = """# Written by `stackyard serve --orchestrator dagster`.
from pathlib import Path

from stackyard.integrations.dagster import definitions

defs = definitions(Path({root!r}))
"""


def definitions_file(project_dir: str | Path) -> Path:
    """Write the file ``dagster dev`` and ``dagster definitions validate`` load
    (``.stackyard/dagster/definitions.py``) and return its path."""
    require("dagster")
    root = load_project(project_dir).project_dir.resolve()
    home = root / ".stackyard" / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    entry = home / "definitions.py"
    entry.write_text(DEFINITIONS_FILE.format(root=str(root)), encoding="utf-8")
    _telemetry_off(home / "dagster.yaml")
    return entry


def _telemetry_off(settings: Path) -> None:
    """Turn Dagster's usage reporting off in the instance settings of stackyard's Dagster home
    (its ``dagster.yaml``), as dbt's and dlt's are for every run: ``stackyard serve`` started
    Dagster with it on and its banner said so. A ``telemetry`` entry the file already has is
    the user's own choice and stays."""
    import yaml

    text = settings.read_text(encoding="utf-8") if settings.exists() else ""
    try:
        held = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError:
        return  # Dagster will name the broken file itself; nothing of it is overwritten.
    if not isinstance(held, dict) or "telemetry" in held:
        return
    lead = "" if not text or text.endswith("\n") else "\n"
    settings.write_text(
        f"{text}{lead}# Written by stackyard: no usage reporting from this Dagster home.\n"
        "telemetry:\n  enabled: false\n",
        encoding="utf-8",
    )


def serve(project_dir: str | Path, port: int | None = None) -> int:
    """Start ``dagster dev`` on the project's definitions until interrupted (its webserver on
    ``port``, Dagster's default 3000 without one); returns its exit code. Dagster's state goes
    to ``.stackyard/dagster``."""
    entry = definitions_file(project_dir)
    dagster = Path(sys.executable).parent / "dagster"
    env = {**os.environ, "DAGSTER_HOME": str(entry.parent)}
    command = [str(dagster), "dev", "-f", str(entry)]
    if port is not None:
        command += ["--host", "127.0.0.1", "--port", str(port)]
    # Its own session, so that a stop reaches Dagster as a whole: SIGTERM sent to stackyard
    # alone (kill, systemd) used to SIGKILL `dagster dev` only, and its webserver, daemon
    # and code server lived on, the scheduler still firing schedules after "interrupted".
    dev = subprocess.Popen(command, cwd=entry.parents[2], env=env, start_new_session=True)
    try:
        return dev.wait()
    except KeyboardInterrupt:
        _stop_group(dev)
        raise


#: How long ``dagster dev`` has to shut down its processes after SIGTERM before the rest of its
#: process group is killed.
STOP_GRACE_SECONDS = 60.0


def _stop_group(dev: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group ``dev`` leads (``dagster dev`` stops its webserver, daemon
    and code servers on it), wait for the group to empty, and SIGKILL what is left after
    ``STOP_GRACE_SECONDS``. A second Ctrl-C while waiting kills the group at once."""
    pgid = dev.pid
    try:
        os.killpg(pgid, signal.SIGTERM)
        end = time.monotonic() + STOP_GRACE_SECONDS
        while _group_alive(pgid) and time.monotonic() < end:
            dev.poll()  # reap `dagster dev` itself, or the group never empties
            time.sleep(0.2)
    finally:
        if _group_alive(pgid):
            with contextlib.suppress(ProcessLookupError):  # it emptied in between
                os.killpg(pgid, signal.SIGKILL)
        dev.wait()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
