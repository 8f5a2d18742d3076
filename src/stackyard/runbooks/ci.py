"""``stackyard ci github``: a GitHub Actions workflow that checks a pull request and applies main.

On a pull request it runs ``stackyard policy check``, ``stackyard plan --detailed-exitcode``
(0 no access change, 2 changes to review: both pass; 1 fails) and a slim ``stackyard run`` on
the default DuckDB target, a fresh copy built from the sources in the runner, never the
production warehouse: the target branch's dbt manifest (``stackyard dbt-manifest`` in a
checkout of it) is the state that ``@state:modified`` compares with, so only the changed
models, their children and what those read are built, and only the sources they read are
loaded. On a push to main it applies the access plan and runs on the
production target. ``stackyard init`` writes the same file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackyard.config.model import ProjectConfig
from stackyard.errors import UsageError

WORKFLOW = Path(".github") / "workflows" / "stackyard.yml"
HEADER = (
    "# Written by `stackyard ci github`, which rewrites this file while this line is here;\n"
    "# delete the line to keep your own edits.\n"
)


@dataclass(frozen=True)
class CiResult:
    """What ``stackyard ci github`` wrote."""

    path: str
    pull_request_steps: tuple[str, ...]
    main_steps: tuple[str, ...]
    production_target: str

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


def _setup() -> list[dict[str, Any]]:
    return [
        {"uses": "actions/checkout@v4"},
        {"uses": "actions/setup-python@v5", "with": {"python-version": "3.11"}},
        {"name": "Install stackyard", "run": "pip install stackyard"},
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
            "check": {
                "if": "github.event_name == 'pull_request'",
                "runs-on": "ubuntu-latest",
                "steps": [*_setup(), *checks],
            },
            "deploy": {
                "if": "github.event_name == 'push'",
                "runs-on": "ubuntu-latest",
                "environment": prod,
                "steps": [*_setup(), *deploy],
            },
        },
    }


def write_github_workflow(project_dir: Path, config: ProjectConfig) -> CiResult:
    """Write ``.github/workflows/stackyard.yml``; a file without stackyard's header line (one
    someone wrote, or took over by deleting the line) is left alone.

    Raises:
        UsageError: the file exists without stackyard's header.
    """
    import yaml

    path = project_dir / WORKFLOW
    if path.exists() and not path.read_text(encoding="utf-8").startswith(HEADER):
        raise UsageError(
            f"{WORKFLOW} exists without stackyard's header line; it was left as it is",
            hint="move it aside and run `stackyard ci github` again to get a fresh one",
        )
    workflow = github_workflow(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = HEADER + yaml.safe_dump(workflow, sort_keys=False, width=100)
    path.write_text(text, encoding="utf-8")
    jobs = workflow["jobs"]
    return CiResult(
        str(WORKFLOW),
        tuple(s["run"] for s in jobs["check"]["steps"] if "run" in s),
        tuple(s["run"] for s in jobs["deploy"]["steps"] if "run" in s),
        production_target(config),
    )
