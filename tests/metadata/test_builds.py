"""Which runs built a model since a moment (what a model's backfill rollback checks), read from
the run history as ``stackyard run`` records it, on DuckDB and Postgres."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from stackyard.config.model import DuckDBTarget, PostgresTarget
from stackyard.config.secrets import Secrets
from stackyard.metadata.builds import builds_since
from stackyard.metadata.history import History
from stackyard.results import NodeResult, RunResult
from stackyard.warehouse.base import Warehouse

MODEL = "model.mini.daily_events"


def _warehouse(engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> Warehouse:
    secrets = Secrets(tmp_path, environ={})
    if engine == "postgres":
        from stackyard.warehouse.postgres import PostgresWarehouse

        db: dict[str, Any] = request.getfixturevalue("pg_database")
        return PostgresWarehouse("pg", PostgresTarget(type="postgres", **db), tmp_path, secrets)
    from stackyard.warehouse.duckdb import DuckDBWarehouse

    target = DuckDBTarget(type="duckdb", path=str(tmp_path / "dev.duckdb"))
    return DuckDBWarehouse("dev", target, tmp_path, secrets)


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_runs_that_built_the_model_after_a_moment(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    warehouse = _warehouse(engine, tmp_path, request)
    try:
        since = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
        assert builds_since(warehouse, MODEL, since) == []  # no run history yet
        history = History(warehouse)
        for run_id, minutes, node, status in [
            ("before", -1, MODEL, "success"),  # ended before the moment
            ("after", 5, MODEL, "success"),
            ("failed", 6, MODEL, "error"),  # its build failed: the table is as it was
            ("other", 7, "model.mini.other", "success"),
        ]:
            ended = since + timedelta(minutes=minutes)
            history.record(
                RunResult(
                    run_id=run_id,
                    project="mini",
                    target=warehouse.target_name,
                    started_at=ended - timedelta(minutes=2),
                    finished_at=ended,
                    nodes=(NodeResult(node, node.split(".")[-1], "model", status),),
                )
            )
        (build,) = builds_since(warehouse, MODEL, since)
        assert build.run_id == "after"
        assert build.finished_at == since + timedelta(minutes=5)
    finally:
        warehouse.close()
