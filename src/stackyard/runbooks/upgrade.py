"""The upgrades runbook: ``stackyard upgrade check`` and ``stackyard upgrade test``.

``check`` compares what is installed with the pinned stack (stackyard's constraints.txt, or a
file given) and lists the breaking changes between the two versions that this project would
notice (rules in ``notes/breaking_changes.yml``). ``test`` clones the target, runs the project
against the clone with the installed versions, and drops the clone: the real target is never
touched.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import Any

from stackyard.config.model import ProjectConfig
from stackyard.errors import UsageError


@dataclass(frozen=True)
class PackageVersion:
    """One package of the stack.

    Attributes:
        name: the distribution name.
        pinned: the version in the constraints file.
        installed: the installed version, ``""`` when missing.
        status: ``ok``, ``differs`` or ``missing``.
    """

    name: str
    pinned: str
    installed: str
    status: str


@dataclass(frozen=True)
class BreakingChange:
    """A change between the installed and the pinned version that this project would notice.

    Attributes:
        package: the package.
        version: the release that made the change.
        what: the change.
        action: what to do about it.
        because: which part of the project it touches.
    """

    package: str
    version: str
    what: str
    action: str
    because: str


@dataclass(frozen=True)
class UpgradeReport:
    """The result of ``upgrade check``.

    Attributes:
        constraints: the pinned stack's file.
        packages: the stack's packages, pinned against installed.
        breaking: breaking changes between the two that apply to this project.
    """

    constraints: str
    packages: tuple[PackageVersion, ...]
    breaking: tuple[BreakingChange, ...]

    @property
    def exit_code(self) -> int:
        """0 when the installed stack is the pinned one, else 1."""
        return 0 if all(p.status == "ok" for p in self.packages) else 1

    @property
    def summary(self) -> str:
        """One line for the end of the report."""
        off = [p for p in self.packages if p.status != "ok"]
        if not off:
            return f"the installed stack matches the pinned one ({len(self.packages)} packages)"
        return (
            f"{len(off)} of {len(self.packages)} packages differ from {self.constraints}; "
            f"{len(self.breaking)} breaking changes apply to this project"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data for ``--json``."""
        return {
            "constraints": self.constraints,
            "in_sync": self.exit_code == 0,
            "packages": [asdict(p) for p in self.packages],
            "breaking": [asdict(b) for b in self.breaking],
        }


def default_constraints() -> Path:
    """stackyard's pinned stack: constraints.txt in the wheel, or in a source checkout."""
    packaged = Path(str(resources.files("stackyard") / "constraints.txt"))
    if packaged.is_file():
        return packaged
    return Path(__file__).resolve().parents[3] / "constraints.txt"


def read_constraints(path: Path) -> dict[str, str]:
    """``{normalised name: version}`` from ``name==version`` lines.

    Raises:
        UsageError: the file is missing or cannot be read as text.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(
            f"no constraints file at {path}", hint="pass one with --constraints FILE"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(
            f"cannot read the constraints file {path}: {exc}",
            hint="pass a pip constraints file (name==version lines) with --constraints FILE",
        ) from None
    pins = {}
    for number, line in enumerate(text.splitlines(), 1):
        match = re.match(r"^\s*([A-Za-z0-9_.\-\[\],]+?)\s*==\s*([^\s;#]+)", line)
        if match:
            pins[_normal(match.group(1).split("[")[0])] = match.group(2)
        elif line.strip() and not line.lstrip().startswith(("#", "-")):
            # A typo (duckdb=1.2.0) was skipped, and that package never compared.
            raise UsageError(
                f"{path}:{number}: '{line.strip()}' is not a name==version pin",
                hint="write each package as name==version (comments start with #); nothing "
                "was compared",
            )
    return pins


def _normal(name: str) -> str:
    """PEP 503 normalisation.

    >>> _normal("Ruamel.YAML")
    'ruamel-yaml'
    """
    return re.sub(r"[-_.]+", "-", name).lower()


def stack_packages() -> list[str]:
    """The packages stackyard runs on: its direct requirements (extras left out)."""
    from packaging.requirements import Requirement

    names = []
    for line in metadata.requires("stackyard") or []:
        requirement = Requirement(line)
        if requirement.marker is None:
            names.append(_normal(requirement.name))
    return names


def project_features(config: ProjectConfig, transform_dir: Path) -> set[str]:
    """What a project uses, in the vocabulary of ``breaking_changes.yml``."""
    features = {"always"}
    features |= {f"target:{t.type}" for t in config.targets.values()}
    features |= {f"source:{s.kind}" for s in config.sources.values()}
    for properties in transform_dir.glob("models/**/*.yml"):
        if re.search(r"^\s+tests:", properties.read_text(encoding="utf-8"), re.M):
            features.add("dbt:tests-key")
            break
    return features


def check(config: ProjectConfig, transform_dir: Path, constraints: Path | None) -> UpgradeReport:
    """Compare the installed stack with the pinned one.

    Args:
        config: the project's config (what it uses decides which changes matter).
        transform_dir: the dbt project.
        constraints: a pip constraints file; default stackyard's own.
    """
    import yaml
    from packaging.version import Version

    path = constraints or default_constraints()
    pins = read_constraints(path)
    rows = []
    for name in stack_packages():
        if name not in pins:
            continue
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = ""
        status = "ok" if installed == pins[name] else ("differs" if installed else "missing")
        rows.append(PackageVersion(name, pins[name], installed, status))
    if not rows:
        raise UsageError(
            f"{path} pins none of the packages stackyard runs on: nothing to compare",
            hint="pass a pip constraints file with name==version lines, such as the "
            "constraints.txt a stackyard release ships",
        )
    features = project_features(config, transform_dir)
    notes_file = resources.files("stackyard.runbooks") / "notes" / "breaking_changes.yml"
    breaking = []
    for note in yaml.safe_load(notes_file.read_text(encoding="utf-8")):
        row = next((r for r in rows if r.name == _normal(note["package"])), None)
        if row is None or row.status == "ok" or not row.installed:
            continue
        current, target = Version(row.installed), Version(row.pinned)
        since = Version(note["version"])
        low, high = sorted((current, target))
        # Moving from the installed version to the pinned one crosses the change, or (a note
        # with `downgrades`) goes back to an older version after the change.
        crosses = low < since <= high
        downgrade = bool(note.get("downgrades")) and target < current and since <= current
        uses = sorted(set(note["applies_to"]) & features)
        if (crosses or downgrade) and uses:
            breaking.append(
                BreakingChange(
                    note["package"], note["version"], note["what"], note["action"], ", ".join(uses)
                )
            )
    return UpgradeReport(str(path), tuple(rows), tuple(breaking))
