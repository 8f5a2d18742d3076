"""How long a backfill's pre-images are kept, and dropping them.

A successful backfill that passed validation keeps its pre-images ``preimage_days``
(stackyard.yml ``backfills:``) after it finished — the time to notice a bad backfill and roll
it back — and they are dropped after the next successful backfill on the same warehouse, or by
``stackyard backfill prune``. A failed or running backfill keeps them: resuming it must not
take a second pre-image from a half-backfilled table. ``backfill prune ID`` drops one
backfill's pre-images at once (the backfill is confirmed: it will not be rolled back).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from stackyard.errors import UsageError
from stackyard.runbooks.backfill.ledger import Ledger
from stackyard.runbooks.backfill.targets import MARKS_SUFFIX, PREIMAGE_SCHEMA

# Backfills whose pre-images may go: done with, one way or the other (a superseded one was
# started over by a later backfill of the same range).
FINAL = ("success", "rolled_back", "superseded")


def expires_at(
    status: str, finished_at: str | None, dropped_at: str | None, days: float
) -> str | None:
    """When a backfill's pre-images may be dropped; None when they are already gone or the
    backfill is not done with (failed, running: they are kept).

    >>> expires_at("success", "2024-01-01T00:00:00+00:00", None, 7)
    '2024-01-08T00:00:00+00:00'
    >>> expires_at("failed", "2024-01-01T00:00:00+00:00", None, 7) is None
    True
    """
    if status not in FINAL or not finished_at or dropped_at:
        return None
    return (datetime.fromisoformat(finished_at) + timedelta(days=days)).isoformat()


def prune(ledger: Ledger, days: float, backfill_id: str | None = None) -> list[dict[str, Any]]:
    """Drop pre-images: one backfill's (``backfill_id``), or every expired one.

    Returns:
        One ``{"backfill_id", "target", "rows_dropped"}`` per backfill pruned.

    Raises:
        UsageError: ``backfill_id`` is unknown, or is failed or unfinished (its pre-images are
            what a resume or a rollback needs).
    """
    if not ledger.exists():
        return []
    if backfill_id:
        record = ledger.get(backfill_id)
        if record.status not in FINAL:
            raise UsageError(
                f"backfill {backfill_id} is {record.status}: its pre-images are kept until it "
                "succeeds or is rolled back",
                hint=f"resume it (same command, --retry-failed) or `stackyard backfill rollback "
                f"{backfill_id}`, then prune",
            )
        ids = [] if record.preimage_dropped_at else [backfill_id]
    else:
        ids = ledger.expired_preimages(datetime.now(UTC) - timedelta(days=days), FINAL)
    out = []
    for bid in ids:
        record = ledger.get(bid)
        out.append(
            {
                "backfill_id": bid,
                "target": record.target,
                "rows_dropped": _drop(ledger, record.preimage_table or ""),
            }
        )
        ledger.mark_preimage_dropped(bid)
    return out


def _drop(ledger: Ledger, table: str) -> int:
    s = ledger.session
    rows = 0
    if table and s.table_columns(PREIMAGE_SCHEMA, table):
        rows = int(s.query(f"SELECT count(*) FROM {s.quote(PREIMAGE_SCHEMA, table)}").rows[0][0])
    for name in (table, table + MARKS_SUFFIX):
        if name:
            s.execute(f"DROP TABLE IF EXISTS {s.quote(PREIMAGE_SCHEMA, name)}")
    return rows
