"""Immutable results of a run, shared by the runner, the history writer and the CLI."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from stackyard.errors import EXIT_FAILED, EXIT_OK

StepStatus = Literal["ok", "warn", "failed", "skipped"]


@dataclass(frozen=True)
class TableLoad:
    """Rows one load wrote to one table."""

    table: str
    rows: int
    # rows of this load that shared a key with a later row of the same load (one was kept)
    duplicates: int = 0


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

    @property
    def rows(self) -> int:
        """Rows loaded across all tables."""
        return sum(t.rows for t in self.tables)


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

    @property
    def ok(self) -> bool:
        """No load failed, no model or test failed and no source is past its error age."""
        return (
            all(s.status != "failed" for s in self.steps)
            and all(load.status != "failed" for load in self.loads)
            and not any(n.failed for n in self.nodes)
            and not any(f.status in ("error", "runtime error") for f in self.freshness)
        )

    @property
    def status(self) -> str:
        """``success`` or ``failed``."""
        return "success" if self.ok else "failed"

    @property
    def exit_code(self) -> int:
        """0 on success, 1 when a load, model, test or freshness check failed."""
        return EXIT_OK if self.ok else EXIT_FAILED

    def count(self, resource_type: str, *statuses: str) -> int:
        """How many dbt nodes of a type ended in one of the statuses."""
        return sum(
            1 for n in self.nodes if n.resource_type == resource_type and n.status in statuses
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (datetimes as ISO 8601 strings)."""
        data = asdict(replace(self, monitors=None))
        data["monitors"] = self.monitors.to_dict() if self.monitors is not None else None
        data["status"] = self.status
        data["rows_loaded"] = sum(load.rows for load in self.loads)
        return _iso(data)


def _iso(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _iso(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_iso(v) for v in value]
    return value
