"""What ``stackyard doctor`` found: each problem with its fix, and what passed (the checks
are in :mod:`stackyard.runbooks.doctor`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Finding:
    """One problem, with its fix.

    Attributes:
        check: the check that found it (``versions``, ``wal``, ``backup`` …).
        severity: ``error`` (something is broken or at risk now) or ``warning``.
        what: what is wrong, naming the file, table or package.
        why: why it matters.
        fix: what to do, as a command where there is one.
    """

    check: str
    severity: str
    what: str
    why: str
    fix: str


@dataclass(frozen=True)
class DoctorReport:
    """Everything the doctor checked.

    Attributes:
        target: the target checked.
        findings: the problems found.
        passed: what was verified, in words.
        repaired: what ``--fix`` did.
        would_repair: what ``--fix`` would do (``--fix --dry-run``: nothing was changed).
    """

    target: str
    findings: tuple[Finding, ...]
    passed: tuple[str, ...]
    repaired: tuple[str, ...] = ()
    would_repair: tuple[str, ...] = ()

    @property
    def exit_code(self) -> int:
        """0 when healthy, 1 with findings."""
        return 1 if self.findings else 0

    @property
    def summary(self) -> str:
        """One line for the end of the report."""
        if not self.findings:
            return f"healthy: {len(self.passed)} checks passed on target '{self.target}'"
        return (
            f"{len(self.findings)} finding{'s' if len(self.findings) > 1 else ''} on target "
            f"'{self.target}' "
            f"({len(self.passed)} checks passed)"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data for ``--json``."""
        return {
            "target": self.target,
            "healthy": not self.findings,
            "findings": [asdict(f) for f in self.findings],
            "passed": list(self.passed),
            "repaired": list(self.repaired),
            "would_repair": list(self.would_repair),
        }


def restore_newest(backups: list[Any]) -> str:
    """The fix for a damaged DuckDB file: the newest backup, tried first."""
    if not backups:
        return "load the tables again: `stackyard reload SOURCE --yes` per source (no backup)"
    return (
        "keep a copy of the file, then `stackyard restore latest --yes` (taken "
        f"{backups[-1].created_at:%Y-%m-%d %H:%M} UTC): the restore reads the backup back "
        "first and replaces nothing if it is damaged too; then restore the one before it"
    )


def restore_latest(backups: list[Any]) -> str:
    """The fix for a lost warehouse: the last backup."""
    return (
        f"stackyard restore latest (the last backup, taken "
        f"{backups[-1].created_at:%Y-%m-%d %H:%M} UTC; dlt's state comes back with it)"
    )


def history_lost(files: Any, warehouse: Any, backups: list[Any]) -> Finding | None:
    """A server target whose run history was lost (:func:`stackyard.runbooks.target_marks.
    run_history_lost`): health and the monitors would watch nothing there and report all
    clear. (A DuckDB file has checks of its own: missing, holding no table, its log moved
    aside.)"""
    from stackyard.runbooks.target_marks import run_history_lost

    if warehouse.STORAGE == "file" or not run_history_lost(files, warehouse):
        return None
    return Finding(
        "state",
        "error",
        f"{warehouse.describe()} has no run history, but this target has been run or loaded before",
        "its warehouse was emptied or replaced (a database dropped and created again): "
        "every table built and the run history are gone",
        (f"{restore_latest(backups)}, or " if backups else "")
        + "`stackyard run` builds the dbt project again (the run history cannot come back)",
    )
