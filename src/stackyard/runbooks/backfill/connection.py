"""One connection per backfill worker, with real transactions.

A partition's delete and insert must commit together, and workers must not share a
transaction, so each worker gets its own connection: a cursor of the project's DuckDB
connection (DuckDB runs one transaction per cursor; a second ``connect()`` to the same file
from one process would collide), or a new psycopg connection on Postgres.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from stackyard.errors import WarehouseError
from stackyard.warehouse.base import QueryResult, Warehouse


class Connection:
    """A worker's own connection to the warehouse of a target.

    Args:
        warehouse: the target's warehouse (DuckDB or Postgres).

    Raises:
        WarehouseError: the engine has no transactional connection stackyard can drive.
    """

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse
        self.kind = warehouse.KIND
        # set by interrupt() from another thread: every later statement stops at once
        self._interrupted = False
        # a statement is under way (set before the interrupted flag is read, see _statement);
        # cleared under the lock, so that no cancel lands on what the worker runs next
        self._running = False
        self._cancelling = threading.Lock()
        # An embedded file engine shares its instance (a cursor is its own transaction); a
        # server engine gets a connection of its own.
        self.storage = warehouse.STORAGE
        if self.storage == "file":
            # The project's connection is owned by the warehouse; a cursor is a connection
            # with its own transaction on the same database instance.
            import duckdb

            self._conn: Any = warehouse._connection().cursor()  # type: ignore[attr-defined]
            self._driver_error: type[Exception] = duckdb.Error
        elif self.storage == "server":
            import psycopg

            kwargs = warehouse.connect_kwargs()  # type: ignore[attr-defined]
            self._conn = psycopg.connect(**kwargs, autocommit=True)
            self._driver_error = psycopg.Error
        else:
            raise WarehouseError(
                f"backfills run on DuckDB and Postgres targets; {warehouse.describe()} is "
                f"{self.kind}",
                hint="on Snowflake and BigQuery run the partition SQL that `stackyard backfill "
                "--dry-run` prints inside a transaction of your own",
            )

    def param(self) -> str:
        """The driver's positional placeholder."""
        return self.warehouse.param()

    def quote(self, *parts: str) -> str:
        """A safely quoted, dotted identifier."""
        return self.warehouse.quote(*parts)

    def query(self, sql: str, params: Sequence[Any] = ()) -> QueryResult:
        """Run one statement and return its rows.

        Raises:
            WarehouseError: the warehouse rejected the statement.
            KeyboardInterrupt: :meth:`interrupt` was called.
        """
        try:
            with self._statement():
                if self.storage == "file":
                    cur = self._conn.execute(sql, list(params))
                    rows = cur.fetchall() if cur.description else []
                    columns = tuple(d[0] for d in cur.description or ())
                else:
                    with self._conn.cursor() as cur:
                        cur.execute(sql, list(params) if params else None)
                        rows = cur.fetchall() if cur.description else []
                        columns = tuple(d.name for d in cur.description or ())
        except self._driver_error as exc:
            self._check_interrupted()
            raise WarehouseError(f"{self.warehouse.describe()} rejected: {exc}".strip()) from None
        return QueryResult(columns, tuple(tuple(r) for r in rows))

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; return the rows it changed (-1 when the driver cannot say).

        Raises:
            WarehouseError: the warehouse rejected the statement.
            KeyboardInterrupt: :meth:`interrupt` was called.
        """
        try:
            with self._statement():
                if self.storage == "file":
                    cur = self._conn.execute(sql, list(params))
                    row = cur.fetchone() if cur.description else None
                    return int(row[0]) if row and cur.description[0][0] == "Count" else -1
                with self._conn.cursor() as cur:
                    cur.execute(sql, list(params) if params else None)
                    return int(cur.rowcount)
        except self._driver_error as exc:
            self._check_interrupted()
            raise WarehouseError(f"{self.warehouse.describe()} rejected: {exc}".strip()) from None

    def table_columns(self, schema: str, table: str) -> dict[str, str]:
        """``{column: data type}`` of a table, empty when it does not exist."""
        p = self.param()
        result = self.query(
            "SELECT column_name, data_type FROM information_schema.columns "
            f"WHERE table_schema = {p} AND table_name = {p} ORDER BY ordinal_position",
            (schema, table),
        )
        return {str(r[0]): str(r[1]) for r in result.rows}

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """Statements inside commit together, or not at all."""
        if self.storage == "server":
            with self._conn.transaction():
                yield self
            return
        self._conn.execute("BEGIN TRANSACTION")
        try:
            yield self
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def interrupt(self) -> None:
        """Stop the statement running now, from another thread (Ctrl-C): it and every
        later one raise ``KeyboardInterrupt`` in the worker, whose open transaction rolls
        back. DuckDB's ``interrupt()`` and psycopg's ``cancel_safe()`` exist for this."""
        self._interrupted = True
        if self._running:
            threading.Thread(target=self._cancel_until_stopped, daemon=True).start()

    def _cancel_until_stopped(self) -> None:
        # A cancel that lands after the worker read the flag and before the engine started
        # the statement finds nothing to stop, and the statement then runs to its end
        # (minutes, with Ctrl-C pressed): cancel again until the statement is over.
        while True:
            with self._cancelling:
                if not self._running:
                    return
                try:
                    if self.storage == "file":
                        self._conn.interrupt()
                    else:
                        self._conn.cancel_safe()
                except self._driver_error:
                    return  # the connection is gone: nothing runs on it
            time.sleep(0.05)

    @contextmanager
    def _statement(self) -> Iterator[None]:
        # Marked running before the flag is read, and interrupt() sets the flag before it
        # looks: either the statement is refused here or interrupt() sees it running.
        self._running = True
        try:
            self._check_interrupted()
            yield
        finally:
            with self._cancelling:
                self._running = False

    def _check_interrupted(self) -> None:
        if self._interrupted:
            raise KeyboardInterrupt

    def close(self) -> None:
        """Close this worker's connection."""
        self._conn.close()
