"""The planner's estimate of a query (EXPLAIN), read without running it: rows on DuckDB, rows
and bytes scanned on Postgres, nothing where the engine gives none."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from stackyard.config.model import ProjectConfig
from stackyard.config.secrets import Secrets
from stackyard.warehouse import open_warehouse
from stackyard.warehouse.base import Warehouse


def _open(tmp_path: Path, target: dict[str, Any]) -> Warehouse:
    config = ProjectConfig.model_validate(
        {"name": "shop", "targets": {"t": target}, "defaults": {"target": "t"}}
    )
    return open_warehouse("t", config.targets["t"], tmp_path, Secrets(tmp_path, {}))


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_estimate_reads_the_plan_not_the_rows(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if engine == "postgres":
        target = {"type": "postgres", **request.getfixturevalue("pg_database")}
    else:
        target = {"type": "duckdb"}
    w = _open(tmp_path, target)
    try:
        assert w.EXPLAIN_ESTIMATES
        w.execute("CREATE SCHEMA s")
        w.execute(
            "CREATE TABLE s.events AS SELECT g AS id, "
            "CAST('2024-01-01' AS TIMESTAMP) + g * INTERVAL '1 minute' AS ts "
            "FROM generate_series(1, 20000) AS x(g)"
        )
        w.execute("ANALYZE s.events" if engine == "postgres" else "ANALYZE")
        p = w.param()
        window = (datetime(2024, 1, 2), datetime(2024, 1, 3))
        found = w.estimate_query(f"SELECT * FROM s.events WHERE ts >= {p} AND ts < {p}", window)
        assert found is not None
        # An estimate, not a count: in the right range, whatever the engine's guess.
        assert 0 < found.rows <= 20000
        whole = w.estimate_query("SELECT * FROM s.events")
        assert whole is not None and whole.rows == pytest.approx(20000, rel=0.2)
        if engine == "postgres":
            size = w.query("SELECT pg_relation_size('s.events')").rows[0][0]
            assert found.bytes_scanned == size  # a sequential scan reads the whole table
        else:
            assert found.bytes_scanned is None  # DuckDB's plan does not say
    finally:
        w.close()


def test_engines_without_a_readable_plan_say_so(tmp_path: Path) -> None:
    target = {
        "type": "snowflake",
        "account": "xy12345.eu-west-1",
        "user": "SVC",
        "role": "SVC",
        "warehouse": "W",
        "database": "D",
        "private_key": {"secret": "SF_KEY"},
    }
    w = _open(tmp_path, target)
    assert not w.EXPLAIN_ESTIMATES
    assert w.estimate_query("SELECT 1") is None
