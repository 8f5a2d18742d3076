"""Stopping a build that runs in another thread (Ctrl-C reaches the main thread only)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from stackyard.runbooks.backfill.connection import Connection

if TYPE_CHECKING:
    from stackyard.transform.dbt_cut import DbtCut


class Stop:
    """Ctrl-C, passed from the thread that waits on a build to the thread running it.

    :meth:`request` cancels the statement running now on every connection the build has open
    (a DuckDB cursor of the project's connection must never be closed, or used by another
    thread, while its query runs: "connection is busy", or an abort as the process exits), and
    the build stops before its next step with ``KeyboardInterrupt``. A dbt invocation running
    is cut as dbt cuts itself on Ctrl-C (:mod:`stackyard.transform.dbt_cut`): its statements
    are cancelled, it starts no other node, and it raises ``KeyboardInterrupt``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: list[Connection] = []
        self._dbt: list[DbtCut] = []
        self.requested = False

    def request(self) -> None:
        """Stop the build (from another thread)."""
        with self._lock:
            self.requested = True
            for conn in self._open:
                conn.interrupt()
            cuts = list(self._dbt)
        for cut in cuts:  # outside the lock: a cancel may connect to the warehouse
            cut.interrupt()

    def watch(self, conn: Connection) -> Connection:
        """A connection the build opened: interrupted with it."""
        with self._lock:
            self._open.append(conn)
            if self.requested:
                conn.interrupt()
        return conn

    @contextmanager
    def cutting(self, cut: DbtCut) -> Iterator[None]:
        """While inside, :meth:`request` also cuts the dbt invocations ``cut`` guards."""
        with self._lock:
            self._dbt.append(cut)
        if self.requested:
            cut.interrupt()
        try:
            yield
        finally:
            with self._lock:
                self._dbt.remove(cut)

    def close(self, conn: Connection) -> None:
        """Close a watched connection (never while :meth:`request` interrupts it)."""
        with self._lock:
            if conn in self._open:
                self._open.remove(conn)
            conn.close()

    def check(self) -> None:
        """Raise ``KeyboardInterrupt`` once a stop was requested."""
        if self.requested:
            raise KeyboardInterrupt
