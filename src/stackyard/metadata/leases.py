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
from stackyard.metadata.schema import LEASE_TABLES, ensure_tables, existing_tables, relation
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


def holder_alive(holder: str) -> bool:
    """False only when the holder ran on this machine and its process is gone."""
    parts = holder.split()
    if len(parts) < 3 or parts[1] != "pid" or not parts[0].endswith("@" + socket.gethostname()):
        return True
    try:
        os.kill(int(parts[2]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


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
        if "run_leases" not in existing_tables(self.warehouse):
            return []
        rows = self.warehouse.query(
            "SELECT name, holder, run_id, acquired_at, expires_at FROM "
            f"{relation(self.warehouse, 'run_leases')} ORDER BY name"
        ).rows
        now = datetime.now(UTC)
        leases = [Lease(str(r[0]), str(r[1]), str(r[2]), r[3], r[4]) for r in rows]
        return [x for x in leases if _utc(x.expires_at) > now and holder_alive(x.holder)]

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
        p = self.warehouse.param()
        for name in names:
            self.warehouse.execute(
                f"DELETE FROM {relation(self.warehouse, 'run_leases')} "
                f"WHERE name = {p} AND run_id = {p}",
                (name, run_id),
            )

    def _try(self, names: Sequence[str], run_id: str, seconds: float) -> None:
        table, p = relation(self.warehouse, "run_leases"), self.warehouse.param()
        live = {lease.name: lease for lease in self.held()}
        now = datetime.now(UTC)
        taken: list[str] = []
        for name in names:
            other = live.get(name)
            if other is None or other.run_id == run_id:
                # Expired or dead holder's row (if any) goes; the key lets one taker in.
                self.warehouse.execute(f"DELETE FROM {table} WHERE name = {p}", (name,))
                try:
                    self.warehouse.execute(
                        f"INSERT INTO {table} VALUES ({p}, {p}, {p}, {p}, {p})",
                        (name, holder_name(run_id), run_id, now, now + timedelta(seconds=seconds)),
                    )
                    taken.append(name)
                    continue
                except WarehouseError:
                    other = next((x for x in self.held() if x.name == name), None)
                    if other is None:
                        raise
            self.release(taken, run_id)
            raise RunLeaseHeldError(
                f"{_what(name)} is being run by {other.holder} since "
                f"{_utc(other.acquired_at):%Y-%m-%d %H:%M:%S} UTC; this run was not started",
                hint=f"wait for run {other.run_id} to finish (`stackyard status` shows leases); "
                f"its lease ends by {_utc(other.expires_at):%H:%M:%S} UTC if it is stuck",
            )


def _what(name: str) -> str:
    """A lease's name as a sentence's subject.

    >>> _what("source:shop"), _what("transformation")
    ("source 'shop'", 'the transformation')
    """
    kind, _, rest = name.partition(":")
    return f"{kind} '{rest}'" if rest else f"the {name}"


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
