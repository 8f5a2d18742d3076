"""Loading sources with dlt: one pipeline per source and target, in parallel where allowed.

Interrupted loads: dlt writes each load as a package under ``.stackyard/pipelines`` and only
marks it done once the destination committed it. A run killed mid-load leaves the package
pending; the next ``pipeline.run`` loads pending packages first. Tables with a key merge on it
and the rest are replaced, so finishing a package twice never duplicates rows.

Ctrl-C: dlt is told to stop as its own signal handler would (it stops extracting, finishes the
load jobs already running and leaves the package pending), every source's thread is waited
for, and :class:`~stackyard.errors.Interrupted` carries the sources that finished, so the run
records their rows.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from stackyard.config.orchestration import Retries
from stackyard.config.private import drop_trace, private_dir, tighten
from stackyard.config.project import Project
from stackyard.errors import DeadlineExceededError, Interrupted, StackyardError
from stackyard.ingest.attempts import (
    is_refused,
    looks_transient,
    refused_message,
    retried,
    retry_policy,
    stop_all,
    succeeded_after,
    within_deadline,
)
from stackyard.ingest.backend_fallback import is_panic, panic_message, with_fallback
from stackyard.ingest.counts import (
    known_columns,
    load_detail,
    row_counts,
    tables_as_loaded,
    warehouse_counts,
)
from stackyard.ingest.dlt_settings import dlt_settings
from stackyard.ingest.dlt_threads import import_before_threads, stop_dlt
from stackyard.ingest.drift import describe_contract_violation, nulls_held, required_columns
from stackyard.ingest.load_errors import root_cause, stackyard_error
from stackyard.ingest.probe import SourceProbes
from stackyard.ingest.python_source import whole_source
from stackyard.ingest.recovery import (
    check_state_matches_warehouse,
    finish_pending,
    merged_tables,
    refreshed,
)
from stackyard.ingest.sources import SourceBuild, build_resources, source_url
from stackyard.ingest.user_code import format_traceback, user_frame
from stackyard.results import RejectedRow, SourceLoad, TableLoad
from stackyard.session import Session
from stackyard.transform.staging import dbt_source_names

REJECTED_TABLE = "_rejected_rows"

# dlt's schema contracts (https://dlthub.com/docs/general-usage/schema-contracts). "evolve"
# still freezes data types: a column changing type upstream fails the load loudly rather
# than landing in a variant column nobody selects.
_CONTRACTS: dict[str, Any] = {
    "evolve": {"tables": "evolve", "columns": "evolve", "data_type": "freeze"},
    "freeze": "freeze",
    "discard_row": "discard_row",
    "discard_value": "discard_value",
}


@dataclass(frozen=True)
class LoadRequest:
    """Everything needed to load one source."""

    name: str
    config: Any
    dataset: str
    # None: an ordinary load; () the whole source, or these tables, dropped and loaded again
    refresh: tuple[str, ...] | None = None


@dataclass(frozen=True)
class _Attempt:
    """One try at a source: its result, and how a failure is tried again (``None``: it
    would fail the same way again)."""

    load: SourceLoad
    retry: Retries | None


class Loader:
    """Runs dlt pipelines for a project's sources into one warehouse."""

    def __init__(
        self, session: Session, project: Project | None = None, *, retry: bool = True
    ) -> None:
        """Args:
        session: the target's session (its warehouse is the destination).
        project: the project to load from; default: the session's (a runbook that just
            changed stackyard.yml passes the re-read one).
        retry: retry failed loads per each source's ``retries:`` (an orchestrator that
            retries the step itself turns this off).
        """
        self.retry = retry
        project = project or session.project
        self.project = project.config
        self.project_dir = project.project_dir
        self.warehouse = session.warehouse
        self.secrets = project.secrets
        self.console = session.console
        self.pipelines_dir = private_dir(self.project_dir, "pipelines")
        self.transform_dir = project.transform_dir
        # per source, for messages about contract violations (sources load in threads)
        self._required: dict[str, dict[str, dict[str, list[str]]]] = {}
        # set on Ctrl-C: no source starts, retries or waits any more
        self._stopping = threading.Event()
        # set on a second Ctrl-C: no source's load is waited for any more
        self._give_up = threading.Event()

    def pipeline_name(self, source: str) -> str:
        """dlt pipeline name: one per source and target, so their states never mix; an
        adopted source keeps the name its team used (``pipeline_name``)."""
        own = getattr(self.project.sources[source], "pipeline_name", None)
        return own or f"{self.project.name}__{source}__{self.warehouse.target_name}"

    def pipeline_dir(self, source: str) -> Path:
        """dlt's working folder for a source on this target. A pipeline with its team's own
        name has one per target under ``pipelines/<target>/``: the name alone would share
        one state (and cursors) between targets."""
        name = self.pipeline_name(source)
        if getattr(self.project.sources[source], "pipeline_name", None):
            return self.pipelines_dir / self.warehouse.target_name / name
        return self.pipelines_dir / name

    def load(
        self,
        sources: Sequence[str],
        loaded_at: datetime,
        refresh: Mapping[str, Sequence[str]] | None = None,
        *,
        run_id: str | None = None,
        latest_run: str | None = None,
    ) -> list[SourceLoad]:
        """Load the named sources; a failing source never stops the others.

        Args:
            sources: source names.
            loaded_at: stamped on every row.
            refresh: sources to start over: ``{source: tables}`` drops those tables (every
                table of the source when empty), resets their dlt state, and loads them
                again in full; a source with named tables loads only those.
            run_id, latest_run: this run, and the latest in the target's history; given, a
                source whose probe is as ``latest_run`` kept it is skipped (:mod:`.probe`).

        Returns:
            One result per source, in the order given.

        Raises:
            Interrupted: Ctrl-C, once every source has stopped; ``done`` holds the results
                of the sources that finished.
        """
        requests = [
            LoadRequest(
                name,
                self.project.sources[name],
                self.project.dataset_for(name),
                None if refresh is None or name not in refresh else tuple(refresh[name]),
            )
            for name in sources
        ]
        probes = SourceProbes(self, run_id, latest_run)
        done = probes.skip_unchanged(requests)
        requests = [r for r in requests if r.name not in done]
        workers = min(len(requests), self.project.defaults.parallel_loads)
        if not self.warehouse.PARALLEL_LOADS:
            workers = 1
        with dlt_settings(self.warehouse):
            if workers > 1:
                import_before_threads()
            try:
                loads = self._load_all(requests, loaded_at, workers)
            except Interrupted as stopped:
                kept = probes.keep([*done.values(), *stopped.done])  # type: ignore[list-item]
                raise Interrupted(
                    stopped.message, hint=stopped.hint, done=tuple(kept.values())
                ) from None
            finally:
                for request in requests:  # a load stopped by Ctrl-C leaves dlt's trace too
                    drop_trace(self.pipeline_dir(request.name))
                tighten(self.pipelines_dir.parent)  # .stackyard/: the DuckDB file, dlt's state
        by_name = probes.keep([*done.values(), *loads])
        return [by_name[name] for name in sources]

    def _load_all(
        self, requests: Sequence[LoadRequest], loaded_at: datetime, workers: int
    ) -> list[SourceLoad]:
        """Each source in a thread of its own (``workers`` at a time), so that Ctrl-C, which
        only the main thread sees, finds this thread waiting and free to stop them."""
        if not requests:
            return []
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stackyard-load")
        self._give_up.clear()
        futures = [pool.submit(self._load_one, r, loaded_at) for r in requests]
        try:
            return [f.result() for f in futures]
        except KeyboardInterrupt:
            self._stopping.set()
            running = [r.name for r, f in zip(requests, futures, strict=True) if f.running()]
            if running:  # a source in its own code stops at its next item, maybe much later
                said = f"stopping: waiting for {', '.join(running)}; Ctrl-C again to stop waiting"
                self.console.message("warning", said)
            stop_all(futures, stop_dlt, self._give_up, f"loading {', '.join(running)}")
            stop_dlt(again=True)  # this process may load again (the Python API)
            ended = [not f.cancelled() and f.exception() is None for f in futures]
            stopped = [r.name for r, ok in zip(requests, ended, strict=True) if not ok]
            raise Interrupted(
                f"the load was interrupted: {len(requests) - len(stopped)} of {len(requests)} "
                f"sources finished; {', '.join(stopped)} stopped (what was loaded is kept in "
                "a pending load package)",
                hint="run `stackyard run` again: it finishes the pending packages first, "
                "without duplicate rows",
                done=tuple(f.result() for f, ok in zip(futures, ended, strict=True) if ok),
            ) from None
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def pipeline(self, source: str) -> Any:
        """The dlt pipeline object for a source (attached, not run)."""
        import dlt

        return dlt.pipeline(
            pipeline_name=self.pipeline_name(source),
            destination=self.warehouse.dlt_destination(),
            dataset_name=self.project.dataset_for(source),
            pipelines_dir=str(self.pipeline_dir(source).parent),
        )

    def _load_one(self, request: LoadRequest, loaded_at: datetime) -> SourceLoad:
        step = f"load {request.name}"
        self.console.step_started(step, f"→ {request.dataset}")
        started = time.monotonic()
        failures: list[str] = []

        def retrying(retry: int, failed: _Attempt, wait: float) -> None:
            failures.append(str(failed.load.error))
            self.console.step_progress(
                step,
                f"attempt {retry} failed ({failed.load.error}); retry {retry} of "
                f"{failed.retry.count if failed.retry else 0} in {wait:.1f} s",
            )

        outcome = retried(
            lambda: self._attempt(request, loaded_at, step),
            lambda a: a.load.status == "failed",
            lambda a: a.retry,
            retrying,
            sleep=self._pause,
        )
        result = outcome.result.load
        if result.status == "failed" and self._stopping.is_set():
            raise KeyboardInterrupt  # stopped by Ctrl-C, not a failure of the source
        if result.status == "failed" and outcome.attempts > 1:
            error = f"{result.error} (after {outcome.attempts} attempts)"
            result = SourceLoad(**{**result.__dict__, "error": error})
        elif failures:  # kept where logs and --json see it, not only on a progress line
            notes = (*result.notes, succeeded_after(outcome.attempts, failures))
            result = SourceLoad(**{**result.__dict__, "notes": notes})
        pipeline_dir = self.pipeline_dir(request.name)
        drop_trace(pipeline_dir)
        tighten(pipeline_dir)
        seconds = time.monotonic() - started
        result = SourceLoad(**{**result.__dict__, "seconds": round(seconds, 3)})
        if result.status == "failed":
            self.console.step_finished(step, "failed", result.error or "")
        else:
            kept = request.config.KEPT_OF_A_KEY
            detail = load_detail(result, kept, request.dataset, REJECTED_TABLE)
            warn = result.rejected or result.notes
            self.console.step_finished(step, "warn" if warn else "ok", detail)
        return result

    def _pause(self, seconds: float) -> None:
        """The wait before a retry, which Ctrl-C ends (the next attempt then stops)."""
        self._stopping.wait(seconds)

    def _attempt(self, request: LoadRequest, loaded_at: datetime, step: str) -> _Attempt:
        """One try at loading a source within its deadline; a failure is a result, with
        whether trying again may help."""
        if self._stopping.is_set():
            raise KeyboardInterrupt
        own = request.config.retries
        policy = own if self.retry else Retries(count=0)
        try:
            load = within_deadline(
                lambda: with_fallback(
                    request,
                    lambda r: self._run_pipeline(r, loaded_at, step),
                    project_dir=self.project_dir,
                    secrets=self.secrets,
                    on_fallback=lambda note: self.console.step_progress(step, note),
                    redact=self.secrets.redact,
                ),
                request.config.deadline,
                f"loading source '{request.name}'",
                give_up=self._give_up,
            )
            return _Attempt(load, None)
        except DeadlineExceededError as exc:
            # The given-up attempt may still be running: never start a second one beside it.
            return _Attempt(self._failed(request, str(exc)), None)
        except StackyardError as exc:
            retry = retry_policy(exc, policy, exc.transient)
            failed = self._failed(request, self.secrets.redact(str(exc)), exc.transient)
            return _Attempt(failed, retry)
        except Exception as exc:  # the per-source boundary: dlt, drivers, user code
            ours = stackyard_error(exc)
            contract = describe_contract_violation(
                request.name, exc, self._required.get(request.name, {})
            )
            # Bad input (a malformed row, a broken contract) fails the same way again.
            retryable = ours.transient if ours else contract is None and looks_transient(exc)
            message = str(ours) if ours else contract or root_cause(exc)
            refused = not ours and retryable and is_refused(exc)
            if refused:
                url = source_url(request.name, request.config, self.project_dir, self.secrets)
                message = f"source '{request.name}': {refused_message(exc, url)}"
                # Its quick retries (a server restarting) even when an orchestrator retries
                # the run: its long waits would only say the same thing later.
                policy = own
            where = user_frame(exc, self.project_dir)
            if where and where.split(" in ")[0] not in message:
                message = f"{message} (at {where})"
            transient = retryable and not refused
            failed = self._failed(request, self.secrets.redact(message), transient, exc)
            return _Attempt(failed, retry_policy(exc, policy, retryable))
        except BaseException as exc:  # a native extension's panic: a failed load, not a crash
            if not is_panic(exc):
                raise
            message = panic_message(request.name, request.config, exc)
            return _Attempt(self._failed(request, self.secrets.redact(message), False, exc), None)

    def _failed(
        self,
        request: LoadRequest,
        message: str,
        transient: bool = True,
        exc: BaseException | None = None,
    ) -> SourceLoad:
        trace = None if exc is None else self.secrets.redact(format_traceback(exc))
        kept: dict[str, Any] = {"error": message, "traceback": trace, "transient": transient}
        return SourceLoad(request.name, request.dataset, "failed", **kept)

    def _run_pipeline(self, request: LoadRequest, loaded_at: datetime, step: str) -> SourceLoad:
        pipeline = self.pipeline(request.name)
        if request.refresh is not None:
            # Starting over: forget the local state, which may describe a warehouse that is
            # gone; what the warehouse still has is read back below and dropped by the run.
            pipeline = pipeline.drop()
        if not pipeline.default_schema_name:
            # No local state (a first run, or a fresh clone): restore dlt's state and schema
            # from the warehouse first, so what is already loaded is known.
            pipeline.sync_destination()
        known = known_columns(pipeline)
        if request.refresh is not None:
            # Tables loaded again start over as in a fresh project: their column types come
            # from what the source holds now (a CSV column that gained fractions is read as
            # a double, not held to its old integer type).
            known = {t: c for t, c in known.items() if request.refresh and t not in request.refresh}
        required = required_columns(
            self.transform_dir,
            dbt_source_names(request.name),
            known,
            self.warehouse.DIALECT,
        )
        self._required[request.name] = required
        build = build_resources(
            request.name,
            request.config,
            project_dir=self.project_dir,
            secrets=self.secrets,
            loaded_at=loaded_at,
            known_columns=known,
            required=required,
            target=self.warehouse.target_name,
            text_holds_nul=self.warehouse.TEXT_HOLDS_NUL,
            optional=nulls_held(self.warehouse, request.dataset),
        )
        try:
            return self._load_build(pipeline, request, build, loaded_at, step)
        finally:
            build.close()

    def _load_build(
        self,
        pipeline: Any,
        request: LoadRequest,
        build: SourceBuild,
        loaded_at: datetime,
        step: str,
    ) -> SourceLoad:
        load_ids = finish_pending(pipeline, request.name, request.config.READ_ONCE, build.notes)
        run_options: dict[str, Any] = {"schema_contract": _CONTRACTS[request.config.contract]}
        resources = build.resources
        if request.refresh is None:
            check_state_matches_warehouse(pipeline, request.name, self.warehouse.target_name)
        else:
            resources, run_options["refresh"] = refreshed(request.name, resources, request.refresh)
            # Postgres refuses to drop a table a dbt view reads; the run builds them again.
            self.warehouse.drop_views_reading(request.dataset, request.refresh)
        data: Any = resources
        if build.source is not None:
            data, own_contract = whole_source(pipeline, build.source, resources)
            if own_contract:
                del run_options["schema_contract"]
        info = pipeline.run(data, **run_options)
        build.settle(pipeline, info.loads_ids)
        load_ids.extend(info.loads_ids)
        tables = tuple(
            TableLoad(t.table, t.rows, t.duplicates + build.duplicates.get(t.table, 0))
            for t in warehouse_counts(
                pipeline, load_ids, row_counts(pipeline), merged_tables(pipeline)
            )
        )
        deleted = self._reconcile_deletes(pipeline, request, loaded_at)
        if deleted:
            known_tables = {t.table for t in tables}
            tables = tuple(
                TableLoad(t.table, t.rows, t.duplicates, deleted.get(t.table, 0)) for t in tables
            ) + tuple(TableLoad(t, 0, 0, n) for t, n in deleted.items() if t not in known_tables)
        if build.rejected:
            load_ids.extend(self._keep_rejected(pipeline, build.rejected, loaded_at))
        self.warehouse.after_load(request.dataset, tables_as_loaded(pipeline))
        build.loaded()  # everything is in the warehouse: a stream acknowledges its messages
        for table in tables:
            self.console.step_progress(step, f"{table.table}: {table.rows:,} rows")
        return SourceLoad(
            source=request.name,
            schema=request.dataset,
            status="loaded",
            tables=tables,
            load_ids=tuple(load_ids),
            rejected=len(build.rejected),
            rejected_in=build.rejected_by_table(),
            notes=tuple(build.notes),
        )

    def _reconcile_deletes(
        self, pipeline: Any, request: LoadRequest, loaded_at: datetime
    ) -> dict[str, int]:
        from stackyard.config.model import SqlDatabaseSource

        config = request.config
        if not isinstance(config, SqlDatabaseSource):
            return {}
        from stackyard.ingest.deletes import reconcile_deletes
        from stackyard.ingest.sources import connection_url

        url = connection_url(request.name, config, self.project_dir, self.secrets)
        return reconcile_deletes(pipeline, config, url, loaded_at)

    def _keep_rejected(
        self, pipeline: Any, rejected: list[RejectedRow], loaded_at: datetime
    ) -> list[str]:
        rows = [
            {
                "table_name": r.table,
                "file": r.file,
                "line": r.line,
                "column_name": r.column,
                "reason": r.reason,
                "raw": r.raw,
                "rejected_at": loaded_at,
            }
            for r in rejected
        ]
        # Typed, so that the table has every column even when no row has a value there (a
        # load whose rejects had no line made a table without `line`).
        columns = [
            {"name": n, "data_type": t, "nullable": True}
            for n, t in (
                ("table_name", "text"),
                ("file", "text"),
                ("line", "bigint"),
                ("column_name", "text"),
                ("reason", "text"),
                ("raw", "text"),
                ("rejected_at", "timestamp"),
            )
        ]
        info = pipeline.run(
            rows, table_name=REJECTED_TABLE, write_disposition="append", columns=columns
        )
        return list(info.loads_ids)
