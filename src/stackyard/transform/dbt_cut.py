"""Cutting a dbt invocation short from another thread (Ctrl-C while dbt builds in a worker).

dbt stops itself on a ``KeyboardInterrupt`` in the thread that invoked it
(``dbt.task.runnable.GraphRunnableTask.execute_nodes``): it cancels the statement every open
connection runs (``adapter.cancel_open_connections()``: dbt-duckdb interrupts the cursor,
dbt-postgres ends the backend with ``pg_terminate_backend``) and starts no more nodes. Ctrl-C
reaches the main thread only, and a blocked worker thread cannot be handed an exception, so
:meth:`DbtCut.interrupt` does the same from outside:

- it cancels the open connections' statements, as dbt does (and again every half second while
  the invocation runs, for a statement that was about to start);
- it turns on dbt's ``fail_fast`` for the invocation: the node whose statement was cancelled
  fails, and dbt cancels the rest and starts no other node ("Skipping due to fail_fast");
- from then on a node's statement (or a node about to execute) raises in the node's own thread,
  before anything runs: dbt records that node as an error, and fails fast on it.

The invocation then returns, and :meth:`DbtCut.invocation` raises ``KeyboardInterrupt`` in its
thread in place of what dbt returned.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# The events dbt fires in a node's thread before it runs something: a statement, or a node.
_BEFORE_RUNNING = frozenset({"SQLQuery", "NodeExecuting"})
_AGAIN_SECONDS = 0.5


class CutShort(Exception):
    """Raised in a dbt node's thread once its invocation is cut: the node fails, nothing runs."""


class DbtCut:
    """Ctrl-C for the dbt invocations of one :class:`~stackyard.transform.dbt.Dbt`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requested = False
        self._running = False
        self._ended = threading.Event()
        self._ended.set()

    def interrupt(self) -> None:
        """Cut the invocation running now, and refuse the ones that follow (from any thread)."""
        with self._lock:
            again = self.requested
            self.requested = True
            if not self._running:
                return
        _fail_fast()
        _cancel_open_connections()
        if not again:
            threading.Thread(
                target=self._cancel_until_ended, name="stackyard-dbt-cut", daemon=True
            ).start()

    @contextmanager
    def invocation(self) -> Iterator[None]:
        """Around one dbt invocation.

        Raises:
            KeyboardInterrupt: the invocation was cut (or would start after a cut).
        """
        with self._lock:
            if self.requested:
                raise KeyboardInterrupt
            self._running = True
            self._ended.clear()
        try:
            yield
        except BaseException:
            if not self.requested:
                raise
        finally:
            with self._lock:
                self._running = False
                self._ended.set()
        if self.requested:
            raise KeyboardInterrupt

    def on_event(self, event: Any) -> bool:
        """dbt's callback, in the thread that fired ``event``: whether the invocation is cut
        (its nodes are then no longer reported).

        Raises:
            CutShort: the invocation is cut and a node was about to run something.
        """
        if not self.requested:
            return False
        _fail_fast()  # the node failing now stops the invocation
        # Only in a node's own thread: dbt's main thread cancels through a statement of its own.
        if event.info.name in _BEFORE_RUNNING and event.data.node_info.unique_id:
            raise CutShort("interrupted (Ctrl-C) before it ran")
        return True

    def _cancel_until_ended(self) -> None:
        while not self._ended.wait(_AGAIN_SECONDS):
            _cancel_open_connections()


def _fail_fast() -> None:
    """Turn on ``--fail-fast`` for the invocation running (dbt reads it after every node)."""
    from dbt.flags import get_flags

    flags = get_flags()
    if getattr(flags, "FAIL_FAST", None) is False:
        object.__setattr__(flags, "FAIL_FAST", True)  # dbt's Flags is a frozen dataclass


def _cancel_open_connections() -> None:
    """What dbt does on Ctrl-C (``GraphRunnableTask._cancel_connections``), for every adapter
    registered: cancel what each connection runs, through a connection of this thread's.

    Best effort: a cancel that fails (the warehouse unreachable, an adapter just reset by the
    next invocation) leaves the statement to finish, and the invocation still stops after it.
    """
    from dbt.adapters.factory import FACTORY

    with FACTORY.lock:
        adapters: list[Any] = list(FACTORY.adapters.values())  # BaseAdapter, typed as a protocol
    for adapter in adapters:
        try:
            if adapter.is_cancelable():
                with adapter.connection_named("master"):
                    adapter.cancel_open_connections()
        except Exception:  # see above
            continue
