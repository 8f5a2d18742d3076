"""How each engine copies its data out and back in, and fingerprints what it holds.

A fingerprint is a row count and an order-independent content hash per base table: the sum,
modulo nothing (an arbitrary-precision number), of one 64-bit hash per row. Two identical rows
add twice, so a duplicated row changes the hash where an XOR would cancel it. Hashes compare
within one engine (a DuckDB backup restored into DuckDB), never across engines.

* DuckDB: ``CHECKPOINT`` (folds the write-ahead log into the file), row counts and a copy of
  the file hashed as it is copied, while this process holds DuckDB's write lock so nothing
  changes it in between; content hashes are taken from the restored copy. Measured
  against ``EXPORT DATABASE`` (Parquet) and ``COPY FROM DATABASE`` (a new DuckDB file), the
  copy was 40-80x faster and restores with a rename (docs/performance.md, bench/backup.py).
* Postgres: ``pg_dump`` in directory format from an exported snapshot, so the dump and the
  fingerprints see the same instant; ``pg_restore`` into a staging database, verified before
  it replaces anything.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackyard.errors import UsageError, WarehouseError
from stackyard.warehouse.base import Warehouse

_SYSTEM_SCHEMAS = ("information_schema", "pg_catalog", "pg_toast")


@dataclass(frozen=True)
class TableFingerprint:
    """What one table held when it was fingerprinted.

    Attributes:
        schema: the table's schema.
        table: the table's name.
        rows: its row count.
        content_hash: the sum of its rows' hashes, as a decimal string; ``""`` when not
            taken (a DuckDB backup records row counts only, see :func:`duckdb_row_counts`).
    """

    schema: str
    table: str
    rows: int
    content_hash: str

    @property
    def name(self) -> str:
        """``schema.table``.

        >>> TableFingerprint("raw", "orders", 3, "42").name
        'raw.orders'
        """
        return f"{self.schema}.{self.table}"


def sql_string(value: str) -> str:
    """A SQL string literal.

    >>> sql_string("it's")
    "'it''s'"
    """
    return "'" + value.replace("'", "''") + "'"


# --------------------------------------------------------------------------- DuckDB


def duckdb_tables(conn: Any, catalog: str) -> list[tuple[str, str]]:
    """``(schema, table)`` of every base table in one attached DuckDB database."""
    rows = conn.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = ? "
        "AND NOT internal AND NOT temporary ORDER BY 1, 2",
        [catalog],
    ).fetchall()
    return [(str(s), str(t)) for s, t in rows]


def duckdb_fingerprints(conn: Any, catalog: str) -> tuple[TableFingerprint, ...]:
    """Row count and content hash of every base table of an attached DuckDB database."""
    from stackyard.warehouse.duckdb import DuckDBWarehouse

    found = []
    for schema, table in duckdb_tables(conn, catalog):
        name = DuckDBWarehouse.quote_for(catalog, schema, table)
        # hash(t) hashes the whole row as one struct value.
        rows, digest = conn.execute(
            f"SELECT count(*), coalesce(sum(hash(t)::HUGEINT), 0) FROM {name} AS t"
        ).fetchone()
        found.append(TableFingerprint(schema, table, int(rows), str(digest)))
    return tuple(found)


def duckdb_row_counts(conn: Any, catalog: str) -> tuple[TableFingerprint, ...]:
    """Row count of every base table of an attached DuckDB database, without content hashes.

    A DuckDB backup is a byte copy of the file, whose SHA-256 proves the copy; hashing every
    row too would cost several times the copy (docs/performance.md). The restore hashes the
    restored tables instead, reading every block (DuckDB checks each block's checksum).
    """
    from stackyard.warehouse.duckdb import DuckDBWarehouse

    tables = duckdb_tables(conn, catalog)
    if not tables:
        return ()
    counts = " UNION ALL ".join(
        f"SELECT {n} AS i, count(*) AS rows FROM {DuckDBWarehouse.quote_for(catalog, s, t)}"
        for n, (s, t) in enumerate(tables)
    )
    found = dict(conn.execute(counts).fetchall())
    return tuple(TableFingerprint(s, t, int(found[n]), "") for n, (s, t) in enumerate(tables))


def duckdb_catalog(conn: Any) -> str:
    """The name the open DuckDB file is attached under (its file name without extension)."""
    return str(conn.execute("SELECT current_database()").fetchone()[0])


def duckdb_file_fingerprints(path: Path) -> tuple[TableFingerprint, ...]:
    """Fingerprints of a DuckDB file, opened read-only in a connection of its own."""
    import duckdb

    try:
        conn = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        raise WarehouseError(
            f"cannot open {path} to verify it: {exc}",
            hint="the file is damaged or locked; restore from another backup",
        ) from None
    try:
        return duckdb_fingerprints(conn, duckdb_catalog(conn))
    except duckdb.Error as exc:  # a block whose checksum does not match, as a rule
        raise WarehouseError(
            f"reading {path} failed: {exc}", hint="restore from another backup"
        ) from None
    finally:
        conn.close()


# --------------------------------------------------------------------------- Postgres


def pg_tables(cursor: Any) -> list[tuple[str, str]]:
    """``(schema, table)`` of every ordinary table outside the system schemas."""
    cursor.execute(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_type = 'BASE TABLE' AND table_schema <> ALL(%s) "
        "AND table_schema NOT LIKE 'pg_temp%%' ORDER BY 1, 2",
        (list(_SYSTEM_SCHEMAS),),
    )
    return [(str(s), str(t)) for s, t in cursor.fetchall()]


def pg_fingerprints(cursor: Any) -> tuple[TableFingerprint, ...]:
    """Row count and content hash of every table, read through one cursor (one snapshot)."""
    from stackyard.warehouse.postgres import PostgresWarehouse

    found = []
    for schema, table in pg_tables(cursor):
        rows, digest = pg_table_fingerprint(cursor, PostgresWarehouse.quote_for(schema, table))
        found.append(TableFingerprint(schema, table, rows, digest))
    return tuple(found)


def fingerprint_differences(
    expected: tuple[TableFingerprint, ...], found: tuple[TableFingerprint, ...]
) -> list[str]:
    """What differs between two sets of table fingerprints, in words. Content is compared
    where the expected side has a hash (a DuckDB backup's manifest has row counts only: its
    file's SHA-256 already proves the bytes).

    >>> T = TableFingerprint
    >>> fingerprint_differences((T("a", "t", 2, "9"),), (T("a", "t", 3, "7"),))
    ['a.t: 3 rows, expected 2']
    >>> fingerprint_differences((T("a", "t", 2, "9"),), ())
    ['a.t: missing']
    >>> fingerprint_differences((T("a", "t", 2, ""),), (T("a", "t", 2, "7"),))
    []
    """
    have = {t.name: t for t in found}
    differences = []
    for table in expected:
        got = have.pop(table.name, None)
        if got is None:
            differences.append(f"{table.name}: missing")
        elif got.rows != table.rows:
            differences.append(f"{table.name}: {got.rows} rows, expected {table.rows}")
        elif table.content_hash and got.content_hash != table.content_hash:
            differences.append(f"{table.name}: same row count, different content")
    differences.extend(f"{name}: not in the backup" for name in sorted(have))
    return differences


def pg_table_fingerprint(cursor: Any, name: str) -> tuple[int, str]:
    """Row count and content hash of one table (its quoted name); the hash depends on the
    rows' values only, so a copy under another name hashes the same."""
    # The first 64 bits of each row's md5, as a signed bigint, summed as numeric.
    cursor.execute(
        "SELECT count(*), coalesce(sum(('x' || left(md5(t::text), 16))::bit(64)::bigint), 0)"
        f" FROM {name} AS t"
    )
    rows, digest = cursor.fetchone()
    return int(rows), str(digest)


def pg_client(binary: str) -> tuple[str, int]:
    """The path and major version of a PostgreSQL client program (pg_dump, pg_restore).

    Raises:
        UsageError: the program is not on PATH.
    """
    path = shutil.which(binary)
    if path is None:
        raise UsageError(
            f"{binary} is not installed (needed to back up and restore Postgres targets)",
            hint="install the PostgreSQL client of the server's major version or newer, "
            "e.g. apt-get install postgresql-client",
        )
    out = subprocess.run([path, "--version"], capture_output=True, text=True, check=True)
    return path, client_major(out.stdout)


def client_major(version_output: str) -> int:
    """The major version in a ``pg_dump --version`` line.

    >>> client_major("pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)")
    15
    >>> client_major("pg_dump (PostgreSQL) 9.6.24")
    9
    """
    match = re.search(r"\)\s+(\d+)", version_output)
    if not match:
        raise UsageError(f"cannot read a version from '{version_output.strip()}'")
    return int(match.group(1))


def pg_server_major(warehouse: Warehouse) -> int:
    """The server's major version (``server_version_num`` // 10000)."""
    return int(warehouse.query("SHOW server_version_num").rows[0][0]) // 10000


def check_pg_client(binary: str, server_major: int) -> str:
    """The client's path, after checking it can handle the server.

    pg_dump refuses servers newer than itself
    (https://www.postgresql.org/docs/current/app-pgdump.html), so the client's major version
    must be at least the server's.

    Raises:
        UsageError: missing, or older than the server.
    """
    path, major = pg_client(binary)
    if major < server_major:
        raise UsageError(
            f"{binary} is version {major} but the server is version {server_major}",
            hint=f"install postgresql-client-{server_major} (or newer) and put it first on PATH",
        )
    return path


def pg_dump_unusable(warehouse: Warehouse) -> str:
    """Why pg_dump cannot back this server up (missing, or older than it); ``""`` when it can.

    An unreachable server says nothing about the client: the backup's own steps report it.
    """
    try:
        path, major = pg_client("pg_dump")
    except UsageError:
        return "pg_dump is not installed"
    try:
        server = pg_server_major(warehouse)
    except WarehouseError:
        return ""
    if major < server:
        return f"{path} is version {major}, older than the server's {server}"
    return ""


def pg_env(connect: dict[str, Any]) -> dict[str, str]:
    """libpq environment for pg_dump/pg_restore: the password never goes on a command line."""
    import os

    env = dict(os.environ)
    env.update(
        {
            "PGHOST": str(connect["host"]),
            "PGPORT": str(connect["port"]),
            "PGUSER": str(connect["user"]),
            "PGSSLMODE": str(connect.get("sslmode", "prefer")),
            "PGCONNECT_TIMEOUT": str(connect.get("connect_timeout", 10)),
        }
    )
    if connect.get("password"):
        env["PGPASSWORD"] = str(connect["password"])
    return env


# How long pg_dump waits for a table's lock before the backup fails (pg_dump's own unit).
PG_DUMP_LOCK_WAIT = "60s"


def pg_dump(program: str, snapshot: str, into: Path, connect: dict[str, Any]) -> None:
    """``pg_dump`` of the database in directory format, from the exported ``snapshot``.

    Raises:
        WarehouseError: pg_dump failed; a table it could not lock is named as such.
    """
    try:
        run_client(
            [
                program,
                "--format=directory",
                "--jobs=2",
                # A run's DROP TABLE queued behind the backup's snapshot (which read the table)
                # queues pg_dump's lock behind it: a cycle through the backup's process that
                # Postgres cannot see, and both hung. pg_dump gives up instead.
                f"--lock-wait-timeout={PG_DUMP_LOCK_WAIT}",
                f"--snapshot={snapshot}",
                f"--file={into}",
                f"--dbname={connect['dbname']}",
            ],
            pg_env(connect),
            "pg_dump",
        )
    except WarehouseError as exc:
        if "lock table" not in exc.message.lower():
            raise
        raise WarehouseError(
            f"{exc.message}\nanother session (a run's dbt build, say) is replacing a table "
            f"this backup reads, and pg_dump could not lock it within {PG_DUMP_LOCK_WAIT}",
            hint="the unfinished backup was deleted; run it again once that run has finished "
            "(`stackyard status`)",
        ) from None


def run_client(args: list[str], env: dict[str, str], what: str) -> None:
    """Run pg_dump/pg_restore; a failure becomes a WarehouseError with its stderr."""
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise WarehouseError(
            f"{what} failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}",
            hint="nothing was replaced; fix the cause above and run the command again",
        )


def restore_database(to: str | None, default: str) -> str:
    """The Postgres database a restore writes: ``to``, else the target's own.

    >>> restore_database("shop_restored", "shop"), restore_database(None, "shop")
    ('shop_restored', 'shop')

    Raises:
        UsageError: ``to`` reads as a file (a path, a ``.duckdb`` name): a Postgres backup
            restores into a database, and such a name made one called ``look.duckdb``.
    """
    if to is None:
        return default
    if "/" in to or "\\" in to or re.search(r"\.(duckdb|db|ddb|sql|dump)$", to, re.IGNORECASE):
        raise UsageError(
            f"--to {to} looks like a file, but the target is Postgres: its backups restore "
            "into a new database, never a DuckDB file; nothing was done",
            hint=f"pass --to a database name, e.g. --to {default}_restored",
        )
    return to
