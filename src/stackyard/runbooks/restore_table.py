"""``stackyard restore-table``: one table back as it was, beside the original.

Snowflake and BigQuery read their own time travel (SQL from :mod:`backup_cloud`). DuckDB keeps
no history, so the table comes from a backup: the one named, or with ``--as-of`` the newest
taken at or before that time — the plan says which, and how much later data that misses.
Postgres keeps no history either: the table comes from a backup the same way, through COPY
(:mod:`restore_table_pg`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from stackyard.errors import UsageError, WarehouseError
from stackyard.runbooks import backup_engines as engines
from stackyard.runbooks.backup import DUCKDB_DATA, TargetRunbook
from stackyard.runbooks.backup_cloud import restore_table_sql
from stackyard.runbooks.backup_engines import fingerprint_differences
from stackyard.runbooks.recovery_plan import (
    BackupManifest,
    RecoveryPlan,
    RestoreResult,
    Step,
    file_matches,
    refuse_foreign,
    replace_rows_sql,
)
from stackyard.runbooks.restore import RestoreRunbook
from stackyard.runbooks.restore_table_cursor import incremental_note
from stackyard.runbooks.restore_table_sequences import sequences_step, set_sequences_sql
from stackyard.warehouse.base import ColumnSequence, Warehouse


class TableRestoreRunbook(TargetRunbook):
    """Plans and runs the restore of one table."""

    def plan(
        self, table: str, *, as_of: datetime | None = None, backup: str | None = None
    ) -> RecoveryPlan:
        """The steps that bring ``schema.table`` back as ``schema.table__restored``.

        Raises:
            UsageError: a bad table name, neither or both of --as-of and --from, no backup
                old enough, a ``__restored`` copy left from before, or an engine that can do
                neither.
        """
        if as_of is not None and backup is not None:
            raise UsageError(
                "--from and --as-of both say which state to bring back: pass one of them; "
                "nothing was restored",
                hint="--from BACKUP takes the table from that backup; --as-of TIME from the "
                "newest backup taken at or before TIME",
            )
        schema, _, name = table.partition(".")
        if not name:
            raise UsageError(
                f"'{table}' is not schema.table", hint="e.g. stackyard restore-table shop_db.orders"
            )
        w = self.warehouse
        if as_of is not None and as_of.tzinfo is None:
            as_of = as_of.replace(tzinfo=UTC)
        if w.STORAGE == "cloud":
            if as_of is None:
                raise UsageError(f"{w.KIND} restores a table from time travel: pass --as-of TIME")
            step = restore_table_sql(w, schema, name, as_of)
            cursor = incremental_note(self.files, w.target_name, schema, name, taken_at=as_of)
            return RecoveryPlan(
                "restore-table",
                w.target_name,
                w.KIND,
                table,
                (step,),
                notes=(cursor,) if cursor else (),
            )
        folder = self._pick(backup, as_of)
        manifest = BackupManifest.read(folder)
        refuse_foreign(manifest, folder, w, self.files.project.name)
        saved = manifest.table(table)
        if saved is None:
            known = ", ".join(t.name for t in manifest.tables[:20])
            raise UsageError(f"{table} is not in the backup {folder}", hint=f"it has: {known}")
        restored = f"{name}__restored"
        if restored in w.tables_in(schema):
            raise _copy_exists(w, schema, name)
        notes: tuple[str, ...] = (f"backup taken {manifest.created_at.isoformat()}",)
        if as_of is not None:
            notes += (
                f"{w.describe()} keeps no history of its own: this is the newest backup at or "
                f"before {as_of.isoformat()}; changes made between "
                f"{manifest.created_at.isoformat()} and then are not in it (the loss window: "
                f"{_hours(as_of - manifest.created_at)})",
            )
        cursor = incremental_note(
            self.files, w.target_name, schema, name, taken_at=manifest.created_at, backup=folder
        )
        if cursor:
            notes += (cursor,)
        if w.STORAGE == "server":
            from stackyard.runbooks.restore_table_pg import postgres_table_steps

            steps = postgres_table_steps(folder, manifest, saved, f"{schema}.{restored}")
        else:
            steps = (
                Step(
                    "check_file",
                    f"check {folder / DUCKDB_DATA} against its manifest (its size; DuckDB "
                    "checks each block's checksum as the table is read)",
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
                    f"compare {schema}.{restored}'s row count and content hash with the "
                    "backup's table",
                    f"DROP TABLE {schema}.{restored}",
                ),
            )
        sequences = sequences_step(w, schema, name, _sequences(w, schema, name))
        if sequences is not None:
            steps += (sequences,)
        return RecoveryPlan(
            action="restore-table",
            target=w.target_name,
            engine=w.KIND,
            location=str(folder),
            destination=f"{schema}.{restored}",
            steps=steps,
            notes=(*notes, swap_note(w, schema, name)),
        )

    def _pick(self, backup: str | None, as_of: datetime | None) -> Path:
        if backup is not None:
            return RestoreRunbook(self.files, self.session).resolve(backup)
        if as_of is None:
            raise UsageError(
                "say which state to bring back: --from BACKUP or --as-of TIME",
                hint="--as-of uses the newest backup taken at or before that time",
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
        """Copy and verify the table as planned.

        Raises:
            UsageError: the copy exists already (made since the plan).
            WarehouseError: the backup file is damaged, or the copy differs from the manifest
                (it is dropped again).
        """
        import time

        started = time.monotonic()
        folder = Path(plan.location)
        manifest = BackupManifest.read(folder)
        if self.warehouse.STORAGE == "server":
            from stackyard.runbooks.restore_table_pg import restore_postgres_table

            found = restore_postgres_table(self.session, plan, manifest)
        else:
            found = self._copy_duckdb_table(plan, folder, manifest)
        schema, restored = plan.destination.split(".", 1)
        name = restored.removesuffix("__restored")
        saved = tuple(c for c, _, _ in _columns(self.warehouse, schema, restored))
        kept = tuple(n for n in plan.notes if not n.startswith(SWAP_NOTE))
        return RestoreResult(
            backup=folder,
            target=plan.target,
            destination=plan.destination,
            tables=(found,),
            moved_aside=(),
            state_restored=(),
            seconds=round(time.monotonic() - started, 3),
            notes=(
                *kept,
                *column_notes(self.warehouse, schema, name, saved),
                swap_note(self.warehouse, schema, name, saved),
            ),
        )

    def _copy_duckdb_table(
        self, plan: RecoveryPlan, folder: Path, manifest: BackupManifest
    ) -> engines.TableFingerprint:
        source = f"{plan.location}/{DUCKDB_DATA}"
        if not file_matches(folder / DUCKDB_DATA, manifest.files.get(DUCKDB_DATA, "")):
            raise WarehouseError(
                f"{source} is damaged (it differs from the manifest)",
                hint="nothing was restored; use an older backup with --from",
            )
        schema, restored = plan.destination.split(".", 1)
        table = manifest.table(f"{schema}.{restored.removesuffix('__restored')}")
        if table is None:
            raise UsageError(f"{plan.destination} has no table in {folder} to come from")
        import duckdb

        w: Any = self.warehouse
        conn = w._connection()
        alias = "stackyard_backup"
        try:
            conn.execute(f"ATTACH {engines.sql_string(source)} AS {alias} (READ_ONLY)")
        except duckdb.Error as exc:  # its header or catalog fails DuckDB's checks
            raise WarehouseError(
                f"{source} is damaged: {exc}",
                hint="nothing was restored; use an older backup with --from",
            ) from None
        try:
            target = w.quote(schema, restored)
            if restored in w.tables_in(schema):
                raise _copy_exists(w, schema, restored.removesuffix("__restored"))
            saved = w.quote(alias, table.schema, table.table)
            # The manifest of a DuckDB backup has row counts only: the content hash the copy
            # must match is taken from the backup's table itself (reading it makes DuckDB
            # check every block's checksum).
            conn.execute("BEGIN")
            try:
                # The schema may have been dropped with the table: the copy needs it back.
                conn.execute(f"CREATE SCHEMA IF NOT EXISTS {w.quote(schema)}")
                conn.execute(f"CREATE TABLE {target} AS SELECT * FROM {saved}")
                expected = engines.TableFingerprint(
                    table.schema, table.table, table.rows, _content_hash(conn, saved)
                )
            except duckdb.Error as exc:
                conn.execute("ROLLBACK")
                raise WarehouseError(
                    f"{source} is damaged: {exc}",
                    hint="nothing was restored; use an older backup with --from",
                ) from None
            conn.execute("COMMIT")
        finally:
            conn.execute(f"DETACH {alias}")
        rows, _ = conn.execute(f"SELECT count(*), 0 FROM {target}").fetchone()
        found = engines.TableFingerprint(
            table.schema, table.table, int(rows), _content_hash(conn, target)
        )
        differences = fingerprint_differences((expected,), (found,))
        if differences:
            conn.execute(f"DROP TABLE {target}")
            raise WarehouseError(
                f"the copy of {table.name} differs from the manifest: {differences[0]}",
                hint="nothing was kept; try an older backup with --from",
            )
        return found


SWAP_NOTE = "then compare, and swap it in"


def swap_statement(
    warehouse: Warehouse, schema: str, table: str, saved: tuple[str, ...] | None = None
) -> str:
    """The statements that swap ``schema.table__restored`` in for ``schema.table`` on DuckDB
    or Postgres, with the table's columns as the warehouse lists them now.

    The rows are replaced in one transaction, so the table keeps its dependent views (which
    Postgres will not let a ``DROP TABLE`` break), grants, constraints and defaults. Generated
    columns are left out (they are computed again); identity columns are copied as saved
    (Postgres: ``OVERRIDING SYSTEM VALUE``), and the sequences behind the copied columns are
    set past the restored rows in the same transaction (:mod:`restore_table_sequences`).
    When the table is gone, the copy is renamed.

    Args:
        saved: the copy's columns, once it exists: only the columns both have are listed
            (:func:`column_notes` says which are left out); ``None`` lists the table's.
    """
    found = _columns(warehouse, schema, table)
    copy = warehouse.quote(schema, f"{table}__restored")
    if not found:
        return f"ALTER TABLE {copy} RENAME TO {warehouse.quote(table)}"
    both = _in(warehouse, saved) if saved is not None else None
    listed = [
        (c, i)
        for c, generated, i in found
        if generated != "ALWAYS" and (both is None or _key(warehouse, c) in both)
    ]
    columns = tuple(warehouse.quote(c) for c, _ in listed)
    # SQL-standard identity columns (Postgres) take saved values only when told to.
    identity = any(i == "YES" for _, i in listed)
    sequences = _sequences(warehouse, schema, table, {_key(warehouse, c) for c, _ in listed})
    return replace_rows_sql(
        warehouse.quote(schema, table),
        copy,
        columns,
        overriding=identity,
        after=set_sequences_sql(warehouse, schema, table, sequences),
    )


def swap_note(
    warehouse: Warehouse, schema: str, table: str, saved: tuple[str, ...] | None = None
) -> str:
    """The plan's last note: how to swap the checked copy in (``saved``: the copy's columns,
    once it exists)."""
    if saved is not None and not _shared(warehouse, schema, table, saved):
        return (
            f"{schema}.{table} and the copy have no column in common: there is nothing to swap "
            f"in; compare them, then drop the copy (DROP TABLE "
            f"{warehouse.quote(schema, f'{table}__restored')})"
        )
    statement = swap_statement(warehouse, schema, table, saved)
    if not _columns(warehouse, schema, table):
        # Renaming the copy brings back rows, not the table's definition: said here, so that
        # an insert that relied on a default or a key does not find out later.
        return (
            f"{SWAP_NOTE} by renaming the copy ({schema}.{table} is gone; the copy has the saved "
            "columns and rows only, no primary key, defaults, identity, indexes or grants, so "
            "add those after, or restore the whole backup beside the warehouse with stackyard "
            f"restore BACKUP --to NEW and copy the table's definition from it) with: {statement}"
        )
    note = (
        f"{SWAP_NOTE} (one transaction; the table keeps its views, grants "
        f"and constraints) with: {statement}"
    )
    cascading = warehouse.cascading_references(schema, table)
    if cascading:
        # The swap's DELETE fires them: every referencing row would go (or lose its key),
        # the rows the backup also had included.
        note = (
            f"WARNING: {', '.join(cascading)} reference{'s' if len(cascading) == 1 else ''} "
            f"{schema}.{table}, so the DELETE below changes their rows too; restore those "
            f"tables as well, or put back only the rows that differ, by key; {note}"
        )
    return note


def column_notes(
    warehouse: Warehouse, schema: str, table: str, saved: tuple[str, ...]
) -> tuple[str, ...]:
    """What the swap cannot carry across when the table's columns changed since the backup:
    saved columns the table no longer has, and columns it has that the backup lacks.
    Nothing when the table is gone (the swap renames the copy) or its columns are the same."""
    found = _columns(warehouse, schema, table)
    if not found:
        return ()
    copy = f"{schema}.{table}__restored"
    now = _in(warehouse, tuple(c for c, _, _ in found))
    dropped = [c for c in saved if _key(warehouse, c) not in now]
    kept = _in(warehouse, saved)
    added = [c for c, g, _ in found if g != "ALWAYS" and _key(warehouse, c) not in kept]
    notes = []
    if dropped:
        notes.append(
            f"{schema}.{table} no longer has the saved column(s) {', '.join(dropped)}: the "
            f"swap leaves them out; their saved values stay in {copy} until it is dropped "
            "(the swap drops it: copy them elsewhere first to keep them)"
        )
    if added:
        renamed = (
            "; a renamed column is both: to bring its values back, add its new name to the "
            "INSERT's column list and its saved name to the SELECT's"
            if dropped
            else ""
        )
        notes.append(
            f"{schema}.{table} has column(s) the backup lacks: {', '.join(added)}: swapped-in "
            f"rows get the column's default, NULL where it has none{renamed}"
        )
        if required := _required(warehouse, schema, table, added):
            # The swap's INSERT then fails (and rolls back); say so before it is run.
            notes.append(
                f"{', '.join(required)} cannot be NULL and has no default: the swap as written "
                "fails on it (and changes nothing); give it a value in the statement (the "
                "saved column it was renamed from, say) or a default first"
            )
    saved_types = _types(warehouse, schema, f"{table}__restored")
    changed = [
        f"{c}: {saved_types[c]} saved, {kind} now"
        for c, kind in _types(warehouse, schema, table).items()
        if c in saved_types and saved_types[c] != kind
    ]
    if changed:
        notes.append(
            f"{schema}.{table} has column(s) whose type changed since the backup "
            f"({'; '.join(changed)}): the swap casts the saved values to today's type, which "
            "can round or fail them; check them in the copy first"
        )
    return tuple(notes)


def _types(warehouse: Warehouse, schema: str, table: str) -> dict[str, str]:
    """A table's ``{column: data type}`` (matched as the engine matches names), of the
    current database only (a DuckDB backup may be attached)."""
    p = warehouse.param()
    found = warehouse.query(
        "SELECT column_name, data_type FROM information_schema.columns "
        f"WHERE table_schema = {p} AND table_name = {p} "
        "AND table_catalog = current_database()",
        (schema, table),
    ).rows
    return {_key(warehouse, str(c)): str(t) for c, t in found}


def _columns(warehouse: Warehouse, schema: str, table: str) -> list[tuple[str, str, str]]:
    """A table's columns in order: (name, is_generated, is_identity) from information_schema
    (of the current database only: a DuckDB backup may be attached)."""
    found = _information(warehouse, schema, table, "column_name, is_generated, is_identity")
    return [(str(c), str(g), str(i)) for c, g, i in found]


def _information(
    warehouse: Warehouse, schema: str, table: str, fields: str, where: str = ""
) -> tuple[tuple[Any, ...], ...]:
    """``fields`` of a table's columns in order, from information_schema (of the current
    database only: a DuckDB backup may be attached), with ``where`` as a further filter."""
    p = warehouse.param()
    return warehouse.query(
        f"SELECT {fields} FROM information_schema.columns WHERE table_schema = {p} AND "
        f"table_name = {p} AND table_catalog = current_database() {where} "
        "ORDER BY ordinal_position",
        (schema, table),
    ).rows


def _required(warehouse: Warehouse, schema: str, table: str, names: list[str]) -> list[str]:
    """Those of ``names`` that are NOT NULL without a default."""
    where = "AND is_nullable = 'NO' AND column_default IS NULL"
    found = _information(warehouse, schema, table, "column_name", where)
    return [str(c) for (c,) in found if str(c) in names]


def _sequences(
    warehouse: Warehouse, schema: str, table: str, listed: set[str] | None = None
) -> tuple[ColumnSequence, ...]:
    """The sequences behind the table's columns the swap copies (``listed``: their
    :func:`_key`; ``None``: every column); a column the swap leaves out draws its values
    from its sequence as the rows go in."""
    found = warehouse.column_sequences(schema, table)
    return tuple(s for s in found if listed is None or _key(warehouse, s.column) in listed)


def _key(warehouse: Warehouse, column: str) -> str:
    """A column's name as the engine matches it (DuckDB ignores case, quoted or not)."""
    return column.lower() if warehouse.CASE_INSENSITIVE_COLUMNS else column


def _in(warehouse: Warehouse, columns: tuple[str, ...]) -> set[str]:
    return {_key(warehouse, c) for c in columns}


def _shared(warehouse: Warehouse, schema: str, table: str, saved: tuple[str, ...]) -> bool:
    """Whether the swap lists any column (true when the table is gone: it is renamed)."""
    found = _columns(warehouse, schema, table)
    both = _in(warehouse, saved)
    return not found or any(g != "ALWAYS" and _key(warehouse, c) in both for c, g, _ in found)


def _copy_exists(warehouse: Warehouse, schema: str, table: str) -> UsageError:
    copy = warehouse.quote(schema, f"{table}__restored")
    saved = tuple(c for c, _, _ in _columns(warehouse, schema, f"{table}__restored"))
    swap = swap_statement(warehouse, schema, table, saved or None)
    return UsageError(
        f"{schema}.{table}__restored exists already (from an earlier restore-table); "
        "nothing was restored",
        hint=f"swap it in first ({swap}) or drop it "
        f"(DROP TABLE {copy}), then run restore-table again",
    )


def _hours(span: timedelta) -> str:
    """A loss window in words.

    >>> _hours(timedelta(hours=5, minutes=30))
    '5.5 hours'
    """
    return f"{span.total_seconds() / 3600:.1f} hours"


def _content_hash(conn: Any, name: str) -> str:
    (digest,) = conn.execute(
        f"SELECT coalesce(sum(hash(t)::HUGEINT), 0) FROM {name} AS t"
    ).fetchone()
    return str(digest)
