"""``stackyard ci github``: a GitHub Actions workflow that checks a pull request and applies main.

On a pull request it runs ``stackyard policy check``, ``stackyard plan --detailed-exitcode``
(0 no access change, 2 changes to review: both pass; 1 fails) and a slim ``stackyard run`` on
the default DuckDB target, a fresh copy built from the sources in the runner, never the
production warehouse: the target branch's dbt manifest (``stackyard dbt-manifest`` in a
checkout of it) is the state that ``@state:modified`` compares with, so only the changed
models, their children and what those read are built, and only the sources they read are
loaded. On a push to main it applies the access plan and runs on the
production target. ``stackyard init`` writes the same file.

A team may edit the workflow (a secret, a step of its own), and a rewrite that silently
replaced it would lose that work: its first line carries a checksum of the rest, and a file
edited since stackyard wrote it, or not written by stackyard, is never overwritten without
``force`` (:mod:`stackyard.generated`, shared with ``stackyard deploy prefect``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from stackyard.config.base import SecretRef
from stackyard.config.model import ProjectConfig
from stackyard.errors import UsageError
from stackyard.generated import FileChange, Writer, stamped, write_generated

WORKFLOW = Path(".github") / "workflows" / "stackyard.yml"
HEADER = (
    "# Written by `stackyard ci github` from stackyard.yml: edit that, then run it again.\n"
    "# Jobs of your own belong in a workflow file of your own beside this one.\n"
)
# What stackyard wrote above the workflow before the checksum line: a file holding this and
# exactly the workflow it would write now is an older stackyard's, unedited.
OLDER_HEADER = (
    "# Written by `stackyard ci github`, which rewrites this file while this line is here;\n"
    "# delete the line to keep your own edits.\n"
)
WRITER = Writer(
    name="ci github",
    command="stackyard ci github",
    action="writing the workflow",
    outcome="it was left as it is",
    # GitHub runs every .yml/.yaml file in .github/workflows: a team's own file runs beside
    # this one, and the backup (.yml.bak) does not run
    advice="jobs and steps of your own go in a workflow file of your own in .github/workflows",
    error=UsageError,
)


@dataclass(frozen=True)
class CiResult:
    """What ``stackyard ci github`` wrote (or, in a dry run, would write)."""

    path: str
    pull_request_steps: tuple[str, ...]
    main_steps: tuple[str, ...]
    production_target: str
    changes: tuple[FileChange, ...] = field(default=())
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``stackyard ci github --json``."""
        from dataclasses import asdict

        return asdict(self)


def production_target(config: ProjectConfig) -> str:
    """The target main applies to: the first one that is not the default, else the default."""
    others = [t for t in config.targets if t != config.defaults.target]
    return others[0] if others else config.defaults.target


BASE = Path(".stackyard") / "base"
# The pull request's target branch, checked out beside the project; its parsed manifest is the
# state the slim run compares with. Locally: GITHUB_BASE_REF=main and the same commands.
BASE_MANIFEST = (
    f'git fetch --depth=1 origin "$GITHUB_BASE_REF" && rm -rf {BASE} && git worktree prune && '
    f"git worktree add --detach {BASE}/src FETCH_HEAD && "
    f"stackyard dbt-manifest --project {BASE}/src --out {BASE}/state"
)
# `@`: the changed models, their children and every parent of those, which a fresh copy
# does not have yet.
SLIM_SELECT = "@state:modified"


# What a secret manager's client reads from the environment in the runner.
_BACKEND_ENV = {
    "aws": ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"),
    "vault": ("VAULT_ADDR", "VAULT_TOKEN"),
}


def _secret_env(*parts: Any) -> dict[str, str]:
    """The job's ``env``: every secret the config ``parts`` name, read from the repository's
    (or the job's environment's) GitHub secrets of the same name. GitHub hands a step no
    secret it was not given, so without these the first step that connects stopped on
    "secret … was not found". A ``from: file`` secret lives in a file the runner never has:
    it is left out, and the step needing it says so."""
    names: set[str] = set()
    for ref in (r for part in parts for r in _refs(part)):
        if ref.from_ in _BACKEND_ENV:
            names.update(_BACKEND_ENV[str(ref.from_)])
        elif ref.from_ != "file":
            names.add(ref.secret)
    return {n: f"${{{{ secrets.{n} }}}}" for n in sorted(names)}


def _refs(value: Any) -> list[SecretRef]:
    if isinstance(value, SecretRef):
        return [value]
    if isinstance(value, BaseModel):
        return [r for name in type(value).model_fields for r in _refs(getattr(value, name))]
    if isinstance(value, dict):
        return [r for v in value.values() for r in _refs(v)]
    if isinstance(value, list | tuple):
        return [r for v in value for r in _refs(v)]
    return []


def _job(condition: str, env: dict[str, str], steps: list[Any], **more: Any) -> dict[str, Any]:
    job: dict[str, Any] = {"if": condition, "runs-on": "ubuntu-latest", **more}
    return {**job, **({"env": env} if env else {}), "steps": steps}


# The pinned stack the installed stackyard ships (constraints.txt in its wheel).
_PINNED = (
    "\"$(python -c 'from stackyard.runbooks.upgrade import default_constraints; "
    "print(default_constraints())')\""
)


def install_command() -> str:
    """The runner's install: the stackyard that wrote the workflow, then its pinned stack
    (dbt, its adapters, dlt, DuckDB …). A bare ``pip install stackyard`` took whatever was
    newest that day, a stack neither ``upgrade check`` nor ``upgrade test`` had seen."""
    from stackyard import __version__

    wanted = f"'stackyard=={__version__}'"
    return f"pip install {wanted}\npip install {wanted} -c {_PINNED}\n"


def _setup() -> list[dict[str, Any]]:
    return [
        {"uses": "actions/checkout@v4"},
        {"uses": "actions/setup-python@v5", "with": {"python-version": "3.11"}},
        {"name": "Install stackyard and its pinned stack", "run": install_command()},
    ]


def github_workflow(config: ProjectConfig) -> dict[str, Any]:
    """The workflow as data (written as YAML)."""
    prod = production_target(config)
    dev = config.defaults.target
    checks = [
        {"name": "Access policies", "run": "stackyard policy check"},
        {
            "name": "Access plan (exit 2: changes to review)",
            "run": f'stackyard plan --target {dev} --detailed-exitcode || [ "$?" -eq 2 ]',
        },
        {"name": "Base manifest (the target branch's dbt project)", "run": BASE_MANIFEST},
        {
            "name": f"Build what changed on a fresh DuckDB copy ({dev})",
            "run": f"stackyard run --target {dev} --state {BASE}/state --select {SLIM_SELECT}",
        },
    ]
    shared = [getattr(config, n) for n in type(config).model_fields if n != "targets"]
    deploy = [
        {"name": "Access policies", "run": "stackyard policy check"},
        {"name": f"Apply access on {prod}", "run": f"stackyard apply --target {prod}"},
        {"name": f"Run on {prod}", "run": f"stackyard run --target {prod}"},
    ]
    return {
        "name": "stackyard",
        "on": {"pull_request": {}, "push": {"branches": ["main"]}},
        "permissions": {"contents": "read"},
        "concurrency": {"group": "stackyard-${{ github.ref }}", "cancel-in-progress": False},
        "jobs": {
            "check": _job(
                "github.event_name == 'pull_request'",
                _secret_env(*shared, config.targets[dev]),
                [*_setup(), *checks],
            ),
            "deploy": _job(
                "github.event_name == 'push'",
                _secret_env(*shared, config.targets[prod]),
                [*_setup(), *deploy],
                environment=prod,
            ),
        },
    }


def write_github_workflow(
    project_dir: Path, config: ProjectConfig, *, force: bool = False, dry_run: bool = False
) -> CiResult:
    """Write ``.github/workflows/stackyard.yml``.

    Args:
        project_dir: the project folder.
        config: the project's stackyard.yml.
        force: overwrite a workflow edited by hand (or not written by stackyard), keeping its
            old text as ``stackyard.yml.bak`` beside it first.
        dry_run: write nothing; the change carries its diff.

    Returns:
        The workflow's steps and what happened to the file.

    Raises:
        UsageError: the workflow was edited by hand since stackyard wrote it, or was not
            written by stackyard, and ``force`` was not given; it was left as it is.
    """
    import yaml

    workflow = github_workflow(config)
    body = yaml.safe_dump(workflow, sort_keys=False, width=100)
    file = WORKFLOW.as_posix()
    changes = write_generated(
        project_dir,
        {file: stamped(HEADER + body, WRITER.command)},
        WRITER,
        force=force,
        dry_run=dry_run,
        older={file: [OLDER_HEADER + body]},
    )
    jobs = workflow["jobs"]
    return CiResult(
        str(WORKFLOW),
        tuple(s["run"] for s in jobs["check"]["steps"] if "run" in s),
        tuple(s["run"] for s in jobs["deploy"]["steps"] if "run" in s),
        production_target(config),
        changes,
        dry_run,
    )
