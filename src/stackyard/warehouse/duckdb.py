"""The embedded DuckDB warehouse: one file inside the project."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Sequence
from contextlib import suppress
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from stackyard.config.model import DuckDBTarget
from stackyard.config.private import PRIVATE_DIR, private_dir, tighten
from stackyard.errors import WarehouseError, WarehouseLockedError, WarehouseUnreachableError
from stackyard.warehouse.base import (
    ColumnSequence,
    ExactTimestamp,
    JsonText,
    QueryEstimate,
    QueryResult,
    Warehouse,
)

# The column types ``isinf`` takes: a date or timestamp, of any precision, with time zone or not.
_DATED = re.compile(r"DATE|TIMESTAMP(_S|_MS| WITH TIME ZONE)?")
# Nanoseconds, which DuckDB's Python conversion cuts to a datetime's microseconds: read as
# DuckDB's own text instead (which says infinity too).
_NANOSECONDS = "TIMESTAMP_NS"
# An interval, which the conversion makes a timedelta: a month as 30 days, and printed as
# Python writes one (1 day, 2:00:00); DuckDB's text says what the interval holds.
_INTERVAL = "INTERVAL"
# A list, array, struct, map or union holding any of those: the Python conversion does the
# same to the values inside it, and its JSON keeps them as DuckDB prints them
# (``["2024-01-01 12:00:00.123456789", "infinity"]``).
_NESTED = re.compile(r"(STRUCT|MAP|UNION)\(|.*\]$")
_NESTED_TIMES = re.compile(r"\b(DATE|TIMESTAMP\w*|INTERVAL)\b")
# A statement's own ";" (and comments after it), which cannot stand inside a subquery.
_TRAILING_SEMICOLON = re.compile(r";(\s|--[^\n]*)*$")


class DuckDBWarehouse(Warehouse):
    """DuckDB in process.

    Time zones: DuckDB's wheel ships without the ICU extension, and without it every
    ``timestamptz`` is read and cast in UTC, so ``cast(x as timestamp)`` in a staging model
    keeps the loaded times as they are. (Where ICU is installed, set ``TimeZone`` to UTC.)

    DuckDB has no roles or grants (https://duckdb.org/docs/sql/statements/overview), and one
    process holds the write lock on the file, so a second stackyard process waits or fails
    with a clear message rather than corrupting anything.
    """

    KIND: ClassVar[str] = "duckdb"
    STORAGE: ClassVar[str] = "file"
    DBT_OUTPUT: ClassVar[dict[str, tuple[str, ...]]] = {
        "path": ("path",),
        "schema": ("schema",),
        "threads": ("threads",),
    }
    EXPLAIN_ESTIMATES: ClassVar[bool] = True
    SQL_BUILD: ClassVar[bool] = True
    DBT_SUBQUERY_ALIAS: ClassVar[bool] = False
    DBT_MICROBATCH_REPLACES: ClassVar[bool] = True
    DIALECT: ClassVar[str] = "duckdb"
    IDENTIFIER_QUOTE: ClassVar[str | None] = '"'
    LIST_PARAMETERS: ClassVar[bool] = True
    SUPPORTS_ROLES = False
    SUPPORTS_TRANSACTIONAL_DDL = True
    TRANSACTIONS = True
    # dlt pipelines in threads of this process load through cursors of one connection.
    PARALLEL_LOADS = True
    COMPRESS_LOAD_FILES = False
    CASE_INSENSITIVE_COLUMNS = True

    config: DuckDBTarget

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._conn: Any = None
        self._lent: list[Any] = []  # cursors handed to dlt, closed when the session ends

    @property
    def path(self) -> Path:
        """The database file."""
        path = Path(self.config.path)
        return path if path.is_absolute() else (self.project_dir / path)

    def dlt_destination_settings(self) -> dict[str, Any]:
        return {"credentials": str(self.path)}

    def dlt_destination(self) -> Any:
        """dlt's DuckDB destination on a cursor of this warehouse's connection.

        Several pipelines load in parallel threads; DuckDB allows that on cursors of one
        connection, while separate ``connect()`` calls to the same file from one process
        collide ("Unique file handle conflict").
        """
        import dlt

        cursor = self._connection().cursor()
        self._lent.append(cursor)
        return dlt.destinations.duckdb(cursor)

    def dbt_output(self) -> dict[str, Any]:
        output = {
            "type": "duckdb",
            "path": str(self.path),
            "schema": self.config.schema_,
            "threads": self.config.threads,
        }
        if self.config.memory_limit:
            output["settings"] = {"memory_limit": self.config.memory_limit.strip()}
        return output

    def _connection(self) -> Any:
        if self._conn is None:
            if self.connect_guard is not None:
                self.connect_guard()
            import duckdb

            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.parent.name == PRIVATE_DIR:
                private_dir(self.path.parent.parent)  # 0700: the file holds every loaded row
            try:
                self._conn = duckdb.connect(str(self.path))
            except duckdb.Error as exc:
                if "WAL" in str(exc):
                    raise WarehouseUnreachableError(
                        f"cannot open the DuckDB file {self.path}: {exc}",
                        hint="its write-ahead log will not replay: `stackyard doctor` explains "
                        "what is lost and `stackyard doctor --fix` moves the log aside",
                    ) from None
                if not isinstance(exc, duckdb.IOException):
                    raise
                if "Could not set lock" in str(exc):
                    raise WarehouseLockedError(
                        f"cannot open the DuckDB file {self.path}: {exc}",
                        hint="another process (a second stackyard run, a DuckDB shell, a BI "
                        "tool) holds it open: close it, or wait for it to end, and retry",
                    ) from None
                raise WarehouseUnreachableError(
                    f"cannot open the DuckDB file {self.path}: {exc}",
                    hint="another process (a second stackyard run, a DuckDB shell, a BI tool) "
                    "may hold it open: close it and retry",
                ) from None
            self._keep_private()
            if self.config.memory_limit:
                # The pattern in the config model admits only a number and a unit.
                limit = self.config.memory_limit.strip()
                self._conn.execute(f"SET memory_limit = '{limit}'")
        return self._conn

    def query(self, sql: str, params: Sequence[Any] = ()) -> QueryResult:
        import duckdb

        try:
            cursor = self._connection().execute(sql, list(params))
            rows = cursor.fetchall()
            columns = tuple(d[0] for d in cursor.description or ())
        except duckdb.Error as exc:
            raise self._damaged(exc) or WarehouseError(
                f"DuckDB rejected the query: {exc}", hint="check the SQL against the schema"
            ) from None
        except RuntimeError as exc:
            raise _as_interrupt(exc) from None
        return QueryResult(columns, tuple(tuple(r) for r in rows))

    def show_query(self, sql: str) -> QueryResult:
        """:meth:`query`, with the values DuckDB's Python conversion hands over as others
        shown as DuckDB holds them. A date or timestamp that is ``infinity`` or
        ``-infinity`` comes over as the largest and smallest values Python holds
        (9999-12-31 23:59:59.999999, 0001-01-01), which a real value may be too; ``isinf``
        tells them apart
        (https://duckdb.org/docs/sql/functions/timestamp#isinftimestamp). A
        ``timestamp_ns`` comes over cut to microseconds, an interval as a timedelta (a
        month as 30 days): their text keeps what they hold; a list, struct or map holding
        any of these, its JSON.
        A single SELECT is asked for these beside its columns; any other statement runs as
        it is."""
        import duckdb

        con = self._connection()
        try:
            statements = con.extract_statements(sql)
            if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
                return self.query(sql)
            body = _TRAILING_SEMICOLON.sub("", statements[0].query)
            described = con.execute(f"DESCRIBE {body}").fetchall()
        except duckdb.Error:
            return self.query(sql)  # its own error, as the query gives it
        json = [i for i, row in enumerate(described) if str(row[1]) == "JSON"]
        extras: list[tuple[int, str]] = []  # (column, what is asked beside it)
        nested = set()
        for i, row in enumerate(described):
            if _DATED.fullmatch(str(row[1])):
                extras.append((i, f"isinf(#{i + 1})"))
            elif str(row[1]) in (_NANOSECONDS, _INTERVAL):
                extras.append((i, f"CAST(#{i + 1} AS VARCHAR)"))
            elif _NESTED.match(str(row[1])) and _NESTED_TIMES.search(str(row[1])):
                extras.append((i, f"to_json(#{i + 1})"))
                nested.add(i)
        if not extras:
            return _as_json_text(self.query(sql), json)
        asked = ", ".join(expression for _, expression in extras)
        # On a new line: a query ending in a comment would otherwise comment the ")" out.
        try:
            flagged = self.query(f"SELECT *, {asked} FROM (\n{body}\n)")
        except WarehouseError:
            return _as_json_text(self.query(sql), json)  # no subquery: with its own error
        width = len(described)
        rows = []
        for row in flagged.rows:
            values = list(row[:width])
            for (i, _), extra in zip(extras, row[width:], strict=True):
                if extra is None or extra is False:
                    continue
                if i in nested:
                    values[i] = JsonText(extra)
                elif extra is True:
                    values[i] = "-infinity" if values[i].year == 1 else "infinity"
                elif "infinity" in extra or not isinstance(values[i], datetime):
                    values[i] = extra  # infinite, or an interval
                else:
                    values[i] = ExactTimestamp(extra)
            rows.append(tuple(values))
        return _as_json_text(QueryResult(tuple(str(r[0]) for r in described), tuple(rows)), json)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        import duckdb

        try:
            self._connection().execute(sql, list(params))
        except duckdb.Error as exc:
            raise self._damaged(exc) or WarehouseError(
                f"DuckDB rejected the statement: {exc}"
            ) from None
        except RuntimeError as exc:
            raise _as_interrupt(exc) from None

    def execute_many(self, sql: str, rows: Any) -> None:
        import duckdb

        rows = [list(r) for r in rows]
        if not rows:
            return
        try:
            self._connection().executemany(sql, rows)
        except duckdb.Error as exc:
            raise self._damaged(exc) or WarehouseError(
                f"DuckDB rejected the statement: {exc}"
            ) from None
        except RuntimeError as exc:
            raise _as_interrupt(exc) from None

    def read_every_block(self) -> tuple[int, int]:
        tables = self.query(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' AND table_catalog = current_database()"
        ).rows
        rows = 0
        for schema, table in tables:
            name = self.quote(str(schema), str(table))
            try:  # hashing reads every column; count(*) and min() answer from metadata
                rows += int(
                    self.query(f"SELECT count(*), sum(hash(t)) FROM {name} AS t").rows[0][0]
                )
            except WarehouseError as exc:
                raise WarehouseError(
                    f"{exc.message} (reading {schema}.{table})", hint=exc.hint
                ) from None
        return len(tables), rows

    def _damaged(self, exc: Exception) -> WarehouseError | None:
        """The error for a file whose blocks fail DuckDB's checksums, or None for another.
        Its hint was "check the SQL against the schema", for any query."""
        if "Corrupt" not in str(exc):
            return None
        return WarehouseError(
            f"the DuckDB file {self.path} is damaged: {exc}",
            hint="keep a copy of the damaged file, then `stackyard restore latest --yes`: the "
            "restore reads the last backup back first and replaces nothing if it is damaged "
            "too (then restore the one before it)",
        )

    def close(self) -> None:
        if self._conn is not None:
            import duckdb

            # After Ctrl-C a thread of dlt's loader may still be finishing a statement on a
            # cursor of this connection: DuckDB refuses to close it meanwhile ("busy"), and
            # a process ending with it open aborted (exit 134). Its statement is short.
            for _ in range(300):
                try:
                    self._conn.close()
                    break
                except duckdb.Error as exc:
                    if "busy" not in str(exc):
                        raise
                    time.sleep(0.1)
            self._conn = None
            self._keep_private()

    def end(self) -> None:
        self.close()
        # dlt keeps the cursor it was given in its pipeline's settings, which outlive the
        # pipeline (the last one stays dlt's active pipeline): the database stayed open.
        import duckdb

        while self._lent:
            # Busy with a statement a stopped load left (see close): freed at exit instead.
            with suppress(duckdb.Error):
                self._lent.pop().close()
        # dbt-duckdb keeps its own connection to the file open for the life of the process
        # (its keep_open): a run inside a long-lived process (an orchestrator's worker, a
        # notebook) left the file locked after it ended, and no other process could open
        # it. Its adapter opens a new one at its next command.
        connections = sys.modules.get("dbt.adapters.duckdb.connections")
        if connections is None:
            return  # dbt never ran in this process
        manager = connections.DuckDBConnectionManager
        with manager._LOCK:
            held = manager._ENV
            if held is None or str(getattr(held.creds, "path", "")) != str(self.path):
                return  # nothing held, or another target's file
            manager.close_all_connections()
            held.close()

    def _keep_private(self) -> None:
        # DuckDB creates its file (and write-ahead log) under the umask, 0644 as a rule: in
        # .stackyard/ the file holds every loaded row and is kept owner-only like the rest
        # (`stackyard security check` reports it otherwise).
        if self.path.parent.name == PRIVATE_DIR:
            for path in (self.path, self.path.with_name(self.path.name + ".wal")):
                tighten(path)

    def write_stamp(self) -> str | None:
        # Every write reaches the database file or its write-ahead log (``<file>.wal``), and
        # changes its size or modification time (nanoseconds); a replaced file its inode.
        parts = []
        for path in (self.path, self.path.with_name(self.path.name + ".wal")):
            try:
                st = path.stat()
            except FileNotFoundError:
                parts.append("-")
                continue
            parts.append(f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}")
        return " ".join(parts)

    def lease_file(self) -> Path:
        # Beside the file it speaks for, so two targets on one file share it.
        return self.path.with_name(self.path.name + ".run-leases.json")

    def check_not_held(self, what: str) -> None:
        import duckdb

        if self._conn is not None or not self.path.exists():
            return  # this process holds it, or nothing can
        try:
            # Read-only: takes a shared lock, which fails while a writer holds the file, and
            # replays no write-ahead log into it.
            duckdb.connect(str(self.path), read_only=True).close()
        except duckdb.IOException as exc:
            if "Could not set lock" in str(exc):
                raise WarehouseLockedError(
                    f"another process holds the DuckDB file {self.path} open ({exc}); {what}",
                    hint="close it (a DuckDB shell, a BI tool) or wait for it to end, then run "
                    "this command again",
                ) from None
        except duckdb.Error:
            return  # a file that will not open is damaged, not held: the caller may replace it

    def settle(self) -> None:
        # dbt-duckdb and dlt keep their own handles on the database until this process
        # ends, and the last one to close writes the log into the file: do it now.
        if self.path.with_name(self.path.name + ".wal").exists():
            self.execute("CHECKPOINT")
            self.close()

    def column_sequences(self, schema: str, table: str) -> tuple[ColumnSequence, ...]:
        # DuckDB has no identity columns and no owned sequences: a column counts with a
        # DEFAULT nextval('…') of a sequence that stands alone (and may feed other tables).
        # Its catalog links the table to the sequences it depends on, not to the column, so
        # each column's default names its sequence.
        # https://duckdb.org/docs/stable/sql/statements/create_sequence
        p = self.param()
        here = f"database_name = current_database() AND schema_name = {p} AND table_name = {p}"
        used = self.query(
            "SELECT s.schema_name, s.sequence_name, s.start_value, s.increment_by, s.last_value "
            "FROM duckdb_dependencies() d JOIN duckdb_sequences() s ON s.sequence_oid = d.objid "
            "JOIN (SELECT table_oid FROM duckdb_tables() WHERE "
            f"{here}) t ON t.table_oid = d.refobjid ORDER BY 1, 2",
            (schema, table),
        ).rows
        defaults = self.query(
            f"SELECT column_name, column_default FROM duckdb_columns() WHERE {here} "
            "AND column_default IS NOT NULL ORDER BY column_index",
            (schema, table),
        ).rows
        found = []
        for column, default in defaults:
            named = _nextval_name(str(default))
            for seq_schema, name, start, increment, last in used:
                if named and [n.lower() for n in named] in (
                    [str(name).lower()],
                    [str(seq_schema).lower(), str(name).lower()],
                ):
                    sequence = self.quote(seq_schema, name)
                    found.append(
                        ColumnSequence(
                            column=str(column),
                            schema=str(seq_schema),
                            name=str(name),
                            owned=False,
                            start=int(start),
                            increment=int(increment),
                            last_value=None if last is None else int(last),
                            # The catalog's last_value forgets a setval(…, false); taking the
                            # next value is always right, at the cost of one value.
                            position_sql=f"nextval({_literal(sequence)})",
                        )
                    )
                    break
        return tuple(found)

    def estimate_query(self, sql: str, params: Sequence[Any] = ()) -> QueryEstimate | None:
        # EXPLAIN (FORMAT JSON): each operator carries the optimizer's "Estimated
        # Cardinality"; DuckDB's plan says nothing of bytes.
        # https://duckdb.org/docs/stable/guides/meta/explain
        import json

        rows = self.query(f"EXPLAIN (FORMAT JSON) {sql}", params).rows
        stack = list(json.loads(str(rows[0][1])))
        while stack:
            node = stack.pop(0)
            estimate = node.get("extra_info", {}).get("Estimated Cardinality")
            if estimate is not None:
                return QueryEstimate(int(str(estimate).lstrip("~")), None)
            stack = list(node.get("children", [])) + stack
        return None

    def describe_query(self, sql: str) -> dict[str, str] | None:
        return {str(r[0]): str(r[1]) for r in self.query(f"DESCRIBE {sql}").rows}

    def describe(self) -> str:
        return f"DuckDB target '{self.target_name}' ({self.path})"


def _nextval_name(default: str) -> list[str] | None:
    """The dotted name of the sequence a column default takes ``nextval`` of, as DuckDB
    keeps the default's text; ``None`` when it takes none.

    >>> _nextval_name("nextval('s.\\"Q x\\"')")
    ['s', 'Q x']
    >>> _nextval_name("42") is None
    True
    """
    found = re.search(r"nextval\('((?:[^']|'')+)'\)", default)
    if found is None:
        return None
    name = found.group(1).replace("''", "'")
    return [
        q.replace('""', '"') if q else b for q, b in re.findall(r'"((?:[^"]|"")*)"|([^."]+)', name)
    ]


def _literal(text: str) -> str:
    """A SQL string literal.

    >>> _literal("it's")
    "'it''s'"
    """
    return "'" + text.replace("'", "''") + "'"


def _as_json_text(result: QueryResult, columns: Sequence[int]) -> QueryResult:
    """``result`` with the values of its JSON ``columns`` (DuckDB hands them over as text) as
    :class:`JsonText`, which ``--json`` writes as the JSON they hold."""
    if not columns:
        return result
    rows = tuple(
        tuple(JsonText(v) if i in columns and v is not None else v for i, v in enumerate(row))
        for row in result.rows
    )
    return QueryResult(result.columns, rows, result.statements)


def _as_interrupt(exc: RuntimeError) -> BaseException:
    """Ctrl-C during a query on the main thread: DuckDB stops the query and raises
    ``RuntimeError("Query interrupted")`` in place of the ``KeyboardInterrupt``, which is given
    back here so the interrupt reaches the CLI (any other ``RuntimeError`` is kept as it is).

    >>> type(_as_interrupt(RuntimeError("Query interrupted"))).__name__
    'KeyboardInterrupt'
    """
    return KeyboardInterrupt() if str(exc) == "Query interrupted" else exc
