"""Ctrl-C landing between a worker's "was I interrupted?" and the engine starting the
statement: the statement is still cut, on DuckDB and on Postgres.

Before, the cancel found nothing running and the statement ran to its end: under a busy
machine `stackyard run` took minutes to answer Ctrl-C during the build, and a backfill's
workers outlived their 60 s join, their connection then "busy" for the main thread (exit 1
instead of 130).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stackyard.config.model import DuckDBTarget, PostgresTarget
from stackyard.config.secrets import Secrets
from stackyard.runbooks.backfill.connection import Connection
from stackyard.warehouse.base import Warehouse
from stackyard.warehouse.duckdb import DuckDBWarehouse
from stackyard.warehouse.postgres import PostgresWarehouse

# Seconds of work on either engine when nothing cuts it (the old code ran it to its end).
LONG = {
    "duckdb": "SELECT count(*) FROM range(3000000000) t(n) WHERE n % 7 = 3",
    "postgres": "SELECT count(*) FROM (SELECT pg_sleep(20)) slept",
}


class CtrlCAtStart:
    """The worker's driver connection, with Ctrl-C pressed just as a statement is sent."""

    def __init__(self, inner: Any, connection: Connection) -> None:
        self._inner = inner
        self._connection = connection

    def _pressed(self) -> None:
        self._connection.interrupt()

    def execute(self, *args: Any, **kwargs: Any) -> Any:  # DuckDB's cursor
        self._pressed()
        return self._inner.execute(*args, **kwargs)

    def cursor(self, *args: Any, **kwargs: Any) -> Any:  # psycopg's connection
        inner = self._inner.cursor(*args, **kwargs)
        pressed = self._pressed

        class Cursor:
            def __enter__(self) -> Any:
                return self

            def __exit__(self, *exc: object) -> None:
                inner.close()

            def execute(self, *a: Any, **k: Any) -> Any:
                pressed()
                return inner.execute(*a, **k)

            def __getattr__(self, name: str) -> Any:
                return getattr(inner, name)

        return Cursor()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Warehouse]:
    secrets = Secrets(tmp_path, environ={})
    if request.param == "duckdb":
        w: Warehouse = DuckDBWarehouse(
            "dev", DuckDBTarget(type="duckdb", path="w.duckdb"), tmp_path, secrets
        )
    else:
        db = request.getfixturevalue("pg_database")
        target = PostgresTarget(
            type="postgres",
            host=str(db["host"]),
            port=int(db["port"]),
            user=str(db["user"]),
            database=str(db["database"]),
        )
        w = PostgresWarehouse("prod", target, tmp_path, secrets)
    try:
        yield w
    finally:
        w.close()


def test_ctrl_c_as_a_statement_starts_still_cuts_it(warehouse: Warehouse) -> None:
    connection = Connection(warehouse)
    connection._conn = CtrlCAtStart(connection._conn, connection)
    try:
        with pytest.raises(KeyboardInterrupt):
            connection.query(LONG[warehouse.KIND])
        with pytest.raises(KeyboardInterrupt):  # and every later statement
            connection.query("SELECT 1")
    finally:
        connection.close()
