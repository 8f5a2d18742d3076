"""The backfill ledger: three tables in the ``stackyard`` metadata schema of the target.

* ``backfills`` — one row per backfill: target, range, grain, time zone, status, validation;
* ``backfill_partitions`` — one row per partition window: status (pending, running, success,
  failed, skipped), attempt, worker, heartbeat, timings, rows written, error, and the code and
  input fingerprints it ran with;
* ``backfill_leases`` — one row per target being backfilled, naming the holder.

State lives in the warehouse, so a backfill resumes from another machine, and progress is one
query away. Because a DuckDB file admits one writing process at a time, the ledger also mirrors
each backfill to ``.stackyard/backfills/<id>.json`` (and the lease to ``lease-<target>.json``),
which ``backfill status`` reads when another process holds the file.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stackyard.config.private import write_private
from stackyard.errors import EXIT_USAGE, StackyardError, UsageError
from stackyard.metadata.leases import holder_alive as _holder_alive
from stackyard.metadata.leases import this_process
from stackyard.metadata.schema import BACKFILL_TABLES, METADATA_SCHEMA, ensure_tables
from stackyard.runbooks.backfill.connection import Connection
from stackyard.runbooks.backfill.partitions import Window

STATUSES = ("pending", "running", "success", "failed", "skipped")


class LeaseHeldError(StackyardError):
    """Another backfill of the same target is running: this one was refused before it
    started, so nothing was attempted (exit 2)."""

    exit_code = EXIT_USAGE
    transient = True


@dataclass(frozen=True)
class PartitionRecord:
    """One partition as the ledger has it."""

    seq: int
    window_start: str
    window_end: str
    status: str
    attempt: int
    worker: int | None
    rows_written: int | None
    rows_source: int | None
    seconds: float | None
    error: str | None
    preimage_rows: int | None = None
    engine: str | None = None  # what replaced it: sql, dbt or dlt

    @property
    def window(self) -> Window:
        """The recorded window."""
        return Window.from_key(self.window_start, self.window_end)


@dataclass(frozen=True)
class BackfillRecord:
    """One backfill and its partitions."""

    backfill_id: str
    target: str
    target_kind: str
    warehouse_target: str
    range_start: str
    range_end: str
    grain: str
    time_zone: str
    workers: int
    status: str
    holder: str | None
    code_fingerprint: str | None
    validation: dict[str, Any] | None
    preimage_table: str | None
    partitions: tuple[PartitionRecord, ...] = field(default=())
    finished_at: str | None = None
    preimage_dropped_at: str | None = None

    def count(self, status: str) -> int:
        """Partitions in ``status``."""
        return sum(1 for p in self.partitions if p.status == status)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``backfill status --json``."""
        data = asdict(self)
        data["progress"] = {s: self.count(s) for s in STATUSES}
        data["progress"]["total"] = len(self.partitions)
        return data


def holder_name(backfill_id: str) -> str:
    """Who holds a lease, as people read it: ``user@host pid N (backfill ID)``."""
    return this_process("backfill", backfill_id)


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat() if isinstance(value, datetime) else str(value)


class Ledger:
    """Reads and writes the ledger through one session, safe to call from worker threads.

    Args:
        session: the ledger's own connection (not a worker's: its writes commit at once).
        mirror_dir: where the JSON mirror goes (``.stackyard/backfills``).
    """

    def __init__(self, session: Connection, mirror_dir: Path) -> None:
        self.session = session
        self.mirror_dir = mirror_dir
        self._lock = threading.RLock()

    def _t(self, table: str) -> str:
        return self.session.quote(METADATA_SCHEMA, table)

    def ensure(self) -> None:
        """Create the metadata schema and the ledger tables."""
        with self._lock:
            ensure_tables(self.session.warehouse, BACKFILL_TABLES)

    def exists(self) -> bool:
        """Whether any backfill was ever recorded on this target."""
        w = self.session.warehouse
        return w.schema_exists(METADATA_SCHEMA) and "backfills" in w.tables_in(METADATA_SCHEMA)

    # ------------------------------------------------------------------ backfills

    def create(self, record: BackfillRecord, windows: list[Window]) -> None:
        """Record a new backfill and its pending partitions."""
        p = self.session.param()
        with self._lock, self.session.transaction() as s:
            s.execute(
                f"INSERT INTO {self._t('backfills')} (backfill_id, target, target_kind, "
                "warehouse_target, range_start, range_end, grain, time_zone, workers, status, "
                f"holder, created_at, code_fingerprint, preimage_table) VALUES "
                f"({', '.join([p] * 14)})",
                (
                    record.backfill_id,
                    record.target,
                    record.target_kind,
                    record.warehouse_target,
                    record.range_start,
                    record.range_end,
                    record.grain,
                    record.time_zone,
                    record.workers,
                    "running",
                    record.holder,
                    _now(),
                    record.code_fingerprint,
                    record.preimage_table,
                ),
            )
            one = "(" + ", ".join([p] * 6) + ")"
            for first in range(0, len(windows), 1000):
                chunk = windows[first : first + 1000]
                s.execute(
                    f"INSERT INTO {self._t('backfill_partitions')} (backfill_id, seq, "
                    f"window_start, window_end, status, attempt) VALUES "
                    + ", ".join([one] * len(chunk)),
                    [
                        v
                        for seq, w in enumerate(chunk, start=first)
                        for v in (record.backfill_id, seq, *w.key(), "pending", 0)
                    ],
                )
        self.mirror(record.backfill_id)

    def get(self, backfill_id: str) -> BackfillRecord:
        """One backfill with its partitions.

        Raises:
            UsageError: no backfill has that id.
        """
        p = self.session.param()
        with self._lock:
            rows = self.session.query(
                "SELECT backfill_id, target, target_kind, warehouse_target, range_start, "
                "range_end, grain, time_zone, workers, status, holder, code_fingerprint, "
                "validation, preimage_table, COALESCE(rolled_back_at, finished_at), "
                f"preimage_dropped_at FROM {self._t('backfills')} WHERE backfill_id = {p}",
                (backfill_id,),
            ).rows
            if not rows:
                raise UsageError(
                    f"no backfill with id '{backfill_id}' on this target",
                    hint="`stackyard backfill status --json` lists the recent ones",
                )
            parts = self.session.query(
                "SELECT seq, window_start, window_end, status, attempt, worker, rows_written, "
                "rows_source, seconds, error, preimage_rows, engine "
                f"FROM {self._t('backfill_partitions')} WHERE backfill_id = {p} ORDER BY seq",
                (backfill_id,),
            ).rows
        head: list[Any] = list(rows[0])
        head[12] = json.loads(head[12]) if head[12] else None
        finished, dropped = (_iso(v) for v in head[14:])
        record = BackfillRecord(*head[:14])
        return replace(
            record,
            partitions=tuple(PartitionRecord(*r) for r in parts),
            finished_at=finished,
            preimage_dropped_at=dropped,
        )

    def recent(self, limit: int = 10, target: str | None = None) -> list[str]:
        """Ids of the latest backfills (of one target, if given), newest first."""
        if not self.exists():
            return []
        p = self.session.param()
        where, params = (f" WHERE target = {p}", (target,)) if target else ("", ())
        rows = self.session.query(
            f"SELECT backfill_id FROM {self._t('backfills')}{where} "
            f"ORDER BY created_at DESC LIMIT {int(limit)}",
            params,
        ).rows
        return [str(r[0]) for r in rows]

    def resumable(self, target: str, key: tuple[str, str, str, str]) -> str | None:
        """The latest unfinished backfill of ``target`` over the same range, grain and zone."""
        p = self.session.param()
        rows = self.session.query(
            f"SELECT backfill_id, status FROM {self._t('backfills')} WHERE target = {p} AND "
            f"range_start = {p} AND range_end = {p} AND grain = {p} AND time_zone = {p} "
            "AND rolled_back_at IS NULL ORDER BY created_at DESC LIMIT 1",
            (target, *key),
        ).rows
        if rows and rows[0][1] != "success":
            return str(rows[0][0])
        return None

    def finish(self, backfill_id: str, status: str, validation: dict[str, Any]) -> None:
        """Record the outcome and the validation report."""
        p = self.session.param()
        with self._lock:
            self.session.execute(
                f"UPDATE {self._t('backfills')} SET status = {p}, finished_at = {p}, "
                f"validation = {p} WHERE backfill_id = {p}",
                (status, _now(), json.dumps(validation, default=str), backfill_id),
            )
        self.mirror(backfill_id)

    def set_status(self, backfill_id: str, status: str, holder: str | None = None) -> None:
        """Mark a backfill running again (resumed) or rolled back."""
        p = self.session.param()
        extra = ", rolled_back_at = " + p if status == "rolled_back" else ""
        params: tuple[Any, ...] = (status, holder)
        if extra:
            params += (_now(),)
        with self._lock:
            self.session.execute(
                f"UPDATE {self._t('backfills')} SET status = {p}, holder = {p}{extra} "
                f"WHERE backfill_id = {p}",
                (*params, backfill_id),
            )
        self.mirror(backfill_id)

    def supersede(self, target: str, key: tuple[str, str, str, str], by: str) -> None:
        """Mark the unfinished backfills of ``target`` over the same range, grain and zone
        ``superseded`` by ``by``, which started over holding the target's lease (none of them
        runs). A killed one stayed "running", its advice to resume started new backfills,
        and prune refused it."""
        p = self.session.param()
        found = self.session.query(
            f"SELECT backfill_id FROM {self._t('backfills')} WHERE target = {p} AND "
            f"range_start = {p} AND range_end = {p} AND grain = {p} AND time_zone = {p} AND "
            f"status IN ('running', 'failed') AND rolled_back_at IS NULL AND backfill_id <> {p}",
            (target, *key, by),
        ).rows
        for (backfill_id,) in found:
            with self._lock:
                self.session.execute(
                    f"UPDATE {self._t('backfills')} SET status = 'superseded', holder = NULL, "
                    f"finished_at = {p} WHERE backfill_id = {p}",
                    (_now(), backfill_id),
                )
            self.mirror(str(backfill_id))

    def expired_preimages(self, before: datetime, statuses: Sequence[str]) -> list[str]:
        """Backfills in ``statuses``, finished (or rolled back) before ``before``, whose
        pre-images are still kept; oldest first."""
        p = self.session.param()
        rows = self.session.query(
            f"SELECT backfill_id FROM {self._t('backfills')} WHERE status IN "
            f"({', '.join([p] * len(statuses))}) AND preimage_dropped_at IS NULL "
            f"AND COALESCE(rolled_back_at, finished_at) <= {p} "
            "ORDER BY COALESCE(rolled_back_at, finished_at)",
            (*statuses, before),
        ).rows
        return [str(r[0]) for r in rows]

    def mark_preimage_dropped(self, backfill_id: str) -> None:
        """Record that a backfill's pre-images are gone (it can no longer be rolled back)."""
        p = self.session.param()
        with self._lock:
            self.session.execute(
                f"UPDATE {self._t('backfills')} SET preimage_dropped_at = {p} "
                f"WHERE backfill_id = {p}",
                (_now(), backfill_id),
            )
        self.mirror(backfill_id)

    # ------------------------------------------------------------------ partitions

    def start_partitions(
        self, backfill_id: str, seqs: Sequence[int], worker: int, code: str, engine: str = ""
    ) -> None:
        """Mark partitions running on ``worker`` with ``engine`` (their attempt goes up by
        one)."""
        p = self.session.param()
        now = _now()
        with self._lock:
            self.session.execute(
                f"UPDATE {self._t('backfill_partitions')} SET status = 'running', "
                f"attempt = attempt + 1, worker = {p}, heartbeat = {p}, started_at = {p}, "
                f"finished_at = NULL, error = NULL, code_fingerprint = {p}, engine = {p} "
                f"WHERE backfill_id = {p} AND seq IN ({', '.join([p] * len(seqs))})",
                (worker, now, now, code, engine or None, backfill_id, *seqs),
            )
        self.mirror(backfill_id)

    def finish_partitions(
        self,
        backfill_id: str,
        outcomes: Sequence[tuple[int, str, float, int | None, str | None]],
    ) -> None:
        """Record how partitions ended, in one transaction.

        Args:
            outcomes: per partition ``(seq, status, seconds, rows_written, error)``.
        """
        if not outcomes:
            return
        p = self.session.param()
        now = _now()
        with self._lock, self.session.transaction() as s:
            for seq, status, seconds, rows, error in outcomes:
                s.execute(
                    f"UPDATE {self._t('backfill_partitions')} SET status = {p}, "
                    f"finished_at = {p}, seconds = {p}, rows_written = {p}, error = {p}, "
                    f"input_fingerprint = {p} WHERE backfill_id = {p} AND seq = {p}",
                    (
                        status,
                        now,
                        seconds,
                        rows,
                        error,
                        None if rows is None else str(rows),
                        backfill_id,
                        seq,
                    ),
                )
        self.mirror(backfill_id)

    def set_partition_numbers(self, backfill_id: str, seq: int, **values: int | None) -> None:
        """Store ``rows_source`` or ``preimage_rows`` of a partition."""
        p = self.session.param()
        sets = ", ".join(f"{k} = {p}" for k in values if k in ("rows_source", "preimage_rows"))
        with self._lock:
            self.session.execute(
                f"UPDATE {self._t('backfill_partitions')} SET {sets} "
                f"WHERE backfill_id = {p} AND seq = {p}",
                (*values.values(), backfill_id, seq),
            )

    def reset(self, backfill_id: str, statuses: tuple[str, ...], seqs: Sequence[int] = ()) -> None:
        """Put partitions in ``statuses``, and those numbered ``seqs``, back to pending (for a
        resume or a retry)."""
        p = self.session.param()
        marks = ", ".join([p] * len(statuses))
        also = f" OR seq IN ({', '.join([p] * len(seqs))})" if seqs else ""
        with self._lock:
            self.session.execute(
                f"UPDATE {self._t('backfill_partitions')} SET status = 'pending' "
                f"WHERE backfill_id = {p} AND (status IN ({marks}){also})",
                (backfill_id, *statuses, *seqs),
            )

    def heartbeat(self, backfill_id: str, target: str) -> None:
        """Prove the holder is alive: the lease and the running partitions."""
        p = self.session.param()
        now = _now()
        with self._lock:
            self.session.execute(
                f"UPDATE {self._t('backfill_partitions')} SET heartbeat = {p} "
                f"WHERE backfill_id = {p} AND status = 'running'",
                (now, backfill_id),
            )
            self.session.execute(
                f"UPDATE {self._t('backfill_leases')} SET heartbeat = {p} "
                f"WHERE target = {p} AND backfill_id = {p}",
                (now, target, backfill_id),
            )

    # ------------------------------------------------------------------ lease

    def acquire(self, target: str, backfill_id: str, holder: str, stale_after: float) -> None:
        """Take the target's lease, or fail naming who holds it.

        A lease is taken over when its heartbeat is older than ``stale_after`` seconds, or when
        its holder was a process on this machine that no longer exists (``kill -9``).

        Raises:
            LeaseHeldError: another live backfill holds the lease.
        """
        p = self.session.param()
        with self._lock, self.session.transaction() as s:
            rows = s.query(
                f"SELECT backfill_id, holder, heartbeat FROM {self._t('backfill_leases')} "
                f"WHERE target = {p}",
                (target,),
            ).rows
            if rows:
                other_id, other, beat = rows[0]
                age = (_now() - beat).total_seconds() if beat else float("inf")
                # The same backfill run again while it is still running (the same command in
                # a second shell) resumes it only once its holder is gone, not beside it.
                ours = other_id == backfill_id and str(other) == holder
                if not ours and age < stale_after and _holder_alive(str(other)):
                    raise LeaseHeldError(
                        f"'{target}' is being backfilled by {other}; its last heartbeat was "
                        f"{age:.0f} s ago",
                        hint=f"wait for it (`stackyard backfill status {other_id}`), or stop "
                        f"it; a lease whose heartbeat is older than {stale_after:.0f} s is "
                        "taken over",
                    )
                s.execute(f"DELETE FROM {self._t('backfill_leases')} WHERE target = {p}", (target,))
            s.execute(
                f"INSERT INTO {self._t('backfill_leases')} VALUES ({p}, {p}, {p}, {p})",
                (target, backfill_id, holder, _now()),
            )
        self._write_json(self._lease_file(target), {"target": target, "holder": holder})

    def release(self, target: str, backfill_id: str) -> None:
        """Give the lease back (only if still ours)."""
        p = self.session.param()
        with self._lock:
            self.session.execute(
                f"DELETE FROM {self._t('backfill_leases')} WHERE target = {p} AND backfill_id = {p}",
                (target, backfill_id),
            )
        self._lease_file(target).unlink(missing_ok=True)

    # ------------------------------------------------------------------ mirror

    def _lease_file(self, target: str) -> Path:
        return self.mirror_dir / f"lease-{target}.json"

    def mirror(self, backfill_id: str) -> None:
        """Write the backfill's state to its JSON mirror (atomically)."""
        record = self.get(backfill_id)
        self._write_json(self.mirror_dir / f"{backfill_id}.json", record.to_dict())

    def _write_json(self, path: Path, data: dict[str, Any]) -> None:
        write_private(path, json.dumps(data, indent=2, default=str))


def read_mirror(mirror_dir: Path, backfill_id: str | None, target: str) -> dict[str, Any] | None:
    """A backfill of warehouse target ``target`` from its JSON mirror (the newest one when
    no id is given). The folder holds every target's backfills: another target's is none."""
    if backfill_id:
        files = [mirror_dir / f"{backfill_id}.json"]
    else:
        files = [f for f in mirror_dir.glob("*.json") if not f.name.startswith("lease-")]
    found = []
    for path in files:
        if path.is_file():
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("warehouse_target") == target:
                found.append((path.stat().st_mtime, data))
    return dict(max(found, key=lambda m: m[0])[1]) if found else None


def lease_holders(mirror_dir: Path) -> list[str]:
    """Live holders named in lease mirror files (for when the DuckDB file itself is locked);
    a holder whose process on this machine is gone is left out."""
    out = []
    for f in sorted(mirror_dir.glob("lease-*.json")):
        holder = str(json.loads(f.read_text(encoding="utf-8")).get("holder"))
        if _holder_alive(holder):
            out.append(holder)
    return out
