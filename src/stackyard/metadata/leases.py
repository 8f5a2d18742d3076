"""Leases in the ``stackyard`` schema: who holds what, and releasing the ones nobody holds.

A lease table has one row per thing held (a key), naming the holder and carrying a heartbeat
the holder refreshes while it works. :data:`LEASE_TABLES` lists them; a new kind of lease (an
orchestrator's, say) is one more :class:`LeaseTable` in :func:`register_lease_table`, and the
doctor's stale-lease check covers it with no other change.
"""

from __future__ import annotations

import getpass
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime

from stackyard.metadata.schema import existing_tables, relation
from stackyard.warehouse.base import Warehouse


@dataclass(frozen=True)
class LeaseTable:
    """One table of leases.

    Attributes:
        table: the table in the ``stackyard`` schema.
        what: what its leases guard, in words (``backfill``).
        key: the column naming the thing held.
        holder: the column naming the holder (``user@host pid N …``).
        heartbeat: the column holding the holder's last sign of life.
        stale_after: seconds without a heartbeat after which the lease counts as abandoned
            (the owner's own take-over rule, so the doctor never calls stale what it would not).
        take_over: how the owner takes an abandoned lease over, for the finding's fix.
    """

    table: str
    what: str
    key: str
    holder: str = "holder"
    heartbeat: str = "heartbeat"
    stale_after: float = 30.0
    take_over: str = ""


LEASE_TABLES: list[LeaseTable] = [
    LeaseTable(
        "backfill_leases",
        "backfill",
        "target",
        take_over="a new `stackyard backfill` of that target also takes it over",
    ),
    # A run lease (metadata/run_leases.py) has no heartbeat: it is abandoned once it has
    # expired (all its run's deadlines have passed) or its holder's process is gone.
    LeaseTable(
        "run_leases",
        "run",
        "name",
        heartbeat="expires_at",
        stale_after=0.0,
        take_over="the next `stackyard run` of it also takes an expired lease over",
    ),
]


def register_lease_table(table: LeaseTable) -> None:
    """Add a kind of lease to the ones the doctor checks (idempotent)."""
    if all(known.table != table.table for known in LEASE_TABLES):
        LEASE_TABLES.append(table)


@dataclass(frozen=True)
class Lease:
    """One lease as read.

    Attributes:
        kind: its table's declaration.
        key: what it holds.
        holder: who holds it.
        heartbeat: the holder's last heartbeat (``None`` when never written).
    """

    kind: LeaseTable
    key: str
    holder: str
    heartbeat: datetime | None

    def age(self, now: datetime) -> float:
        """Seconds since the last heartbeat (infinite without one)."""
        return (now - self.heartbeat).total_seconds() if self.heartbeat else float("inf")

    def abandoned(self, now: datetime) -> str:
        """Why nobody holds this lease any more, or ``""`` while its holder may still work."""
        if not holder_alive(self.holder):
            return f"its holder's process is gone ({self.holder})"
        if self.age(now) > self.kind.stale_after:
            return (
                f"its last heartbeat was {self.age(now):.0f} s ago "
                f"(stale after {self.kind.stale_after:.0f} s)"
            )
        return ""


def this_process(what: str, ident: str) -> str:
    """This process as a lease holder, as people read it: ``user@host pid N (what ID)``.

    The user comes from the account, not only from ``$USER``, which containers and cron
    often leave unset (the holder then read ``?@host``).

    >>> this_process("run", "r1").split(" pid ")[0].startswith("?@")
    False
    """
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        # No login name anywhere (a uid without a passwd entry): the uid still names it.
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()} pid {os.getpid()} ({what} {ident})"


def holder_alive(holder: str) -> bool:
    """False only when the holder ran on this machine and its process is gone.

    >>> holder_alive("ana@elsewhere.example pid 1 (backfill b1)")
    True
    """
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


def read_leases(warehouse: Warehouse) -> list[Lease]:
    """Every lease held in this warehouse, over all lease tables that exist in it."""
    present = existing_tables(warehouse)
    found = []
    for kind in LEASE_TABLES:
        if kind.table not in present:
            continue
        columns = ", ".join(warehouse.quote(c) for c in (kind.key, kind.holder, kind.heartbeat))
        rows = warehouse.query(f"SELECT {columns} FROM {relation(warehouse, kind.table)}").rows
        for key, holder, beat in rows:
            if isinstance(beat, datetime) and beat.tzinfo is None:
                beat = beat.replace(tzinfo=UTC)
            found.append(Lease(kind, str(key), str(holder), beat))
    return found


def release_lease(warehouse: Warehouse, lease: Lease) -> bool:
    """Delete a lease, only if it is still the one read (same holder, same heartbeat).

    Returns:
        whether it was released (``False``: its holder beat or another took it since).
    """
    kind = lease.kind
    p = warehouse.param()
    table = relation(warehouse, kind.table)
    key, holder, beat = (warehouse.quote(c) for c in (kind.key, kind.holder, kind.heartbeat))
    same_beat = f"{beat} IS NULL" if lease.heartbeat is None else f"{beat} = {p}"
    params = [lease.key, lease.holder] + ([] if lease.heartbeat is None else [lease.heartbeat])
    where = f"{key} = {p} AND {holder} = {p} AND {same_beat}"
    count = f"SELECT count(*) FROM {table} WHERE {where}"
    if not warehouse.query(count, params).rows[0][0]:
        return False
    # The condition repeats the heartbeat read, so a holder that beat since keeps its lease.
    warehouse.execute(f"DELETE FROM {table} WHERE {where}", params)
    return not warehouse.query(count, params).rows[0][0]
