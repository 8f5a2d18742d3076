"""What the doctor and backups read and move on disk: dlt's local state, dbt's table settings.

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

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackyard.errors import UsageError, WarehouseError
from stackyard.runbooks.backup import ProjectFiles
from stackyard.warehouse.base import Warehouse


def set_aside(files: ProjectFiles, target: str, into: Path) -> list[str]:
    """Move the target's dlt pipeline folders into ``into``; return their names."""
    moved = []
    for pipeline in files.pipelines_of(target):
        where = pipeline.relative_to(files.pipelines_dir)
        (into / where).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(pipeline, into / where)
        moved.append(where.as_posix())
    return moved


def pending_packages(files: ProjectFiles, target: str) -> list[tuple[str, str]]:
    """``(pipeline, package)`` of every dlt load package of the target never loaded."""
    pending = []
    for pipeline in files.pipelines_of(target):
        for stage in ("normalize/extracted", "load/new", "load/normalized"):
            folder = pipeline / stage
            if folder.is_dir():
                pending += [(pipeline.name, p.name) for p in folder.iterdir() if p.is_dir()]
    return pending


@dataclass(frozen=True)
class LostTables:
    """Tables a source's local dlt state says were loaded that the warehouse no longer has.

    Attributes:
        source: the source's name.
        tables: the missing tables, as ``dataset.table``.
    """

    source: str
    tables: tuple[str, ...]

    def said(self, target: str) -> str:
        """The loss in words, as ``stackyard run`` says it."""
        one = len(self.tables) == 1
        return (
            f"source '{self.source}': {', '.join(self.tables)} {'is' if one else 'are'} missing "
            f"on target '{target}', though dlt's state says {'it was' if one else 'they were'} "
            "loaded"
        )


def lost_tables(files: ProjectFiles, warehouse: Warehouse) -> list[LostTables]:
    """Per source, the tables its local dlt state says hold rows that the warehouse no
    longer has: the warehouse lost them (its DuckDB file deleted, its database dropped and
    created again, a table dropped by hand) while the cursors stayed ahead, so a run would
    bring back only rows newer than them. ``stackyard run`` asks the same before it loads
    (:func:`stackyard.ingest.recovery.check_state_matches_warehouse`).

    Read from the pipeline folders' JSON rather than through dlt (whose import alone takes a
    second), with one query per dataset; a source never loaded costs nothing.
    """
    compared = _compared(files, warehouse)
    return [LostTables(source, missing) for source, _, missing, _ in compared if missing]


def every_table_lost(files: ProjectFiles, warehouse: Warehouse) -> list[LostTables]:
    """:func:`lost_tables` when they are every table dlt's state says were loaded, with dlt's
    own record of its loads gone too, in every source's dataset (a warehouse made anew,
    empty, after it was lost, not a table dropped by hand); else nothing."""
    compared = _compared(files, warehouse)
    if not compared or any(
        len(missing) < len(loaded) or recorded for _, loaded, missing, recorded in compared
    ):
        return []
    return [LostTables(source, missing) for source, _, missing, _ in compared]


def _compared(
    files: ProjectFiles, warehouse: Warehouse
) -> list[tuple[str, tuple[str, ...], tuple[str, ...], bool]]:
    """Per source with loaded tables: those tables, the ones of them the warehouse lacks,
    and whether its dataset still holds dlt's record of loads (``_dlt_loads``)."""
    target = warehouse.target_name
    present: dict[str, set[str]] = {}
    found = []
    for source, config in files.project.sources.items():
        own_name = getattr(config, "pipeline_name", None)  # an adopted source's (see loader)
        folder = (
            files.pipelines_dir / target / own_name
            if own_name
            else files.pipelines_dir / f"{files.project.name}__{source}__{target}"
        )
        dataset, tables = _loaded(folder)
        if not tables:
            continue
        if dataset not in present:
            present[dataset] = {t.lower() for t in warehouse.tables_in(dataset)}
        loaded = tuple(f"{dataset}.{t}" for t in tables)
        missing = tuple(f"{dataset}.{t}" for t in tables if t.lower() not in present[dataset])
        found.append((source, loaded, missing, "_dlt_loads" in present[dataset]))
    return found


def refuse_missing_file(files: ProjectFiles, warehouse: Warehouse) -> None:
    """Refuse to back up a DuckDB target whose file is not there, saying whether it was
    never made or is lost (sources were loaded into it: a run would not refill it).

    Raises:
        UsageError: nothing was written.
    """
    if warehouse.STORAGE != "file" or warehouse.path.exists():  # type: ignore[attr-defined]
        return
    lost = bool(files.pipelines_of(warehouse.target_name))
    raise UsageError(
        f"nothing to back up: {warehouse.describe()} has no database file"
        + (", although sources were loaded into it: it is lost" if lost else " yet"),
        hint="bring it back with `stackyard restore latest` (dlt's state comes back with it), "
        "then back up"
        if lost
        else "run `stackyard run` first, or restore a backup into it",
    )


def refuse_backup_after_a_loss(files: ProjectFiles, warehouse: Warehouse) -> None:
    """Refuse to back up a warehouse that lost tables dlt's state says were loaded: the
    backup would hold the loss, and with ``backups.keep`` delete the last good backup.

    Raises:
        WarehouseError: naming the tables and how to get them back (nothing was written).
    """
    lost = lost_tables(files, warehouse)
    if not lost:
        return
    reload = ", ".join(f"`stackyard reload {one.source} --yes`" for one in lost)
    raise WarehouseError(
        f"target '{warehouse.target_name}' was not backed up: "
        + "; ".join(one.said(warehouse.target_name) for one in lost)
        + " (a lost warehouse file or database, or a table dropped by hand). A backup now "
        "would keep that loss, and with backups.keep delete the last good backup; nothing "
        "was written",
        hint="get them back first, then back up: restore the last backup (`stackyard restore "
        f"latest`, which also puts back dlt's state), or load them again: {reload}",
    )


def _loaded(folder: Path) -> tuple[str, list[str]]:
    """A pipeline folder's dataset and the data tables its default schema says hold rows,
    as dlt's ``Schema.data_tables(seen_data_only=True)`` reads them (nested tables left
    out, as the run's check leaves them)."""
    try:
        state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
        dataset, name = str(state["dataset_name"]), str(state["default_schema_name"])
        schema_file = folder / "schemas" / f"{name}.schema.json"
        tables: dict[str, Any] = json.loads(schema_file.read_text(encoding="utf-8"))["tables"]
    except FileNotFoundError:
        return "", []  # never loaded on this target
    except (ValueError, KeyError, TypeError):
        return "", []  # not a state dlt wrote: the source's next run reports it
    return dataset, [
        str(name)
        for name, table in tables.items()
        if not str(name).startswith("_")
        and not table.get("parent")
        and (table.get("x-normalizer") or {}).get("seen-data") is True
        and any(c.get("data_type") for c in (table.get("columns") or {}).values())
    ]


def transient_tables(transform: Path) -> list[str]:
    """The table models dbt-snowflake builds as TRANSIENT (its default unless ``transient:
    false``), read from dbt's manifest or, before the first build, dbt_project.yml, with no
    driver.

    Raises:
        ConfigError: before the first build, ``dbt_project.yml`` is missing or cannot be read.
    """
    import json

    from stackyard.transform.dbt_project import read_dbt_project

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
    models = read_dbt_project(transform).get("models") or {}
    off = models.get("+transient") is False or any(
        isinstance(v, dict) and v.get("+transient") is False for v in models.values()
    )
    return [] if off else ["every table model (dbt_project.yml sets no +transient)"]
