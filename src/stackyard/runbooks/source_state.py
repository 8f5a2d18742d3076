"""What a source leaves outside the warehouse and stackyard.yml: dlt's local state per target
and, for a stream, its consumer on the server. ``source remove`` (and a failed first add)
deletes both, so a source added again starts over."""

from __future__ import annotations

import shutil
from pathlib import Path

from stackyard.config.model import ProjectConfig
from stackyard.config.secrets import Secrets


def state_folders(project_dir: Path, name: str) -> list[Path]:
    """dlt's pipeline folders of a source, on every target."""
    base = project_dir / ".stackyard" / "pipelines"
    return sorted(base.glob(f"*__{name}__*")) if base.is_dir() else []


def forget_state(
    project_dir: Path, name: str, config: ProjectConfig | None, secrets: Secrets
) -> list[str]:
    """Delete the source's dlt state and, given the project that still declares it, a
    stream's consumers on every target; what was deleted (or left, and why), for the user."""
    removed = []
    for path in state_folders(project_dir, name):
        shutil.rmtree(path, ignore_errors=True)
        removed.append(str(path.relative_to(project_dir)))
    if config and (source := config.sources[name]).kind == "stream":
        from stackyard.ingest.streams import forget_consumers

        removed += forget_consumers(name, source, config.targets, secrets)
    return removed
