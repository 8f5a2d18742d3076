"""What the "Adding Data Sources" runbook returns: frozen results the CLI renders."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from stackyard.errors import EXIT_FAILED, EXIT_OK
from stackyard.results import NodeResult, SourceLoad


@dataclass(frozen=True)
class Check:
    """One line of the runbook's verification checklist."""

    name: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class SourceAddResult:
    """What ``stackyard source add`` did."""

    source: str
    config_changed: bool
    files_written: tuple[str, ...] = ()
    files_unchanged: tuple[str, ...] = ()
    load: SourceLoad | None = None
    checks: tuple[Check, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Every check passed."""
        return all(c.ok for c in self.checks)

    @property
    def exit_code(self) -> int:
        """0 when every check passed, else 1."""
        return EXIT_OK if self.ok else EXIT_FAILED


@dataclass(frozen=True)
class SourceRemoveResult:
    """What ``stackyard source remove`` undid."""

    source: str
    files_removed: tuple[str, ...]
    dropped_schema: str | None
    state_removed: tuple[str, ...] = ()


@dataclass(frozen=True)
class TableStatus:
    """One table of a source, as it is in the warehouse."""

    table: str
    rows: int | None
    last_load_rows: int | None = None
    freshness: str | None = None
    age_hours: float | None = None
    model: str | None = None


@dataclass(frozen=True)
class SourceStatus:
    """A source for ``stackyard source list`` / ``show``."""

    name: str
    kind: str
    schema: str
    schedule: str
    contract: str
    enabled: bool
    tables: tuple[TableStatus, ...] = field(default_factory=tuple)
    last_loaded_at: datetime | None = None
    last_status: str | None = None


def nodes_detail(nodes: Sequence[NodeResult], label: str) -> str:
    failed = [n for n in nodes if n.failed]
    text = f"{len(nodes) - len(failed)}/{len(nodes)} {label}"
    if failed:
        text += ": failed " + ", ".join(n.name for n in failed)
    return text
