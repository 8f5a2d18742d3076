"""``stackyard restore-table``: one table back as it was, beside the original.

Snowflake and BigQuery read their own time travel (SQL from :mod:`backup_cloud`). DuckDB keeps
no history, so the table comes from a backup: the one named, or with ``--as-of`` the newest
taken at or before that time — the plan says which, and how much later data that misses.
Postgres: restore the backup into a new database (``stackyard restore B --to NEW``) and copy
the table from there; the plan says so rather than pretending.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stackyard.errors import UsageError, WarehouseError
from stackyard.runbooks import backup_engines as engines
from stackyard.runbooks.backup import DUCKDB_DATA, TargetRunbook
from stackyard.runbooks.backup_cloud import restore_table_sql
from stackyard.runbooks.recovery_plan import BackupManifest, RecoveryPlan, RestoreResult, Step
from stackyard.runbooks.restore import RestoreRunbook, fingerprint_differences


class TableRestoreRunbook(TargetRunbook):
    """Plans and runs the restore of one table."""

    def plan(
        self, table: str, *, as_of: datetime | None = None, backup: str | None = None
    ) -> RecoveryPlan:
        """The steps that bring ``schema.table`` back as ``schema.table__restored``.

        Raises:
            UsageError: a bad table name, neither --as-of nor --from, no backup old enough,
                or an engine that can do neither.
        """
        schema, _, name = table.partition(".")
        if not name:
            raise UsageError(
                f"'{table}' is not schema.table", hint="e.g. stackyard restore-table shop_db.orders"
            )
        w = self.warehouse
        if as_of is not None and as_of.tzinfo is None:
            as_of = as_of.replace(tzinfo=UTC)
        if w.KIND in ("snowflake", "bigquery"):
            if as_of is None:
                raise UsageError(f"{w.KIND} restores a table from time travel: pass --as-of TIME")
            step = restore_table_sql(w, schema, name, as_of)
            return RecoveryPlan("restore-table", w.target_name, w.KIND, table, (step,))
        if w.STORAGE == "server":
            raise UsageError(
                "Postgres keeps no history of a table, and stackyard restores Postgres "
                "backups whole",
                hint="restore the backup into a new database and copy the table from it: "
                "stackyard restore BACKUP --to NEWDB, then INSERT … SELECT through dblink or "
                "pg_dump -t",
            )
        folder = self._pick(backup, as_of)
        manifest = BackupManifest.read(folder)
        saved = manifest.table(table)
        if saved is None:
            known = ", ".join(t.name for t in manifest.tables[:20])
            raise UsageError(f"{table} is not in the backup {folder}", hint=f"it has: {known}")
        restored = f"{name}__restored"
        notes: tuple[str, ...] = (f"backup taken {manifest.created_at.isoformat()}",)
        if as_of is not None:
            notes += (
                f"DuckDB keeps no history: this is the newest backup at or before "
                f"{as_of.isoformat()}; changes between {manifest.created_at.isoformat()} and "
                "then are not in it",
            )
        return RecoveryPlan(
            action="restore-table",
            target=w.target_name,
            engine=w.KIND,
            location=str(folder),
            destination=f"{schema}.{restored}",
            steps=(
                Step(
                    "check_file",
                    f"check the SHA-256 of {folder / DUCKDB_DATA} against its manifest",
                    "nothing: it only reads",
                ),
                Step(
                    "copy_table",
                    f"attach the backup read-only and copy {table} ({saved.rows:,} rows) to "
                    f"{schema}.{restored}",
                    f"DROP TABLE {schema}.{restored}",
                ),
                Step(
                    "verify",
                    f"compare {schema}.{restored}'s row count and content hash with the manifest's",
                    f"DROP TABLE {schema}.{restored}",
                ),
            ),
            notes=(
                *notes,
                f"then compare, and swap it in: DROP TABLE {table}; ALTER TABLE "
                f"{schema}.{restored} RENAME TO {name}",
            ),
        )

    def _pick(self, backup: str | None, as_of: datetime | None) -> Path:
        if backup is not None:
            return RestoreRunbook(self.files, self.session).resolve(backup)
        if as_of is None:
            raise UsageError(
                "say which state to bring back: --from BACKUP or --as-of TIME",
                hint="DuckDB keeps no history; --as-of uses the newest backup before that time",
            )
        found = [m for m in self.files.backups(self.warehouse.target_name) if m.created_at <= as_of]
        if not found:
            raise UsageError(
                f"no backup of target '{self.warehouse.target_name}' was taken at or before "
                f"{as_of.isoformat()}",
                hint="list the backups folder, or pass --from with a later one",
            )
        return self.files.backup_folder(found[-1])

    def run(self, plan: RecoveryPlan) -> RestoreResult:
        """Copy and verify the table as planned (DuckDB).

        Raises:
            WarehouseError: the backup file is damaged, the copy exists already, or the copy
                differs from the manifest (it is dropped again).
        """
        import time

        started = time.monotonic()
        folder = Path(plan.location)
        manifest = BackupManifest.read(folder)
        source = f"{plan.location}/{DUCKDB_DATA}"
        if engines_digest(folder) != manifest.files.get(DUCKDB_DATA):
            raise WarehouseError(
                f"{source} is damaged (its SHA-256 differs from the manifest)",
                hint="nothing was restored; use an older backup with --from",
            )
        schema, restored = plan.destination.split(".", 1)
        table = manifest.table(f"{schema}.{restored.removesuffix('__restored')}")
        if table is None:
            raise UsageError(f"{plan.destination} has no table in {folder} to come from")
        w: Any = self.warehouse
        conn = w._connection()
        alias = "stackyard_backup"
        conn.execute(f"ATTACH {engines.sql_string(source)} AS {alias} (READ_ONLY)")
        try:
            target = w.quote(schema, restored)
            if restored in w.tables_in(schema):
                raise WarehouseError(
                    f"{plan.destination} exists already",
                    hint=f"compare and drop it first: DROP TABLE {plan.destination}",
                )
            conn.execute(
                f"CREATE TABLE {target} AS SELECT * FROM {w.quote(alias, table.schema, table.table)}"
            )
        finally:
            conn.execute(f"DETACH {alias}")
        rows, digest = conn.execute(
            f"SELECT count(*), coalesce(sum(hash(t)::HUGEINT), 0) FROM {target} AS t"
        ).fetchone()
        found = engines.TableFingerprint(table.schema, table.table, int(rows), str(digest))
        differences = fingerprint_differences((table,), (found,))
        if differences:
            conn.execute(f"DROP TABLE {target}")
            raise WarehouseError(
                f"the copy of {table.name} differs from the manifest: {differences[0]}",
                hint="nothing was kept; try an older backup with --from",
            )
        return RestoreResult(
            backup=folder,
            target=plan.target,
            destination=plan.destination,
            tables=(found,),
            moved_aside=(),
            state_restored=(),
            seconds=round(time.monotonic() - started, 3),
        )


def engines_digest(folder: Path) -> str:
    """The SHA-256 of a backup's DuckDB file."""
    from stackyard.runbooks.recovery_plan import sha256_file

    return sha256_file(folder / DUCKDB_DATA)
