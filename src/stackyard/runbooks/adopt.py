"""``stackyard adopt dbt``: wire an existing dbt project into a stackyard project, unchanged.

The dbt project stays where it is and as it is. stackyard writes only its own files: a
``stackyard.yml`` (in the dbt project's folder with ``--in-place``, or in a new folder) whose
``transform.path`` points at the dbt project, and its generated ``profiles.yml`` under
``.stackyard/dbt`` (``transform.profiles_dir``), never the project's own. dbt itself writes
``target/``, ``logs/`` and ``dbt_packages/`` there, as a plain ``dbt build`` would.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from stackyard.config.loader import PROJECT_FILE
from stackyard.config.private import PRIVATE_DIR, write_private
from stackyard.config.secrets import SECRETS_FILE
from stackyard.errors import StackyardError, UsageError
from stackyard.runbooks.adopt_profiles import (
    ProfileTargets,
    keep_secrets,
    profile_targets,
    profiles_file,
    sandbox_name,
    shown_path,
)
from stackyard.transform.dbt_project import read_dbt_project

if TYPE_CHECKING:
    from stackyard.transform.inventory import Inventory

# What dbt writes into a project it runs; everything else is the project's own.
DBT_OUTPUTS = ("target", "logs", "dbt_packages", "package-lock.yml", ".user.yml")

_YML = """\
# A stackyard project around an existing dbt project (adopted with `stackyard adopt dbt`).
# stackyard never edits the dbt project's files; its own dbt profiles go to .stackyard/dbt.
# Docs: docs/runbooks/adopting-an-existing-stack.md in the stackyard repository.
name: {name}

targets:
  {sandbox}:{pad}# an embedded DuckDB file inside this folder
    type: duckdb
    path: .stackyard/dev.duckdb
{profile_targets}{defaults}
transform:
  path: {path}
  profiles_dir: .stackyard/dbt
  vars: {{}}                 # dbt vars for every run, e.g. {{load_source_data: true}}

sources: {{}}
"""


@dataclass(frozen=True)
class Adopted:
    """What ``adopt dbt`` wrote and what it found in the dbt project.

    Attributes:
        project_dir: the stackyard project (where stackyard.yml is).
        dbt_dir: the dbt project, unchanged.
        name: the dbt project's name; profile: the profile it asks for.
        vars: the vars its dbt_project.yml declares (names).
        checksums: ``{relative path: sha256}`` of the dbt project's own files when adopted.
        profile_targets: what the team's dbt profile gave (targets, secrets, outputs left
            out).
        sandbox: the new DuckDB target, the default (``dev`` unless the profile has one).
        secrets_written: secrets written out in the profile, added to .stackyard/secrets.toml.
        secrets_kept: such secrets the file held already, left as they are there.
    """

    project_dir: Path
    dbt_dir: Path
    name: str
    profile: str
    vars: tuple[str, ...]
    checksums: dict[str, str]
    profile_targets: ProfileTargets = field(default_factory=ProfileTargets)
    sandbox: str = "dev"
    secrets_written: tuple[str, ...] = ()
    secrets_kept: tuple[str, ...] = ()


@dataclass(frozen=True)
class AdoptReport:
    """``adopt dbt`` as a whole: what was written, what dbt found, whether the project's
    files are unchanged, and what went wrong (the wiring stays written then).

    Attributes:
        adopted: the wiring written.
        found: what dbt parsed, or ``None`` when it could not.
        problem: why dbt could not (packages, vars, a compile error), or ``None``.
        unchanged: every file of the dbt project is as it was before.
        dbt_wrote: what dbt itself created in the dbt project while parsing it (``target``,
            ``logs``, ``package-lock.yml`` …: :data:`DBT_OUTPUTS` that were not there).
    """

    adopted: Adopted
    found: Inventory | None
    problem: StackyardError | None
    unchanged: bool
    dbt_wrote: tuple[str, ...] = ()

    @property
    def exit_code(self) -> int:
        """0 ok; the problem's code; 1 when the project's files changed."""
        if self.problem is not None:
            return self.problem.exit_code
        return 0 if self.unchanged else 1

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` shape."""
        a, f = self.adopted, self.found
        return {
            "project": str(a.project_dir),
            "dbt_project": str(a.dbt_dir),
            "name": a.name,
            "profile": a.profile,
            "vars": list(a.vars),
            "targets": [a.sandbox, *a.profile_targets.targets],
            "default_target": a.sandbox,
            "profiles_file": str(a.profile_targets.found_in or "") or None,
            "not_adopted": [{"output": o, "reason": why} for o, why in a.profile_targets.left_out],
            "secrets": {"written": list(a.secrets_written), "kept": list(a.secrets_kept)},
            "models": f.models if f else None,
            "seeds": f.seeds if f else None,
            "snapshots": f.snapshots if f else None,
            "tests": f.tests if f else None,
            "sources": f.sources if f else None,
            "packages": list(f.packages) if f else None,
            "files_unchanged": self.unchanged,
            "dbt_wrote": list(self.dbt_wrote),
            "error": str(self.problem) if self.problem else None,
            "ok": self.exit_code == 0,
        }


def adopt_and_report(
    dbt_dir: Path,
    project_dir: Path | None,
    inspect: Callable[[Path], Inventory],
    *,
    in_place: bool = False,
    profiles_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> AdoptReport:
    """Write the wiring (:func:`adopt_dbt`), then let dbt parse the project through it.

    Args:
        dbt_dir: the dbt project.
        project_dir: the new stackyard project's folder; ``None``: in place.
        inspect: what dbt finds in the stackyard project at a path (the caller opens it).
        in_place: asked for explicitly (the default when ``project_dir`` is ``None``).
        profiles_dir: where the team's profiles.yml is (default: found as dbt finds it).
        environ: the environment dbt would see (``DBT_PROFILES_DIR``, ``HOME``).

    Raises:
        UsageError: both ``in_place`` and ``project_dir``, or as :func:`adopt_dbt`; nothing
            is written then.
    """
    if in_place and project_dir is not None:
        raise UsageError("give --in-place or --project DIR, not both")
    adopted = adopt_dbt(
        dbt_dir, project_dir=project_dir, profiles_dir=profiles_dir, environ=environ
    )
    there = {name for name in DBT_OUTPUTS if (adopted.dbt_dir / name).exists()}
    found: Inventory | None = None
    problem: StackyardError | None = None
    try:
        found = inspect(adopted.project_dir)
    except StackyardError as exc:  # the wiring is right; the report says what to fix
        problem = exc
    unchanged = project_checksums(adopted.dbt_dir) == adopted.checksums
    wrote = tuple(
        name for name in DBT_OUTPUTS if name not in there and (adopted.dbt_dir / name).exists()
    )
    return AdoptReport(adopted, found, problem, unchanged, wrote)


def adopt_dbt(
    dbt_dir: Path,
    *,
    project_dir: Path | None = None,
    profiles_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Adopted:
    """Write a stackyard project around the dbt project in ``dbt_dir``.

    Args:
        dbt_dir: the folder holding ``dbt_project.yml``.
        project_dir: a new (or empty) folder for the stackyard project; ``None`` puts
            ``stackyard.yml`` in ``dbt_dir`` itself (in place).
        profiles_dir: the folder of the team's profiles.yml; default: as dbt finds it.
        environ: the environment dbt would see; default: ``os.environ``.

    Raises:
        UsageError: ``dbt_dir`` is not a dbt project, the stackyard project folder is
            taken, or the team's profiles.yml cannot be read. Nothing is written then.
        ConfigError: its ``dbt_project.yml`` cannot be read (dbt cannot read it either).
            Nothing is written then.
    """
    dbt_dir = dbt_dir.resolve()
    manifest = dbt_dir / "dbt_project.yml"
    if not manifest.is_file():
        raise UsageError(
            f"{dbt_dir} does not exist"
            if not dbt_dir.exists()
            else f"{dbt_dir} has no dbt_project.yml: it is not a dbt project",
            hint="give the folder that holds dbt_project.yml",
        )
    data = read_dbt_project(dbt_dir)
    target = (project_dir or dbt_dir).resolve()
    if (target / PROJECT_FILE).exists():
        raise UsageError(
            f"{target / PROJECT_FILE} exists: {target} is a stackyard project already",
            hint="run `stackyard run` there, or adopt into another folder with --project DIR",
        )
    if project_dir is not None and target.exists() and any(target.iterdir()):
        raise UsageError(
            f"{target} already exists and is not empty",
            hint="choose a new folder for the stackyard project, or use --in-place",
        )
    profile = str(data.get("profile") or "")
    found = profiles_file(dbt_dir, profiles_dir, os.environ if environ is None else environ)
    team = profile_targets(found, profile, dbt_dir, target)
    sandbox = sandbox_name(team.targets)
    checksums = project_checksums(dbt_dir)
    target.mkdir(parents=True, exist_ok=True)
    # Local state (the DuckDB file, secrets, generated profiles) stays out of git, without
    # touching the project's own .gitignore.
    write_private(target / PRIVATE_DIR / ".gitignore", "*\n")
    written, kept = keep_secrets(target / SECRETS_FILE, team.secrets)
    path = Path(os.path.relpath(dbt_dir, target)).as_posix()
    name = project_name(str(data.get("name") or dbt_dir.name))
    text = _YML.format(
        name=name,
        path=_yaml_str(path),
        sandbox=sandbox,
        pad=" " * max(1, 26 - len(sandbox)),
        profile_targets=_targets_yaml(
            team, profile, shown_path(found, target, environ or os.environ) if found else ""
        ),
        defaults=f"\ndefaults:\n  target: {sandbox}\n" if sandbox != "dev" else "",
    )
    (target / PROJECT_FILE).write_text(text, encoding="utf-8")
    return Adopted(
        project_dir=target,
        dbt_dir=dbt_dir,
        name=str(data.get("name") or dbt_dir.name),
        profile=profile,
        vars=tuple(str(v) for v in (data.get("vars") or {})),
        checksums=checksums,
        profile_targets=team,
        sandbox=sandbox,
        secrets_written=tuple(written),
        secrets_kept=tuple(kept),
    )


def _targets_yaml(team: ProfileTargets, profile: str, shown: str) -> str:
    """The profile's outputs as entries under ``targets:``."""
    if not team.targets:
        return ""
    dumped = yaml.safe_dump(team.targets, sort_keys=False, default_flow_style=False)
    body = "".join(f"  {line}\n" for line in dumped.splitlines())
    return f"  # from the dbt profile '{profile}' in {shown}\n{body}"


def project_checksums(dbt_dir: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of the dbt project's own files (not what dbt or stackyard
    write), to show that adopting and running changed none of them."""
    sums: dict[str, str] = {}
    skip = {*DBT_OUTPUTS, ".stackyard", PROJECT_FILE, ".git"}
    for path in sorted(dbt_dir.rglob("*")):
        rel = path.relative_to(dbt_dir)
        if rel.parts[0] in skip or not path.is_file():
            continue
        sums[rel.as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return sums


def project_name(text: str) -> str:
    """A valid stackyard project name from a dbt project's name.

    >>> project_name("Jaffle-Shop 2")
    'jaffle_shop_2'
    >>> project_name("2024_models")
    'p_2024_models'
    """
    name = re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_") or "project"
    return name if name[0].isalpha() else f"p_{name}"


def _yaml_str(value: str) -> str:
    """A path as a YAML scalar (quoted when YAML would read it otherwise)."""
    dumped: str = yaml.safe_dump(value, default_flow_style=True).strip()
    return dumped.removesuffix("\n...").removesuffix("...").strip()
