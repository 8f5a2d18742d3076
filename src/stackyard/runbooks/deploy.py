"""``stackyard deploy prefect``: the project's schedules as Prefect deployments.

Writes two files into the project: ``prefect.yaml`` (one deployment per enabled source with
its cron and time zone, plus the transformation's, all on one work pool) and
``prefect_flows.py`` (the flow objects, built by :mod:`stackyard.integrations.prefect` from
stackyard.yml when Prefect loads the file, so they never go stale). Both are rewritten from
stackyard.yml on every deploy; nothing here imports Prefect.

A person may edit either file (a work pool's settings, a schedule, parameters): each carries
a checksum line, and one edited since stackyard wrote it is never overwritten without
``force`` (:mod:`stackyard.generated`, shared with ``stackyard ci github``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stackyard.config.project import Project
from stackyard.generated import FileChange, Writer, stamped, write_generated

PREFECT_FILE = "prefect.yaml"
FLOWS_FILE = "prefect_flows.py"
WORK_POOL = "stackyard"
TRANSFORMATION_DEPLOYMENT = "transformation"
# prefect.yaml's build step, run by `prefect deploy` in the checkout it deploys from: its
# folder is where the deployments' runs find prefect_flows.py (the pull step below).
PROJECT_STEP = "stackyard.integrations.prefect.project_directory"
_PROJECT_STEP_ID = "stackyard-project"

_HEADER = (
    "# Written by `stackyard deploy prefect` from stackyard.yml: edit that, then deploy again.\n"
)
WRITER = Writer(
    name="deploy",
    command="stackyard deploy prefect",
    action="deploying",
    outcome="nothing was written",
    advice="keep schedules, retries and deadlines in stackyard.yml",
)

_FLOWS_MODULE = '''"""Prefect flows of this stackyard project, built from stackyard.yml when loaded.

Written by `stackyard deploy prefect`: each flow runs the same steps as `stackyard run`, with
the retries, deadline and catch-up stackyard.yml declares. The bodies below are placeholders;
the decorator returns the flow stackyard builds.
"""

from pathlib import Path

from stackyard.integrations.prefect import stackyard_flow

PROJECT = Path(__file__).resolve().parent
{functions}'''

_FLOW_FUNCTION = '''

@stackyard_flow(PROJECT, {source!r})
def {function}() -> None:
    """{doc}"""
'''


def flow_function_name(source: str | None) -> str:
    """The flows module's name for a source's flow (``None``: the transformation's).

    >>> flow_function_name("shop"), flow_function_name(None)
    ('load_shop', 'transformation')
    """
    return f"load_{source}" if source else TRANSFORMATION_DEPLOYMENT


@dataclass(frozen=True)
class PrefectDeployment:
    """One deployment in prefect.yaml."""

    name: str
    entrypoint: str
    cron: str | None
    timezone: str | None
    catch_up: str | None
    retries: int
    retry_delays: tuple[float, ...]
    jitter: float
    deadline_seconds: float


@dataclass(frozen=True)
class DeployResult:
    """What ``stackyard deploy prefect`` wrote (or, in a dry run, would write)."""

    orchestrator: str
    files: tuple[str, ...]
    work_pool: str
    deployments: tuple[PrefectDeployment, ...]
    changes: tuple[FileChange, ...] = field(default=())
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``stackyard deploy prefect --json``."""
        from dataclasses import asdict

        return asdict(self)


def prefect_deployments(project: Project) -> list[PrefectDeployment]:
    """The deployments the project's schedules make: one per enabled source, then the
    transformation's (run on demand and by each source's flow, not by a clock)."""
    config = project.config
    out = []
    for name, source in config.sources.items():
        if not source.enabled:
            continue
        out.append(
            PrefectDeployment(
                name=name,
                entrypoint=f"{FLOWS_FILE}:{flow_function_name(name)}",
                cron=source.schedule.cron,
                timezone=source.schedule.timezone,
                catch_up=source.schedule.catch_up,
                retries=source.retries.count,
                retry_delays=tuple(source.retries.base_delays()),
                jitter=source.retries.jitter,
                deadline_seconds=source.deadline,
            )
        )
    transform = config.transform
    out.append(
        PrefectDeployment(
            name=TRANSFORMATION_DEPLOYMENT,
            entrypoint=f"{FLOWS_FILE}:{flow_function_name(None)}",
            cron=None,
            timezone=None,
            catch_up=None,
            retries=transform.retries.count,
            retry_delays=tuple(transform.retries.base_delays()),
            jitter=transform.retries.jitter,
            deadline_seconds=transform.deadline,
        )
    )
    return out


def prefect_yaml(project: Project, deployments: list[PrefectDeployment]) -> str:
    """The text of prefect.yaml for these deployments."""
    import yaml

    name = project.config.name
    entries = []
    for d in deployments:
        entry: dict[str, Any] = {
            "name": d.name,
            "description": (
                f"Load source '{d.name}' and build the models downstream of it."
                if d.cron
                else "Build and test the whole dbt project."
            ),
            "entrypoint": d.entrypoint,
            "tags": ["stackyard", name, "source" if d.cron else "transformation"],
            "work_pool": {"name": WORK_POOL},
        }
        if d.cron:
            entry["schedules"] = [{"cron": d.cron, "timezone": d.timezone, "active": True}]
        entries.append(entry)
    # No folder of this machine in the file: it is committed and deployed from other
    # checkouts (a colleague's, CI's, a worker's), where this one's path does not exist.
    document = {
        "name": name,
        "prefect-version": "3.9",
        "build": [{PROJECT_STEP: {"id": _PROJECT_STEP_ID}}],
        "push": None,
        "pull": [
            {
                "prefect.deployments.steps.set_working_directory": {
                    "directory": f"{{{{ {_PROJECT_STEP_ID}.directory }}}}"
                }
            }
        ],
        "deployments": entries,
    }
    return stamped(
        _HEADER + yaml.safe_dump(document, sort_keys=False, default_flow_style=False),
        WRITER.command,
    )


def flows_module(deployments: list[PrefectDeployment]) -> str:
    """The text of the flows module: one decorated function per deployment's entrypoint
    (Prefect finds a flow's definition in the file before importing it)."""
    functions = "".join(
        _FLOW_FUNCTION.format(
            source=d.name if d.cron else None,
            function=d.entrypoint.split(":")[1],
            doc=(
                f"Load source '{d.name}', then build the models downstream of it."
                if d.cron
                else "Build and test the whole dbt project."
            ),
        )
        for d in deployments
    )
    return stamped(_FLOWS_MODULE.format(functions=functions), WRITER.command)


def deploy_prefect(project: Project, *, force: bool = False, dry_run: bool = False) -> DeployResult:
    """Write prefect.yaml and the flows module into the project.

    Args:
        project: the project whose schedules to deploy.
        force: overwrite a file edited by hand (or not written by stackyard), keeping its old
            text as ``<file>.bak`` first.
        dry_run: write nothing; each change carries its diff.

    Returns:
        The files written and the deployments they declare.

    Raises:
        ConfigError: a file to write was edited by hand since stackyard wrote it, or was not
            written by stackyard, and ``force`` was not given; nothing was written.
    """
    deployments = prefect_deployments(project)
    root = project.project_dir
    texts = {
        PREFECT_FILE: prefect_yaml(project, deployments),
        FLOWS_FILE: flows_module(deployments),
    }
    changes = write_generated(root, texts, WRITER, force=force, dry_run=dry_run)
    return DeployResult(
        "prefect",
        tuple(texts),
        WORK_POOL,
        tuple(deployments),
        changes,
        dry_run,
    )
