"""Running a backfill: plan the partitions, take the lease, drive workers, validate, record.

Every step goes through the ledger first, so a run killed at any moment leaves a ledger the
same command resumes from: partitions recorded ``success`` are never run again, ``running``
ones (the killed run's) are re-run — replacing a window is idempotent — and the windows are the
ones recorded, not recomputed from today's date.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stackyard.console import Console, NullConsole
from stackyard.errors import StackyardError, UsageError, WarehouseError
from stackyard.runbooks.backfill.connection import Connection
from stackyard.runbooks.backfill.ledger import (
    BackfillRecord,
    Ledger,
    PartitionRecord,
    holder_name,
)
from stackyard.runbooks.backfill.partitions import (
    Grain,
    Window,
    parse_bound,
    partitions,
    time_zone,
)
from stackyard.runbooks.backfill.retention import prune
from stackyard.runbooks.backfill.targets import BackfillTarget, Worker
from stackyard.runbooks.backfill.validation import retried, validate
from stackyard.runbooks.backfill.windows import run_size, runs


@dataclass(frozen=True)
class BackfillOptions:
    """What ``stackyard backfill`` was asked to do."""

    target: str
    start: str
    end: str
    grain: Grain = "day"
    tz: str = "UTC"
    workers: int = 1
    cascade: bool = False
    dry_run: bool = False
    retry_failed: bool = False
    force: bool = False
    yes: bool = False
    budget_rows: int | None = None
    tolerance: float = 0.0
    stale_after: float = 30.0
    run_size: int | None = None
    engine: str = "auto"


@dataclass(frozen=True)
class BackfillResult:
    """The outcome: the ledger's view of the backfill after it ran (or the dry-run plan)."""

    record: BackfillRecord
    resumed: bool
    executed: tuple[int, ...]
    dry_run: bool = False
    estimate: dict[str, Any] = field(default_factory=dict)
    cascaded: tuple[BackfillResult, ...] = ()
    engine: str | None = None
    engine_note: str | None = None
    #: ``--cascade``'s table (and plain incremental) models downstream, each once at the end:
    #: ``{"model", "status": success|error|not_rebuilt, "message"}``.
    rebuilt: tuple[dict[str, str], ...] = ()
    #: ``--cascade`` from a source table: why this model's range is wider than the source's
    #: (rows re-loaded have event times before or after it; :mod:`.cascade`).
    widened: str | None = None
    #: What the user should know though nothing failed (partitions after now: no data yet).
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Every partition succeeded (or was skipped on purpose) and validation passed."""
        if self.dry_run:
            return True
        partitions_ok = all(p.status == "success" for p in self.record.partitions)
        valid = bool((self.record.validation or {}).get("ok"))
        rebuilt_ok = all(m["status"] == "success" for m in self.rebuilt)
        return partitions_ok and valid and rebuilt_ok and all(c.ok for c in self.cascaded)

    @property
    def exit_code(self) -> int:
        """0 when :attr:`ok`, else 1."""
        return 0 if self.ok else 1

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` shape: the backfill id and each partition's status."""
        r = self.record
        return {
            "backfill_id": r.backfill_id,
            "target": r.target,
            "status": "dry_run" if self.dry_run else r.status,
            "ok": self.ok,
            "resumed": self.resumed,
            "dry_run": self.dry_run,
            "partitions": [
                {
                    "start": p.window_start,
                    "end": p.window_end,
                    "status": p.status,
                    "attempt": p.attempt,
                    "worker": p.worker,
                    "rows_written": p.rows_written,
                    "error": p.error,
                    "executed": p.seq in self.executed,
                    "engine": p.engine,
                }
                for p in r.partitions
            ],
            "engine": self.engine,
            "engine_note": self.engine_note,
            "validation": r.validation,
            "estimate": self.estimate,
            "cascaded": [c.to_dict() for c in self.cascaded],
            "rebuilt": [dict(m) for m in self.rebuilt],
            "widened": self.widened,
            "warnings": list(self.warnings),
        }


class BackfillJob:
    """One backfill of one target on one warehouse.

    Args:
        target: the resolved model or source table.
        session_factory: makes a worker's own connection (one per worker, plus the ledger's).
        mirror_dir: where the ledger's JSON mirror goes.
        pipelines_dir: where workers keep their dlt pipelines.
        warehouse_target: the stackyard target name, for the ledger.
        console: progress.
        preimage_days: how long successful backfills' pre-images are kept; expired ones are
            dropped after each successful backfill.
    """

    def __init__(
        self,
        target: BackfillTarget,
        *,
        session_factory: Callable[[], Connection],
        mirror_dir: Path,
        pipelines_dir: Path,
        warehouse_target: str,
        console: Console | None = None,
        preimage_days: float = 7.0,
    ) -> None:
        self.target = target
        self.preimage_days = preimage_days
        self.session_factory = session_factory
        self.mirror_dir = mirror_dir
        self.pipelines_dir = pipelines_dir
        self.warehouse_target = warehouse_target
        self.console = console or NullConsole()

    def windows(self, options: BackfillOptions) -> list[Window]:
        """The partitions of the requested range."""
        zone = time_zone(options.tz)
        return partitions(
            parse_bound(options.start, zone), parse_bound(options.end, zone), options.grain, zone
        )

    def execute(
        self, options: BackfillOptions, skip: frozenset[str] = frozenset()
    ) -> BackfillResult:
        """Run (or, with ``dry_run``, explain) the backfill.

        Args:
            options: the command's options.
            skip: window starts not to run (their upstream partition failed: ``--cascade``).

        Raises:
            LeaseHeldError: another live backfill holds the target.
            UsageError: bad options, or the estimate is over budget without ``yes``.
        """
        if options.workers < 1:
            raise UsageError("--workers must be 1 or more")
        # Before anything is replaced: a negative tolerance fails every validation after the
        # rows were already written, and a negative budget refuses every backfill.
        if options.tolerance < 0 or options.tolerance != options.tolerance:
            raise UsageError(
                f"--tolerance must be 0 or more, got {options.tolerance}",
                hint="0 demands equal counts; 0.01 allows 1 %",
            )
        if options.budget_rows is not None and options.budget_rows < 0:
            raise UsageError(f"--budget-rows must be 0 or more, got {options.budget_rows}")
        windows = self.windows(options)
        ledger = Ledger(self.session_factory(), self.mirror_dir)
        try:
            ledger.ensure()
            return self._execute(ledger, options, windows, skip)
        finally:
            ledger.session.close()

    def _execute(
        self, ledger: Ledger, options: BackfillOptions, windows: list[Window], skip: frozenset[str]
    ) -> BackfillResult:
        key = (windows[0].start.isoformat(), windows[-1].end.isoformat(), options.grain, options.tz)
        resume_id = None if options.force else ledger.resumable(self.target.name, key)
        if options.dry_run or options.budget_rows is not None:
            estimate = self._estimate(ledger, options, windows)
            budget = options.budget_rows
            over = (
                f"the backfill would write about {estimate['rows']:,} rows, over the budget of "
                f"{budget:,}"
                if budget is not None and estimate["rows"] > budget and not options.yes
                else None
            )
            if options.dry_run:
                # The dry run said nothing of it, and the same command without it was refused.
                estimate["refused"] = over
                return self._plan(options, windows, resume_id, ledger, estimate)
            if over:
                raise UsageError(over, hint="check it with --dry-run, then pass --yes to go ahead")
        self.target.choose_engine(ledger.session, options.engine, windows)
        backfill_id = resume_id or uuid.uuid4().hex[:12]
        holder = holder_name(backfill_id)
        ledger.acquire(self.target.name, backfill_id, holder, options.stale_after)
        preimage = f"backfill_{backfill_id}__pre"
        try:
            if resume_id:
                ledger.set_status(resume_id, "running", holder)
                prior = ledger.get(resume_id) if options.retry_failed else None
                # Partitions that failed validation are retried too (it ran none, for good).
                ledger.reset(
                    resume_id, ("running", "failed") if prior else ("running",), retried(prior)
                )
                again = [p.seq for p in prior.partitions if p.status == "failed"] if prior else []
                self.target.forget_preimages(ledger.session, preimage, again)
            else:
                record = BackfillRecord(
                    backfill_id,
                    self.target.name,
                    self.target.kind,
                    self.warehouse_target,
                    key[0],
                    key[1],
                    options.grain,
                    options.tz,
                    options.workers,
                    "running",
                    holder,
                    self.target.fingerprint(),
                    None,
                    preimage,
                )
                ledger.create(record, windows)
                ledger.supersede(self.target.name, key, backfill_id)
            self.target.ensure_preimage(ledger.session, preimage)
            executed, said = self._run_partitions(ledger, backfill_id, options, preimage, skip)
            step = f"backfill {self.target.name}"
            self.target.cleanup(ledger.session, options.workers)
            record = ledger.get(backfill_id)
            report = validate(self.target, ledger.session, record, options.tolerance)
            failed = any(p.status != "success" for p in record.partitions) or not report["ok"]
            # Finished only now: it read "✔ … partitions run" over a failed validation.
            if not report["ok"]:
                said += "; validation failed"
            self.console.step_finished(step, "failed" if failed else "ok", said)
            ledger.finish(backfill_id, "failed" if failed else "success", report)
            if not failed:
                prune(ledger, self.preimage_days)
        finally:
            ledger.release(self.target.name, backfill_id)
        return BackfillResult(
            ledger.get(backfill_id),
            bool(resume_id),
            tuple(executed),
            engine=self.target.engine,
            engine_note=self.target.engine_note,
        )

    # ------------------------------------------------------------------ workers

    def _run_partitions(
        self,
        ledger: Ledger,
        backfill_id: str,
        options: BackfillOptions,
        preimage: str,
        skip: frozenset[str],
    ) -> tuple[list[int], str]:
        record = ledger.get(backfill_id)
        skipped = [
            p.seq for p in record.partitions if p.status == "pending" and p.window_start in skip
        ]
        ledger.finish_partitions(
            backfill_id,
            [(q, "skipped", 0.0, None, "upstream partition failed: not run") for q in skipped],
        )
        pending = {
            p.seq: p
            for p in record.partitions
            if p.status == "pending" and p.window_start not in skip
        }
        size = run_size(len(pending), options.workers, options.run_size)
        todo: queue.Queue[list[PartitionRecord]] = queue.Queue()
        for run in runs(sorted(pending)):
            for i in range(0, len(run), size):
                todo.put([pending[q] for q in run[i : i + size]])
        total = len(pending)
        self.target.prepare()
        step = f"backfill {self.target.name}"
        self.console.step_started(step, f"{total} of {len(record.partitions)} partitions to run")
        executed: list[int] = []
        sessions: list[Connection] = []  # the workers' own, to interrupt on Ctrl-C
        done, stopping = threading.Event(), threading.Event()
        beat = threading.Thread(
            target=self._heartbeat, args=(ledger, backfill_id, done), daemon=True
        )
        beat.start()
        workers = [
            threading.Thread(
                target=self._work,
                args=(n, ledger, backfill_id, todo, preimage, executed, step, stopping, sessions),
                name=f"backfill-w{n}",
            )
            for n in range(min(options.workers, max(todo.qsize(), 1)))
        ]
        for w in workers:
            w.start()
        try:
            for w in workers:
                w.join()
        except KeyboardInterrupt:
            # Workers take no further partition and their statements stop (each rolls back,
            # its partition left "running" for the same command to run again); they end
            # before the connection is closed: on DuckDB their cursors share it ("busy").
            stopping.set()
            for session in list(sessions):
                session.interrupt()
            done.set()
            for thread in (*workers, beat):
                thread.join(timeout=60)
            raise
        done.set()
        beat.join()
        ran = set(executed)
        failed = sum(
            1 for p in ledger.get(backfill_id).partitions if p.seq in ran and p.status == "failed"
        )
        # It read "✔ … partitions run" over partitions that had failed.
        said = f"{len(executed)} partitions run" + (f", {failed} failed" if failed else "")
        return sorted(executed), said

    def _heartbeat(self, ledger: Ledger, backfill_id: str, done: threading.Event) -> None:
        while not done.wait(2.0):
            try:
                ledger.heartbeat(backfill_id, self.target.name)
            except WarehouseError as exc:
                # One missed beat is not fatal (the lease goes stale only after many); say so.
                self.console.message("warning", f"backfill heartbeat failed: {exc.message}")

    def _work(
        self,
        number: int,
        ledger: Ledger,
        backfill_id: str,
        todo: queue.Queue[list[PartitionRecord]],
        preimage: str,
        executed: list[int],
        step: str,
        stopping: threading.Event,
        sessions: list[Connection],
    ) -> None:
        session = self.session_factory()
        sessions.append(session)
        worker = Worker(number, session, self.pipelines_dir)
        try:
            while not stopping.is_set():
                try:
                    parts = todo.get_nowait()
                except queue.Empty:
                    return
                seqs = [p.seq for p in parts]
                ledger.start_partitions(
                    backfill_id, seqs, number, self.target.fingerprint(), self.target.engine
                )
                executed.extend(seqs)
                started = time.perf_counter()
                try:
                    outcomes = self.target.replace_run(
                        [p.window for p in parts], seqs, worker, preimage
                    )
                except StackyardError as exc:
                    outcomes = [exc.message] * len(parts)
                # One run covered them all: each partition gets an equal share of its time.
                seconds = (time.perf_counter() - started) / len(parts)
                ledger.finish_partitions(
                    backfill_id,
                    [
                        (q, "failed", seconds, None, o)
                        if isinstance(o, str)
                        else (q, "success", seconds, o, None)
                        for q, o in zip(seqs, outcomes, strict=True)
                    ],
                )
                for p, o in zip(parts, outcomes, strict=True):
                    said = f"failed: {o}" if isinstance(o, str) else f"{o:,} rows"
                    self.console.step_progress(step, f"{p.window_start} {said}")
        except (Exception, KeyboardInterrupt):  # KeyboardInterrupt: interrupted by Ctrl-C
            if not stopping.is_set():
                raise
        finally:
            session.close()

    # ------------------------------------------------------------------ dry run

    def _estimate(
        self, ledger: Ledger, options: BackfillOptions, windows: list[Window]
    ) -> dict[str, Any]:
        """Rows, bytes and time the backfill is expected to take, and where each figure comes
        from: ``explain`` (the engine's planner), ``count`` (counted upstream now), ``guess``
        (the average of this target's past partitions) or ``unknown``."""
        found = self.target.estimate(ledger.session, windows, exact=options.budget_rows is not None)
        p = ledger.session.param()
        past = ledger.session.query(
            "SELECT avg(p.seconds), avg(p.rows_written) FROM stackyard.backfill_partitions p "
            "JOIN stackyard.backfills b ON p.backfill_id = b.backfill_id "
            f"WHERE b.target = {p} AND p.status = 'success'",
            (self.target.name,),
        ).rows
        per, past_rows = past[0] if past else (None, None)
        rows = found["rows_per_partition"]
        method = found["method"]
        if method == "unknown" and past_rows is not None:
            rows, method = [round(float(past_rows))] * len(windows), "guess"
        return {
            "rows": sum(r for r in rows if r is not None and r > 0),
            "rows_per_partition": rows,
            "rows_method": method,
            "bytes_scanned": found.get("bytes_scanned"),
            "seconds_per_partition": round(float(per), 3) if per is not None else None,
            "projected_seconds": (
                round(float(per) * len(windows) / options.workers, 1) if per is not None else None
            ),
        }

    def _plan(
        self,
        options: BackfillOptions,
        windows: list[Window],
        resume_id: str | None,
        ledger: Ledger,
        estimate: dict[str, Any],
    ) -> BackfillResult:
        done: dict[str, str] = {}
        if resume_id:
            resumed = ledger.get(resume_id)
            retry = set(retried(resumed)) if options.retry_failed else set()
            done = {p.window_start: p.status for p in resumed.partitions if p.seq not in retry}
        parts = tuple(
            PartitionRecord(
                i,
                *w.key(),
                "skipped" if done.get(w.key()[0]) == "success" else "pending",
                0,
                None,
                None,
                estimate["rows_per_partition"][i],
                None,
                None,
            )
            for i, w in enumerate(windows)
        )
        record = BackfillRecord(
            resume_id or "(new)",
            self.target.name,
            self.target.kind,
            self.warehouse_target,
            windows[0].key()[0],
            windows[-1].key()[1],
            options.grain,
            options.tz,
            options.workers,
            "planned",
            None,
            self.target.fingerprint(),
            None,
            None,
            parts,
        )
        return BackfillResult(record, bool(resume_id), (), dry_run=True, estimate=estimate)
