"""Refuse a rollback that would undo a later backfill.

A rollback puts back the rows a backfill overwrote, window by window. When a later backfill
of the same target replaced some of the same windows since, those windows now hold the later
backfill's rows, and the rollback would silently throw them away (while the later backfill
still reads ``success``). Rollbacks must go newest first: this finds the later backfills in
the way, so the rollback (and its dry run) can stop before changing anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from stackyard.errors import UsageError
from stackyard.metadata.schema import METADATA_SCHEMA
from stackyard.runbooks.backfill.connection import Connection
from stackyard.runbooks.backfill.partitions import Window


@dataclass(frozen=True)
class LaterBackfill:
    """A later backfill of the same target that replaced some of the same windows."""

    backfill_id: str
    status: str
    preimage_dropped: bool
    windows: tuple[Window, ...]


def later_backfills(
    s: Connection, target: str, backfill_id: str, touched: Iterable[Window]
) -> list[LaterBackfill]:
    """Backfills of ``target`` started after ``backfill_id``, not rolled back, with a
    partition that succeeded on a window overlapping one of ``touched``; newest first."""
    touched = list(touched)
    if not touched:
        return []
    p = s.param()
    b = s.quote(METADATA_SCHEMA, "backfills")
    parts = s.quote(METADATA_SCHEMA, "backfill_partitions")
    rows = s.query(
        f"SELECT b.backfill_id, b.status, b.preimage_dropped_at, p.window_start, p.window_end "
        f"FROM {b} b JOIN {parts} p ON p.backfill_id = b.backfill_id "
        f"WHERE b.target = {p} AND b.backfill_id <> {p} AND b.rolled_back_at IS NULL "
        f"AND p.status = 'success' "
        f"AND b.created_at > (SELECT created_at FROM {b} WHERE backfill_id = {p}) "
        "ORDER BY b.created_at DESC, p.seq",
        (target, backfill_id, backfill_id),
    ).rows
    found: dict[str, LaterBackfill] = {}
    for other_id, status, dropped, start, end in rows:
        window = Window.from_key(str(start), str(end))
        if not any(window.start < t.end and t.start < window.end for t in touched):
            continue
        key = str(other_id)
        seen = found.get(key)
        windows = (seen.windows if seen else ()) + (window,)
        found[key] = LaterBackfill(key, str(status), dropped is not None, windows)
    return list(found.values())


def refuse_if_later(target: str, backfill_id: str, later: list[LaterBackfill]) -> None:
    """Stop a rollback of ``backfill_id`` that would undo ``later`` (newest first).

    Raises:
        UsageError: some later backfill replaced windows the rollback would put back.
    """
    if not later:
        return
    named = ", ".join(
        f"{b.backfill_id} ({b.status}, {len(b.windows)} partition(s) from "
        f"{min(b.windows).start.isoformat()})"
        for b in later
    )
    order = [f"`stackyard backfill rollback {b.backfill_id}`" for b in later]
    order.append(f"`stackyard backfill rollback {backfill_id}`")
    hint = "roll those back first, newest first: " + ", then ".join(order)
    stuck = [b.backfill_id for b in later if b.preimage_dropped]
    if stuck:
        hint += (
            f". {', '.join(stuck)} can no longer be rolled back (pre-images dropped): "
            f"backfill the range again from the source, or restore {target} from a backup "
            "(`stackyard restore-table`)"
        )
    raise UsageError(
        f"backfill {backfill_id} cannot be rolled back: later backfill(s) of {target} "
        f"replaced some of the same partitions since: {named}; rolling {backfill_id} back "
        "would silently undo them. Nothing was changed",
        hint=hint,
    )
