"""``stackyard run``: ensure schemas → load sources → dbt build → freshness → record.

Everything happens in one process. A failing source does not stop the others; the models
downstream of it are excluded from ``dbt build`` (and reported as skipped with the reason),
so nothing is rebuilt on stale data.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from stackyard.errors import (
    EXIT_USAGE,
    Abandoned,
    EngineRefusedError,
    Interrupted,
    StackyardError,
)
from stackyard.ingest.attempts import within_deadline
from stackyard.ingest.loader import Loader
from stackyard.metadata.history import History, new_run_id
from stackyard.metadata.run_leases import TRANSFORMATION, RunLeases, source_lease
from stackyard.metadata.schema import METADATA_SCHEMA
from stackyard.results import (
    FreshnessResult,
    NodeResult,
    RunResult,
    SkippedModel,
    SourceLoad,
    StepResult,
    StepStatus,
    step_status_of_build,
    step_status_of_freshness,
)
from stackyard.runner.build_skip import (
    built_anyway,
    missing_models,
    sources_loaded_elsewhere,
    unchanged_since,
    unloaded_tables_hint,
)
from stackyard.runner.dropped_views import views_again
from stackyard.runner.external_freshness import check_external
from stackyard.runner.interruption import not_recorded, record_refused, record_stopped
from stackyard.runner.monitor_pass import monitor_pass, seal_measurements
from stackyard.runner.source_freshness import check_sources, declares_freshness
from stackyard.runner.sql_refusal import refuse_sql_build_early
from stackyard.session import Session
from stackyard.transform.state import read_manifest, transform_fingerprint

if TYPE_CHECKING:
    from stackyard.monitors.reuse import Unchanged


class RunJob:
    """One execution of ``stackyard run``."""

    def __init__(
        self,
        session: Session,
        *,
        force_build: bool = False,
        monitors: bool = True,
        refresh: Mapping[str, Sequence[str]] | None = None,
        variables: Mapping[str, Any] | None = None,
        lease_wait: float = 0.0,
        retry_loads: bool = True,
        state: Path | None = None,
        engine: str = "auto",
        will_retry: bool = False,
    ) -> None:
        self.session = session
        self.will_retry = will_retry  # RunResult.will_retry
        # dbt: `dbt build`; auto/sql: compiled SQL run here, the rest by dbt (runner.sql_build)
        self.engine = engine
        # --state: dbt's `state:` selectors compare to the manifest in this folder, and only
        # the sources the selected models read are loaded (slim CI).
        self.state = state
        self.variables = dict(variables or {})
        # 0: a second trigger while another run holds a lease is refused at once
        self.lease_wait = lease_wait
        self.retry_loads = retry_loads
        self.project = session.project.config
        self.project_dir = session.project.project_dir
        self.transform_dir = session.project.transform_dir
        self.warehouse = session.warehouse
        self.secrets = session.project.secrets
        self.console = session.console
        self.force_build = force_build
        self.monitors = monitors and self.project.monitors.enabled
        # --full-refresh / reload: these sources (or tables) start over, dbt rebuilds in full
        self.refresh = refresh
        self._steps: list[StepResult] = []
        self._current = ""
        self._previous: dict[str, Any] | None = None
        self._probe_base: str | None = None
        self._attempted = False
        self._selected: list[str] = []
        # Set when this run changed no table: its monitor pass may reuse measurements.
        self._unchanged: Unchanged | None = None
        # What the run has done so far, recorded as it stands when Ctrl-C stops it.
        self._loads: list[SourceLoad] = []  # and what the build did, once it ended
        self._nodes: list[NodeResult] = []
        self._freshness: list[FreshnessResult] = []
        self._skipped: list[SkippedModel] = []
        self._build: Literal["built", "skipped", "not run"] = "not run"
        # Set before the run's rows are written: an interrupt then replaces what was written.
        self._recording = False
        self._recorded: RunResult | None = None
        self._since = (datetime.now(UTC), time.monotonic())  # the current step's start

    def execute(self, select: Sequence[str] = ()) -> RunResult:
        """Run the job.

        Args:
            select: source names (each with everything downstream of it) and/or dbt
                selectors; empty means every enabled source and the whole dbt project.

        Returns:
            The run's result, already written to the history tables when possible.

        Raises:
            Interrupted: Ctrl-C, once what was running has stopped; the run is recorded as
                ``interrupted`` with the rows it loaded.
        """
        # Before this run writes anything: whether anything wrote since the last run ended.
        stamp = self.warehouse.write_stamp() if self.monitors else None
        run_id = new_run_id()
        started_at = datetime.now(UTC)
        sources, dbt_select = self._selection(select)
        # Sources another tool loads (Airbyte, Fivetran …): never loaded, their freshness
        # is checked before the build instead.
        pipes = self.warehouse.SNOWPIPE
        external = [s for s in sources if not self.project.sources[s].loaded_by_stackyard(pipes)]
        loaded = [s for s in sources if s not in external]
        for name in loaded:
            self.warehouse.check_source(name, self.project.sources[name])

        if self.engine == "sql":
            refuse_sql_build_early(self.warehouse, self.transform_dir)
        leases = [*(source_lease(s) for s in sources), TRANSFORMATION]
        # Two runs of a source, two builds or two runs on a DuckDB file never overlap: refused.
        RunLeases(self.warehouse).open_for_run(leases, wait=self.lease_wait)
        self._step("ensure schemas", lambda: self._ensure_schemas(loaded))
        seconds = self._lease_seconds(sources)
        RunLeases(self.warehouse).acquire(leases, run_id, seconds, wait=self.lease_wait)
        self.session.release()  # dlt and dbt open their own connections
        interrupted = abandoned = False
        try:
            return self._execute(run_id, started_at, select, sources, dbt_select, external, stamp)
        except Abandoned as exc:
            # The build may still use the warehouse: nothing is recorded, released or closed.
            abandoned = True
            raise not_recorded(run_id, exc) from None
        except KeyboardInterrupt as exc:
            interrupted = True
            raise record_stopped(self, run_id, started_at, select, exc) from None
        except EngineRefusedError as exc:
            if any(load.rows for load in self._loads):
                record_refused(self, run_id, started_at, select, exc)
            raise
        finally:
            if not abandoned:
                self._release(leases, run_id, seal=self.monitors and not interrupted)

    def _release(self, leases: Sequence[str], run_id: str, *, seal: bool) -> None:
        """Give back the leases and connection; ``seal`` what a cut monitor pass measured."""
        RunLeases(self.warehouse).release(leases, run_id)
        self.session.release()
        if seal:
            seal_measurements(self.session, run_id)

    def _execute(
        self,
        run_id: str,
        started_at: datetime,
        select: Sequence[str],
        sources: list[str],
        dbt_select: list[str],
        external: Sequence[str] = (),
        stamp: str | None = None,
    ) -> RunResult:
        loads: list[SourceLoad] = []
        self._attempted = True  # from here on, a failure is a failed run (exit 1), not usage
        to_load = [s for s in sources if s not in external]
        if to_load:
            loader = Loader(self.session, retry=self.retry_loads)
            t0, at = time.monotonic(), datetime.now(UTC)
            self._current, self._since = "load", (at, t0)
            try:
                with self.session.released():  # dlt loads through its own connection
                    loads = loader.load(
                        to_load,
                        started_at,
                        self.refresh,
                        run_id=run_id,
                        latest_run=self._probe_base,
                    )
            except Interrupted as stopped:
                self._loads = [x for x in stopped.done if isinstance(x, SourceLoad)]
                raise
            self._loads = loads
            failed = [load for load in loads if load.status == "failed"]
            self._steps.append(
                StepResult(
                    "load",
                    "failed" if failed else "ok",
                    f"{sum(x.rows for x in loads):,} rows from {len(loads)} sources"
                    + (f"; failed: {', '.join(x.source for x in failed)}" if failed else "")
                    + "".join(f"; {x.source}: {note}" for x in loads for note in x.notes),
                    at,
                    round(time.monotonic() - t0, 3),
                )
            )
        failed_sources = [load.source for load in loads if load.status == "failed"]

        nodes, skipped, freshness = self._nodes, self._skipped, self._freshness
        dbt = self.session.dbt(self._on_node, self.variables)
        dbt.state = self.state
        # Other vars can build other tables: they are part of what "unchanged" compares.
        fingerprint = transform_fingerprint(
            self.transform_dir,
            {
                **self.warehouse.dbt_output(),
                "vars": {**self.project.transform.vars, **self.variables},
            },
        )
        unchanged = (
            None
            if self.force_build or self.refresh is not None or select
            else unchanged_since(self._previous, fingerprint, loads, self.transform_dir.name)
        )
        if external:
            unchanged = None  # another tool may have loaded new rows since the last run
        why_built = None  # why a build the history would skip runs all the same
        if unchanged:
            manifest = read_manifest(self.transform_dir, self.warehouse.target_name)
            why_built = built_anyway(self.warehouse, self.project, manifest)
            unchanged = None if why_built else unchanged
        if unchanged and stamp is not None and self._previous is not None:
            self._unchanged = self._no_table_changed(loads, stamp)
        stale: dict[str, str] = {}
        if external:
            checked_step = self._step(
                "external source freshness",
                lambda: check_external(self, dbt, external, freshness, stale),
                status_of=lambda: step_status_of_freshness(freshness),
            )
            if checked_step.status == "failed" and not stale:
                # unknown freshness is not fresh: nothing is built on what could not be checked
                why = f"could not be checked for freshness: {checked_step.detail}"
                stale.update({s: why for s in external})
        reasons = {s: "failed to load" for s in failed_sources} | stale
        exclude = [f"source:{n}+" for s in reasons for n in self._dbt_names(s)]
        if exclude:
            parents: dict[str, list[str]] = {}  # one entry per model, naming every failed parent
            for source, reason in reasons.items():
                picked = [f"source:{n}+" for n in self._dbt_names(source)]
                for model in dbt.list_models(picked, ["config.materialized:ephemeral"]):
                    parents.setdefault(model, []).append(f"upstream source '{source}' {reason}")
            skipped.extend(SkippedModel(m, "; ".join(r)) for m, r in sorted(parents.items()))
            for s in skipped:
                self.console.step_progress("dbt build", f"skipped {s.name}: {s.reason}")

        def build() -> str:
            from stackyard.runner.build_stop import Stop
            from stackyard.runner.sql_build import build as build_with

            stop = Stop()  # Ctrl-C cancels the running query before anything is closed
            target = self.warehouse.target_name
            before = set(missing_models(self.warehouse, read_manifest(self.transform_dir, target)))
            nodes.extend(
                within_deadline(
                    lambda: build_with(
                        self.engine,
                        dbt,
                        self.warehouse,
                        dbt_select,
                        exclude,
                        self.refresh is not None,
                        self.session.release,
                        self._on_node,
                        stop,
                    ),
                    self.project.transform.deadline,
                    "the dbt build",
                    stop.request,
                )
            )
            manifest = read_manifest(self.transform_dir, target)
            release = self.session.release
            nodes[:] = views_again(dbt, self.warehouse, manifest, nodes, before, release)
            hint = ""
            if step_status_of_build(nodes) == "failed":
                hint = unloaded_tables_hint(self.warehouse, self.project, manifest)
            return self._build_summary(nodes) + "".join(f"; {x}" for x in (why_built, hint) if x)

        if self.state is not None and dbt_select and not self._selected:
            self._skip_step(
                "dbt build",
                f"--select {' '.join(dbt_select)} matches nothing against the manifest in "
                f"{self.state}: nothing changed",
            )
        elif unchanged:
            self._skip_step("dbt build", unchanged)
        else:
            self._step("dbt build", build, status_of=lambda: step_status_of_build(nodes))
        self._build = "skipped" if unchanged else "built"

        manifest = read_manifest(self.transform_dir, self.warehouse.target_name)
        # Without a selection every dbt source is checked: stackyard's, and those of an
        # adopted project that other tools load (their freshness is all the run can tell);
        # with one, those the nodes it built read.
        built = [n.unique_id for n in nodes] if select else None
        others = sources_loaded_elsewhere(self.project, manifest, built)
        if to_load or declares_freshness(manifest, others):
            names = [n for s in to_load if s not in failed_sources for n in self._dbt_names(s)]
            names += others
            failed_names = [n for s in failed_sources for n in self._dbt_names(s)]
            checked = {n for s in external for n in self._dbt_names(s)}
            self._step(
                "source freshness",
                lambda: check_sources(
                    self, dbt, names if select else None, failed_names, checked, freshness
                ),
                status_of=lambda: step_status_of_freshness(freshness),
            )

        result = RunResult(
            run_id=run_id,
            project=self.project.name,
            target=self.warehouse.target_name,
            started_at=started_at,
            finished_at=datetime.now(UTC),
            steps=tuple(self._steps),
            loads=tuple(loads),
            nodes=tuple(nodes),
            freshness=tuple(freshness),
            skipped=tuple(skipped),
            selected=tuple(select),
            will_retry=self.will_retry,
            transform_hash=fingerprint,
            build=self._build,
        )
        recorded = self._step("record run", lambda: self._record(result))
        result = RunResult(**{**result.__dict__, "steps": (*result.steps, recorded)})
        self._recorded = result
        if self.monitors:
            result = monitor_pass(self.session, result, self._unchanged)
        return result

    # ------------------------------------------------------------------ steps

    def _dbt_names(self, source: str) -> tuple[str, ...]:
        """The dbt sources a stackyard source appears as (see ``source_dbt_names``)."""
        from stackyard.transform.inventory import source_dbt_names

        # This target's manifest: the shared one is whichever target dbt ran last.
        manifest = read_manifest(self.transform_dir, self.warehouse.target_name)
        if manifest is None:
            manifest = read_manifest(self.transform_dir)
        return source_dbt_names(self.project, source, manifest)

    def _selection(self, select: Sequence[str]) -> tuple[list[str], list[str]]:
        enabled = [n for n, s in self.project.sources.items() if s.enabled]
        if not select:
            return enabled, []
        sources = [s for s in select if s in self.project.sources]
        dbt_select = [s for s in select if s not in self.project.sources]
        for source in sources:
            # A reload of some tables rebuilds what reads those tables, not the whole source
            # (a full refresh of an unrelated incremental model lost its backfilled history).
            tables = (self.refresh or {}).get(source) or ("",)
            dbt_select += [
                f"source:{n}.{t}+" if t else f"source:{n}+"
                for n in self._dbt_names(source)
                for t in tables
            ]
        if self.state is not None and dbt_select:
            # loaded for the selected models only: what else reads them is not rebuilt
            sources += self._sources_read_by(dbt_select, sources)
        return sources, dbt_select

    def _sources_read_by(self, dbt_select: Sequence[str], named: Sequence[str]) -> list[str]:
        """The enabled sources the selected dbt nodes read directly (the others' tables are
        already in the warehouse or not needed), in stackyard.yml's order."""
        dbt = self.session.dbt(variables=self.variables)
        dbt.state = self.state
        self._selected = dbt.selected_ids(dbt_select)
        read = dbt.source_parents(self._selected)
        return [
            name
            for name, config in self.project.sources.items()
            if config.enabled and name not in named and read & set(self._dbt_names(name))
        ]

    def _no_table_changed(self, loads: Sequence[SourceLoad], stamp: str) -> Unchanged | None:
        """What the monitor pass needs to reuse the last measurements, or ``None`` when a
        load may have written a table: any load package (a table without a key is replaced
        even when it comes back empty) or any table listed."""
        from stackyard.monitors.reuse import Unchanged

        if self._previous is None or any(load.tables or load.load_ids for load in loads):
            return None
        return Unchanged(self._previous["run_id"], stamp)

    def _skip_step(self, name: str, reason: str) -> None:
        self.console.step_started(name)
        self.console.step_finished(name, "skipped", reason)
        self._steps.append(StepResult(name, "skipped", reason, datetime.now(UTC), 0.0))

    def _ensure_schemas(self, sources: Sequence[str]) -> str:
        history = History(self.warehouse)
        history.ensure()
        RunLeases(self.warehouse).ensure()
        self._previous = history.latest()
        # A kept probe counts when kept by the last `stackyard run`, not by a `source add`
        # since (that loaded only its own source, whose probe it dropped).
        base = history.latest(runs_only=True)
        self._probe_base = base["run_id"] if base else None
        schemas = sorted({self.project.dataset_for(s) for s in sources})
        for schema in schemas:
            self.warehouse.ensure_schema(schema)
        return ", ".join([METADATA_SCHEMA, *schemas])

    def _lease_seconds(self, sources: Sequence[str]) -> float:
        """How long this run's leases last if it never gives them back: every attempt of
        every source at its deadline, the waits between them, and the dbt build's deadline."""
        total = self.project.transform.deadline + 600.0
        for name in sources:
            config = self.project.sources[name]
            waits = sum(config.retries.base_delays()) * (1 + config.retries.jitter)
            total += config.deadline * (config.retries.count + 1) + waits
        return total

    def _record(self, result: RunResult) -> str:
        # The connection stays open for the monitor pass and the leases (closing and
        # reopening a DuckDB file checkpoints it each time); execute() closes it at the end.
        self._recording = True
        History(self.warehouse).record(result)
        return f"run {result.run_id} → {METADATA_SCHEMA}.runs"

    def _build_summary(self, nodes: list[NodeResult]) -> str:
        from stackyard.results import Counts

        text = Counts.of((), tuple(nodes)).build_text()
        if self.engine == "dbt":
            return text
        by_sql = sum(1 for n in nodes if n.engine == "sql")
        return f"{text} (of {len(nodes)} nodes, {by_sql} run as SQL, {len(nodes) - by_sql} by dbt)"

    def _on_node(self, resource_type: str, name: str, status: str) -> None:
        self.console.step_progress(self._current, f"{resource_type} {name}: {status}")

    def _step(
        self,
        name: str,
        action: Callable[[], str],
        status_of: Callable[[], StepStatus] | None = None,
    ) -> StepResult:
        self.console.step_started(name)
        self._current = name
        at, t0 = datetime.now(UTC), time.monotonic()
        self._since = (at, t0)
        status: StepStatus
        try:
            detail = action()
            status = status_of() if status_of else "ok"
        except StackyardError as exc:
            if exc.exit_code == EXIT_USAGE and (
                not self._attempted or isinstance(exc, EngineRefusedError)
            ):
                # Configuration and reachability problems stop the run: retrying the other
                # steps would only fail the same way (exit code 2 tells scripts so).
                self.console.step_finished(name, "failed", self.secrets.redact(exc.message))
                raise
            detail, status = self.secrets.redact(str(exc)), "failed"
        step = StepResult(name, status, detail, at, round(time.monotonic() - t0, 3))
        self.console.step_finished(name, status, detail)
        self._steps.append(step)
        return step
