"""What swapping a restored copy in does to a table loaded incrementally.

``restore-table`` brings back the table's rows, not dlt's state: the source's incremental
cursor stays where the last load left it. Once the copy is swapped in, the rows loaded between
the backup and now are gone from the table, and the next ``stackyard run`` reads nothing new,
since no row is past the cursor. Nothing reports it. This builds the note that says so, with
the cursor column, its value then and now (read from dlt's state files, when they are there)
and the backfill that reads those rows again from the source.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from stackyard.runbooks.backup import ProjectFiles

INCREMENTAL_NOTE = "loaded incrementally"


def cursor_of(files: ProjectFiles, schema: str, table: str) -> tuple[str, str] | None:
    """``(source, cursor column)`` when a source of the project loads ``schema.table``
    incrementally; else ``None``."""
    project = files.project
    for name, source in project.sources.items():
        if project.dataset_for(name) != schema or not source.loaded_by_stackyard():
            continue
        for resource, column in source.cursors().items():
            if resource.lower() == table.lower():
                return name, column
    return None


def _pipeline_folder(files: ProjectFiles, source: str, target: str) -> Path:
    """The source's dlt folder, relative to the pipelines folder (as a backup keeps it)."""
    own = getattr(files.project.sources[source], "pipeline_name", None)
    if own:
        return Path(target) / own
    return Path(f"{files.project.name}__{source}__{target}")


def saved_cursor(pipelines: Path, folder: Path, table: str, column: str) -> Any:
    """The cursor's last value in dlt's ``state.json`` under ``pipelines/folder``, or
    ``None`` when it cannot be read."""
    try:
        state = json.loads((pipelines / folder / "state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    from dlt.common.json import custom_pua_decode

    for source in (state.get("sources") or {}).values():
        for resource, spec in ((source or {}).get("resources") or {}).items():
            if str(resource).lower() != table.lower():
                continue
            value = ((spec or {}).get("incremental") or {}).get(column, {}).get("last_value")
            if value is not None:
                return custom_pua_decode(value)
    return None


def _day(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.astimezone(UTC).date() if value.tzinfo else value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return _day(datetime.fromisoformat(value))
        except ValueError:
            return None
    return None


def incremental_note(
    files: ProjectFiles,
    target: str,
    schema: str,
    table: str,
    *,
    taken_at: datetime,
    backup: Path | None = None,
) -> str | None:
    """The note for a table a source loads incrementally, else ``None``.

    Args:
        files: the project's files (config and dlt's working folders).
        target: the target's name.
        taken_at: when the restored state was current (the backup's time, or ``--as-of``).
        backup: the backup folder, whose copy of dlt's state holds the cursor of then.
    """
    found = cursor_of(files, schema, table)
    if found is None:
        return None
    source, column = found
    folder = _pipeline_folder(files, source, target)
    now = saved_cursor(files.pipelines_dir, folder, table, column)
    then = (
        saved_cursor(backup / "state" / "pipelines", folder, table, column)
        if backup is not None
        else None
    )
    if then is not None and now is not None and then == now:
        # The cursor has not moved since the backup: nothing was loaded after it, so no row
        # is lost by the swap and there is nothing to read again.
        return None
    current = f" (its value now: {now})" if now is not None else ""
    start = _day(then) or taken_at.astimezone(UTC).date()
    end = (_day(now) or datetime.now(UTC).date()) + timedelta(days=1)
    if _day(then) is not None:
        since = f"the backup's cursor value, {then}"
    else:
        since = f"the backup, {taken_at.isoformat()}"
    reload = f"stackyard backfill {source}.{table} --start {start} --end {end}"
    if _day(now) is None and now is not None:
        # Not a date: a backfill cannot cut it into days; a reload reads the table again.
        reload = f"stackyard reload {source}.{table}"
    return (
        f"{schema}.{table} is {INCREMENTAL_NOTE} by source '{source}' on cursor column "
        f"{column}{current}: the swap does not move the cursor back, so the rows loaded since "
        f"{since}, are gone from the table once it is swapped in, and the next `stackyard run` "
        f"loads none of them (nothing is past the cursor). After the swap, read them again "
        f"from the source with: {reload}"
    )
