"""``stackyard deploy prefect``: the project's schedules as Prefect deployments.

Writes two files into the project: ``prefect.yaml`` (one deployment per enabled source with
its cron and time zone, plus the transformation's, all on one work pool) and
``prefect_flows.py`` (the flow objects, built by :mod:`stackyard.integrations.prefect` from
stackyard.yml when Prefect loads the file, so they never go stale). Both are rewritten from
stackyard.yml on every deploy; nothing here imports Prefect.

A person may edit either file (a work pool's settings, a schedule, parameters), and a deploy
that silently rewrote it would lose that work. So each file's first line carries a checksum
of the rest (:func:`stamped`): a file whose text no longer matches it, or that has none (a
file someone else wrote), is never overwritten unless ``force`` is given, and then its old
text is kept beside it as ``<file>.bak`` first.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from stackyard.config.project import Project
from stackyard.errors import ConfigError
from stackyard.files import write_atomic

PREFECT_FILE = "prefect.yaml"
FLOWS_FILE = "prefect_flows.py"
WORK_POOL = "stackyard"
TRANSFORMATION_DEPLOYMENT = "transformation"

BACKUP_SUFFIX = ".bak"

_STAMP = "stackyard:generated"
_STAMP_RE = re.compile(rf"# {_STAMP} sha256=([0-9a-f]{{16}})\b")

# What ``deploy_prefect`` finds in a file it is about to write (``FileChange.state``).
NEW, UNCHANGED, REGENERATED, EDITED, FOREIGN = (
    "new",
    "unchanged",
    "regenerated",
    "edited",
    "not written by stackyard",
)
_REFUSED = (EDITED, FOREIGN)

_HEADER = (
    "# Written by `stackyard deploy prefect` from stackyard.yml: edit that, then deploy again.\n"
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


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def stamped(text: str) -> str:
    """``text`` under a first line carrying the checksum of it, so a later deploy can tell
    whether anyone changed the file since.

    >>> first, rest = stamped("name: shop\\n").split("\\n", 1)
    >>> first.startswith("# stackyard:generated sha256="), rest
    (True, 'name: shop\\n')
    """
    return (
        f"# {_STAMP} sha256={_digest(text)} (edited by hand, the next "
        "`stackyard deploy prefect` stops unless --force)\n" + text
    )


def file_state(on_disk: str, text: str) -> str:
    """What a file holds, compared with ``text`` (the stamped text a deploy would write).

    Returns:
        ``UNCHANGED`` (it is ``text``), ``REGENERATED`` (stackyard wrote it and nobody changed
        it since), ``EDITED`` (stackyard wrote it, then someone changed it) or ``FOREIGN`` (no
        checksum: someone else wrote it).

    >>> new = stamped("a: 1\\n")
    >>> [file_state(t, new) for t in (new, stamped("a: 0\\n"), stamped("a: 0\\n") + "b: 2\\n")]
    ['unchanged', 'regenerated', 'edited']
    >>> file_state("a: 0\\n", new)
    'not written by stackyard'
    """
    if on_disk == text:
        return UNCHANGED
    first, _, rest = on_disk.partition("\n")
    match = _STAMP_RE.match(first)
    if match is None:
        # a file from a stackyard that wrote no checksum, identical to what this one writes
        # under the checksum line, holds nobody's edits: it is only brought up to date
        return REGENERATED if on_disk == text.partition("\n")[2] else FOREIGN
    return REGENERATED if _digest(rest) == match.group(1) else EDITED


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
class FileChange:
    """One file of a deploy: what was on disk, and where its old text was kept."""

    file: str
    state: str
    backup: str | None = None
    diff: str = ""  # a dry run's unified diff, from the file on disk to what deploy writes


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
    document = {
        "name": name,
        "prefect-version": "3.9",
        "build": None,
        "push": None,
        "pull": [
            {
                "prefect.deployments.steps.set_working_directory": {
                    "directory": str(project.project_dir.resolve())
                }
            }
        ],
        "deployments": entries,
    }
    return stamped(_HEADER + yaml.safe_dump(document, sort_keys=False, default_flow_style=False))


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
    return stamped(_FLOWS_MODULE.format(functions=functions))


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
    # a hand-made file need not be UTF-8: it is compared and shown with its bad bytes
    # replaced (so it is never stackyard's), and its backup is a byte-for-byte copy
    on_disk = {
        file: (root / file).read_bytes().decode("utf-8", "replace")
        if (root / file).is_file()
        else None
        for file in texts
    }
    changes = []
    for file, text in texts.items():
        old = on_disk[file]
        state = NEW if old is None else file_state(old, text)
        backup = file + BACKUP_SUFFIX if force and state in _REFUSED else None
        diff = _diff(file, old or "", text) if dry_run and state != UNCHANGED else ""
        changes.append(FileChange(file, state, backup, diff))
    refused = [c for c in changes if c.state in _REFUSED]
    if refused and not force and not dry_run:
        raise ConfigError(
            "; ".join(_refusal(c) for c in refused)
            + ": deploying would overwrite "
            + ("it" if len(refused) == 1 else "them")
            + ", so nothing was written",
            hint="see what would change with `stackyard deploy prefect --dry-run`; keep "
            "schedules, retries and deadlines in stackyard.yml; `stackyard deploy prefect "
            "--force` overwrites, keeping the old "
            + " and ".join(f"{c.file} as {c.file}{BACKUP_SUFFIX}" for c in refused),
        )
    if not dry_run:
        import shutil

        for change in changes:
            if change.backup:
                shutil.copyfile(root / change.file, root / change.backup)
        for change in changes:
            if change.state != UNCHANGED:
                write_atomic(root / change.file, texts[change.file])
    return DeployResult(
        "prefect",
        tuple(texts),
        WORK_POOL,
        tuple(deployments),
        tuple(changes),
        dry_run,
    )


def _refusal(change: FileChange) -> str:
    if change.state == EDITED:
        return f"{change.file} was edited by hand since `stackyard deploy prefect` wrote it"
    return (
        f"{change.file} has no checksum of `stackyard deploy prefect` (written by hand, or "
        "by a stackyard older than the checksums), so hand edits cannot be ruled out"
    )


def _diff(file: str, old: str, new: str) -> str:
    import difflib

    # lines without their ends, so a file whose last line has no newline still diffs line by line
    lines = difflib.unified_diff(
        old.splitlines(),
        new.splitlines(),
        fromfile=f"{file} (on disk)",
        tofile=f"{file} (deploy)",
        lineterm="",
    )
    return "".join(line + "\n" for line in lines)
