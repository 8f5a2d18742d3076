"""The monitor suite: measure every table a run loaded or built, judge it, alert, record.

:func:`monitor_run` is what ``stackyard run`` calls as its last step; ``stackyard monitor``
runs the same pass on demand (:meth:`MonitorSuite.check` with no run). A pass:

1. lists the tables to watch — every source table of the run's loads and every model that
   built (with their relations from dbt's manifest), plus every table watched before, so a
   table dropped between runs is reported ``missing`` rather than forgotten;
2. reads every table's columns with one ``information_schema`` query, then measures each
   table with one batched aggregate query (:mod:`stackyard.monitors.metrics`);
3. judges volume (the anomaly detector, on rows per day by a time column or rows per load),
   freshness, null rates, duplicate keys, schema drift and dbt tests
   (:mod:`stackyard.monitors.checks`), with holidays, earlier alerts and declared incidents
   kept out of every baseline;
4. records metrics, findings and schema snapshots in the ``stackyard`` schema with a few
   batched INSERTs, then sends one alert per root cause (:mod:`stackyard.monitors.alerts`).

Data problems never raise: an empty table, an all-NULL column, a missing table, a load time
in the future or a table that cannot be measured each end up as a stated status; a failing
alert channel is recorded. Only a warehouse that cannot store the results raises.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from stackyard.config.model import (
    FilesystemSource,
    ProjectConfig,
    PythonSource,
    SqlDatabaseSource,
)
from stackyard.console import Console
from stackyard.errors import WarehouseError
from stackyard.monitors.alerts import Notifier, group_alerts
from stackyard.monitors.anomaly import AnomalyConfig
from stackyard.monitors.checks import (
    anomaly_config,
    duplicates_check,
    fill_days,
    freshness_check,
    null_rate_checks,
    schema_checks,
    tests_check,
    volume_checks,
)
from stackyard.monitors.columns import column_checks
from stackyard.monitors.health import Check, MonitorReport, TableHealth, sort_checks
from stackyard.monitors.lineage import Lineage
from stackyard.monitors.metrics import (
    TableMetrics,
    TableRef,
    metrics_query,
    parse_metrics,
    plan_metrics,
)
from stackyard.monitors.owners import table_owners
from stackyard.monitors.store import (
    METADATA_SCHEMA,
    FindingRow,
    MetricRow,
    MetricStore,
    Snapshot,
)
from stackyard.results import RunResult
from stackyard.warehouse.base import Warehouse

STEP = "monitors"


def monitor_run(
    *,
    project: ProjectConfig,
    project_dir: Path,
    transform_dir: Path,
    warehouse: Warehouse,
    run: RunResult,
    console: Console,
) -> MonitorReport:
    """Monitor every table a run loaded or built; the runner's last step.

    Args:
        project: the project's configuration (``monitors:`` section included).
        project_dir: the project folder.
        transform_dir: the dbt project folder (its ``target/manifest.json`` gives lineage).
        warehouse: the run's target.
        run: the run that just finished.
        console: where progress goes (as step ``monitors``).

    Returns:
        The pass's report. Never raises for data or alerting problems: those are statuses.

    Raises:
        WarehouseError: the ``stackyard`` schema could not be read or written.
    """
    suite = MonitorSuite(
        project=project,
        project_dir=project_dir,
        transform_dir=transform_dir,
        warehouse=warehouse,
        console=console,
    )
    return suite.check(run)


@dataclass
class _Pass:
    """What one pass accumulates before it is written (internal)."""

    now: datetime
    metrics: list[MetricRow] = field(default_factory=list)
    findings: list[FindingRow] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)


class MonitorSuite:
    """One project's monitors on one warehouse.

    Args:
        project: the project's configuration.
        project_dir: the project folder.
        transform_dir: the dbt project folder.
        warehouse: the target.
        console: where progress goes.
        clock: the current time (tests pass a fixed one).
        sleep: waits between alert retries (tests pass a fake).
    """

    def __init__(
        self,
        *,
        project: ProjectConfig,
        project_dir: Path,
        transform_dir: Path,
        warehouse: Warehouse,
        console: Console,
        clock: Callable[[], datetime] | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.project = project
        self.project_dir = project_dir
        self.transform_dir = transform_dir
        self.warehouse = warehouse
        self.console = console
        self.clock = clock or (lambda: datetime.now(UTC))
        self.sleep = sleep
        self.config = project.monitors

    # ------------------------------------------------------------------ the pass

    def check(self, run: RunResult | None) -> MonitorReport:
        """Measure, judge, record and alert.

        Args:
            run: the run just finished, or ``None`` for an on-demand pass.

        Returns:
            The pass's report.
        """
        now = self.clock().astimezone(UTC)
        run_id = run.run_id if run else now.strftime("%Y%m%dT%H%M%S") + "-m" + uuid.uuid4().hex[:5]
        if not self.config.enabled:
            return MonitorReport(
                run_id=run_id, measured_at=now, notes=("monitors are disabled (monitors.enabled)",)
            )
        store = MetricStore(self.warehouse)
        store.ensure()
        lineage = Lineage.load(self.transform_dir)
        snapshots = store.snapshots()
        columns = self._columns()
        targets = self._targets(run, lineage, snapshots, columns)
        relations = [t.relation for t in targets]
        today = now.date()
        since = today - timedelta(days=AnomalyConfig().training_days + self.config.recheck_days + 7)
        context = _History(
            volumes=store.volumes(relations, since),
            history=store.history(relations, ("null_rate", "duplicates", "freshness"), since),
            alerted=store.alerted_days(relations, "volume", since),
            incidents=defaultdict(set),
        )
        for incident in store.incidents(relations):
            context.incidents[incident.table].update(incident.days())
        tests = self._tests(run, lineage)
        load_status = {
            (load.schema, t.table): load.status
            for load in (run.loads if run else ())
            for t in load.tables
        }
        failed_schemas = {
            load.schema: (load.source, load.error or "no error message")
            for load in (run.loads if run else ())
            if load.status == "failed"
        }
        built = self._built_models(run)

        state = _Pass(now)
        healths = []
        for table in targets:
            health = self._check_table(
                table,
                columns.get(table.relation),
                snapshots.get(table.relation),
                context,
                state,
                run=run,
                loaded=(table.schema, table.name) in load_status,
                failed_source=failed_schemas.get(table.schema) if table.kind == "source" else None,
                tests=tests.get(table.unique_id or ""),
                built=built,
            )
            healths.append(health)
            self.console.step_progress(STEP, f"{health.table}: {health.status}")

        tables = tuple(healths)
        draft = MonitorReport(tables=tables, run_id=run_id, measured_at=now)
        store.record_pass(
            run_id=run_id,
            measured_at=now,
            trigger="run" if run else "on demand",
            status=draft.status,
            tables_checked=len(tables),
            anomalies=sum(t.alerting for t in tables),
            summary=draft.summary,
            metrics=state.metrics,
            findings=state.findings,
            snapshots=state.snapshots,
        )
        notes: list[str] = []
        outcomes = []
        if any(t.alerting for t in tables):
            alerts = group_alerts(
                tables,
                lineage,
                groups={
                    t.relation: f"source {failed_schemas[t.schema][0]}"
                    for t in targets
                    if t.kind == "source" and t.schema in failed_schemas
                },
                owners={t.relation: self._owners(t) for t in targets},
                context=f"project {self.project.name} · target {self.warehouse.target_name} · "
                f"run {run_id}",
            )
            if not self.config.alerts.channels:
                notes.append(
                    f"{len(alerts)} alert(s) not sent: no channel under monitors.alerts.channels"
                )
            notifier = Notifier(
                self.config.alerts, store, self.warehouse.secrets, sleep=self.sleep or time.sleep
            )
            outcomes = notifier.send(alerts, run_id, now)
        self.warehouse.close()
        return MonitorReport(
            tables=tables,
            alerts=tuple(outcomes),
            run_id=run_id,
            measured_at=now,
            notes=tuple(notes),
        )

    # ------------------------------------------------------------------ one table

    def _check_table(
        self,
        table: TableRef,
        columns: Mapping[str, str] | None,
        previous: Snapshot | None,
        history: _History,
        state: _Pass,
        *,
        run: RunResult | None,
        loaded: bool,
        failed_source: tuple[str, str] | None,
        tests: tuple[list[tuple[str, int | None]], int] | None,
        built: set[str] | None,
    ) -> TableHealth:
        settings = self.config.for_table(table.relation, table.node)
        rel = table.relation
        owners = self._owners(table)
        checks: list[Check] = []

        def done() -> TableHealth:
            health = TableHealth(
                rel, table.kind, table.node, sort_checks(checks), owners, table.unique_id
            )
            state.findings.extend(
                FindingRow(
                    rel,
                    table.kind,
                    table.node,
                    c.check,
                    c.status,
                    c.reason,
                    c.column,
                    c.day,
                    c.value,
                    c.expected,
                    c.lower,
                    c.upper,
                )
                for c in health.checks
            )
            return health

        if columns is None:
            was = (
                f"it had {len(previous.columns)} columns when last measured at "
                f"{previous.captured_at:%Y-%m-%d %H:%M} UTC"
                if previous and previous.captured_at
                else "this run loaded or built it"
            )
            checks.append(
                Check("table", "missing", f"{rel} does not exist ({was}): dropped or renamed?")
            )
            return done()

        key = _as_tuple(settings.key) or table.key
        today_start = datetime(state.now.year, state.now.month, state.now.day, tzinfo=UTC)
        plan = plan_metrics(
            table,
            columns,
            time_column=settings.time_column,
            key=key,
            today=today_start,
            profile=settings.columns,
            dimensions=settings.dimensions,
        )
        checks.extend(Check("config", "warn", note) for note in plan.notes)
        try:
            result = self.warehouse.query(metrics_query(plan, self.warehouse.DIALECT))
        except WarehouseError as exc:
            # Dropped or locked between listing and measuring, a view whose source is gone,
            # a type the engine cannot count: the table's state is "cannot measure", said.
            checks.append(Check("table", "error", f"could not be measured: {exc.message}"))
            return done()
        metrics = parse_metrics(plan, result)
        today = state.now.date()
        state.metrics.append(MetricRow(rel, "row_count", metrics.row_count, day=today))
        state.snapshots.append(
            Snapshot(rel, table.kind, table.node, table.unique_id, dict(columns), state.now)
        )

        if failed_source is not None:
            source, error = failed_source
            checks.append(
                Check("load", "anomaly", f"the load of source '{source}' failed: {error}")
            )
        checks.extend(
            self._volume(
                table,
                plan.time_column,
                metrics,
                history,
                state,
                settings,
                run,
                loaded,
                failed_source[0] if failed_source else None,
            )
        )
        checks.append(self._freshness(table, metrics, history, state, run, built))
        checks.extend(
            column_checks(
                plan, metrics, holidays=self.config.holidays, config=anomaly_config(settings)
            )
        )
        excluded = history.incidents.get(rel, set())
        if metrics.row_count == 0:
            checks.append(Check("null_rate", "ok", "the table is empty: null rates not judged"))
        else:
            rates = {c: metrics.null_rate(c) for c in plan.null_columns}
            past = {
                c: [
                    v
                    for d, v in history.history.get((rel, "null_rate", c), [])
                    if d not in excluded
                ]
                for c in plan.null_columns
            }
            checks.extend(null_rate_checks(rates, past, increase=settings.null_rate_increase))
            state.metrics.extend(
                MetricRow(rel, "null_rate", rate, column=c, day=today)
                for c, rate in rates.items()
                if rate is not None
            )
        if metrics.duplicates is not None:
            past_dups = [
                v
                for d, v in history.history.get((rel, "duplicates", None), [])
                if d not in excluded
            ]
            checks.append(duplicates_check(metrics.duplicates, plan.key, past_dups))
            state.metrics.append(MetricRow(rel, "duplicates", metrics.duplicates, day=today))
        checks.extend(schema_checks(previous.columns if previous else None, columns))
        if tests is not None:
            failed, total = tests
            found = tests_check(failed, total)
            if found is not None:
                checks.append(found)
                state.metrics.append(MetricRow(rel, "tests_failed", len(failed), day=today))
        return done()

    def _volume(
        self,
        table: TableRef,
        time_column: str | None,
        metrics: TableMetrics,
        history: _History,
        state: _Pass,
        settings: Any,
        run: RunResult | None,
        loaded: bool,
        failed_source: str | None,
    ) -> list[Check]:
        rel = table.relation
        today = state.now.date()
        stored = history.volumes.get(rel, {})
        exclude = history.alerted.get(rel, set()) | history.incidents.get(rel, set())
        config = anomaly_config(settings)
        holidays = self.config.holidays
        if time_column:
            if not metrics.days:
                if any(v > 0 for v in stored.values()):
                    return [
                        Check(
                            "volume",
                            "anomaly",
                            f"no rows with a {time_column} any more (the table had rows before): "
                            "emptied or reloaded without data?",
                            day=today,
                            value=0,
                        )
                    ]
                return [
                    Check("volume", "ok", f"no rows with a {time_column} yet: nothing to judge")
                ]
            # The table's own rows are the truth for every day they cover (deleted rows make
            # a day smaller, a day with none becomes 0); stored days before them remain.
            fresh = fill_days(metrics.days)
            first = min(fresh)
            series = {d: v for d, v in stored.items() if d < first} | fresh
            last = max(fresh)
            # The newest day is still arriving: judging it would alert every morning.
            window = [last - timedelta(days=i) for i in range(self.config.recheck_days, 0, -1)]
            # Days whose count is unchanged since the last pass keep their verdict; judged
            # again are new or changed days, days alerted on (so health keeps saying what is
            # wrong), and the latest complete day (whose band health shows).
            alerted = history.alerted.get(rel, set())
            judge = [
                d
                for d in window
                if d in series and (stored.get(d) != series[d] or d in alerted or d == window[-1])
            ]
            since = today - timedelta(days=config.training_days + self.config.recheck_days + 7)
            state.metrics.extend(
                MetricRow(rel, "volume", v, day=d)
                for d, v in fresh.items()
                if d >= since and stored.get(d) != v
            )
            if not judge:
                return [
                    Check(
                        "volume",
                        "learning",
                        f"rows by {time_column} cover {len(fresh)} day(s): no complete day to "
                        "judge yet (the newest day is still arriving)",
                        day=last,
                        value=fresh[last],
                    )
                ]
            return volume_checks(
                series,
                judge,
                unit=f"rows with {time_column} on",
                holidays=holidays,
                exclude=exclude,
                config=config,
            )
        if table.kind == "source" and metrics.rows_today is not None:
            value: float = metrics.rows_today
            unit = "rows loaded on"
            if failed_source is not None:
                return [
                    Check(
                        "volume",
                        "ok",
                        f"not judged: the load of source '{failed_source}' failed in this run",
                    )
                ]
            if run is None and value == 0 and today not in stored:
                return [Check("volume", "ok", f"not judged: no load yet on {today}")]
            if run is not None and not loaded and value == 0 and today not in stored:
                return [Check("volume", "ok", f"not judged: this run did not load {rel}")]
        else:
            value = metrics.row_count
            unit = "rows after the build on" if table.kind == "model" else "rows on"
        state.metrics.append(MetricRow(rel, "volume", value, day=today))
        series = {d: v for d, v in stored.items() if d < today} | {today: value}
        return volume_checks(
            series, [today], unit=unit, holidays=holidays, exclude=exclude, config=config
        )

    def _freshness(
        self,
        table: TableRef,
        metrics: TableMetrics,
        history: _History,
        state: _Pass,
        run: RunResult | None,
        built: set[str] | None,
    ) -> Check:
        fresh = self.project.defaults.freshness
        rel = table.relation
        if table.kind == "source":
            last, what = metrics.last_loaded_at, "loaded"
        else:
            what = "built"
            if built is not None and (table.unique_id in built or "*" in built):
                last = state.now
            else:
                points = history.history.get((rel, "freshness", None), [])
                last = datetime.fromtimestamp(points[-1][1], UTC) if points else None
        if last is not None and table.kind == "model":
            state.metrics.append(MetricRow(rel, "freshness", last.timestamp(), day=last.date()))
        return freshness_check(
            last,
            state.now,
            warn_hours=fresh.warn_after_hours,
            error_hours=fresh.error_after_hours,
            what=what,
        )

    # ------------------------------------------------------------------ what to watch

    def _columns(self) -> dict[str, dict[str, str]]:
        """Every table's columns in every schema, with one query."""
        result = self.warehouse.query(
            "SELECT table_schema, table_name, column_name, data_type "
            "FROM information_schema.columns ORDER BY table_schema, table_name, ordinal_position"
        )
        found: dict[str, dict[str, str]] = defaultdict(dict)
        for schema, table, column, data_type in result.rows:
            if schema != METADATA_SCHEMA:
                found[f"{schema}.{table}"][str(column)] = str(data_type)
        return dict(found)

    def _targets(
        self,
        run: RunResult | None,
        lineage: Lineage,
        snapshots: Mapping[str, Snapshot],
        columns: Mapping[str, Mapping[str, str]],
    ) -> list[TableRef]:
        by_relation = lineage.by_relation()
        sources = {self.project.dataset_for(name): name for name in self.project.sources}
        found: dict[str, TableRef] = {}

        def add_source(schema: str, name: str) -> None:
            if name.startswith("_") or schema not in sources:
                return
            rel = f"{schema}.{name}"
            node = by_relation.get(rel)
            source = sources[schema]
            found.setdefault(
                rel,
                TableRef(
                    schema,
                    name,
                    "source",
                    node=f"{source}.{name}",
                    owner_keys=(source,),
                    unique_id=node.unique_id if node else None,
                    key=self._source_key(source, name),
                ),
            )

        def add_model(uid: str) -> None:
            node = lineage.nodes.get(uid)
            if node is None or node.kind != "model":
                return
            found.setdefault(
                node.relation,
                TableRef(
                    node.schema,
                    node.relation_name,
                    "model",
                    node=node.name,
                    owner_keys=(node.name,),
                    unique_id=uid,
                    key=node.key,
                ),
            )

        loaded_schemas = {load.schema for load in run.loads} if run else set(sources)
        for load in run.loads if run else ():
            for t in load.tables:
                add_source(load.schema, t.table)
        # An incremental load that brought no rows lists no tables: its earlier tables are
        # still the source's, and still watched.
        for rel in columns:
            schema, name = rel.split(".", 1)
            if schema in loaded_schemas:
                add_source(schema, name)
        if run is not None and run.build != "skipped":
            for n in run.nodes:
                if n.resource_type == "model" and n.status == "success":
                    add_model(n.unique_id)
        else:
            for uid, node in lineage.nodes.items():
                if node.kind == "model" and node.relation in columns:
                    add_model(uid)
        # Tables watched before stay watched while they are still declared, so one dropped
        # between runs is reported missing instead of silently forgotten.
        for rel, snap in snapshots.items():
            schema, name = rel.split(".", 1)
            if snap.kind == "source":
                add_source(schema, name)
            elif snap.unique_id:
                add_model(snap.unique_id)
        return [
            t for _, t in sorted(found.items()) if self.config.for_table(t.relation, t.node).enabled
        ]

    def _source_key(self, source: str, table: str) -> tuple[str, ...]:
        config = self.project.sources.get(source)
        key: str | list[str] | None = None
        if isinstance(config, SqlDatabaseSource | FilesystemSource) and table in config.tables:
            key = config.tables[table].primary_key
        elif isinstance(config, PythonSource):
            key = config.primary_keys.get(table)
        return _as_tuple(key)

    def _owners(self, table: TableRef) -> tuple[str, ...]:
        return table_owners(self.project, table.relation, table.node, table.owner_keys)

    def _built_models(self, run: RunResult | None) -> set[str] | None:
        """Models confirmed current by this run ("*": all, when the build was skipped as
        unchanged); ``None`` on demand."""
        if run is None:
            return None
        if run.build == "skipped":
            return {"*"}
        return {
            n.unique_id for n in run.nodes if n.resource_type == "model" and n.status == "success"
        }

    def _tests(
        self, run: RunResult | None, lineage: Lineage
    ) -> dict[str, tuple[list[tuple[str, int | None]], int]]:
        """Failing and total dbt tests per model, from the run or else the latest recorded."""
        results: Iterable[tuple[str, str, str, int | None]]
        if run is not None:
            results = [
                (n.unique_id, n.name, n.status, n.failures)
                for n in run.nodes
                if n.resource_type == "test"
            ]
        else:
            results = self._latest_tests()
        per_model: dict[str, tuple[list[tuple[str, int | None]], int]] = {}
        for uid, name, status, failures in results:
            model = lineage.tests.get(uid)
            if model is None:
                continue
            failed, total = per_model.get(model, ([], 0))
            if status in ("fail", "error", "runtime error"):
                failed.append((name, failures))
            per_model[model] = (failed, total + 1)
        return per_model

    def _latest_tests(self) -> list[tuple[str, str, str, int | None]]:
        w = self.warehouse
        if not {"runs", "node_results"} <= set(w.tables_in(METADATA_SCHEMA)):
            return []
        runs, nodes = w.quote(METADATA_SCHEMA, "runs"), w.quote(METADATA_SCHEMA, "node_results")
        rows = w.query(
            f"SELECT unique_id, name, status, failures FROM {nodes} WHERE resource_type = 'test' "
            f"AND run_id = (SELECT run_id FROM {runs} WHERE tests_passed + tests_failed > 0 "
            "ORDER BY started_at DESC LIMIT 1)"
        ).rows
        return [(str(r[0]), str(r[1]), str(r[2]), r[3]) for r in rows]


@dataclass
class _History:
    """Everything earlier passes left that this pass judges against (internal)."""

    volumes: dict[str, dict[date, float]]
    history: dict[tuple[str, str, str | None], list[tuple[date, float]]]
    alerted: dict[str, set[date]]
    incidents: dict[str, set[date]]


def _as_tuple(key: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    if key is None:
        return ()
    return (key,) if isinstance(key, str) else tuple(key)
