"""The disaster-recovery runbook, first half: ``stackyard backup``.

A backup captures a target's data and the platform state that belongs with it, at one
instant: dlt's pipeline state and pending packages (``.stackyard/pipelines``), the
``stackyard`` metadata schema (it is in the warehouse, so in the data), and dbt's manifest.
Restoring data without the matching dlt state would make the next run skip (cursor ahead of the
data: a gap) or re-read (cursor behind: work, never duplicates, as keyed tables merge).

Every backup is a plan of typed steps (:class:`~stackyard.runbooks.recovery_plan.Step`)
that ``--dry-run`` explains; the executor runs them in order.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stackyard import __version__
from stackyard.config.model import ProjectConfig
from stackyard.config.private import write_private
from stackyard.console import Console
from stackyard.errors import UsageError, WarehouseError
from stackyard.files import folder_problem
from stackyard.runbooks import backup_engines as engines
from stackyard.runbooks.backup_check import created_at, folder_name, read_back, read_back_step
from stackyard.runbooks.recovery_plan import (
    MANIFEST_FILE,
    BackupManifest,
    BackupResult,
    RecoveryPlan,
    Step,
    duckdb_file_check,
    file_digests,
)
from stackyard.session import Session
from stackyard.warehouse.base import Warehouse

DUCKDB_DATA = "warehouse.duckdb"
PG_DATA = "pgdump"
PG_COPY = "pgcopy"
PG_COPY_METHOD = "postgres-copy-binary"
_READS_ONLY = "nothing: it only reads"


@dataclass(frozen=True)
class ProjectFiles:
    """Where a project keeps the state that a backup carries with the data.

    Attributes:
        project: the project's config.
        project_dir: the project folder.
        transform_dir: the dbt project folder.
    """

    project: ProjectConfig
    project_dir: Path
    transform_dir: Path

    @property
    def pipelines_dir(self) -> Path:
        """dlt's working folders, one per source and target."""
        return self.project_dir / ".stackyard" / "pipelines"

    def pipelines_of(self, target: str) -> list[Path]:
        """The dlt pipeline folders of one target: ``<project>__<source>__<target>``, and
        ``<target>/<name>`` for an adopted source that keeps its team's pipeline name."""
        if not self.pipelines_dir.is_dir():
            return []
        suffix = f"__{target}"
        prefix = f"{self.project.name}__"
        own = sorted(
            p
            for p in self.pipelines_dir.iterdir()
            if p.is_dir() and p.name.startswith(prefix) and p.name.endswith(suffix)
        )
        adopted = self.pipelines_dir / target
        if adopted.is_dir():
            own += sorted(p for p in adopted.iterdir() if p.is_dir())
        return own

    def dbt_artifacts(self) -> list[Path]:
        """dbt's manifest and last run results, where they exist."""
        folder = self.transform_dir / "target"
        return [p for p in (folder / "manifest.json", folder / "run_results.json") if p.is_file()]

    def known_tables(self) -> tuple[tuple[str, str], ...]:
        """``(schema, table)`` of every table the project loads or dbt materialises as a
        table: what a clone-per-table backup (BigQuery) must name."""
        import json

        found = set()
        for name, source in self.project.sources.items():
            dataset = self.project.dataset_for(name)
            tables = getattr(source, "tables", None) or getattr(source, "endpoints", None) or {}
            found |= {(dataset, table) for table in tables}
        manifest = self.transform_dir / "target" / "manifest.json"
        if manifest.is_file():
            for node in json.loads(manifest.read_text(encoding="utf-8"))["nodes"].values():
                if node.get("config", {}).get("materialized") in ("table", "incremental"):
                    found.add((node["schema"], node.get("alias") or node["name"]))
        return tuple(sorted(found))

    def backups_dir(self, override: Path | None = None) -> Path:
        """The folder backups go to: ``--to``, else ``backups.dir``."""
        if override is not None:
            return override.expanduser().resolve()
        folder = Path(self.project.backups.dir).expanduser()
        return (folder if folder.is_absolute() else self.project_dir / folder).resolve()

    @property
    def _other_folders_file(self) -> Path:
        return self.project_dir / ".stackyard" / "backup-folders.json"

    def other_folders(self, existing: bool = True) -> list[Path]:
        """Folders besides ``backups.dir`` that backups were written to (``backup --to``)
        and that still exist (all of them, ``existing=False``: a disk not mounted)."""
        import json

        try:
            listed = json.loads(self._other_folders_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        paths = [Path(p) for p in listed if isinstance(p, str)]
        return [p for p in paths if p.is_dir() or not existing]

    def remember_folder(self, folder: Path) -> None:
        """Note a ``--to`` folder a backup was written to, so that ``restore latest``,
        ``restore-table`` and ``doctor`` see its backups too: without it, ``restore latest``
        took an older backup from ``backups.dir`` over the newer one, and said nothing."""
        import json

        folder = folder.resolve()
        known = self.other_folders()
        if folder == self.backups_dir() or folder in known:
            return
        listed = [str(p) for p in [*known, folder]]
        write_private(self._other_folders_file, json.dumps(listed, indent=2) + "\n")

    def _roots(self, folder: Path | None) -> list[Path]:
        return [self.backups_dir(folder)] if folder else [self.backups_dir(), *self.other_folders()]

    def backups(self, target: str, folder: Path | None = None) -> list[BackupManifest]:
        """This project's finished backups of a target, oldest first: those in ``folder``,
        or without it those in ``backups.dir`` and every folder ``backup --to`` wrote to."""
        found = []
        for root in self._roots(folder):
            if not root.is_dir():
                continue
            for candidate in root.iterdir():
                if not (candidate / MANIFEST_FILE).is_file():
                    continue
                try:
                    manifest = BackupManifest.read(candidate)
                except UsageError:
                    continue  # not ours or damaged: listed by nothing, deleted by nothing
                if manifest.project == self.project.name and manifest.target == target:
                    found.append(manifest)
        return sorted(found, key=lambda m: m.created_at)

    def backup_folder(self, manifest: BackupManifest, folder: Path | None = None) -> Path:
        """Where a backup of this project lives (in ``folder``, or wherever it was found)."""
        name = folder_name(manifest.target, manifest.created_at)
        roots = self._roots(folder)
        return next(
            (r / name for r in roots if (r / name / MANIFEST_FILE).is_file()), roots[0] / name
        )


class TargetRunbook:
    """What every recovery runbook works on: one target of one project.

    Args:
        files: where the project keeps its state.
        session: the target's session (its warehouse and console).
    """

    def __init__(self, files: ProjectFiles, session: Session) -> None:
        self.files = files
        self.session = session
        self.warehouse: Warehouse = session.warehouse
        self.console: Console = session.console


class BackupRunbook(TargetRunbook):
    """Plans and runs backups of one target."""

    # ------------------------------------------------------------------ plan

    def plan(
        self, to: Path | None = None, at: datetime | None = None, verify: bool = False
    ) -> RecoveryPlan:
        """The steps a backup would take, without taking them.

        Args:
            to: the folder to write backups into; default ``backups.dir``.
            at: the backup's timestamp (default: now).
            verify: read a DuckDB copy back even when no older backup is deleted.

        Raises:
            UsageError: the engine cannot be backed up from here.
        """
        from stackyard.runbooks.backup_cloud import cloud_backup_plan

        at = at or datetime.now(UTC)
        w = self.warehouse
        if w.STORAGE == "cloud":  # clones in the warehouse: no local folder is written
            return cloud_backup_plan(w, at, self.files.known_tables())
        root = self.files.backups_dir(to)
        problem = folder_problem(root)
        if problem:  # refused before anything is copied (it was an unexpected error, exit 1)
            raise UsageError(
                f"cannot write backups into {root}: {problem}",
                hint="pass --to a folder you can write (made if missing), or set backups.dir",
            )
        folder = root / folder_name(w.target_name, at)
        data: list[Step]
        from stackyard.runbooks.local_state import refuse_missing_file

        refuse_missing_file(self.files, w)
        if w.STORAGE == "file":
            data = [
                Step(
                    "checkpoint",
                    f"CHECKPOINT {w.describe()}: fold its write-ahead log into the file, "
                    "holding the write lock so nothing changes until the copy is done",
                    _READS_ONLY + " (a checkpoint changes no data)",
                ),
                Step(
                    "copy_file",
                    f"copy the database file to {folder / DUCKDB_DATA} (DuckDB checksums "
                    "every block; a restore reads them all) while counting the rows of every "
                    "table (a restore checks them on the copy it makes)",
                    f"delete {folder}",
                ),
            ]
        elif w.STORAGE == "server":
            data = self._postgres_steps(folder)
        else:  # pragma: no cover - every target type is handled above
            raise UsageError(f"backups of {w.KIND} targets are not supported")
        pipelines = self.files.pipelines_of(w.target_name)
        artifacts = self.files.dbt_artifacts()
        state = [
            Step(
                "copy_state",
                f"copy dlt's state and pending packages ({len(pipelines)} pipelines) and "
                f"dbt's artifacts ({', '.join(a.name for a in artifacts) or 'none yet'}) "
                f"into {folder / 'state'}",
                f"delete {folder}",
            ),
            Step(
                "write_manifest",
                f"write {folder / MANIFEST_FILE}: row counts, content hashes (Postgres), the "
                "SHA-256 of every file but a DuckDB file (its size) — a folder without it is "
                "an unfinished backup",
                f"delete {folder}",
            ),
        ]
        # Retention counts the folder written to only: backups kept elsewhere (an offsite
        # copy written with --to) are never pruned by a backup into another folder.
        older = self.files.backups(w.target_name, folder.parent)
        excess = len(older) + 1 - self.files.project.backups.keep
        prune = []
        if excess > 0:
            doomed = [self.files.backup_folder(m, folder.parent).name for m in older[:excess]]
            prune = [
                Step(
                    "prune",
                    f"delete the oldest backups beyond backups.keep="
                    f"{self.files.project.backups.keep}: {', '.join(doomed)}",
                    "none: deleted backups are gone (raise backups.keep to keep more)",
                )
            ]
        if w.STORAGE == "file" and (prune or verify):
            data.append(read_back_step(folder / DUCKDB_DATA, bool(prune)))
        return RecoveryPlan(
            action="backup",
            target=w.target_name,
            engine=w.KIND,
            location=str(folder),
            steps=(*data, *state, *prune),
            notes=(
                "the stackyard metadata schema (run history, monitors) is part of the data",
                *(
                    ("grants are not in the dump: `stackyard apply` re-creates them",)
                    if w.STORAGE == "server"
                    else ()
                ),
            ),
        )

    def _postgres_steps(self, folder: Path) -> list[Step]:
        snapshot = Step(
            "snapshot",
            "open a repeatable-read transaction and export its snapshot, so the "
            "fingerprints and the copy see the same instant",
            "nothing: the transaction only reads and is closed at the end",
        )
        fingerprint = Step("fingerprint", "count the rows and hash the content of every table", "")
        unusable = engines.pg_dump_unusable(self.warehouse)
        if unusable:
            return [
                snapshot,
                fingerprint,
                Step(
                    "copy_tables",
                    f"{unusable}, so without it: write the definitions of every schema, "
                    "table, sequence, constraint, index and view, and copy each table's rows "
                    f"(COPY … TO STDOUT, binary) from that snapshot to {folder / PG_COPY}",
                    f"delete {folder}",
                ),
            ]
        return [
            Step(
                "check_client",
                "check that pg_dump is installed and at least the server's major version",
                _READS_ONLY,
            ),
            snapshot,
            fingerprint,
            Step(
                "pg_dump",
                f"pg_dump --format=directory --jobs=2 from that snapshot to {folder / PG_DATA}",
                f"delete {folder}",
            ),
        ]

    # ------------------------------------------------------------------ run

    def run(self, plan: RecoveryPlan) -> BackupResult:
        """Take the backup the plan describes.

        Raises:
            UsageError: the plan is for a warehouse stackyard cannot reach from here.
            WarehouseError: the warehouse lost tables dlt's state says were loaded (nothing
                written, nothing pruned), or the engine failed (the unfinished folder is
                deleted).
        """
        if self.warehouse.STORAGE == "cloud":
            raise UsageError(
                f"stackyard has no {plan.engine} driver here to run the backup",
                hint="print the statements with `stackyard backup --dry-run` and run them in "
                "your warehouse (they are clones: no data is copied or billed until changed)",
            )
        from stackyard.runbooks.local_state import refuse_backup_after_a_loss

        refuse_backup_after_a_loss(self.files, self.warehouse)
        folder = Path(plan.location)
        started = time.monotonic()
        try:  # a copy of the data: owner only
            folder.mkdir(parents=True, exist_ok=False, mode=0o700)
        except OSError as exc:  # a folder access() allows, such as /proc as root
            raise UsageError(
                f"cannot write backups into {folder.parent}: {exc.strerror}",
                hint="pass --to a folder you can write (made if missing), or set backups.dir",
            ) from exc
        scratch: dict[str, Any] = {"folder": folder, "digests": {}}
        try:
            for step in plan.steps:
                if step.kind == "prune":
                    continue
                self.console.step_started(step.kind, step.description)
                getattr(self, f"_{step.kind}")(scratch)
                self.console.step_finished(step.kind, "ok")
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            self._finish(scratch)
            raise
        self._finish(scratch)
        manifest = BackupManifest(
            project=self.files.project.name,
            target=plan.target,
            engine=plan.engine,
            created_at=created_at(folder.name),
            stackyard_version=__version__,
            engine_version=scratch["engine_version"],
            method=scratch["method"],
            data=scratch["data"],
            tables=scratch["tables"],
            files=file_digests(folder, scratch["digests"]),
            seconds=round(time.monotonic() - started, 3),
        )
        manifest.write(folder)
        self.files.remember_folder(folder.parent)
        pruned = self._prune(plan) if any(s.kind == "prune" for s in plan.steps) else ()
        return BackupResult(folder, manifest, pruned)

    def _finish(self, scratch: dict[str, Any]) -> None:
        transaction = scratch.pop("pg_conn", None)
        if transaction is not None:
            transaction.close()

    # DuckDB ---------------------------------------------------------------

    def _checkpoint(self, scratch: dict[str, Any]) -> None:
        import duckdb

        self.warehouse.execute("CHECKPOINT")
        scratch["engine_version"] = f"duckdb {duckdb.__version__}"
        scratch["method"] = "duckdb-file-copy"
        scratch["data"] = DUCKDB_DATA

    def _copy_file(self, scratch: dict[str, Any]) -> None:
        from concurrent.futures import ThreadPoolExecutor

        # This process still holds DuckDB's write lock (the connection stays open), so the
        # file cannot change between the CHECKPOINT, the counts and the last byte copied;
        # the kernel copies (sendfile) while DuckDB counts, both without the GIL.
        source: Path = self.warehouse.path  # type: ignore[attr-defined]
        conn = self.warehouse._connection()  # type: ignore[attr-defined]
        with ThreadPoolExecutor(1, thread_name_prefix="stackyard-backup-copy") as pool:
            copying = pool.submit(shutil.copyfile, source, scratch["folder"] / DUCKDB_DATA)
            scratch["tables"] = engines.duckdb_row_counts(conn, engines.duckdb_catalog(conn))
            copying.result()
        scratch["digests"][DUCKDB_DATA] = duckdb_file_check(scratch["folder"] / DUCKDB_DATA)

    def _read_back(self, scratch: dict[str, Any]) -> None:
        copy, backups = scratch["folder"] / DUCKDB_DATA, scratch["folder"].parent
        where = self.warehouse.describe()
        scratch["tables"] = read_back(copy, scratch["tables"], where, backups)

    # Postgres -------------------------------------------------------------

    def _check_client(self, scratch: dict[str, Any]) -> None:
        major = engines.pg_server_major(self.warehouse)
        scratch["pg_dump"] = engines.check_pg_client("pg_dump", major)
        scratch["method"] = "pg_dump-directory"
        scratch["data"] = PG_DATA

    def _snapshot(self, scratch: dict[str, Any]) -> None:
        import psycopg

        conn = psycopg.connect(**self.warehouse.connect_kwargs())  # type: ignore[attr-defined]
        scratch["pg_conn"] = conn
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        row = conn.execute("SELECT pg_export_snapshot(), current_setting('server_version')")
        snapshot, version = row.fetchone() or ("", "")
        scratch["snapshot"] = snapshot
        scratch["engine_version"] = f"postgres {version}"

    def _copy_tables(self, scratch: dict[str, Any]) -> None:
        import psycopg

        from stackyard.runbooks import pg_copy

        try:
            with scratch["pg_conn"].cursor() as cursor:
                pg_copy.dump(cursor, scratch["folder"] / PG_COPY)
        except psycopg.Error as exc:
            raise WarehouseError(
                f"copying {self.warehouse.describe()} failed: {exc}",
                hint="the unfinished backup was deleted; fix the cause and run it again",
            ) from None
        scratch["method"] = PG_COPY_METHOD
        scratch["data"] = PG_COPY

    def _pg_dump(self, scratch: dict[str, Any]) -> None:
        engines.pg_dump(
            scratch["pg_dump"],
            scratch["snapshot"],
            scratch["folder"] / PG_DATA,
            self.warehouse.connect_kwargs(),  # type: ignore[attr-defined]
        )

    # both -----------------------------------------------------------------

    def _fingerprint(self, scratch: dict[str, Any]) -> None:
        with scratch["pg_conn"].cursor() as cursor:
            scratch["tables"] = engines.pg_fingerprints(cursor)

    def _copy_state(self, scratch: dict[str, Any]) -> None:
        state = scratch["folder"] / "state"
        for pipeline in self.files.pipelines_of(self.warehouse.target_name):
            where = pipeline.relative_to(self.files.pipelines_dir)
            shutil.copytree(pipeline, state / "pipelines" / where, symlinks=True)
        for artifact in self.files.dbt_artifacts():
            (state / "dbt").mkdir(parents=True, exist_ok=True)
            shutil.copy2(artifact, state / "dbt" / artifact.name)

    def _write_manifest(self, scratch: dict[str, Any]) -> None:
        # Written by run() once every file exists, so its digests cover them all.
        return None

    def _prune(self, plan: RecoveryPlan) -> tuple[Path, ...]:
        to = Path(plan.location).parent
        backups = self.files.backups(plan.target, to)
        excess = len(backups) - self.files.project.backups.keep
        doomed = [self.files.backup_folder(m, to) for m in backups[: max(excess, 0)]]
        for folder in doomed:
            shutil.rmtree(folder)
        return tuple(doomed)
