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
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from stackyard.config.model import ProjectConfig
from stackyard.console import Console
from stackyard.errors import WarehouseError, counted
from stackyard.metadata.monitors import FindingRow, MetricRow, MetricStore, Snapshot
from stackyard.monitors.alerts import Notifier, group_alerts
from stackyard.monitors.anomaly import AnomalyConfig
from stackyard.monitors.checks import (
    anomaly_config,
    duplicates_check,
    emptied_until,
    known_incidents,
    null_rate_checks,
    schema_checks,
    tests_check,
    volume_history_start,
)
from stackyard.monitors.columns import COLUMN_CHECKS, column_checks
from stackyard.monitors.health import (
    Check,
    MonitorReport,
    TableHealth,
    most_severe_first,
    sort_checks,
)
from stackyard.monitors.judging import (
    Pass,
    PassHistory,
    future_rows,
    judge_freshness,
    judge_volume,
)
from stackyard.monitors.lineage import Lineage
from stackyard.monitors.metrics import (
    TableMetrics,
    TableRef,
    metrics_query,
    parse_metrics,
    plan_metrics,
)
from stackyard.monitors.reuse import (
    MeasurementCache,
    Unchanged,
    Verdicts,
    metrics_to_json,
    plan_key,
    reused_metrics,
)
from stackyard.monitors.targets import (
    as_tuple,
    built_models,
    refuse_entries_naming_one_table,
    table_columns,
    table_owners,
    tests_per_model,
    unmatched_names,
    watched_tables,
)
from stackyard.results import RunResult
from stackyard.warehouse.base import Warehouse

STEP = "monitors"
# How long a pass that found a null rate or duplicates anomalous stays out of their medians:
# the anomaly lasts until fixed, and a change that lasts longer becomes the new usual.
ALERTED_KEPT_OUT_DAYS = 14


def monitor_run(
    *,
    project: ProjectConfig,
    project_dir: Path,
    transform_dir: Path,
    warehouse: Warehouse,
    run: RunResult,
    console: Console,
    unchanged: Unchanged | None = None,
) -> MonitorReport:
    """Monitor every table a run loaded or built; the runner's last step.

    Args:
        project: the project's configuration (``monitors:`` section included).
        project_dir: the project folder.
        transform_dir: the dbt project folder (its ``target/manifest.json`` gives lineage).
        warehouse: the run's target.
        run: the run that just finished.
        console: where progress goes (as step ``monitors``).
        unchanged: set when the run changed no table: the previous pass's measurements may
            then be reused (:mod:`stackyard.monitors.reuse`).

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
    return suite.check(run, unchanged)


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

    def check(self, run: RunResult | None, unchanged: Unchanged | None = None) -> MonitorReport:
        """Measure, judge, record and alert.

        Args:
            run: the run just finished, or ``None`` for an on-demand pass.
            unchanged: the run changed no table (:mod:`stackyard.monitors.reuse`).

        Returns:
            The pass's report.
        """
        now = self.clock().astimezone(UTC)
        run_id = run.run_id if run else now.strftime("%Y%m%dT%H%M%S") + "-m" + uuid.uuid4().hex[:5]
        if not self.config.enabled:
            return MonitorReport(
                run_id=run_id, measured_at=now, notes=("monitors are disabled (monitors.enabled)",)
            )
        lineage = Lineage.load(self.transform_dir, self.warehouse.target_name)
        refuse_entries_naming_one_table(self.project, lineage)
        store = MetricStore(self.warehouse)
        store.ensure()
        snapshots = store.snapshots()
        columns = table_columns(self.warehouse)
        targets = watched_tables(self.project, run, lineage, snapshots, columns)
        relations = [t.relation for t in targets]
        today = now.date()
        since = today - timedelta(days=AnomalyConfig().training_days + self.config.recheck_days + 7)
        # Volumes reach as far back as the detector reads (half a year of tails and trend),
        # not only its training window: health then sees what the benchmark measured.
        volumes_since = volume_history_start(today, self.config)
        context = PassHistory(
            volumes=store.volumes(relations, volumes_since),
            # A pass that found a null rate or duplicates anomalous stays out of their
            # medians for two weeks: without that the problem read as usual two passes later.
            history=store.history(
                relations,
                ("null_rate", "duplicates", "freshness", "row_count"),
                since,
                alerted_since=today - timedelta(days=ALERTED_KEPT_OUT_DAYS),
            ),
            alerted=store.alerted_days(relations, "volume", volumes_since),
            alerted_columns=store.alerted_columns(relations, COLUMN_CHECKS, volumes_since),
            incidents=defaultdict(set, lineage.with_upstream_marks(store.marked_days())),
            arrivals=store.arrivals(relations, since),
        )
        tests = tests_per_model(self.warehouse, run, lineage)
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
        built = built_models(run)
        cache = MeasurementCache(self.project_dir, self.warehouse.target_name)
        kept = cache.reusable(unchanged) if run is not None else {}
        measured: dict[str, dict[str, Any]] = {}

        state = Pass(now)
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
                kept=kept.get(table.relation),
                measured=measured,
            )
            healths.append(health)
            self.console.step_progress(STEP, f"{health.table}: {health.status}")

        # As health lists them: a pass's own output led with whatever sorted first by name.
        tables = most_severe_first(healths)
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
        if run is not None and self.warehouse.write_stamp() is not None:
            # Engines without a write stamp never reuse: nothing of theirs is kept.
            cache.keep(run_id, measured)
        notes = unmatched_names(self.project, lineage, [*columns, *snapshots], targets)
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
                owners={t.relation: table_owners(self.project, t) for t in targets},
                context=f"project {self.project.name} · target {self.warehouse.target_name} · "
                f"run {run_id}",
            )
            if run is not None and run.will_retry and run.exit_code and run.worth_retrying:
                notes.append(
                    f"{counted(len(alerts), 'alert')} held: this run failed, and the orchestrator runs "
                    "it again (the last attempt alerts)"
                )
                alerts = []
            elif not self.config.alerts.channels:
                notes.append(
                    f"{counted(len(alerts), 'alert')} not sent: no channel under monitors.alerts.channels"
                )
            notifier = Notifier(
                self.config.alerts, store, self.warehouse.secrets, sleep=self.sleep or time.sleep
            )
            outcomes = notifier.send(alerts, run_id, now)
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
        history: PassHistory,
        state: Pass,
        *,
        run: RunResult | None,
        loaded: bool,
        failed_source: tuple[str, str] | None,
        tests: tuple[list[tuple[str, int | None]], int] | None,
        built: set[str] | None,
        kept: dict[str, Any] | None = None,
        measured: dict[str, dict[str, Any]] | None = None,
    ) -> TableHealth:
        settings = self.config.for_table(table.relation, table.node)
        rel = table.relation
        owners = table_owners(self.project, table)
        checks: list[Check] = []

        def done() -> TableHealth:
            judged = known_incidents(checks, history.incidents.get(rel, set()))
            health = TableHealth(
                rel, table.kind, table.node, sort_checks(judged), owners, table.unique_id
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

        key = as_tuple(settings.key) or table.key
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
        key_of_plan = plan_key(plan)
        reused = reused_metrics(kept, key_of_plan)
        metrics: TableMetrics
        if reused is not None:
            metrics = reused
        else:
            try:
                result = self.warehouse.query(metrics_query(plan, self.warehouse.DIALECT))
            except WarehouseError as exc:
                # Dropped or locked between listing and measuring, a view whose source is
                # gone, a type the engine cannot count: the table's state is "cannot
                # measure", said.
                checks.append(Check("table", "error", f"could not be measured: {exc.message}"))
                return done()
            metrics = parse_metrics(plan, result)
        measurement = metrics_to_json(metrics)
        verdicts = Verdicts(kept.get("verdicts") if kept is not None else None)
        if measured is not None:
            measured[rel] = {"plan": key_of_plan, "metrics": measurement, "verdicts": verdicts.used}
        today = state.now.date()
        state.metrics.append(MetricRow(rel, "row_count", metrics.row_count, day=today))
        ahead = future_rows(metrics, today, plan.time_column)
        if ahead is not None:
            checks.append(ahead)
            metrics = metrics.up_to(today)
        state.snapshots.append(
            Snapshot(rel, table.kind, table.node, table.unique_id, dict(columns), state.now)
        )

        if failed_source is not None:
            source, error = failed_source
            checks.append(
                Check("load", "anomaly", f"the load of source '{source}' failed: {error}")
            )
        checks.extend(
            judge_volume(
                self.config,
                table,
                plan.time_column,
                metrics,
                history,
                state,
                settings,
                run,
                loaded,
                failed_source[0] if failed_source else None,
                verdicts,
                unusable_time_column=plan.unusable_time_column,
            )
        )
        checks.append(
            judge_freshness(
                self.project.defaults.freshness, table, metrics, history, state, run, built
            )
        )
        detector = anomaly_config(settings)
        until = emptied_until(history.volumes.get(rel, {}), metrics.days, today)
        # Out of every column and dimension baseline, as out of volume's: the days volume
        # alerted on and the marked incidents; and out of each series, the days it alerted on.
        unusable, alerted = history.excluded(rel), history.alerted_series(rel)
        checks.extend(
            verdicts.judged(
                # a pure function of the measurement, the plan, the calendar, the settings,
                # the newest day counted before (emptied since) and the days kept out
                [
                    "columns",
                    key_of_plan,
                    measurement,
                    self.config.holidays,
                    detector.model_dump(),
                    str(until),
                    sorted(str(d) for d in unusable),
                    sorted(
                        [*name, *sorted(str(d) for d in days)] for name, days in alerted.items()
                    ),
                ],
                lambda: column_checks(
                    plan,
                    metrics,
                    holidays=self.config.holidays,
                    config=detector,
                    until=until,
                    unusable=unusable,
                    alerted=alerted,
                ),
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
