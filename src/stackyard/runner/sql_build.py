"""The build step as plain SQL: a :class:`~stackyard.runner.sql_plan.BuildPlan` executed on one
connection, the steps it leaves to dbt handed to dbt in as few invocations as the order allows.

A table model is ``DROP`` of what stands there and ``CREATE TABLE … AS (compiled SQL)`` in one
transaction, a view the same with ``CREATE VIEW`` — what dbt-duckdb's and dbt-postgres's
materialisations leave behind (they build under a temporary name and rename; the relation, its
columns and rows are the same). Data tests run batched, one query computing every ready test's
``failures``/``should_warn``/``should_error`` as dbt's ``default__get_test_sql`` does, and
their status follows ``dbt.task.test.TestRunner.build_test_run_result``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from stackyard.errors import EngineRefusedError, TransformError, WarehouseError, counted
from stackyard.results import NodeResult
from stackyard.runbooks.backfill.connection import Connection
from stackyard.runner import sql_cache, sql_plan
from stackyard.runner.build_stop import Stop
from stackyard.runner.sql_plan import BuildPlan, Step, plan_build, whole_build_reason

if TYPE_CHECKING:
    from stackyard.transform.dbt import Dbt
    from stackyard.warehouse.base import Warehouse

# Tests per batched query (Postgres allows 1664 result columns; rows are cheaper still).
_BATCH = 200

# dbt.task.runnable: these statuses skip everything after the node in build order.
_SKIPS = frozenset({"error", "fail", "skipped", "partial success", "runtime error"})


class SqlBuild:
    """Runs a build plan.

    Args:
        plan: the selected nodes in build order.
        connect: opens a connection to the target (closed before each dbt invocation).
        release: frees the warehouse for dbt (the DuckDB file admits one configuration).
        run_dbt: builds the given steps through dbt and returns dbt's results.
        on_node: told ``(resource type, name, status)`` as each node finishes.
        refuse_dbt: a microbatch model found not to run as SQL (its table is missing, its
            columns changed …) raises instead of going to dbt (``--engine sql``).
        stop: how another thread stops the build (Ctrl-C).
    """

    def __init__(
        self,
        plan: BuildPlan,
        connect: Callable[[], Connection],
        release: Callable[[], None],
        run_dbt: Callable[[Sequence[Step]], list[NodeResult]],
        on_node: Callable[[str, str, str], None] | None = None,
        *,
        refuse_dbt: bool = False,
        stop: Stop | None = None,
    ) -> None:
        self.plan = plan
        self._refuse_dbt = refuse_dbt
        self._stop = stop or Stop()
        self._connect = connect
        self._release = release
        self._run_dbt = run_dbt
        self._on_node = on_node
        self._conn: Connection | None = None
        self._existing: dict[tuple[str, str], str] = {}
        self._schemas_made: set[str] = set()
        self._waiting: dict[str, int] = {}
        self._below: dict[str, list[str]] = {}

    def run(self) -> list[NodeResult]:
        """Build every step; return a result per node, as ``dbt build`` reports them.

        Raises:
            TransformError: dbt could not start for the steps left to it.
            WarehouseError: the target cannot be reached.
            KeyboardInterrupt: stopped (:class:`Stop`); what was built stays, the model
                being built is rolled back.
        """
        results: dict[str, NodeResult] = {}
        blocked: set[str] = set()
        pending = list(self.plan.steps)
        # how many of its predecessors each step still waits for, counted down as they finish
        self._waiting = {s.unique_id: len(s.after) for s in pending}
        self._below = {}
        for step in pending:
            for before in step.after:
                self._below.setdefault(before, []).append(step.unique_id)
        try:
            while pending:
                self._stop.check()
                finished = set(results)
                ready = [s for s in pending if not self._waiting[s.unique_id]]
                skipped = [s for s in ready if s.after & blocked]
                if skipped:
                    for step in skipped:
                        self._record(results, blocked, _skipped(step))
                elif any(s.kind != "dbt" for s in ready):
                    # a microbatch model handed to dbt closes the connection: ask each time
                    for step in ready:
                        if step.kind in ("table", "view"):
                            self._record(results, blocked, self._model(self._connection(), step))
                        elif step.kind == "microbatch":
                            for found in self._microbatch(self._connection(), step):
                                self._record(results, blocked, found)
                    tests = [s for s in ready if s.kind == "test"]
                    for found in self._tests(self._connection(), tests):
                        self._record(results, blocked, found)
                else:
                    for found in self._dbt(pending, finished, blocked):
                        self._record(results, blocked, found)
                left = [s for s in pending if s.unique_id not in results]
                if len(left) == len(pending):
                    raise TransformError(
                        f"the SQL build made no progress with {len(left)} nodes left "
                        f"(first: {left[0].unique_id})",
                        hint="run with --engine dbt, and report this",
                    )
                pending = left
        finally:
            self._close()
        return [results[s.unique_id] for s in self.plan.steps if s.unique_id in results]

    # ------------------------------------------------------------------ dbt's share

    def _dbt(self, pending: list[Step], finished: set[str], blocked: set[str]) -> list[NodeResult]:
        """The ready dbt steps, and the dbt steps that wait only on them, in one invocation."""
        batch: list[Step] = []
        ids: set[str] = set()
        for step in pending:
            waiting = step.after - finished
            if step.kind == "dbt" and waiting <= ids and not step.after & blocked:
                batch.append(step)
                ids.add(step.unique_id)
        return self._by_dbt(batch)

    def _by_dbt(self, batch: list[Step]) -> list[NodeResult]:
        self._close()
        self._stop.check()
        self._release()
        got = {r.unique_id: r for r in self._run_dbt(batch)}
        out = []
        for step in batch:
            found = got.get(step.unique_id)
            if found is None:
                found = NodeResult(
                    step.unique_id,
                    step.name,
                    step.resource_type,
                    "error",
                    f"dbt did not report {step.unique_id} (selected as fqn:{'.'.join(step.fqn)})",
                )
            out.append(replace(found, engine="dbt"))
        return out

    # ------------------------------------------------------------------ models

    def _microbatch(self, conn: Connection, step: Step) -> list[NodeResult]:
        """A microbatch model's batches as dbt would cut them now, each a ``DELETE`` and an
        ``INSERT … SELECT`` in one transaction (the backfill's batch SQL); dbt builds it when
        that cannot reproduce dbt exactly."""
        from datetime import UTC, datetime

        from stackyard.runbooks.backfill.model_sql import Parent
        from stackyard.runbooks.backfill.model_sql import plan as batch_plan
        from stackyard.runner.microbatch_window import dbt_window

        t0 = time.monotonic()
        parents = [Parent(*p) for p in step.extra["parents"]]
        node, macros = step.extra["node"], step.extra["macros"]
        found = batch_plan(dict(node), parents, step.sql, conn, dict(macros))
        if isinstance(found, str):
            if self._refuse_dbt:
                raise EngineRefusedError(
                    f"--engine sql cannot build {step.unique_id} as plain SQL: {found} (the "
                    "nodes before it are built)",
                    hint="run with --engine auto: dbt builds it, stackyard the rest",
                )
            return self._by_dbt([replace(step, kind="dbt", why=found)])
        window = dbt_window(node["config"], datetime.now(UTC))
        try:
            found.run(conn, window)
        except WarehouseError as exc:
            return [_result(step, "error", t0, _database_error(step, exc, conn))]
        # dbt reports a microbatch model's failed batches as failures: none here
        return [replace(_result(step, "success", t0), failures=0)]

    def _model(self, conn: Connection, step: Step) -> NodeResult:
        t0 = time.monotonic()
        try:
            self._ensure_schema(conn, step.schema)
            there = self._existing.get((step.schema, step.identifier))
            cascade = " CASCADE" if conn.storage == "server" else ""
            with conn.transaction():
                if there is not None:
                    kind = "VIEW" if there == "VIEW" else "TABLE"
                    conn.execute(f"DROP {kind} IF EXISTS {step.relation}{cascade}")
                create = "CREATE VIEW" if step.kind == "view" else "CREATE TABLE"
                conn.execute(f"{create} {step.relation} AS (\n{step.sql}\n)")
        except WarehouseError as exc:
            return _result(step, "error", t0, _database_error(step, exc, conn))
        self._existing[(step.schema, step.identifier)] = (
            "VIEW" if step.kind == "view" else "BASE TABLE"
        )
        return _result(step, "success", t0)

    def _ensure_schema(self, conn: Connection, schema: str) -> None:
        if schema in self._schemas_made:
            return
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {conn.quote(schema)}")
        p = conn.param()
        rows = conn.query(
            "SELECT table_name, table_type FROM information_schema.tables "
            f"WHERE table_schema = {p} AND table_catalog = current_database()",
            (schema,),
        ).rows
        self._existing.update({(schema, str(r[0])): str(r[1]) for r in rows})
        self._schemas_made.add(schema)

    # ------------------------------------------------------------------ tests

    def _tests(self, conn: Connection, tests: Sequence[Step]) -> list[NodeResult]:
        out: list[NodeResult] = []
        for i in range(0, len(tests), _BATCH):
            chunk = tests[i : i + _BATCH]
            t0 = time.monotonic()
            try:
                rows = conn.query(batched_test_sql(chunk)).rows
            except WarehouseError:
                # one of them does not run: each alone says which
                out += [self._test_alone(conn, t) for t in chunk]
                continue
            each = round((time.monotonic() - t0) / len(chunk), 3)
            by_index = {int(r[0]): r for r in rows}
            for n, test in enumerate(chunk):
                row = by_index[n]
                out.append(judge_test(test, int(row[1]), bool(row[2]), bool(row[3]), each))
        return out

    def _test_alone(self, conn: Connection, test: Step) -> NodeResult:
        t0 = time.monotonic()
        try:
            row = conn.query(batched_test_sql([test])).rows[0]
        except WarehouseError as exc:
            return _result(test, "error", t0, _database_error(test, exc, conn))
        return judge_test(
            test, int(row[1]), bool(row[2]), bool(row[3]), round(time.monotonic() - t0, 3)
        )

    # ------------------------------------------------------------------ plumbing

    def _record(self, results: dict[str, NodeResult], blocked: set[str], r: NodeResult) -> None:
        results[r.unique_id] = r
        for below in self._below.get(r.unique_id, ()):
            self._waiting[below] -= 1
        if r.status in _SKIPS:
            blocked.add(r.unique_id)
        # dbt reports the nodes it ran to the same callback itself
        if self._on_node is not None and (r.engine == "sql" or r.status == "skipped"):
            self._on_node(r.resource_type, r.name, r.status)

    def _connection(self) -> Connection:
        if self._conn is None:
            self._conn = self._stop.watch(self._connect())
        return self._conn

    def _close(self) -> None:
        if self._conn is not None:
            self._stop.close(self._conn)
            self._conn = None


def batched_test_sql(tests: Sequence[Step]) -> str:
    """One query answering, per test (``k`` = its position), dbt's three test columns.

    >>> from stackyard.runner.sql_plan import Step
    >>> t = Step("test.p.t", "t", "test", "test", frozenset(), sql="select 1")
    >>> print(batched_test_sql([t]))
    SELECT 0 AS k, count(*) AS failures, count(*) != 0 AS should_warn, count(*) != 0 AS should_error FROM (
    select 1
    ) dbt_internal_test
    """
    parts = []
    for n, test in enumerate(tests):
        limit = f"\nlimit {int(test.limit)}" if test.limit is not None else ""
        parts.append(
            f"SELECT {n} AS k, count(*) AS failures, count(*) {test.warn_if} AS should_warn, "
            f"count(*) {test.error_if} AS should_error FROM (\n{test.sql}{limit}\n) "
            "dbt_internal_test"
        )
    return "\nUNION ALL\n".join(parts)


def judge_test(
    test: Step, failures: int, should_warn: bool, should_error: bool, seconds: float
) -> NodeResult:
    """A test's result as dbt's ``build_test_run_result`` makes it (no ``--warn-error``).

    >>> from stackyard.runner.sql_plan import Step
    >>> t = Step("test.p.t", "t", "test", "test", frozenset(), severity="WARN")
    >>> judge_test(t, 1, True, True, 0.0).message
    'Got 1 result, configured to warn if != 0'
    """
    if test.severity == "ERROR" and should_error:
        message = f"Got {_plural(failures)}, configured to fail if {test.error_if}"
        return NodeResult(
            test.unique_id, test.name, "test", "fail", message, failures, seconds, "sql"
        )
    if should_warn:
        message = f"Got {_plural(failures)}, configured to warn if {test.warn_if}"
        return NodeResult(
            test.unique_id, test.name, "test", "warn", message, failures, seconds, "sql"
        )
    return NodeResult(test.unique_id, test.name, "test", "pass", "", 0, seconds, "sql")


def _plural(count: int) -> str:
    return f"{count} result" + ("" if count == 1 else "s")


def _result(step: Step, status: str, t0: float, message: str = "") -> NodeResult:
    return NodeResult(
        step.unique_id,
        step.name,
        step.resource_type,
        status,
        message,
        None,
        round(time.monotonic() - t0, 3),
        "sql",
    )


def _database_error(step: Step, exc: WarehouseError, conn: Connection) -> str:
    """A failed node's message as dbt words it: ``Database Error in model m (models/m.sql)``
    (dbt-postgres; dbt-duckdb raises a ``Runtime Error``), then the warehouse's message,
    indented."""
    kind = "Database" if conn.storage == "server" else "Runtime"
    where = f" ({step.path})" if step.path else ""
    lines = str(exc).split("\n")
    return f"{kind} Error in {step.resource_type} {step.name}{where}\n" + "\n".join(
        f"  {line}" for line in lines
    )


def _skipped(step: Step) -> NodeResult:
    engine = "dbt" if step.kind == "dbt" else "sql"
    return NodeResult(
        step.unique_id, step.name, step.resource_type, "skipped", "", None, 0.0, engine
    )


def build(
    engine: str,
    dbt: Dbt,
    warehouse: Warehouse,
    select: Sequence[str],
    exclude: Sequence[str],
    full_refresh: bool,
    release: Callable[[], None],
    on_node: Callable[[str, str, str], None] | None = None,
    stop: Stop | None = None,
) -> list[NodeResult]:
    """The build step with the chosen engine.

    Args:
        engine: ``dbt`` (``dbt build``), ``sql`` (every node as SQL, else refuse) or ``auto``
            (SQL where the plan allows, dbt for the rest).
        dbt: the target's dbt runner.
        warehouse: the target's warehouse.
        select: dbt selectors (empty: the whole project).
        exclude: dbt selectors to leave out.
        full_refresh: dbt's ``--full-refresh``.
        release: frees the warehouse's own connection for dbt.
        on_node: told ``(resource type, name, status)`` as each node finishes.
        stop: how another thread stops the build (Ctrl-C).

    Raises:
        EngineRefusedError: ``--engine sql`` and a node only dbt can build (nothing built).
        TransformError: dbt could not start.
        KeyboardInterrupt: stopped by ``stop``.
    """
    stop = stop or Stop()
    with stop.cutting(dbt.cut):  # Ctrl-C cuts a dbt invocation running as well
        if engine == "dbt":
            return dbt.build(select=select, exclude=exclude, full_refresh=full_refresh)
        try:
            return _build(
                engine, dbt, warehouse, select, exclude, full_refresh, release, on_node, stop
            )
        finally:
            dbt.parsed = None


def _build(
    engine: str,
    dbt: Dbt,
    warehouse: Warehouse,
    select: Sequence[str],
    exclude: Sequence[str],
    full_refresh: bool,
    release: Callable[[], None],
    on_node: Callable[[str, str, str], None] | None,
    stop: Stop,
) -> list[NodeResult]:
    reason = None
    if not warehouse.SQL_BUILD:
        reason = f"{warehouse.describe()} is {warehouse.KIND} (the SQL build runs on DuckDB "
        reason += "and Postgres)"
    key = None
    if reason is None and dbt.state is None:
        env = {**os.environ, **dbt.env}
        key = sql_cache.plan_key(
            dbt.transform_dir,
            {
                "profiles": (dbt.profiles_dir / "profiles.yml").read_text(encoding="utf-8"),
                "target": dbt.target,
                "vars": dbt.variables,
                "select": list(select),
                "exclude": list(exclude),
                "full_refresh": full_refresh,
                "dbt": sql_cache.dbt_versions(),
                "flags": {k: env.get(k) for k in sql_cache.FLAG_VARIABLES},
            },
            env,
        )
    plan = sql_cache.load(dbt.transform_dir, key) if key else None
    if plan is None and reason is None:
        try:
            selected, manifest = dbt.compile_selection(select, exclude, full_refresh)
        except TransformError as exc:
            if engine == "sql":
                raise
            # dbt build reports the nodes that do not compile, and builds the others
            selected, manifest, reason = [], {}, f"the project does not compile ({exc})"
        reason = reason or whole_build_reason(manifest) or sql_plan.flags_reason()
        reason = reason or sql_plan.project_reason(dbt.transform_dir)
        if reason is None:
            plan = plan_build(manifest, selected, full_refresh)
            if key:
                sql_cache.save(dbt.transform_dir, key, plan, manifest, dbt.variables)
    if plan is None:
        if engine == "sql":
            raise EngineRefusedError(
                f"--engine sql cannot build this project: {reason}",
                hint="run with --engine auto (or dbt), which lets dbt build it",
            )
        # The whole build goes to dbt: not with the Manifest the plan's compile wrote into
        # (ephemeral models' CTEs marked injected), on which dbt referenced `__dbt__cte__`
        # tables it never defined. dbt parses again (partial parsing keeps that short).
        dbt.parsed = None
        return dbt.build(select=select, exclude=exclude, full_refresh=full_refresh)
    stop.check()
    release()
    conn = stop.watch(Connection(warehouse))
    try:
        current = str(conn.query("SELECT current_database()").rows[0][0])
    finally:
        stop.close(conn)
    plan = plan.on_database(current, warehouse.MAX_IDENTIFIER_LENGTH)
    if engine == "sql" and plan.by_dbt:
        listed = "; ".join(f"{s.unique_id}: {s.why}" for s in plan.by_dbt[:5])
        more = f" (and {len(plan.by_dbt) - 5} more)" if len(plan.by_dbt) > 5 else ""
        raise EngineRefusedError(
            f"--engine sql cannot build {counted(len(plan.by_dbt), 'node')} as plain SQL: {listed}{more}",
            hint="run with --engine auto: dbt builds those, stackyard the rest",
        )

    def run_dbt(steps: Sequence[Step]) -> list[NodeResult]:
        selectors = [f"fqn:{'.'.join(s.fqn)},resource_type:{s.resource_type}" for s in steps]
        return dbt.build(select=selectors, full_refresh=full_refresh, indirect_selection="empty")

    try:
        return SqlBuild(
            plan,
            lambda: Connection(warehouse),
            release,
            run_dbt,
            on_node,
            refuse_dbt=engine == "sql",
            stop=stop,
        ).run()
    finally:
        release()  # as after `dbt build`: the next step opens what it needs
