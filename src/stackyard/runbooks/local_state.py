"""What the doctor reads and moves on disk: dlt's local state, dbt's table settings.

**dlt's local state**, set aside when the warehouse lost what it describes.

dlt keeps each pipeline's state (its cursors, its schema) twice: in the pipeline's folder under
``.stackyard/pipelines`` and in the warehouse, in the same load as the rows. When the
warehouse loses its last changes (a write-ahead log that will not replay), the warehouse's copy
goes back in time with the rows, but the folder's does not: the next run would start from
cursors past rows the warehouse no longer holds, and load nothing. Setting the folders aside
makes that run read the state back from the warehouse (:mod:`stackyard.ingest.loader` syncs a
pipeline without local state from its destination), so it re-loads exactly what was lost. The
folders are moved, not deleted.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from stackyard.runbooks.backup import ProjectFiles


def set_aside(files: ProjectFiles, target: str, into: Path) -> list[str]:
    """Move the target's dlt pipeline folders into ``into``; return their names."""
    moved = []
    for pipeline in files.pipelines_of(target):
        where = pipeline.relative_to(files.pipelines_dir)
        (into / where).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(pipeline, into / where)
        moved.append(where.as_posix())
    return moved


def transient_tables(transform: Path) -> list[str]:
    """The table models dbt-snowflake builds as TRANSIENT (its default unless ``transient:
    false``), read from dbt's manifest or, before the first build, dbt_project.yml, with no
    driver."""
    import json

    import yaml

    manifest = transform / "target" / "manifest.json"
    if manifest.is_file():
        nodes = json.loads(manifest.read_text(encoding="utf-8"))["nodes"].values()
        return sorted(
            f"{n['schema']}.{n.get('alias') or n['name']}"
            for n in nodes
            if n.get("resource_type") == "model"
            and n.get("config", {}).get("materialized") in ("table", "incremental")
            and n.get("config", {}).get("transient") is not False
        )
    project = yaml.safe_load((transform / "dbt_project.yml").read_text()) or {}
    models = project.get("models") or {}
    off = models.get("+transient") is False or any(
        isinstance(v, dict) and v.get("+transient") is False for v in models.values()
    )
    return [] if off else ["every table model (dbt_project.yml sets no +transient)"]
