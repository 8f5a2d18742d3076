"""The check after every backfill, stored in the ledger and failing the command when it fails.

* **Date spine** — every partition of the range must be ``success``; a window whose upstream
  has rows must not be empty in the table.
* **Counts** — per partition, the rows in the table against the rows upstream says it should
  hold (the source database for a source table, the model's own compiled SQL for a model),
  within a relative ``tolerance`` (0 by default: exact).
* **Keys** — no key appears twice in the table.
"""

from __future__ import annotations

from typing import Any

from stackyard.errors import StackyardError
from stackyard.runbooks.backfill.connection import Connection
from stackyard.runbooks.backfill.ledger import BackfillRecord
from stackyard.runbooks.backfill.targets import BackfillTarget


def within(expected: int, actual: int, tolerance: float) -> bool:
    """Whether ``actual`` is within ``tolerance`` (relative) of ``expected``.

    >>> within(100, 99, 0.01), within(100, 98, 0.01), within(0, 0, 0.0)
    (True, False, True)
    """
    return abs(actual - expected) <= tolerance * max(expected, 1)


def invalid_windows(report: dict[str, Any] | None) -> list[str]:
    """The partitions (window starts) a validation report found wrong although they ran:
    their count differs from upstream's, or they are empty while upstream has rows. These
    are what ``--retry-failed`` runs again.

    >>> invalid_windows({"count_mismatches": [{"start": "b"}], "empty_partitions": ["a", "b"]})
    ['a', 'b']
    >>> invalid_windows(None)
    []
    """
    report = report or {}
    starts = {str(m["start"]) for m in report.get("count_mismatches", [])}
    return sorted(starts | {str(s) for s in report.get("empty_partitions", [])})


def retried(record: BackfillRecord | None) -> list[int]:
    """The partitions of ``record`` that ran but failed its last validation: what
    ``--retry-failed`` runs again besides the partitions that failed."""
    if record is None:
        return []
    invalid = set(invalid_windows(record.validation))
    return [p.seq for p in record.partitions if p.status == "success" and p.window_start in invalid]


def validate(
    target: BackfillTarget, session: Connection, record: BackfillRecord, tolerance: float
) -> dict[str, Any]:
    """Check a finished backfill; return the report the ledger keeps.

    Returns:
        ``{"ok": bool, "missing_partitions": [...], "empty_partitions": [...],
        "count_mismatches": [...], "duplicate_keys": n, "rows_expected": n,
        "rows_actual": n, "tolerance": t}``.
    """
    parts = list(record.partitions)
    windows = [p.window for p in parts]
    try:
        expected = target.expected_counts(session, windows)
    except StackyardError as exc:
        # Upstream cannot be read: the check fails, and says why.
        return {
            "ok": False,
            "error": exc.message,
            "missing_partitions": [p.window_start for p in parts if p.status != "success"],
        }
    actual = target.counts(session, windows)
    missing = [p.window_start for p in parts if p.status != "success"]
    empty, mismatches = [], []
    for p, exp, act in zip(parts, expected, actual, strict=True):
        if exp < 0:  # upstream cannot be counted (an API): only the spine is checked
            continue
        if exp > 0 and act == 0:
            empty.append(p.window_start)
        if not within(exp, act, tolerance):
            mismatches.append({"start": p.window_start, "expected": exp, "actual": act})
    duplicates = target.duplicate_keys(session)
    removed = target.keys_removed(session, record.preimage_table)
    return {
        # Not a failure (rows deleted upstream go, as they should), but never silent (an API
        # source's row whose cursor moved out of the range is among them: it cannot be
        # looked up by key, as a database's is).
        "keys_removed": [str(k[0]) if len(k) == 1 else str(tuple(k)) for k in removed[:20]],
        "keys_removed_more": len(removed) > 20,
        "ok": not missing and not empty and not mismatches and duplicates == 0,
        "missing_partitions": missing,
        "empty_partitions": empty,
        "count_mismatches": mismatches,
        "duplicate_keys": duplicates,
        "rows_expected": sum(e for e in expected if e > 0),
        "rows_actual": sum(actual),
        "tolerance": tolerance,
    }
