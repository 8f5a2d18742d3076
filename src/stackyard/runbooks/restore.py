"""The disaster-recovery runbook, second half: ``stackyard restore``.

A restore never overwrites in place. It checks every file of the backup against the
manifest, builds the data next to the live copy (a ``.restoring`` file, a ``__restoring``
database), proves that every table's row count (and, for Postgres, content hash) equals the
manifest's — every table of a DuckDB copy is read and hashed, which makes DuckDB check every
block's checksum — and only
then moves what was there aside (kept, under a ``before-restore`` name) and swaps the restored
copy in. dlt's pipeline state is put back with the data, so the next run's cursors continue
from the backup: rows that arrived after it are loaded again, merged on their keys.
"""

from __future__ import annotations

import shutil
import time
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stackyard.errors import UsageError, WarehouseError, WarehouseLockedError
from stackyard.files import folder_problem
from stackyard.runbooks import backup_engines as engines
from stackyard.runbooks.backup import (
    DUCKDB_DATA,
    PG_COPY,
    PG_COPY_METHOD,
    PG_DATA,
    TargetRunbook,
)
from stackyard.runbooks.recovery_plan import (
    BackupManifest,
    RecoveryPlan,
    RestoreResult,
    Step,
    after_restore,
    file_matches,
    refuse_foreign,
)

_TO_HINT = "pass --to a file in a folder you can write (made if missing)"


class RestoreRunbook(TargetRunbook):
    """Plans and runs a restore of one backup into a target (or a new file/database)."""

    def resolve(self, backup: str) -> Path:
        """The backup folder named by ``backup``: a folder, its manifest.json, or ``latest``.

        Raises:
            UsageError: ``latest`` with no backup of this target yet.
        """
        if backup == "latest":
            found = self.files.backups(self.warehouse.target_name)
            if not found:
                raise UsageError(
                    f"no backup of target '{self.warehouse.target_name}' in "
                    f"{self.files.backups_dir()}",
                    hint="take one with `stackyard backup`, or pass the backup folder",
                )
            return self.files.backup_folder(found[-1])
        path = Path(backup).expanduser().resolve()
        return path.parent if path.name == "manifest.json" else path

    def plan(self, backup: Path, to: str | None = None) -> RecoveryPlan:
        """The steps a restore would take.

        Args:
            backup: the backup folder.
            to: a new DuckDB file or Postgres database to restore into instead of the target.

        Raises:
            UsageError: not a backup, one of another engine than the target's, or ``to``
                the target's own file or database.
        """
        manifest = BackupManifest.read(backup)
        w = self.warehouse
        refuse_foreign(manifest, backup, w, self.files.project.name)
        if to is not None and self._own(to):
            raise UsageError(
                f"--to {to} is target '{w.target_name}''s own "
                + ("file" if w.STORAGE == "file" else "database")
                + ": restoring into it would replace its data but keep dlt's newer state, so "
                "the next run would load nothing of what came after the backup; nothing was done",
                hint="drop --to for a full restore, which also puts back the dlt state; or pass "
                "--to a new file or database to look at the backup beside the target",
            )
        verify = Step(
            "check_files",
            f"check the backup's {len(manifest.files)} files against its manifest (SHA-256; "
            "a DuckDB file: its size, then its block checksums as every row is read below)",
            "nothing: it only reads",
        )
        if w.STORAGE == "file":
            dest = Path(to).expanduser().resolve() if to else w.path  # type: ignore[attr-defined]
            if to and (problem := folder_problem(dest.parent)):  # was an unexpected error
                raise UsageError(f"cannot restore into {dest}: {problem}", hint=_TO_HINT)
            staged = dest.with_name(dest.name + ".restoring")
            aside = dest.with_name(f"{dest.name}.before-restore-{_stamp()}")
            data = [
                Step("stage", f"copy {backup / DUCKDB_DATA} to {staged}", f"delete {staged}"),
            ]
            replaces = str(dest) if dest.exists() else ""
            swap = Step(
                "swap",
                (f"move {dest} (and its .wal) aside to {aside}, then " if replaces else "")
                + f"rename {staged} to {dest}",
                f"rename {aside} back to {dest}" if replaces else f"delete {dest}",
            )
            destination = str(dest)
        else:
            db = engines.restore_database(to, w.config.database)
            staging = f"{db[:48]}__restoring"
            data = [
                Step(
                    "check_client",
                    "check that pg_restore is installed and at least the server's major version",
                    "nothing: it only reads",
                ),
                Step(
                    "stage",
                    f"create database {staging} and pg_restore the dump into it "
                    "(--no-owner --no-acl: grants are re-applied by `stackyard apply`)",
                    f"drop database {staging}",
                ),
            ]
            if manifest.method == PG_COPY_METHOD:
                data = [
                    Step(
                        "stage",
                        f"create database {staging} and, in one transaction, re-create the "
                        "backup's schemas, sequences and tables, COPY each table's rows in, then "
                        "its constraints, indexes, sequence positions and views (no grants: "
                        "`stackyard apply` re-applies them)",
                        f"drop database {staging}",
                    )
                ]
            replaces = db if self._pg_database_exists(db) else ""
            aside_db = f"{db[:40]}__before_restore_{_stamp()[:15]}"
            swap = Step(
                "swap",
                (f"end other sessions on {db}, rename it to {aside_db}, then " if replaces else "")
                + f"rename {staging} to {db}",
                f"rename {aside_db} back to {db}" if replaces else f"drop database {db}",
            )
            destination = db
        check = Step(
            "verify",
            f"read and hash every row of the {len(manifest.tables)} tables "
            f"({sum(t.rows for t in manifest.tables):,} rows) and compare "
            f"{'row counts' if _counts_only(manifest) else 'row counts and content hashes'} "
            "with the manifest; stop on any difference, before anything is replaced",
            "nothing: it only reads",
        )
        if replaces and self._own(destination):
            self._refuse_while_in_use()
        state = []
        own_state = to is None and manifest.target == w.target_name
        if own_state:
            state = [
                Step(
                    "restore_state",
                    "move dlt's pipeline folders of this target aside and put the backup's "
                    "back (cursors continue from the backup), and dbt's artifacts",
                    "move the folders kept aside back",
                )
            ]
        return RecoveryPlan(
            action="restore",
            target=w.target_name,
            engine=w.KIND,
            location=str(backup),
            destination=destination,
            replaces=replaces,
            steps=(verify, *data, check, swap, *state),
            notes=(
                f"backup taken {manifest.created_at.isoformat()}: changes after it are not in "
                "it; sources with cursors re-load them on the next run",
                *(
                    f"WARNING: {gone}, which backups were written to with --to, is not there "
                    "now (a disk not mounted?): its backups, newer ones maybe, were not looked at"
                    for gone in self.files.other_folders(existing=False)
                    if not gone.is_dir()
                ),
                *(
                    ()
                    if own_state
                    else (
                        f"dlt and dbt state stay as they are (the backup's belong to target "
                        f"'{manifest.target}')",
                    )
                ),
            ),
        )

    def run(self, plan: RecoveryPlan) -> RestoreResult:
        """Restore as planned; nothing is replaced unless every table verified.

        Raises:
            WarehouseError: a file or a table differs from the manifest (nothing replaced).
        """
        started = time.monotonic()
        backup = Path(plan.location)
        manifest = BackupManifest.read(backup)
        scratch: dict[str, Any] = {"backup": backup, "manifest": manifest, "plan": plan}
        scratch |= {"moved": [], "state": []}
        kinds = [step.kind for step in plan.steps]
        for index, step in enumerate(plan.steps):
            self.console.step_started(step.kind, step.description)
            try:
                getattr(self, f"_{step.kind}")(scratch)
            except KeyboardInterrupt:
                # Stopped before the swap: the staged copy (a whole database) was left behind.
                if "swap" in kinds[index:] and step.kind != "swap" and scratch.get("staged"):
                    self._discard(scratch)
                raise
            self.console.step_finished(step.kind, "ok")
        return RestoreResult(
            backup=backup,
            target=plan.target,
            destination=plan.destination,
            tables=scratch.get("verified", manifest.tables),
            moved_aside=tuple(scratch["moved"]),
            state_restored=tuple(scratch["state"]),
            seconds=round(time.monotonic() - started, 3),
            notes=after_restore(manifest, self.warehouse.STORAGE, plan.target, scratch["moved"]),
        )

    # ------------------------------------------------------------------ steps

    def _check_files(self, scratch: dict[str, Any]) -> None:
        expected: dict[str, str] = scratch["manifest"].files
        bad = sorted(p for p in expected if not file_matches(scratch["backup"] / p, expected[p]))
        if bad:
            raise WarehouseError(
                f"the backup {scratch['backup']} is damaged: {len(bad)} files are missing or "
                f"changed since it was written: {', '.join(bad[:5])}",
                hint="nothing was restored; restore an older backup (`ls` the backups folder)",
            )

    def _check_client(self, scratch: dict[str, Any]) -> None:
        import psycopg

        # Through the maintenance database: the target's own may be the one that was lost.
        with psycopg.connect(**self._admin_kwargs()) as conn:
            number = conn.execute("SHOW server_version_num").fetchone()
        major = int(number[0]) // 10000 if number else 0
        scratch["pg_restore"] = engines.check_pg_client("pg_restore", major)

    def _stage(self, scratch: dict[str, Any]) -> None:
        plan: RecoveryPlan = scratch["plan"]
        if self.warehouse.STORAGE == "file":
            staged = Path(plan.destination + ".restoring")
            staged.unlink(missing_ok=True)
            staged.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(scratch["backup"] / DUCKDB_DATA, staged)
            staged.chmod(0o600)  # the warehouse, as the project keeps it: owner only
            scratch["staged"] = staged
            return
        staging = f"{plan.destination[:48]}__restoring"
        quoted = self.warehouse.quote(staging)
        self._admin(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)", f"CREATE DATABASE {quoted}")
        connect = {**self.warehouse.connect_kwargs(), "dbname": staging}  # type: ignore[attr-defined]
        scratch["staged"] = staging
        if scratch["manifest"].method == PG_COPY_METHOD:
            import psycopg

            from stackyard.runbooks import pg_copy

            try:
                with psycopg.connect(**connect) as conn:
                    pg_copy.load(conn, scratch["backup"] / PG_COPY)
            except psycopg.Error as exc:
                raise WarehouseError(
                    f"re-creating the backup in database {staging} failed: {exc}",
                    hint="nothing was replaced; the backup's definitions are in "
                    f"{scratch['backup'] / PG_COPY / pg_copy.CATALOG_FILE}",
                ) from None
            return
        engines.run_client(
            [
                scratch["pg_restore"],
                "--format=directory",
                "--jobs=2",
                "--no-owner",
                "--no-acl",
                "--exit-on-error",
                f"--dbname={staging}",
                str(scratch["backup"] / PG_DATA),
            ],
            engines.pg_env(connect),
            "pg_restore",
        )

    def _verify(self, scratch: dict[str, Any]) -> None:
        manifest: BackupManifest = scratch["manifest"]
        if self.warehouse.STORAGE == "file":
            try:
                found = engines.duckdb_file_fingerprints(scratch["staged"])
            except WarehouseError as exc:
                scratch["staged"].unlink(missing_ok=True)  # a copy of a damaged file
                raise WarehouseError(
                    f"the backup {scratch['backup'] / DUCKDB_DATA} is damaged: {exc.message}",
                    hint="nothing was replaced; restore an older backup (`ls` the backups folder)",
                ) from None
        else:
            import psycopg

            connect = {**self.warehouse.connect_kwargs(), "dbname": scratch["staged"]}  # type: ignore[attr-defined]
            with psycopg.connect(**connect) as conn, conn.cursor() as cursor:
                found = engines.pg_fingerprints(cursor)
        differences = engines.fingerprint_differences(manifest.tables, found)
        scratch["verified"] = found
        if differences:
            raise WarehouseError(
                "the restored copy differs from the backup's manifest: " + "; ".join(differences),
                hint=f"nothing was replaced; the restored copy is left at {scratch['staged']} "
                "for inspection; try an older backup",
            )

    def _swap(self, scratch: dict[str, Any]) -> None:
        plan: RecoveryPlan = scratch["plan"]
        if plan.replaces and self._own(plan.destination):
            # Again, just before the swap: a run may have started while the copy was staged.
            try:
                self._refuse_while_in_use()
            except WarehouseLockedError:
                self._discard(scratch)
                raise
        self.session.release()  # our connection must not hold the file or database
        stamp = _stamp()
        if self.warehouse.STORAGE == "file":
            dest = Path(plan.destination)
            aside = dest.with_name(f"{dest.name}.before-restore-{stamp}")
            # The WAL keeps its file's name + ".wal", so the pair still opens together.
            pairs = ((dest, aside), (Path(f"{dest}.wal"), Path(f"{aside}.wal")))
            for path, new_name in pairs:
                if path.exists():
                    path.rename(new_name)
                    scratch["moved"].append(str(new_name))
            scratch["staged"].rename(dest)
            return
        db, staged = plan.destination, scratch["staged"]
        statements, aside_db = [], ""
        if plan.replaces:
            aside_db = f"{db[:40]}__before_restore_{stamp[:15]}"
            statements.append(
                f"ALTER DATABASE {self.warehouse.quote(db)} RENAME TO "
                f"{self.warehouse.quote(aside_db)}"
            )
            self._terminate(db)
        statements.append(
            f"ALTER DATABASE {self.warehouse.quote(staged)} RENAME TO {self.warehouse.quote(db)}"
        )
        # Both renames in one transaction: refused or stopped half-way, the warehouse keeps its
        # name and data instead of being left moved aside with nothing in its place.
        self._admin(
            *statements,
            together=True,
            hint=f"nothing was replaced: {db} is as it was and the restored copy is left at "
            f"{staged}; end the sessions connected to either (pg_stat_activity) and run the "
            "restore again",
        )
        if aside_db:
            scratch["moved"].append(aside_db)

    def _restore_state(self, scratch: dict[str, Any]) -> None:
        stamp, target = _stamp(), self.warehouse.target_name
        pipelines = self.files.pipelines_dir
        aside = pipelines / f".before-restore-{stamp}"
        for current in self.files.pipelines_of(self.warehouse.target_name):
            aside.mkdir(mode=0o700, parents=True, exist_ok=True)  # dlt's state: owner only
            kept = aside / current.relative_to(pipelines)
            kept.parent.mkdir(parents=True, exist_ok=True)
            current.rename(kept)
            scratch["moved"].append(str(kept))
        saved = scratch["backup"] / "state" / "pipelines"
        if saved.is_dir():
            for folder in sorted(saved.iterdir()):
                # An adopted source's pipeline sits one level down, under the target's name.
                inner = sorted(saved.glob(f"{folder.name}/*")) if folder.name == target else []
                for one in inner or [folder]:
                    where = one.relative_to(saved)
                    shutil.copytree(one, pipelines / where, symlinks=True)
                    scratch["state"].append(f"dlt pipeline {where.as_posix()}")
        dbt_saved = scratch["backup"] / "state" / "dbt"
        if dbt_saved.is_dir():
            target_dir = self.files.transform_dir / "target"
            target_dir.mkdir(parents=True, exist_ok=True)
            for artifact in sorted(dbt_saved.iterdir()):
                shutil.copy2(artifact, target_dir / artifact.name)
                scratch["state"].append(f"dbt {artifact.name}")

    # ------------------------------------------------------------------ what is in use

    def _own(self, destination: str) -> bool:
        """Whether ``destination`` is the target's own file or database."""
        w = self.warehouse
        if w.STORAGE == "file":
            mine: Path = w.path  # type: ignore[attr-defined]
            return Path(destination).expanduser().resolve() == mine.resolve()
        return destination == w.config.database

    def _refuse_while_in_use(self) -> None:
        """Refuse to replace the target's data while a run is in progress on it or another
        process holds its file: what that run loads would go into the copy moved aside,
        while its dlt state says it was loaded, so later runs would skip those rows.

        Raises:
            WarehouseLockedError: a run or another process uses it (nothing was restored).
        """
        from stackyard.metadata.run_leases import RunLeases

        what = (
            "restoring now would move the rows it loads aside with the current data, and "
            "later runs would skip them; nothing was restored"
        )
        busy = RunLeases(self.warehouse).in_the_way(what)
        if busy is not None:
            raise busy
        self.warehouse.check_not_held(
            "restoring over it now would lose what it writes; nothing was restored"
        )

    def _discard(self, scratch: dict[str, Any]) -> None:
        staged = scratch.get("staged")
        if isinstance(staged, Path):
            staged.unlink(missing_ok=True)
        elif staged:
            self._admin(f"DROP DATABASE IF EXISTS {self.warehouse.quote(staged)} WITH (FORCE)")

    # ------------------------------------------------------------------ Postgres admin

    def _admin_kwargs(self) -> dict[str, Any]:
        return {**self.warehouse.connect_kwargs(), "dbname": "postgres"}  # type: ignore[attr-defined]

    def _admin(self, *statements: str, together: bool = False, hint: str = "") -> None:
        """Run statements on the server's ``postgres`` database, one by one (CREATE and DROP
        DATABASE cannot run in a transaction) or, ``together``, in one transaction."""
        import psycopg

        statement = statements[0]
        try:
            with (
                psycopg.connect(**self._admin_kwargs(), autocommit=True) as conn,
                conn.transaction() if together else nullcontext(),
            ):
                for statement in statements:
                    conn.execute(statement)
        except psycopg.Error as exc:
            raise WarehouseError(
                f"Postgres refused {statement!r}: {exc}",
                hint=hint or "the restoring user needs CREATEDB and must own the target database",
            ) from None

    def _terminate(self, db: str) -> None:
        import psycopg

        with psycopg.connect(**self._admin_kwargs(), autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (db,),
            )

    def _pg_database_exists(self, db: str) -> bool:
        import psycopg

        try:
            with psycopg.connect(**self._admin_kwargs()) as conn:
                row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,))
                return row.fetchone() is not None
        except psycopg.OperationalError as exc:
            raise WarehouseError(
                f"cannot reach the Postgres server of {self.warehouse.describe()}: {exc}",
                hint="check that the server runs and the target's host, port and user",
            ) from None


def _counts_only(manifest: BackupManifest) -> bool:
    return not any(t.content_hash for t in manifest.tables)


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
