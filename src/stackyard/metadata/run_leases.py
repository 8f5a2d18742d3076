"""Run leases: who is running which source or the transformation, so runs never overlap.

One row per thing being run (``source:shop``, ``transformation``) in ``stackyard.run_leases``,
its name the primary key: of two runs inserting the same name at once, the warehouse lets
one in. A lease ends when its run gives it back, when it expires (its run's deadlines have
all passed, so the run is stuck or gone), or when its holder was a process on this machine
that no longer exists (``kill -9``).

Where one process at a time may open the warehouse (DuckDB's file lock), a second process
cannot read that table while a run holds the file, so the run also mirrors its leases in a
small file beside it (:meth:`~stackyard.warehouse.Warehouse.lease_file`), read by other
processes before they open the warehouse. The mirror counts only while its run holds a lock
on it: the system drops that lock when the run's process ends, however it ends, so a mirror
a killed run left behind never blocks anything.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import IO

from stackyard.errors import RunLeaseHeldError, WarehouseError, WarehouseLockedError
from stackyard.files import write_atomic
from stackyard.metadata.leases import holder_alive, this_process
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
    return this_process("run", run_id)


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

    def open_for_run(
        self, names: Sequence[str], wait: float = 0.0, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        """Open the warehouse for a run taking ``names``, waiting up to ``wait`` seconds while
        another process holds its file (nothing to do where the engine lets many open it).

        While another process's run is mirrored, the file is not even opened: between two of
        that run's steps nothing holds it, and opening it then would make that run's next
        step fail to open it.

        Raises:
            RunLeaseHeldError: another process's run holds the file (after ``wait``), named
                as a held lease is.
            WarehouseLockedError: something else holds it (a DuckDB shell, a BI tool).
        """
        if self.warehouse.lease_file() is None:
            return
        give_up = time.monotonic() + wait
        while True:
            locked, holders = None, self.mirrored()
            if not holders:
                try:
                    self.warehouse.query("SELECT 1")  # the connection stays open for the run
                    return
                except WarehouseLockedError as exc:
                    locked, holders = exc, self.mirrored()
            if time.monotonic() >= give_up:
                if locked is not None and not holders:
                    raise locked
                held = [x for x in holders if x.name in names] or holders
                raise _held(held[0].name, held[0])
            sleep(min(1.0, max(0.05, give_up - time.monotonic())))

    def mirrored(self) -> list[Lease]:
        """The leases a run in another process holds now, as its mirror file has them; none
        when no such run holds it (no file, or one a killed run left: its lock is gone)."""
        path = self.warehouse.lease_file()
        try:
            handle = path.open(encoding="utf-8") if path else None
        except OSError:
            return []
        if handle is None:
            return []
        with handle:
            try:
                if _unheld(handle):
                    return []
                data = json.load(handle)
                holder, run_id = str(data["holder"]), str(data["run_id"])
                acquired = datetime.fromisoformat(data["acquired_at"])
                expires = datetime.fromisoformat(data["expires_at"])
                names, pid = [str(n) for n in data["names"]], int(data["pid"])
            except (OSError, ValueError, KeyError, TypeError):
                return []  # not a mirror a run wrote: nothing is known of a holder
        # This process's own run shares the file with it: its lease table says the rest.
        if pid == os.getpid() or not holder_alive(holder):
            return []
        return [Lease(n, holder, run_id, acquired, expires) for n in sorted(names)]

    def in_progress(self, what: str) -> WarehouseLockedError | None:
        """Why a read cannot be served while a run in another process holds the warehouse's
        file, naming that run (what it runs, since when, its process); ``None`` when no run
        holds it.

        Args:
            what: what cannot be done, in words (``the run history cannot be read``).
        """
        holders = self.mirrored()
        if not holders:
            return None
        first = holders[0]
        return WarehouseLockedError(
            f"{self._in_progress(holders)}. DuckDB lets one process at a time open the file, "
            f"so {what} until that run ends; nothing was read",
            hint=f"run this command again when run {first.run_id} has ended (`stackyard run "
            "--wait SECONDS` waits for it before starting); its lease ends by "
            f"{_utc(first.expires_at):%Y-%m-%d %H:%M:%S} UTC if it is stuck",
        )

    def running(self) -> list[Lease]:
        """The leases runs hold now, read without opening a file a run in another process
        holds: that run's mirror where the engine has one (DuckDB), else the lease table."""
        return self.mirrored() if self.warehouse.lease_file() is not None else self.held()

    def in_the_way(self, what: str) -> WarehouseLockedError | None:
        """Why a command that replaces the warehouse's data must not go ahead while a run is
        in progress on it, naming that run; ``None`` when no run is.

        Args:
            what: what would go wrong and what was not done, in words.
        """
        holders = self.running()
        if not holders:
            return None
        first = holders[0]
        return WarehouseLockedError(
            f"{self._in_progress(holders)}; {what}",
            hint=f"wait for run {first.run_id} to end, or stop it, then run this command "
            "again (`stackyard status` shows the leases held); its lease ends by "
            f"{_utc(first.expires_at):%Y-%m-%d %H:%M:%S} UTC if it is stuck",
        )

    def _in_progress(self, holders: Sequence[Lease]) -> str:
        """Which run holds ``holders`` (its first's holder), running what, since when."""
        first = holders[0]
        running = " and ".join(_what(x.name) for x in holders)
        return (
            f"a stackyard run is in progress on {self.warehouse.describe()}: {first.holder} "
            f"has been running {running} since {_utc(first.acquired_at):%Y-%m-%d %H:%M:%S} UTC"
        )

    def release(self, names: Sequence[str], run_id: str) -> None:
        """Give leases back (only those this run holds)."""
        if not names:
            return
        self._unmirror(run_id)
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
        self._mirror(names, holder, run_id, now, ends)

    def _mirror(
        self, names: Sequence[str], holder: str, run_id: str, now: datetime, ends: datetime
    ) -> None:
        path = self.warehouse.lease_file()
        if path is None:
            return
        data = {
            "run_id": run_id,
            "holder": holder,
            "pid": os.getpid(),
            "names": list(names),
            "acquired_at": now.isoformat(),
            "expires_at": ends.isoformat(),
        }
        # Owner-only, as everything beside the warehouse file; whole or absent, never half.
        write_atomic(path, json.dumps(data, indent=1) + "\n", mode=0o600)
        # Locked for as long as the run holds its leases: the system drops the lock when the
        # process ends however it ends, so a file a killed run left is seen as no one's.
        handle = path.open(encoding="utf-8")
        _lock(handle)
        replaced = _MIRRORS.pop(str(path), None)  # this run's earlier mirror, now replaced
        if replaced is not None:
            replaced.close()
        _MIRRORS[str(path)] = handle

    def _unmirror(self, run_id: str) -> None:
        path = self.warehouse.lease_file()
        if path is None:
            return
        try:
            mine = json.loads(path.read_text(encoding="utf-8")).get("run_id") == run_id
        except (OSError, ValueError, AttributeError):
            mine = False
        if mine:
            path.unlink(missing_ok=True)  # before the lock goes: never there and unlocked
            handle = _MIRRORS.pop(str(path), None)
            if handle is not None:
                handle.close()


# The open mirror file of each run this process holds leases for: its lock lasts as long.
_MIRRORS: dict[str, IO[str]] = {}


def _lock(handle: IO[str]) -> None:
    """Hold an exclusive lock on an open file (``flock``; where the system has none, a
    mirror's holder is checked by its process id alone)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _unheld(handle: IO[str]) -> bool:
    """Whether no process holds the lock on an open file (it is then taken and let go)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return False
    try:
        fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    fcntl.flock(handle, fcntl.LOCK_UN)
    return True


def _held(name: str, other: Lease) -> RunLeaseHeldError:
    return RunLeaseHeldError(
        f"{_what(name)} is being run by {other.holder} since "
        f"{_utc(other.acquired_at):%Y-%m-%d %H:%M:%S} UTC; this run was not started",
        hint=f"wait for run {other.run_id} to finish (`stackyard status` shows leases; "
        "`stackyard run --wait SECONDS` waits for it); its lease ends by "
        f"{_utc(other.expires_at):%Y-%m-%d %H:%M:%S} UTC if it is stuck",
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
