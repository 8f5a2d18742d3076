"""``stackyard restore-table`` on Postgres: one table from a backup, beside the original.

Postgres keeps no history of a table, so the table comes from the backup the plan names (with
``--as-of``: the newest taken at or before that time). From a built-in backup (COPY files) the
table's saved rows are copied straight in; from a pg_dump backup, ``pg_restore`` brings the
definitions (without constraints) and that one table's rows into a scratch database first,
dropped afterwards, and the rows are streamed across with binary COPY. Either way the copy is ``schema.table__restored``, created with the saved
columns (no defaults, identities or constraints: it is there to compare and swap in), and
its row count and content hash must equal the manifest's or it is dropped again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stackyard.errors import UsageError, WarehouseError
from stackyard.runbooks import backup_engines as engines
from stackyard.runbooks import pg_copy
from stackyard.runbooks.backup import PG_COPY, PG_COPY_METHOD, PG_DATA
from stackyard.runbooks.backup_engines import TableFingerprint
from stackyard.runbooks.recovery_plan import BackupManifest, RecoveryPlan, Step, sha256_file
from stackyard.session import Session


def postgres_table_steps(
    folder: Path, manifest: BackupManifest, saved: TableFingerprint, destination: str
) -> tuple[Step, ...]:
    """The steps that bring one table of a Postgres backup back as ``destination``."""
    undo = f"DROP TABLE {destination}"
    verify = Step(
        "verify",
        f"compare {destination}'s row count and content hash with the manifest's "
        f"({saved.rows:,} rows)",
        undo,
    )
    if manifest.method == PG_COPY_METHOD:
        return (
            Step(
                "check_file",
                f"check the SHA-256 of {saved.name}'s saved rows and of the saved definitions "
                f"in {folder / PG_COPY} against the manifest",
                "nothing: it only reads",
            ),
            Step(
                "copy_table",
                f"create {destination} with {saved.name}'s saved columns and COPY its "
                f"{saved.rows:,} rows in",
                undo,
            ),
            verify,
        )
    return (
        Step(
            "check_file",
            f"check the SHA-256 of every file of {folder / PG_DATA} against the manifest",
            "nothing: it only reads",
        ),
        Step(
            "copy_table",
            f"pg_restore {saved.name} alone into a scratch database, create {destination} with "
            f"its columns and stream its {saved.rows:,} rows across with COPY (binary); drop "
            "the scratch database",
            f"{undo}; drop the scratch database",
        ),
        verify,
    )


def restore_postgres_table(
    session: Session, plan: RecoveryPlan, manifest: BackupManifest
) -> TableFingerprint:
    """Copy one table out of a Postgres backup as planned; return its verified fingerprint.

    Raises:
        UsageError: the copy exists already.
        WarehouseError: a file is damaged, or the copy differs from the manifest (then it is
            dropped again).
    """
    import psycopg

    from stackyard.runbooks.backup_engines import fingerprint_differences

    folder = Path(plan.location)
    schema, restored = plan.destination.split(".", 1)
    saved = manifest.table(f"{schema}.{restored.removesuffix('__restored')}")
    if saved is None:
        raise UsageError(f"{plan.destination} has no table in {folder} to come from")
    connect: dict[str, Any] = session.warehouse.connect_kwargs()  # type: ignore[attr-defined]
    name = session.warehouse.quote(schema, restored)
    with psycopg.connect(**connect) as conn:
        exists = conn.execute("SELECT to_regclass(%s)", (name,)).fetchone()
        if exists and exists[0] is not None:
            # Checked when planning too; this catches a copy made since.
            raise UsageError(
                f"{plan.destination} exists already; nothing was restored",
                hint=f"swap it in or drop it first (DROP TABLE {name}), then run "
                "restore-table again",
            )
        with conn.transaction(), conn.cursor() as cursor:
            # The schema may have been dropped with the table: the copy needs it back.
            cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {session.warehouse.quote(schema)}")
            if manifest.method == PG_COPY_METHOD:
                _from_copy_files(cursor, folder, manifest, saved, name)
            else:
                _from_pg_dump(cursor, folder, manifest, saved, name, connect)
        with conn.cursor() as cursor:
            rows, digest = engines.pg_table_fingerprint(cursor, name)
        found = TableFingerprint(saved.schema, saved.table, rows, digest)
        differences = fingerprint_differences((saved,), (found,))
        if differences:
            conn.execute(f"DROP TABLE {name}")
            conn.commit()
            raise WarehouseError(
                f"the copy of {saved.name} differs from the manifest: {differences[0]}",
                hint="nothing was kept; try an older backup with --from",
            )
    return found


def _check(folder: Path, manifest: BackupManifest, relative: list[str]) -> None:
    bad = [path for path in relative if sha256_file(folder / path) != manifest.files.get(path)]
    if bad:
        raise WarehouseError(
            f"the backup {folder} is damaged: {', '.join(bad[:5])} differ from its manifest",
            hint="nothing was restored; use an older backup with --from",
        )


def _bare(table: dict[str, Any]) -> dict[str, Any]:
    """The saved columns without defaults or identities (they would name live sequences)."""
    columns = [
        {**c, "default": c["default"] if c["generated"] else None, "identity": ""}
        for c in table["columns"]
    ]
    return {**table, "columns": columns}


def _from_copy_files(
    cursor: Any, folder: Path, manifest: BackupManifest, saved: TableFingerprint, name: str
) -> None:
    data = folder / PG_COPY
    catalog = pg_copy.read_saved_catalog(data)
    table = next(
        t for t in catalog["tables"] if (t["schema"], t["table"]) == (saved.schema, saved.table)
    )
    _check(folder, manifest, [f"{PG_COPY}/{pg_copy.CATALOG_FILE}", f"{PG_COPY}/{table['file']}"])
    cursor.execute(pg_copy.create_table_sql(_bare(table), name))
    pg_copy.load_rows(cursor, data, table, name)


def _from_pg_dump(
    cursor: Any,
    folder: Path,
    manifest: BackupManifest,
    saved: TableFingerprint,
    name: str,
    connect: dict[str, Any],
) -> None:
    import psycopg

    dump = [p for p in manifest.files if p.startswith(f"{PG_DATA}/")]
    _check(folder, manifest, dump)
    admin = {**connect, "dbname": "postgres"}
    with psycopg.connect(**admin) as conn:
        number = conn.execute("SHOW server_version_num").fetchone()
    pg_restore = engines.check_pg_client("pg_restore", int(number[0]) // 10000 if number else 0)
    scratch = f"{str(connect['dbname'])[:40]}__table_restore"
    quoted = pg_copy.quote_ident(scratch)
    with psycopg.connect(**admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {quoted}")
    try:
        scratch_connect = {**connect, "dbname": scratch}
        # Every definition without constraints (pre-data: what the table's columns may
        # depend on, such as a sequence), then this one table's rows.
        for only in (
            ["--section=pre-data"],
            ["--data-only", f"--schema={saved.schema}", f"--table={saved.table}"],
        ):
            engines.run_client(
                [
                    pg_restore,
                    "--no-owner",
                    "--no-acl",
                    "--exit-on-error",
                    *only,
                    f"--dbname={scratch}",
                    str(folder / PG_DATA),
                ],
                engines.pg_env(scratch_connect),
                "pg_restore",
            )
        with psycopg.connect(**scratch_connect) as source, source.cursor() as read:
            with source.transaction():
                catalog = pg_copy.read_catalog(read, whole=False)
            table = next(
                t
                for t in catalog["tables"]
                if (t["schema"], t["table"]) == (saved.schema, saved.table)
            )
            cursor.execute(pg_copy.create_table_sql(_bare(table), name))
            columns = pg_copy.copied_columns(table)
            original = pg_copy.quote_ident(saved.schema, saved.table)
            out = f"COPY {original} ({columns}) TO STDOUT (FORMAT binary)"
            into = f"COPY {name} ({columns}) FROM STDIN (FORMAT binary)"
            with read.copy(out) as reading, cursor.copy(into) as writing:
                for block in reading:
                    writing.write(block)
    finally:
        with psycopg.connect(**admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
