"""pg_dump against a table another session keeps locked: the backup fails, naming the lock,
instead of waiting for it forever."""

from __future__ import annotations

from typing import Any

import pytest

from stackyard.errors import WarehouseError
from stackyard.runbooks import backup_engines

pytestmark = pytest.mark.postgres


def test_pg_dump_gives_up_on_a_table_it_cannot_lock(
    tmp_path: Any, pg_database: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    monkeypatch.setattr(backup_engines, "PG_DUMP_LOCK_WAIT", "1s")
    program, _major = backup_engines.pg_client("pg_dump")
    connect = {
        "host": pg_database["host"],
        "port": pg_database["port"],
        "user": pg_database["user"],
        "dbname": pg_database["database"],
    }
    with psycopg.connect(**connect, autocommit=True) as setup:
        setup.execute("CREATE TABLE stores (id int)")
    with (
        psycopg.connect(**connect) as snapshot,
        psycopg.connect(**connect) as build,
    ):
        snapshot.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        exported = snapshot.execute("SELECT pg_export_snapshot()").fetchone()
        assert exported is not None
        # What a run's dbt build does while the backup runs: it replaces the table.
        build.execute("LOCK TABLE stores IN ACCESS EXCLUSIVE MODE")
        # Before: pg_dump waited for the lock with no end (and the build, in turn, for the
        # backup's snapshot): both processes hung.
        with pytest.raises(WarehouseError) as failed:
            backup_engines.pg_dump(program, str(exported[0]), tmp_path / "dump", connect)
    assert "could not lock it within 1s" in failed.value.message
    assert "run it again once that run has finished" in str(failed.value.hint)
