"""Which targets have been run before, kept beside the project, not in the warehouse.

A lost warehouse takes its own evidence with it: without a mark outside it, a read
(`status`, `health`, `sql`) could not tell a target lost (a DuckDB file deleted, a Postgres
database dropped and created again) from one never run, and a dbt project with no dlt source
and no backup read "no runs yet" after losing every table. A
backup or dlt's pipeline folders of the target are evidence too (a target loaded before
this mark existed has them); the mark covers the rest.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from stackyard.config.private import FILE_MODE, private_dir
from stackyard.files import write_atomic
from stackyard.runbooks.backup import ProjectFiles

if TYPE_CHECKING:
    from stackyard.warehouse.base import Warehouse

MARKS_DIR = Path(".stackyard") / "targets"


def mark_run(project_dir: Path, target: str, run_id: str) -> None:
    """Record that a run wrote to ``target`` (its first run is kept, the latest updated)."""
    path = private_dir(project_dir, MARKS_DIR.name) / f"{target}.json"
    now = datetime.now(UTC).isoformat(timespec="seconds")
    first = {"first_run": run_id, "first_at": now}
    if path.is_file():
        try:
            known = json.loads(path.read_text(encoding="utf-8"))
            first = {"first_run": known["first_run"], "first_at": known["first_at"]}
        except (ValueError, KeyError, TypeError):
            pass  # a damaged mark is only rewritten: the run it records just happened
    record = json.dumps({**first, "last_run": run_id, "last_at": now}) + "\n"
    write_atomic(path, record, mode=FILE_MODE)  # owner-only, as all of .stackyard/


def run_before(files: ProjectFiles, target: str) -> bool:
    """Whether ``target`` was run or loaded before: a mark, a backup or dlt pipeline
    folders of it exist."""
    marked = (files.project_dir / MARKS_DIR / f"{target}.json").is_file()
    return marked or bool(files.backups(target) or files.pipelines_of(target))


def run_history_lost(files: ProjectFiles, warehouse: Warehouse) -> bool:
    """Whether ``warehouse``'s target was run or loaded before and the warehouse keeps no run
    history: emptied, or dropped and created again. A dbt project with no dlt source leaves
    no dlt state to find the loss by; the run history, kept in the warehouse, goes with it."""
    from stackyard.metadata.history import History

    return run_before(files, warehouse.target_name) and not History(warehouse).kept()
