"""Run history, kept in the ``stackyard`` schema of the target warehouse.

History travels with the data: whoever can read the warehouse can see what loaded it, when,
and which tests passed. Every query on the history tables is here, but which runs built a
model since a moment (:mod:`.builds`, for backfill rollbacks).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from stackyard.metadata.schema import (
    RUN_TABLES,
    ensure_tables,
    existing_tables,
    insert_rows,
    relation,
)
from stackyard.results import Counts, NodeResult, RunResult, SourceLoad, StepResult
from stackyard.warehouse.base import Warehouse

# The step of the run :meth:`History.record_loads` writes for ``source add`` starts so;
# ``stackyard run``'s steps (``load``, ``dbt build``, ``source freshness`` …) never do.
SOURCE_ADD_STEP = "source add "


def new_run_id() -> str:
    """A run's id: its start (UTC, to the second) and a random suffix, so ids sort by time."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


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

    def latest(self, *, runs_only: bool = False) -> dict[str, Any] | None:
        """The most recent run on this target, or ``None``.

        Args:
            runs_only: leave out the loads :meth:`record_loads` wrote as runs of their own
                (``source add``'s first load): they loaded one source and say nothing about
                the others, so what another source's kept probe is compared with is the last
                ``stackyard run``.
        """
        w = self.warehouse
        if "runs" not in existing_tables(w):
            return None
        where = (
            f"WHERE run_id NOT IN (SELECT run_id FROM {relation(w, 'steps')} "
            f"WHERE step LIKE '{SOURCE_ADD_STEP}%') "
            if runs_only
            else ""
        )
        result = w.query(
            f"SELECT run_id, status, selected, transform_hash, dbt_build, models_built, "
            f"tests_passed FROM {relation(w, 'runs')} {where}"
            "ORDER BY started_at DESC LIMIT 1"
        )
        return result.as_dicts()[0] if result.rows else None

    def record(self, run: RunResult, *, replace: bool = False) -> None:
        """Write one run with its steps, loads, dbt results and freshness, in one transaction
        where the warehouse has them (an interrupt then leaves none of it).

        Args:
            run: the run.
            replace: first delete what was written under its run id (a recording cut short,
                e.g. by Ctrl-C, on a warehouse without transactions).
        """
        self.ensure()
        w = self.warehouse
        if not w.TRANSACTIONS:
            self._write(run, replace)
            return
        w.execute("BEGIN TRANSACTION")
        try:
            self._write(run, replace)
        except BaseException:  # Ctrl-C included: nothing of the run stays half written
            w.execute("ROLLBACK")
            raise
        w.execute("COMMIT")

    def _write(self, run: RunResult, replace: bool) -> None:
        if replace:
            w = self.warehouse
            for table in ("runs", "steps", "loads", "node_results", "freshness"):
                w.execute(
                    f"DELETE FROM {relation(w, table)} WHERE run_id = {w.param()}", [run.run_id]
                )
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
            rows = {t.table: t.rows for t in load.tables}
            # a row per table the load wrote or rejected rows of, each with its own rejects
            for name, rejected in load.rejected_by_table().items():
                load_rows.append(
                    (
                        run.run_id,
                        load.source,
                        load.schema,
                        name,
                        rows.get(name, 0) if name is not None else 0,
                        ids,
                        load.status,
                        rejected,
                        load.error,
                        load.seconds,
                    )
                )
        self._insert("loads", load_rows)
        self._insert_nodes(run.run_id, run.nodes)
        self._insert(
            "freshness",
            [
                (run.run_id, f.source, f.table, f.status, f.max_loaded_at, f.age_hours)
                for f in run.freshness
            ],
        )

    def record_loads(
        self, project: str, started_at: datetime, loads: Sequence[SourceLoad], step: str
    ) -> str:
        """Write loads made outside ``stackyard run`` (``source add``'s first load) as a run
        of their own, so ``source list``, ``status`` and the incident tools see them as they
        see a run's loads.

        Args:
            project: the project's name.
            started_at: when the loads started.
            loads: what they loaded.
            step: what made them, for the run's step (``source add crm``: such runs are
                left out of ``latest(runs_only=True)``).

        Returns:
            The run id they were written under.
        """
        finished = datetime.now(UTC)
        failed = [load.source for load in loads if load.status == "failed"]
        run = RunResult(
            run_id=new_run_id(),
            project=project,
            target=self.warehouse.target_name,
            started_at=started_at,
            finished_at=finished,
            steps=(
                StepResult(
                    step,
                    "failed" if failed else "ok",
                    f"{sum(load.rows for load in loads):,} rows from {len(loads)} sources",
                    started_at,
                    round((finished - started_at).total_seconds(), 3),
                ),
            ),
            loads=tuple(loads),
            selected=tuple(load.source for load in loads),
            build="not run",
        )
        self.record(run)
        return run.run_id

    def record_build(self, run_id: str, nodes: Sequence[NodeResult]) -> None:
        """Add a build made after a run was recorded (``source add``'s verification of the
        staging models it wrote) to that run: its node results, and the counts ``status``
        and the report show, which said 0 models built for a build that happened."""
        w, p = self.warehouse, self.warehouse.param()
        counts = Counts.of((), tuple(nodes))
        failed = any(n.failed for n in nodes)
        w.execute(
            f"UPDATE {relation(w, 'runs')} SET models_built = {p}, models_failed = {p}, "
            f"tests_passed = {p}, tests_failed = {p}, dbt_build = 'built'"
            + (", status = 'failed'" if failed else "")
            + f" WHERE run_id = {p}",
            [
                counts.models_built,
                counts.models_errored,
                counts.tests_passed,
                counts.tests_failed,
                run_id,
            ],
        )
        self._insert_nodes(run_id, nodes)

    def kept(self) -> bool:
        """Whether this warehouse has a run history table (a run made it, if only started)."""
        return "runs" in existing_tables(self.warehouse)

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

    def models(self) -> set[str]:
        """The names of every model a run has built on this target."""
        w = self.warehouse
        if "node_results" not in existing_tables(w):
            return set()
        rows = w.query(
            f"SELECT DISTINCT name FROM {relation(w, 'node_results')} "
            "WHERE resource_type = 'model' AND status = 'success'"
        ).rows
        return {str(name) for (name,) in rows}

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

    def failing_freshness(self) -> list[tuple[str, str, str, str, float]]:
        """``(source, table, status, max_loaded_at, age_hours)`` of every source table that
        failed its freshness check in the latest run; empty before any."""
        w = self.warehouse
        if not {"runs", "freshness"} <= existing_tables(w):
            return []
        rows = w.query(
            "SELECT source, table_name, status, max_loaded_at, age_hours FROM "
            f"{relation(w, 'freshness')} WHERE run_id = (SELECT run_id FROM "
            f"{relation(w, 'runs')} ORDER BY started_at DESC LIMIT 1) "
            "AND status IN ('error', 'runtime error') ORDER BY source, table_name"
        ).rows
        return [(str(r[0]), str(r[1]), str(r[2]), str(r[3]), float(r[4] or 0)) for r in rows]

    def model_seconds(self, runs: int = 20) -> tuple[list[str], list[tuple[str, str, float]]]:
        """The latest runs (oldest first) and ``(run_id, model, seconds)`` of each model they
        built successfully."""
        w = self.warehouse
        if not {"runs", "node_results"} <= existing_tables(w):
            return [], []
        found = w.query(
            f"SELECT run_id FROM {relation(w, 'runs')} ORDER BY started_at DESC LIMIT {int(runs)}"
        ).rows
        run_ids = [str(r[0]) for r in found][::-1]
        if not run_ids:
            return [], []
        p = w.param()
        rows = w.query(
            f"SELECT run_id, name, seconds FROM {relation(w, 'node_results')} "
            "WHERE resource_type = 'model' AND status = 'success' "
            f"AND run_id IN ({', '.join([p] * len(run_ids))})",
            run_ids,
        ).rows
        return run_ids, [(str(r[0]), str(r[1]), float(r[2] or 0)) for r in rows]

    def source_seconds(self, runs: int = 20) -> list[tuple[str, str, float]]:
        """``(run_id, source, seconds)`` of each source loaded in the latest runs, oldest run
        first."""
        w = self.warehouse
        if not {"runs", "loads"} <= existing_tables(w):
            return []
        rows = w.query(
            f"SELECT l.run_id, l.source, MAX(l.seconds) FROM {relation(w, 'loads')} AS l "
            f"JOIN (SELECT run_id, started_at FROM {relation(w, 'runs')} "
            f"ORDER BY started_at DESC LIMIT {int(runs)}) AS r ON r.run_id = l.run_id "
            # A load skipped because the source's probe was unchanged is recorded with no
            # time: it is no timing of a load (perf read it as "0.00 s, faster").
            "WHERE l.status = 'loaded' AND l.seconds > 0 "
            "GROUP BY l.run_id, l.source, r.started_at ORDER BY r.started_at"
        ).rows
        return [(str(r[0]), str(r[1]), float(r[2] or 0)) for r in rows]

    # ------------------------------------------------------------------ incidents

    def run(self, run_id: str | None = None) -> dict[str, Any] | None:
        """One run (default: the latest) as a dict, or ``None`` when there is none."""
        w = self.warehouse
        if "runs" not in existing_tables(w):
            return None
        p = w.param()
        where, params = (f"WHERE run_id = {p}", (run_id,)) if run_id else ("", ())
        rows = w.query(
            f"SELECT run_id, status, started_at, finished_at FROM {relation(w, 'runs')} "
            f"{where} ORDER BY started_at DESC LIMIT 1",
            params,
        ).as_dicts()
        return rows[0] if rows else None

    def failures(self, run_id: str) -> dict[str, list[tuple[Any, ...]]]:
        """What failed in a run: ``loads`` (source, error), ``nodes`` (unique_id, name,
        resource_type, message) and ``freshness`` (source, table, status)."""
        w = self.warehouse
        p = w.param()
        loads = w.query(
            f"SELECT source, error FROM {relation(w, 'loads')} "
            f"WHERE run_id = {p} AND status = 'failed'",
            (run_id,),
        ).rows
        nodes = w.query(
            f"SELECT unique_id, name, resource_type, message FROM {relation(w, 'node_results')} "
            f"WHERE run_id = {p} AND status IN ('error', 'fail')",
            (run_id,),
        ).rows
        fresh = w.query(
            f"SELECT source, table_name, status FROM {relation(w, 'freshness')} "
            f"WHERE run_id = {p} AND status IN ('error', 'runtime error')",
            (run_id,),
        ).rows
        return {"loads": list(loads), "nodes": list(nodes), "freshness": list(fresh)}

    def failed_loads(self, source: str, limit: int = 3) -> list[tuple[Any, ...]]:
        """The latest failed loads of a source: (run_id, error, run started_at)."""
        w = self.warehouse
        return list(
            w.query(
                f"SELECT l.run_id, l.error, r.started_at FROM {relation(w, 'loads')} AS l "
                f"JOIN {relation(w, 'runs')} AS r ON r.run_id = l.run_id "
                f"WHERE l.source = {w.param()} AND l.status = 'failed' "
                f"ORDER BY r.started_at DESC LIMIT {int(limit)}",
                (source,),
            ).rows
        )

    def latest_freshness(self, source: str, table: str) -> tuple[Any, ...] | None:
        """A source table's latest freshness: (status, max_loaded_at, age_hours, started_at)."""
        w = self.warehouse
        p = w.param()
        rows = w.query(
            f"SELECT f.status, f.max_loaded_at, f.age_hours, r.started_at FROM "
            f"{relation(w, 'freshness')} AS f JOIN {relation(w, 'runs')} AS r "
            f"ON r.run_id = f.run_id WHERE f.source = {p} AND f.table_name = {p} "
            "ORDER BY r.started_at DESC LIMIT 1",
            (source, table),
        ).rows
        return rows[0] if rows else None

    def runs_since(self, since: datetime) -> list[tuple[Any, ...]]:
        """Runs started since a time, oldest first, one row per failed step (or one row):
        (run_id, status, started_at, step, detail)."""
        w = self.warehouse
        return list(
            w.query(
                f"SELECT r.run_id, r.status, r.started_at, s.step, s.detail FROM "
                f"{relation(w, 'runs')} AS r LEFT JOIN {relation(w, 'steps')} AS s "
                "ON s.run_id = r.run_id AND s.status = 'failed' "
                f"WHERE r.started_at >= {w.param()} ORDER BY r.started_at",
                (since,),
            ).rows
        )

    def _insert_nodes(self, run_id: str, nodes: Sequence[NodeResult]) -> None:
        self._insert(
            "node_results",
            [
                (
                    run_id,
                    n.unique_id,
                    n.name,
                    n.resource_type,
                    n.status,
                    n.failures,
                    n.message,
                    n.seconds,
                )
                for n in nodes
            ],
        )

    def _insert(self, table: str, rows: list[tuple[Any, ...]]) -> None:
        # One statement per table (executemany runs one per row on DuckDB).
        insert_rows(self.warehouse, table, rows)
