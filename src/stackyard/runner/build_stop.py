"""Stopping a build that runs in another thread (Ctrl-C reaches the main thread only)."""

from __future__ import annotations

import threading

from stackyard.runbooks.backfill.connection import Connection


class Stop:
    """Ctrl-C, passed from the thread that waits on a build to the thread running it.

    :meth:`request` cancels the statement running now on every connection the build has open
    (a DuckDB cursor of the project's connection must never be closed, or used by another
    thread, while its query runs: "connection is busy", or an abort as the process exits), and
    the build stops before its next step with ``KeyboardInterrupt``. A dbt invocation already
    running is not cut: it finishes its nodes first.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: list[Connection] = []
        self.requested = False

    def request(self) -> None:
        """Stop the build (from another thread)."""
        with self._lock:
            self.requested = True
            for conn in self._open:
                conn.interrupt()

    def watch(self, conn: Connection) -> Connection:
        """A connection the build opened: interrupted with it."""
        with self._lock:
            self._open.append(conn)
            if self.requested:
                conn.interrupt()
        return conn

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
