"""Refuse a rollback that would undo a later backfill, or rows loaded since.

A rollback puts back the rows a backfill overwrote, window by window. When a later backfill
of the same target replaced some of the same windows since, those windows now hold the later
backfill's rows, and the rollback would silently throw them away (while the later backfill
still reads ``success``). Rollbacks must go newest first: this finds the later backfills in
the way, so the rollback (and its dry run) can stop before changing anything.

A reload (or a later load) rewrites a source table's rows too, with dlt load ids newer than
the backfill: its copies are then older than what the table holds, and putting them back
would turn the table back to the rows before the reload. Those rows are found by their load
id and the rollback is refused unless it is forced. A model's rows carry no load id: a model
built again since (``stackyard run --full-refresh``, an incremental run over those days, a
reload) is found in the run history instead, and refused the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from stackyard.errors import UsageError, counted
from stackyard.metadata.builds import ModelBuild, builds_since
from stackyard.metadata.schema import METADATA_SCHEMA
from stackyard.runbooks.backfill.connection import Connection
from stackyard.runbooks.backfill.ledger import BackfillRecord
from stackyard.runbooks.backfill.partitions import Window
from stackyard.runbooks.backfill.targets import BackfillTarget
from stackyard.runbooks.backfill.windows import naive_utc

#: What a rollback deletes for one partition: its SQL condition and parameters.
Deleted = Callable[[int, Window], tuple[str, tuple[Any, ...]]]


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


def rows_loaded_since(
    s: Connection,
    relation: str,
    columns: Iterable[str],
    backfill_id: str,
    seqs: Iterable[int],
    deleted: Deleted,
) -> dict[Window, int]:
    """Rows a rollback of ``backfill_id`` would delete that a load wrote after the backfill
    took its copy of them (a reload, a later run), per partition window.

    Only tables dlt loads carry a load id (a dlt load id is the Unix time it started); a
    model's rows have none, and nothing is found.
    """
    if "_dlt_load_id" not in columns:
        return {}
    p = s.param()
    found: dict[Window, int] = {}
    for seq, window, moment in partitions_ended(s, backfill_id, seqs):
        where, params = deleted(seq, window)
        newer = s.query(
            f"SELECT count(*) FROM {relation} WHERE ({where}) "
            f"AND CAST(_dlt_load_id AS DOUBLE PRECISION) > {p}",
            (*params, moment.timestamp()),
        ).rows[0][0]
        if newer:
            found[window] = int(newer)
    return found


def partitions_ended(
    s: Connection, backfill_id: str, seqs: Iterable[int]
) -> list[tuple[int, Window, datetime]]:
    """The partitions ``seqs`` of ``backfill_id`` that ended, with when, in order.

    What was written after a partition ended stands in the way of its rollback: its own rows
    were written before (and its copy taken before that). One that never ended left nothing
    to tell by.
    """
    p = s.param()
    parts = s.quote(METADATA_SCHEMA, "backfill_partitions")
    rows = s.query(
        f"SELECT seq, window_start, window_end, finished_at FROM {parts} "
        f"WHERE backfill_id = {p} AND finished_at IS NOT NULL ORDER BY seq",
        (backfill_id,),
    ).rows
    seqs = set(seqs)
    return [
        (
            int(seq),
            Window.from_key(str(start), str(end)),
            ended if isinstance(ended, datetime) else datetime.fromisoformat(str(ended)),
        )
        for seq, start, end, ended in rows
        if int(seq) in seqs
    ]


def built_since(
    s: Connection, target: BackfillTarget, backfill_id: str, seqs: Iterable[int]
) -> list[ModelBuild]:
    """The runs that built ``target`` (a model) after the first of the partitions ``seqs``
    of ``backfill_id`` ended, oldest first; empty for a source table.

    A run's build of a model is not cut by day (a ``--full-refresh`` rebuilds all of it, an
    incremental run the days its SQL picks), so any build since counts.
    """
    ended = partitions_ended(s, backfill_id, seqs)
    if target.built_as is None or not ended:
        return []
    return builds_since(s.warehouse, target.built_as, min(moment for _, _, moment in ended))


def _utc(moment: datetime) -> str:
    """A moment as UTC, to the second.

    >>> from datetime import timedelta, timezone
    >>> _utc(datetime(2024, 3, 1, 13, 5, 9, tzinfo=timezone(timedelta(hours=1))))
    '2024-03-01 12:05:09 UTC'
    """
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def refuse_if_built_since(target: str, backfill_id: str, builds: list[ModelBuild]) -> None:
    """Stop a rollback that would put back copies older than a model's rebuild.

    Raises:
        UsageError: some run built the model after the backfill replaced its partitions.
    """
    if not builds:
        return
    named = ", ".join(f"{b.run_id} (ended {_utc(b.finished_at)})" for b in builds[:3])
    if len(builds) > 3:
        named += f" and {len(builds) - 3} more"
    raise UsageError(
        f"backfill {backfill_id} cannot be rolled back as it is: {target} was built again "
        f"after it ran, by run(s) {named}. A build (`stackyard run --full-refresh`, an "
        "incremental `stackyard run`, a `stackyard reload`) may have rewritten the backfilled "
        "days (a run does not record which), and rolling back would replace them with the "
        "copies taken before the backfill. Nothing was changed",
        hint="keep the table as it is; if those runs left the backfilled days alone (an "
        "incremental run of later days only), or to put the old copies back anyway: "
        f"`stackyard backfill rollback {backfill_id} --force`",
    )


def refuse_if_loaded_since(target: str, backfill_id: str, found: dict[Window, int]) -> None:
    """Stop a rollback that would put back copies older than rows loaded since.

    Raises:
        UsageError: some rows the rollback would replace were loaded after the backfill.
    """
    if not found:
        return
    first = min(found).start.isoformat()
    raise UsageError(
        f"backfill {backfill_id} cannot be rolled back as it is: "
        f"{counted(sum(found.values()), 'row')} of {target} in {len(found)} of its "
        f"{'partition' if len(found) == 1 else 'partitions'} (from {first}) were loaded "
        "after it ran (a `stackyard reload` or a later run), and rolling back would replace "
        "them with the copies taken before the backfill. Nothing was changed",
        hint=f"keep the table as it is (the reload already replaced the backfill's rows), or "
        f"put the old copies back anyway: `stackyard backfill rollback {backfill_id} --force`",
    )


def deleted_rows(s: Connection, target: BackfillTarget, pre_name: str) -> Deleted:
    """What a rollback deletes for a partition: its window, and the rows of the keys its copy
    holds (a key that moved out of the window since)."""
    kept = s.table_columns(METADATA_SCHEMA, pre_name)
    pre = s.quote(METADATA_SCHEMA, pre_name)
    p = s.param()

    def condition(seq: int, window: Window) -> tuple[str, tuple[Any, ...]]:
        where = target.window_filter(s)
        params: tuple[Any, ...] = (naive_utc(window.start), naive_utc(window.end))
        if target.keys and kept:
            keys = ", ".join(s.quote(k) for k in target.keys)
            where += f" OR ({keys}) IN (SELECT {keys} FROM {pre} WHERE _backfill_seq = {p})"
            params += (seq,)
        return where, params

    return condition


def refuse_if_in_the_way(
    s: Connection, target: BackfillTarget, record: BackfillRecord, seqs: set[int], force: bool
) -> None:
    """Stop a rollback of ``record`` (its partitions ``seqs``) that would undo a later
    backfill, or (without ``force``) put copies back over rows loaded since (a source
    table) or over a build of the model since (a model).

    Raises:
        UsageError: either is in the way; nothing was changed.
    """
    touched = [p.window for p in record.partitions if p.seq in seqs]
    refuse_if_later(
        record.target,
        record.backfill_id,
        later_backfills(s, record.target, record.backfill_id, touched),
    )
    if not force:
        found = loaded_since(s, target, record, seqs)
        refuse_if_loaded_since(record.target, record.backfill_id, found)
        builds = built_since(s, target, record.backfill_id, seqs)
        refuse_if_built_since(record.target, record.backfill_id, builds)


def loaded_since(
    s: Connection, target: BackfillTarget, record: BackfillRecord, seqs: set[int]
) -> dict[Window, int]:
    """:func:`rows_loaded_since` for a backfill's record, on its target as it is now."""
    if not target.exists(s):
        return {}
    columns = s.table_columns(target.schema, target.table)
    deleted = deleted_rows(s, target, record.preimage_table or "")
    return rows_loaded_since(s, target.relation(s), columns, record.backfill_id, seqs, deleted)
