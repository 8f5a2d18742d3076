"""Run history, kept in the ``stackyard`` schema of the target warehouse.

History travels with the data: whoever can read the warehouse can see what loaded it, when,
and which tests passed. Only portable SQL is used, so the same tables exist on every engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from stackyard.results import RunResult
from stackyard.warehouse.base import Warehouse

METADATA_SCHEMA = "stackyard"

_TABLES: dict[str, str] = {
    "runs": "run_id VARCHAR NOT NULL, project VARCHAR, target VARCHAR, status VARCHAR, "
    "started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ, selected VARCHAR, rows_loaded BIGINT, "
    "rows_rejected BIGINT, models_built INTEGER, models_failed INTEGER, tests_passed INTEGER, "
    "tests_failed INTEGER, transform_hash VARCHAR, dbt_build VARCHAR",
    "steps": "run_id VARCHAR NOT NULL, step VARCHAR, status VARCHAR, detail VARCHAR, "
    "started_at TIMESTAMPTZ, seconds DOUBLE PRECISION",
    "loads": "run_id VARCHAR NOT NULL, source VARCHAR, schema_name VARCHAR, table_name VARCHAR, "
    "row_count BIGINT, load_ids VARCHAR, status VARCHAR, rejected BIGINT, error VARCHAR",
    "node_results": "run_id VARCHAR NOT NULL, unique_id VARCHAR, name VARCHAR, "
    "resource_type VARCHAR, status VARCHAR, failures BIGINT, message VARCHAR, "
    "seconds DOUBLE PRECISION",
    "freshness": "run_id VARCHAR NOT NULL, source VARCHAR, table_name VARCHAR, status VARCHAR, "
    "max_loaded_at VARCHAR, age_hours DOUBLE PRECISION",
}


@dataclass(frozen=True)
class RunSummary:
    """One row of ``stackyard status``."""

    run_id: str
    target: str
    status: str
    started_at: datetime
    finished_at: datetime
    rows_loaded: int
    models_built: int
    tests_passed: int
    tests_failed: int


class History:
    """Reads and writes the run history tables of one warehouse."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse

    def ensure(self) -> None:
        """Create the metadata schema and tables, and add columns newer versions need."""
        w = self.warehouse
        w.ensure_schema(METADATA_SCHEMA)
        for table, columns in _TABLES.items():
            w.ensure_table(METADATA_SCHEMA, table, columns)

    def latest(self) -> dict[str, Any] | None:
        """The most recent run on this target, or ``None``."""
        w = self.warehouse
        if not w.schema_exists(METADATA_SCHEMA) or "runs" not in w.tables_in(METADATA_SCHEMA):
            return None
        result = w.query(
            f"SELECT run_id, status, selected, transform_hash, dbt_build, models_built, "
            f"tests_passed FROM {w.quote(METADATA_SCHEMA, 'runs')} "
            "ORDER BY started_at DESC LIMIT 1"
        )
        return result.as_dicts()[0] if result.rows else None

    def record(self, run: RunResult) -> None:
        """Write one run with its steps, loads, dbt results and freshness."""
        self.ensure()
        counts = run.counts
        self._insert(
            "runs",
            [
                (
                    run.run_id,
                    run.project,
                    run.target,
                    run.status,
                    run.started_at,
                    run.finished_at,
                    ",".join(run.selected),
                    counts.rows_loaded,
                    counts.rows_rejected,
                    counts.models_built,
                    counts.models_errored,
                    counts.tests_passed,
                    counts.tests_failed,
                    run.transform_hash,
                    run.build,
                )
            ],
        )
        self._insert(
            "steps",
            [(run.run_id, s.name, s.status, s.detail, s.started_at, s.seconds) for s in run.steps],
        )
        load_rows: list[tuple[Any, ...]] = []
        for load in run.loads:
            ids = ",".join(load.load_ids)
            if not load.tables:
                load_rows.append(
                    (
                        run.run_id,
                        load.source,
                        load.schema,
                        None,
                        0,
                        ids,
                        load.status,
                        load.rejected,
                        load.error,
                    )
                )
            for t in load.tables:
                load_rows.append(
                    (
                        run.run_id,
                        load.source,
                        load.schema,
                        t.table,
                        t.rows,
                        ids,
                        load.status,
                        load.rejected,
                        load.error,
                    )
                )
        self._insert("loads", load_rows)
        self._insert(
            "node_results",
            [
                (
                    run.run_id,
                    n.unique_id,
                    n.name,
                    n.resource_type,
                    n.status,
                    n.failures,
                    n.message,
                    n.seconds,
                )
                for n in run.nodes
            ],
        )
        self._insert(
            "freshness",
            [
                (run.run_id, f.source, f.table, f.status, f.max_loaded_at, f.age_hours)
                for f in run.freshness
            ],
        )

    def recent(self, limit: int = 10) -> list[RunSummary]:
        """The latest runs, newest first; empty when nothing has run on this target yet."""
        w = self.warehouse
        if not w.schema_exists(METADATA_SCHEMA) or "runs" not in w.tables_in(METADATA_SCHEMA):
            return []
        result = w.query(
            "SELECT run_id, target, status, started_at, finished_at, rows_loaded, "
            f"models_built, tests_passed, tests_failed FROM {w.quote(METADATA_SCHEMA, 'runs')} "
            f"ORDER BY started_at DESC LIMIT {int(limit)}"
        )
        return [RunSummary(*row) for row in result.rows]

    def _insert(self, table: str, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        w = self.warehouse
        marks = ", ".join([w.param()] * len(rows[0]))
        w.execute_many(f"INSERT INTO {w.quote(METADATA_SCHEMA, table)} VALUES ({marks})", rows)
