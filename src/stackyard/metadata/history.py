"""Run history, kept in the ``stackyard`` schema of the target warehouse.

History travels with the data: whoever can read the warehouse can see what loaded it, when,
and which tests passed. Every query on the history tables is here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from stackyard.metadata.schema import RUN_TABLES, ensure_tables, existing_tables, relation
from stackyard.results import RunResult
from stackyard.warehouse.base import Warehouse


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
        ensure_tables(self.warehouse, RUN_TABLES)

    def latest(self) -> dict[str, Any] | None:
        """The most recent run on this target, or ``None``."""
        w = self.warehouse
        if "runs" not in existing_tables(w):
            return None
        result = w.query(
            f"SELECT run_id, status, selected, transform_hash, dbt_build, models_built, "
            f"tests_passed FROM {relation(w, 'runs')} "
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
        if "runs" not in existing_tables(w):
            return []
        result = w.query(
            "SELECT run_id, target, status, started_at, finished_at, rows_loaded, "
            f"models_built, tests_passed, tests_failed FROM {relation(w, 'runs')} "
            f"ORDER BY started_at DESC LIMIT {int(limit)}"
        )
        return [RunSummary(*row) for row in result.rows]

    def last_load(self, source: str) -> dict[str, Any] | None:
        """A source's part of the latest run that loaded it: when, its status, rows per table.

        Returns:
            ``{"at": datetime, "status": str, "tables": {table: rows}}``, or ``None`` when
            no run has loaded the source on this target.
        """
        w = self.warehouse
        if not {"runs", "loads"} <= existing_tables(w):
            return None
        p = w.param()
        loads, runs = relation(w, "loads"), relation(w, "runs")
        result = w.query(
            "SELECT r.started_at, l.status, l.table_name, l.row_count FROM "
            f"{loads} l JOIN {runs} r "
            f"ON r.run_id = l.run_id WHERE l.source = {p} AND r.run_id = ("
            f"SELECT r2.run_id FROM {loads} l2 JOIN "
            f"{runs} r2 ON r2.run_id = l2.run_id "
            f"WHERE l2.source = {p} AND l2.status = 'loaded' "
            "ORDER BY r2.started_at DESC LIMIT 1)",
            (source, source),
        )
        if not result.rows:
            return None
        return {
            "at": result.rows[0][0],
            "status": result.rows[0][1],
            "tables": {r[2]: r[3] for r in result.rows if r[2]},
        }

    def latest_tests(self) -> list[tuple[str, str, str, int | None]]:
        """``(unique_id, name, status, failures)`` of every test of the latest run that
        ran tests; empty before any."""
        w = self.warehouse
        if not {"runs", "node_results"} <= existing_tables(w):
            return []
        runs, nodes = relation(w, "runs"), relation(w, "node_results")
        rows = w.query(
            f"SELECT unique_id, name, status, failures FROM {nodes} WHERE resource_type = 'test' "
            f"AND run_id = (SELECT run_id FROM {runs} WHERE tests_passed + tests_failed > 0 "
            "ORDER BY started_at DESC LIMIT 1)"
        ).rows
        return [(str(r[0]), str(r[1]), str(r[2]), r[3]) for r in rows]

    def run_rows(self, limit: int = 30) -> list[dict[str, Any]]:
        """The latest runs as dicts (with ``seconds``), oldest first, for the report."""
        w = self.warehouse
        if "runs" not in existing_tables(w):
            return []
        rows = w.query(
            "SELECT run_id, status, started_at, finished_at, rows_loaded, models_built, "
            f"tests_passed, tests_failed FROM {relation(w, 'runs')} "
            f"ORDER BY started_at DESC LIMIT {int(limit)}"
        ).as_dicts()
        for row in rows:
            started, finished = row["started_at"], row["finished_at"]
            row["seconds"] = (finished - started).total_seconds() if started and finished else None
        return rows[::-1]

    def test_results(self, runs: int = 20) -> tuple[list[str], list[tuple[str, str, str]]]:
        """The latest runs that ran tests (oldest first) and ``(run_id, name, status)`` of
        each of their tests."""
        w = self.warehouse
        if not {"runs", "node_results"} <= existing_tables(w):
            return [], []
        found = w.query(
            f"SELECT run_id FROM {relation(w, 'runs')} "
            f"WHERE tests_passed + tests_failed > 0 ORDER BY started_at DESC LIMIT {int(runs)}"
        ).rows
        run_ids = [r[0] for r in found][::-1]
        if not run_ids:
            return [], []
        p = w.param()
        rows = w.query(
            f"SELECT run_id, name, status FROM {relation(w, 'node_results')} "
            f"WHERE resource_type = 'test' AND run_id IN ({', '.join([p] * len(run_ids))})",
            run_ids,
        ).rows
        return run_ids, [(str(r[0]), str(r[1]), str(r[2])) for r in rows]

    def _insert(self, table: str, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        w = self.warehouse
        marks = ", ".join([w.param()] * len(rows[0]))
        w.execute_many(f"INSERT INTO {relation(w, table)} VALUES ({marks})", rows)
