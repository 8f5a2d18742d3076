"""Run leases: who is running which source or the transformation, so runs never overlap.

One row per thing being run (``source:shop``, ``transformation``) in ``stackyard.run_leases``,
its name the primary key: of two runs inserting the same name at once, the warehouse lets
one in. A lease ends when its run gives it back, when it expires (its run's deadlines have
all passed, so the run is stuck or gone), or when its holder was a process on this machine
that no longer exists (``kill -9``).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from stackyard.errors import RunLeaseHeldError, WarehouseError
from stackyard.metadata.leases import holder_alive
from stackyard.metadata.schema import (
    LEASE_TABLES,
    ensure_tables,
    existing_tables,
    insert_rows,
    relation,
)
from stackyard.warehouse.base import Warehouse

TRANSFORMATION = "transformation"


def source_lease(source: str) -> str:
    """The lease name of a source.

    >>> source_lease("shop")
    'source:shop'
    """
    return f"source:{source}"


def holder_name(run_id: str) -> str:
    """Who holds a lease, as people read it: ``user@host pid N (run ID)``."""
    user = os.environ.get("USER") or os.environ.get("USERNAME") or "?"
    return f"{user}@{socket.gethostname()} pid {os.getpid()} (run {run_id})"


@dataclass(frozen=True)
class Lease:
    """One held lease, as ``stackyard status`` shows it."""

    name: str
    holder: str
    run_id: str
    acquired_at: datetime
    expires_at: datetime


class RunLeases:
    """The ``run_leases`` table of one warehouse."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse

    def ensure(self) -> None:
        """Create the table when missing."""
        ensure_tables(self.warehouse, LEASE_TABLES)

    def held(self) -> list[Lease]:
        """Leases held now (expired ones and those of dead local processes left out)."""
        return [x for x in self._rows() if _live(x)]

    def _rows(self) -> list[Lease]:
        if "run_leases" not in existing_tables(self.warehouse):
            return []
        rows = self.warehouse.query(
            "SELECT name, holder, run_id, acquired_at, expires_at FROM "
            f"{relation(self.warehouse, 'run_leases')} ORDER BY name"
        ).rows
        return [Lease(str(r[0]), str(r[1]), str(r[2]), r[3], r[4]) for r in rows]

    def acquire(
        self,
        names: Sequence[str],
        run_id: str,
        seconds: float,
        wait: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Take every lease in ``names`` for ``seconds``, or none of them.

        Args:
            names: lease names (:func:`source_lease`, :data:`TRANSFORMATION`).
            run_id: the run taking them.
            seconds: how long they last unless given back.
            wait: how long to wait for a held lease to be given back (0: fail at once).
            sleep: waits between tries.

        Raises:
            RunLeaseHeldError: a lease is held by another live run (after ``wait``), naming
                it and its holder.
        """
        give_up = time.monotonic() + wait
        while True:
            try:
                self._try(names, run_id, seconds)
                return
            except RunLeaseHeldError:
                if time.monotonic() >= give_up:
                    raise
            sleep(min(1.0, max(0.05, give_up - time.monotonic())))

    def release(self, names: Sequence[str], run_id: str) -> None:
        """Give leases back (only those this run holds)."""
        if not names:
            return
        p = self.warehouse.param()
        marks = ", ".join([p] * len(names))
        self.warehouse.execute(
            f"DELETE FROM {relation(self.warehouse, 'run_leases')} "
            f"WHERE run_id = {p} AND name IN ({marks})",
            (run_id, *names),
        )

    def _try(self, names: Sequence[str], run_id: str, seconds: float) -> None:
        p, table = self.warehouse.param(), relation(self.warehouse, "run_leases")
        for row in self._rows():
            if row.name not in names:
                continue
            if _live(row) and row.run_id != run_id:
                raise _held(row.name, row)
            # An expired lease, a dead holder's, or our own: only that row goes, so a run
            # that took the name a moment ago keeps it (the key then refuses our insert).
            self.warehouse.execute(
                f"DELETE FROM {table} WHERE name = {p} AND run_id = {p}", (row.name, row.run_id)
            )
        now = datetime.now(UTC)
        ends = now + timedelta(seconds=seconds)
        holder = holder_name(run_id)
        try:
            insert_rows(
                self.warehouse, "run_leases", [(n, holder, run_id, now, ends) for n in names]
            )
        except WarehouseError:
            # Another run took one of them between our read and our write.
            taken = {x.name: x for x in self.held() if x.run_id != run_id}
            for name in names:
                if name in taken:
                    raise _held(name, taken[name]) from None
            raise


def _held(name: str, other: Lease) -> RunLeaseHeldError:
    return RunLeaseHeldError(
        f"{_what(name)} is being run by {other.holder} since "
        f"{_utc(other.acquired_at):%Y-%m-%d %H:%M:%S} UTC; this run was not started",
        hint=f"wait for run {other.run_id} to finish (`stackyard status` shows leases); "
        f"its lease ends by {_utc(other.expires_at):%H:%M:%S} UTC if it is stuck",
    )


def _live(lease: Lease) -> bool:
    return _utc(lease.expires_at) > datetime.now(UTC) and holder_alive(lease.holder)


def _what(name: str) -> str:
    """A lease's name as a sentence's subject.

    >>> _what("source:shop"), _what("transformation")
    ("source 'shop'", 'the transformation')
    """
    kind, _, rest = name.partition(":")
    return f"{kind} '{rest}'" if rest else f"the {name}"


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
