"""Reading a DuckDB backup back: every block, before the backup may replace older ones.

A DuckDB backup is a byte copy of the file (a backup costs about what copying the file does).
DuckDB checks a block's checksum only when it reads the block, and row counts come from
metadata: a warehouse file damaged in blocks nothing had read since was copied, counted and
reported backed up. With ``backups.keep`` reached, that copy then deleted the oldest good
backup, and a few backups later none was left to restore. So a backup that deletes older ones
first reads itself back, every row of every table (as a restore does), and records each
table's content hash; ``stackyard backup --verify`` does so without deleting anything.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from stackyard.errors import WarehouseError
from stackyard.runbooks import backup_engines as engines
from stackyard.runbooks.recovery_plan import Step


def folder_name(target: str, at: datetime) -> str:
    """A backup folder's name: the target and the UTC instant, sortable.

    >>> folder_name("dev", datetime(2026, 12, 1, 10, 5, 3, 120000, tzinfo=UTC))
    'dev-20261201T100503.120000Z'
    """
    return f"{target}-{at.astimezone(UTC).strftime('%Y%m%dT%H%M%S.%fZ')}"


def created_at(name: str) -> datetime:
    """The instant in a backup folder's name (:func:`folder_name`)."""
    stamp = name.rsplit("-", 1)[1]
    return datetime.strptime(stamp, "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=UTC)


def read_back_step(copy: Path, pruning: bool) -> Step:
    """The plan's step that reads the copy back (``pruning``: older backups are deleted)."""
    why = (
        ", before any older backup is deleted: a copy of a damaged file must never replace "
        "good ones"
        if pruning
        else ""
    )
    return Step(
        "read_back",
        f"read {copy} back, every row of every table (DuckDB checks each block's checksum), "
        f"and record each table's content hash in the manifest{why}",
        "nothing: it only reads",
    )


def read_back(
    copy: Path, counted: tuple[engines.TableFingerprint, ...], warehouse: str, backups: Path
) -> tuple[engines.TableFingerprint, ...]:
    """Every table of the copy with its row count and content hash.

    Raises:
        WarehouseError: a block of the copy (so of the warehouse file) is damaged, or a
            table's rows differ from those counted while the file was copied.
    """
    where = f"the backups in {backups} (the newest first)"
    try:
        found = engines.duckdb_file_fingerprints(copy)
    except WarehouseError as exc:
        raise WarehouseError(
            f"{warehouse} is damaged: reading its copy back failed ({exc.message}); this "
            "backup was deleted, and no older backup was",
            hint=f"the data is in {where}: `stackyard restore <folder> --yes` puts one back, "
            "then `stackyard run` loads what came since; `stackyard doctor` checks the rest",
        ) from None
    counts = {t.name: t.rows for t in counted}
    differ = [f"{t.name}: {t.rows} rows, counted {counts.get(t.name)}" for t in found]
    differ = [d for d, t in zip(differ, found, strict=True) if counts.get(t.name) != t.rows]
    if differ or len(found) != len(counted):
        raise WarehouseError(
            f"the copy of {warehouse} differs from the warehouse it was copied from "
            f"({'; '.join(differ) or 'other tables'}); this backup was deleted, and no older "
            "backup was",
            hint="run the backup again; if it differs again, check the disk it is written to",
        )
    return found
