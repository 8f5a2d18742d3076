"""Immutable results of a run, shared by the runner, the history writer and the CLI."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from stackyard.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, counted

# "interrupted": Ctrl-C stopped the step (what it finished is kept; nothing after it ran)
StepStatus = Literal["ok", "warn", "failed", "skipped", "interrupted"]


@dataclass(frozen=True)
class TableLoad:
    """Rows one load wrote to one table."""

    table: str
    rows: int
    # rows of this load that shared a key with a later row of the same load (one was kept)
    duplicates: int = 0
    # rows whose key the source no longer has, marked (_deleted_at) or removed
    deleted: int = 0


@dataclass(frozen=True)
class RejectedRow:
    """A row that did not fit its table, kept with the reason instead of being dropped."""

    table: str
    file: str
    line: int | None
    column: str | None
    reason: str
    raw: str


@dataclass(frozen=True)
class SourceLoad:
    """The outcome of loading one source."""

    source: str
    schema: str
    status: Literal["loaded", "failed", "skipped"]
    tables: tuple[TableLoad, ...] = ()
    load_ids: tuple[str, ...] = ()
    rejected: int = 0
    error: str | None = None
    seconds: float = 0.0
    # the rejected rows by the table they were meant for: stackyard.loads gives each table its
    # own (the source's total on every table row was counted once per table when summed)
    rejected_in: tuple[tuple[str, int], ...] = field(default=(), compare=False, repr=False)
    # what the user should know about a load that succeeded, e.g. that it fell back to another
    # reader (kept in --json; shown after the run)
    notes: tuple[str, ...] = ()
    # the failure's full traceback, shown by `--debug` only (secrets redacted)
    traceback: str | None = field(default=None, compare=False, repr=False)
    # a failed load only: whether trying again later may pass (a network blip, a timeout);
    # False for bad input, a broken contract or a refused connection after its quick retries,
    # which an orchestrator's retries would only repeat (`stackyard run` does not retry them)
    transient: bool = field(default=True, compare=False, repr=False)

    @property
    def rows(self) -> int:
        """Rows loaded across all tables."""
        return sum(t.rows for t in self.tables)

    def rejected_by_table(self) -> dict[str | None, int]:
        """Rejected rows by table, summing to ``rejected``: a table none of the load's own,
        and what no table was named for under ``None``.

        >>> load = SourceLoad("s", "s", "loaded", (TableLoad("a", 5),), rejected=3,
        ...                   rejected_in=(("a", 1), ("b", 1)))
        >>> load.rejected_by_table()
        {'a': 1, 'b': 1, None: 1}
        """
        by_table: dict[str | None, int] = {t.table: 0 for t in self.tables}
        for table, count in self.rejected_in:
            by_table[table] = by_table.get(table, 0) + count
        rest = self.rejected - sum(count for _, count in self.rejected_in)
        if rest or not by_table:
            by_table[None] = by_table.get(None, 0) + rest
        return by_table


@dataclass(frozen=True)
class NodeResult:
    """A dbt model, test, seed or snapshot after ``dbt build``."""

    unique_id: str
    name: str
    resource_type: str
    status: str
    message: str = ""
    failures: int | None = None
    seconds: float = 0.0
    # what ran it: "dbt", or "sql" when `stackyard run --engine auto|sql` ran its compiled SQL
    engine: str = "dbt"

    @property
    def failed(self) -> bool:
        """The node errored or (for a test) found failing rows."""
        return self.status in ("error", "fail", "runtime error")


@dataclass(frozen=True)
class FreshnessResult:
    """``dbt source freshness`` for one source table."""

    source: str
    table: str
    status: str
    max_loaded_at: str | None = None
    age_hours: float | None = None
    message: str = ""


@dataclass(frozen=True)
class SkippedModel:
    """A model that was not built, and why."""

    name: str
    reason: str


@dataclass(frozen=True)
class StepResult:
    """One step of a run as the user saw it."""

    name: str
    status: StepStatus
    detail: str = ""
    started_at: datetime | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class Counts:
    """A run's numbers, computed once: the run line, ``status``, ``--json`` and the history
    all show these, so no two places can disagree."""

    rows_loaded: int = 0
    rows_rejected: int = 0
    rows_collapsed: int = 0  # rows that shared a key with a later row of the same load
    rows_deleted: int = 0  # rows whose key the source no longer has, marked or removed
    models_built: int = 0
    models_errored: int = 0
    models_skipped: int = 0
    seeds_built: int = 0
    snapshots_built: int = 0
    tests_passed: int = 0
    tests_warned: int = 0
    tests_failed: int = 0
    tests_skipped: int = 0

    @classmethod
    def of(
        cls,
        loads: tuple[SourceLoad, ...],
        nodes: tuple[NodeResult, ...],
        skipped: tuple[SkippedModel, ...] = (),
    ) -> Counts:
        """Count loads and dbt nodes (``skipped``: models not handed to dbt at all)."""

        def n(kind: str, *statuses: str) -> int:
            return sum(1 for x in nodes if x.resource_type == kind and x.status in statuses)

        failed = ("error", "fail", "runtime error")
        return cls(
            rows_loaded=sum(load.rows for load in loads),
            rows_rejected=sum(load.rejected for load in loads),
            rows_collapsed=sum(t.duplicates for load in loads for t in load.tables),
            rows_deleted=sum(t.deleted for load in loads for t in load.tables),
            models_built=n("model", "success"),
            models_errored=n("model", *failed),
            models_skipped=n("model", "skipped") + len(skipped),
            seeds_built=n("seed", "success"),
            snapshots_built=n("snapshot", "success"),
            tests_passed=n("test", "pass"),
            tests_warned=n("test", "warn"),
            tests_failed=n("test", *failed),
            tests_skipped=n("test", "skipped"),
        )

    def build_text(self) -> str:
        """The dbt part, e.g. ``3 models built, 1 skipped; 12 tests passed, 1 failed``.

        >>> Counts(models_built=3, models_skipped=1, tests_passed=12, tests_failed=1).build_text()
        '3 models built, 1 skipped; 12 tests passed, 1 failed'
        """
        models = [f"{counted(self.models_built, 'model')} built"]
        models += [
            f"{v:,} {label}"
            for v, label in ((self.models_errored, "errored"), (self.models_skipped, "skipped"))
            if v
        ]
        if self.seeds_built:
            models.append(counted(self.seeds_built, "seed"))
        if self.snapshots_built:
            models.append(counted(self.snapshots_built, "snapshot"))
        tests = [f"{counted(self.tests_passed, 'test')} passed"]
        tests += [
            f"{v:,} {label}"
            for v, label in (
                (self.tests_failed, "failed"),
                (self.tests_warned, "warned"),
                (self.tests_skipped, "skipped"),
            )
            if v
        ]
        return ", ".join(models) + "; " + ", ".join(tests)

    def text(self) -> str:
        """Everything, for the run line.

        >>> Counts(rows_loaded=1200, rows_rejected=2, models_built=1, tests_passed=2).text()
        '1,200 rows loaded, 2 rejected; 1 model built; 2 tests passed'
        """
        rows = f"{counted(self.rows_loaded, 'row')} loaded"
        if self.rows_rejected:
            rows += f", {self.rows_rejected:,} rejected"
        if self.rows_collapsed:
            rows += f", {self.rows_collapsed:,} collapsed (duplicate keys)"
        if self.rows_deleted:
            rows += f", {self.rows_deleted:,} deleted upstream"
        return f"{rows}; {self.build_text()}"


@dataclass(frozen=True)
class RunResult:
    """Everything one ``stackyard run`` did."""

    run_id: str
    project: str
    target: str
    started_at: datetime
    finished_at: datetime
    steps: tuple[StepResult, ...] = ()
    loads: tuple[SourceLoad, ...] = ()
    nodes: tuple[NodeResult, ...] = ()
    freshness: tuple[FreshnessResult, ...] = ()
    skipped: tuple[SkippedModel, ...] = ()
    selected: tuple[str, ...] = field(default_factory=tuple)
    transform_hash: str = ""
    build: Literal["built", "skipped", "not run"] = "built"
    # The monitor pass that followed the run (stackyard.monitors.health.MonitorReport); it
    # never changes the run's status: anomalies are reported by alerts and `stackyard health`.
    monitors: Any = None
    # An orchestrator runs it again if it fails (an attempt with retries left): the alerts of
    # a failed attempt are held, as a load retried inside one run sends none.
    will_retry: bool = False

    @property
    def worth_retrying(self) -> bool:
        """Whether running it again may pass: False when every failure is a load that would
        fail the same way (see ``SourceLoad.transient``); a failed build, test or freshness
        check counts as worth another attempt."""
        if any(s.status == "failed" and s.name != "load" for s in self.steps):
            return True
        return any(load.transient for load in self.loads if load.status == "failed")

    @property
    def interrupted(self) -> bool:
        """Ctrl-C stopped the run: the steps after the interrupted one did not run."""
        return any(s.status == "interrupted" for s in self.steps)

    @property
    def ok(self) -> bool:
        """No load failed, no model or test failed and no source is past its error age."""
        return (
            not self.interrupted
            and all(s.status != "failed" for s in self.steps)
            and all(load.status != "failed" for load in self.loads)
            and not any(n.failed for n in self.nodes)
            and not any(f.status in ("error", "runtime error") for f in self.freshness)
        )

    @property
    def status(self) -> str:
        """``success``, ``failed`` or ``interrupted``."""
        if self.interrupted:
            return "interrupted"
        return "success" if self.ok else "failed"

    @property
    def exit_code(self) -> int:
        """0 on success, 1 when a load, model, test or freshness check failed, 130 when
        interrupted."""
        if self.interrupted:
            return EXIT_INTERRUPTED
        return EXIT_OK if self.ok else EXIT_FAILED

    @property
    def counts(self) -> Counts:
        """The run's numbers, as every output shows them."""
        return Counts.of(self.loads, self.nodes, self.skipped)

    def count(self, resource_type: str, *statuses: str) -> int:
        """How many dbt nodes of a type ended in one of the statuses."""
        return sum(
            1 for n in self.nodes if n.resource_type == resource_type and n.status in statuses
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (datetimes as ISO 8601 strings)."""
        data = asdict(replace(self, monitors=None))
        for load in data["loads"]:
            load.pop("traceback", None)  # for --debug on a terminal, not for scripts
            load.pop("transient", None)  # for orchestrators' retries
            load.pop("rejected_in", None)  # for the history's rows per table
        data["monitors"] = self.monitors.to_dict() if self.monitors is not None else None
        data["status"] = self.status
        data["rows_loaded"] = sum(load.rows for load in self.loads)
        data["counts"] = asdict(self.counts)
        return _iso(data)


def _iso(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _iso(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_iso(v) for v in value]
    return value


def step_status_of_build(nodes: Sequence[NodeResult]) -> StepStatus:
    """The build step's status: failed if a node failed, warn if a test warned."""
    if any(n.failed for n in nodes):
        return "failed"
    return "warn" if any(n.status == "warn" for n in nodes) else "ok"


def step_status_of_freshness(results: Sequence[FreshnessResult]) -> StepStatus:
    """The freshness step's status: failed on an error, warn on a warning."""
    if any(f.status in ("error", "runtime error") for f in results):
        return "failed"
    return "warn" if any(f.status == "warn" for f in results) else "ok"
