"""The data a backup or restore is made of: its manifest, its typed steps, its results.

A backup folder holds ``manifest.json`` (this module's :class:`BackupManifest`), the data
(``warehouse.duckdb`` or ``pgdump/``) and the platform state beside it (``state/pipelines/``:
dlt's state and load packages; ``state/dbt/``: dbt's manifest and last run results). The
manifest lists every table's row count and content hash and every file's SHA-256, so a
restore can prove it brought back exactly what was saved.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stackyard.errors import UsageError
from stackyard.runbooks.backup_engines import TableFingerprint

if TYPE_CHECKING:
    from stackyard.warehouse.base import Warehouse

MANIFEST_FORMAT = "stackyard.backup/1"
MANIFEST_FILE = "manifest.json"
DUCKDB_CHECKSUMS = "duckdb-block-checksums"


@dataclass(frozen=True)
class Step:
    """One step of a backup or restore, known before anything runs.

    Attributes:
        kind: what the executor does, e.g. ``checkpoint``, ``copy_file``, ``verify``.
        description: the step in words, naming the files, databases and tables involved.
        undo: how this step is undone should a later one fail ("nothing: reads only" when it
            changes nothing).
        sql: the statements it runs, when it is plain SQL (Snowflake and BigQuery).
    """

    kind: str
    description: str
    undo: str
    sql: tuple[str, ...] = ()


@dataclass(frozen=True)
class RecoveryPlan:
    """The steps of one backup or restore, in order.

    Attributes:
        action: ``backup``, ``restore`` or ``restore-table``.
        target: the target's name.
        engine: the target's type.
        location: the backup folder written or read.
        destination: what a restore writes (a file or a database), else ``""``.
        replaces: an existing file or database the restore would replace (moved aside, never
            deleted); ``""`` when it writes somewhere new.
        steps: the steps.
        notes: what the reader should know that is not a step.
    """

    action: str
    target: str
    engine: str
    location: str
    steps: tuple[Step, ...]
    destination: str = ""
    replaces: str = ""
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The plan as JSON-ready data."""
        data = asdict(self)
        data["steps"] = [{**asdict(s), "sql": list(s.sql)} for s in self.steps]
        data["notes"] = list(self.notes)
        return data

    def explain(self) -> list[str]:
        """The plan as numbered lines of text, for ``--dry-run``."""
        head = f"{self.action} of target '{self.target}' ({self.engine}): {self.location}"
        lines = [head]
        for number, step in enumerate(self.steps, 1):
            lines.append(f"  {number}. {step.description}")
            lines.extend(f"       {statement}" for statement in step.sql)
            lines.append(f"       undo: {step.undo}")
        lines.extend(f"  note: {note}" for note in self.notes)
        return lines


@dataclass(frozen=True)
class BackupManifest:
    """What a backup holds, written last so that a folder without one is incomplete.

    Attributes:
        project: the project's name.
        target: the target backed up.
        engine: the target's type.
        created_at: when the data was captured (UTC).
        stackyard_version: the stackyard that wrote it.
        engine_version: the DuckDB library or Postgres server version.
        method: how the data was copied (``duckdb-file-copy``, ``pg_dump-directory``).
        data: the data's path inside the backup folder.
        tables: every base table's row count and content hash.
        files: SHA-256 of every file in the folder except the manifest.
        seconds: how long the backup took.
    """

    project: str
    target: str
    engine: str
    created_at: datetime
    stackyard_version: str
    engine_version: str
    method: str
    data: str
    tables: tuple[TableFingerprint, ...]
    files: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def table(self, name: str) -> TableFingerprint | None:
        """The fingerprint of ``schema.table``, if the backup has that table."""
        return next((t for t in self.tables if t.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data, as written to ``manifest.json``."""
        return {
            "format": MANIFEST_FORMAT,
            "project": self.project,
            "target": self.target,
            "engine": self.engine,
            "created_at": self.created_at.isoformat(),
            "stackyard_version": self.stackyard_version,
            "engine_version": self.engine_version,
            "method": self.method,
            "data": self.data,
            "seconds": self.seconds,
            "tables": [asdict(t) for t in self.tables],
            "files": dict(sorted(self.files.items())),
        }

    def write(self, folder: Path) -> Path:
        """Write ``manifest.json`` into the backup folder; return its path."""
        path = folder / MANIFEST_FILE
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def read(cls, folder: Path) -> BackupManifest:
        """The manifest of a backup folder.

        Raises:
            UsageError: no such folder, no manifest (an unfinished backup), or not one of ours.
        """
        path = folder / MANIFEST_FILE
        hint = "pass a folder written by `stackyard backup` (it holds manifest.json)"
        if not folder.is_dir():
            raise UsageError(f"no backup at {folder}", hint=hint)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UsageError(
                f"{folder} has no {MANIFEST_FILE}: the backup did not finish or is not one",
                hint=hint,
            ) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UsageError(f"{path} is not a backup manifest: {exc}", hint=hint) from None
        if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
            raise UsageError(f"{path} is not a {MANIFEST_FORMAT} manifest", hint=hint)
        return cls(
            project=str(data["project"]),
            target=str(data["target"]),
            engine=str(data["engine"]),
            created_at=datetime.fromisoformat(data["created_at"]),
            stackyard_version=str(data["stackyard_version"]),
            engine_version=str(data["engine_version"]),
            method=str(data["method"]),
            data=str(data["data"]),
            seconds=float(data.get("seconds", 0.0)),
            tables=tuple(TableFingerprint(**t) for t in data["tables"]),
            files={str(k): str(v) for k, v in data["files"].items()},
        )


@dataclass(frozen=True)
class BackupResult:
    """A finished backup.

    Attributes:
        path: the backup folder.
        manifest: what it holds.
        pruned: older backups deleted to keep ``backups.keep``.
    """

    path: Path
    manifest: BackupManifest
    pruned: tuple[Path, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data for ``--json``."""
        return {
            "path": str(self.path),
            "pruned": [str(p) for p in self.pruned],
            **self.manifest.to_dict(),
        }


@dataclass(frozen=True)
class RestoreResult:
    """A finished, verified restore.

    Attributes:
        backup: the backup folder restored from.
        target: the target restored.
        destination: the file or database written.
        tables: the tables verified (row counts and hashes equal the manifest's).
        moved_aside: what was there before, kept under a new name (never deleted).
        state_restored: platform state put back (dlt pipelines, dbt artifacts).
        seconds: how long the restore took.
        notes: what the reader should know after the run (``restore-table``: the plan's
            notes, with the swap statement made for the copy's columns).
    """

    backup: Path
    target: str
    destination: str
    tables: tuple[TableFingerprint, ...]
    moved_aside: tuple[str, ...]
    state_restored: tuple[str, ...]
    seconds: float
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data for ``--json``."""
        return {
            "backup": str(self.backup),
            "target": self.target,
            "destination": self.destination,
            "tables": [asdict(t) for t in self.tables],
            "rows": sum(t.rows for t in self.tables),
            "moved_aside": list(self.moved_aside),
            "state_restored": list(self.state_restored),
            "seconds": self.seconds,
            "notes": list(self.notes),
        }


def after_restore(
    manifest: BackupManifest, storage: str, target: str, moved: Sequence[str] = ()
) -> tuple[str, ...]:
    """What a finished restore leaves for the reader to know: what was compared, and on a
    database server that grants did not come back (the dump holds none; a restore that said
    only "✔ restored" left every reader but the owner with "permission denied").

    >>> manifest = BackupManifest("p", "dev", "duckdb", datetime(2026, 1, 1), "1", "", "", "", ())
    >>> after_restore(manifest, "file", "dev")
    ('compared with the manifest: row counts (every block read, its checksum checked)',)
    >>> notes = after_restore(manifest, "server", "prod", ["shop__before_restore_1", "/p/x"])
    >>> [n[:40] for n in notes[1:]]
    ['grants were not restored (a backup holds', 'shop__before_restore_1 keeps its grants:']
    """
    hashes = any(t.content_hash for t in manifest.tables)
    notes = [
        "compared with the manifest: "
        + ("row counts and content hashes" if hashes else "row counts")
        + (" (every block read, its checksum checked)" if storage == "file" else "")
    ]
    if storage == "server":
        notes.append(
            f"grants were not restored (a backup holds none): run `stackyard apply --target "
            f"{target}` so that roles other than the owner can read the tables again"
        )
        notes += [
            f"{aside} keeps its grants: while it exists, `stackyard apply` cannot drop a role "
            f"granted on it (a user removed, say); drop it once it is not needed (`dropdb "
            f"{aside}`)"
            for aside in moved
            if "/" not in aside  # a database, not dlt's state folders kept aside
        ]
    return tuple(notes)


def file_digests(folder: Path, known: dict[str, str] | None = None) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` except the manifest, by relative path.

    Args:
        folder: the backup folder.
        known: what to record for some files instead of reading them (a DuckDB file's
            :func:`duckdb_file_check`).
    """
    known = known or {}
    digests = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != MANIFEST_FILE:
            relative = path.relative_to(folder).as_posix()
            digests[relative] = known.get(relative) or sha256_file(path)
    return digests


def duckdb_file_check(path: Path) -> str:
    """What a manifest records for a DuckDB file instead of its SHA-256: its size.

    Every block DuckDB writes carries a checksum that DuckDB verifies whenever it reads the
    block, and a restore reads every row of every table, so a damaged block stops the restore;
    hashing the whole file as well would double the cost of a backup (docs/performance.md).

    >>> duckdb_file_check(Path(__file__)).startswith(DUCKDB_CHECKSUMS + ":")
    True
    """
    return f"{DUCKDB_CHECKSUMS}:{path.stat().st_size}"


def file_matches(path: Path, recorded: str) -> bool:
    """Whether a backup's file is still what its manifest recorded (size for a DuckDB file
    checked by its block checksums, else the SHA-256)."""
    if not path.is_file():
        return False
    if recorded.startswith(DUCKDB_CHECKSUMS + ":"):
        return duckdb_file_check(path) == recorded
    return sha256_file(path) == recorded


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """The SHA-256 of a file, read in chunks of ``chunk`` bytes."""
    digest = hashlib.sha256()
    buffer = bytearray(chunk)
    view = memoryview(buffer)
    with path.open("rb", buffering=0) as handle:
        while size := handle.readinto(buffer):
            digest.update(view[:size])
    return digest.hexdigest()


def replace_rows_sql(
    table: str,
    copy: str,
    columns: tuple[str, ...] | None = None,
    *,
    overriding: bool = False,
    begin: str = "BEGIN",
    commit: str = "COMMIT",
    drop_in_transaction: bool = True,
    delete_needs_where: bool = False,
    after: tuple[str, ...] = (),
) -> str:
    """The statements that swap a restored copy in by replacing the table's rows in one
    transaction: the table itself stays, with its dependent views, grants, constraints and
    defaults (dropping or renaming it would break or bypass them).

    Args:
        table: the table's quoted name.
        copy: the restored copy's quoted name; dropped once its rows are in.
        columns: quoted columns to copy (generated ones left out); ``None`` copies every
            column by position (the copy was made from the same table).
        overriding: the table has identity columns (Postgres: ``OVERRIDING SYSTEM VALUE``).
        begin: the engine's statement that opens a transaction.
        commit: the engine's statement that commits it.
        drop_in_transaction: the engine can drop a table inside a transaction (else the
            copy is dropped after the commit).
        delete_needs_where: the engine refuses a DELETE without WHERE (BigQuery).
        after: statements to run in the transaction once the rows are in (setting the
            table's sequences past them).

    >>> replace_rows_sql('"s"."t"', '"s"."t__restored"', ('"id"', '"v"'), overriding=True)
    'BEGIN; DELETE FROM "s"."t"; INSERT INTO "s"."t" ("id", "v") OVERRIDING SYSTEM VALUE SELECT "id", "v" FROM "s"."t__restored"; DROP TABLE "s"."t__restored"; COMMIT'
    """
    into = f"INSERT INTO {table}"
    select = "SELECT *"
    if columns is not None:
        listed = ", ".join(columns)
        into, select = f"{into} ({listed})", f"SELECT {listed}"
    if overriding:
        into += " OVERRIDING SYSTEM VALUE"
    delete = f"DELETE FROM {table}" + (" WHERE TRUE" if delete_needs_where else "")
    drop = f"DROP TABLE {copy}"
    statements = [begin, delete, f"{into} {select} FROM {copy}", *after]
    statements += [drop, commit] if drop_in_transaction else [commit, drop]
    return "; ".join(statements)


def refuse_foreign(manifest: BackupManifest, backup: Path, w: Warehouse, project: str) -> None:
    """Refuse a backup of another engine than the target's, or of another project.

    Raises:
        UsageError: saying which, nothing restored.
    """
    if manifest.engine != w.KIND:
        raise UsageError(
            f"{backup} is a {manifest.engine} backup; target '{w.target_name}' is {w.KIND}",
            hint="restore it into a target of the same type (see --target)",
        )
    if manifest.project != project:
        raise UsageError(
            f"{backup} is a backup of project '{manifest.project}', not '{project}'",
            hint="restore it from that project's folder",
        )
