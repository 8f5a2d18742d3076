"""The dbt packages a project asks for, and whether they are installed already (so ``dbt
deps``, which needs the internet for hub and git packages, runs only when they are not)."""

from __future__ import annotations

from pathlib import Path

import yaml

from stackyard.transform.dbt_project import read_dbt_project


def wanted_packages(transform_dir: Path) -> list[str]:
    """The packages ``packages.yml`` (or ``dependencies.yml``) asks for, as dbt names them.

    Returns:
        e.g. ``["dbt-labs/dbt_utils (hub.getdbt.com)", "../macros (local)"]``; empty when
        the project asks for none.
    """
    found: list[str] = []
    for name in ("packages.yml", "dependencies.yml"):
        path = transform_dir / name
        if not path.is_file():
            continue
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for entry in data.get("packages") or []:
            if not isinstance(entry, dict):
                continue
            if "package" in entry:
                found.append(f"{entry['package']} (hub.getdbt.com)")
            elif "git" in entry:
                found.append(f"{entry['git']} (git)")
            elif "local" in entry:
                found.append(f"{entry['local']} (local)")
            elif "tarball" in entry:
                found.append(f"{entry['tarball']} (tarball)")
    return found


# A checkout or a copy writes dbt_packages/ and packages.yml moments apart, in either order:
# packages this close to the file asking for them were put there with it, not before an edit.
_SAME_CHECKOUT_SECONDS = 60.0


def packages_installed(transform_dir: Path) -> bool:
    """Whether ``dbt_packages/`` holds packages at least as new as the file asking for them,
    give or take a checkout's spread (packages copied in by hand, or committed with the
    project, count: nothing is fetched then).

    >>> import os, tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> (root / "dbt_packages" / "dbt_utils").mkdir(parents=True)
    >>> _ = [(root / n).write_text("{}") for n in ("dbt_project.yml", "packages.yml")]
    >>> asked, made = (root / "packages.yml").stat().st_mtime, root / "dbt_packages"
    >>> _ = [os.utime(p, (asked - 1,) * 2) for p in (made, made / "dbt_utils")]  # same clone
    >>> packages_installed(root)
    True
    >>> _ = [os.utime(p, (asked - 3600,) * 2) for p in (made, made / "dbt_utils")]  # edited
    >>> packages_installed(root)
    False
    """
    asked = [
        transform_dir / n
        for n in ("packages.yml", "dependencies.yml", "package-lock.yml")
        if (transform_dir / n).is_file()
    ]
    folder = transform_dir / packages_path(transform_dir)
    if not folder.is_dir() or not any(folder.iterdir()):
        return False
    newest_ask = max(p.stat().st_mtime for p in asked) - _SAME_CHECKOUT_SECONDS if asked else 0.0
    return folder.stat().st_mtime >= newest_ask or any(
        p.stat().st_mtime >= newest_ask for p in folder.iterdir()
    )


def packages_path(transform_dir: Path) -> str:
    """Where dbt installs packages (``packages-install-path``, default ``dbt_packages``).

    Raises:
        ConfigError: ``dbt_project.yml`` is missing or cannot be read.
    """
    return str(read_dbt_project(transform_dir).get("packages-install-path") or "dbt_packages")
