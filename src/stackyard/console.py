"""How core code reports progress without printing.

Core modules call a :class:`Console`; the CLI picks the implementation: a live Rich display
for terminals (:mod:`stackyard.cli.render`), :class:`NullConsole` for ``--json`` (the result
is printed once at the end), and :class:`CaptureConsole` in tests.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Protocol


class Console(Protocol):
    """Receives progress from a running job. Implementations must be thread-safe: sources
    load in parallel and report from their own threads."""

    def step_started(self, step: str, detail: str = "") -> None:
        """A step (``load shop_db``, ``dbt build``) began."""

    def step_progress(self, step: str, detail: str) -> None:
        """Something happened inside a running step (a table loaded, a model built)."""

    def step_finished(self, step: str, status: str, detail: str = "") -> None:
        """A step ended with ``ok``, ``warn``, ``failed`` or ``skipped``."""

    def message(self, level: str, text: str) -> None:
        """A note for the user: ``info``, ``warning`` or ``error``."""


class NullConsole:
    """Says nothing: for ``--json`` output and library use."""

    def step_started(self, step: str, detail: str = "") -> None:
        return None

    def step_progress(self, step: str, detail: str) -> None:
        return None

    def step_finished(self, step: str, status: str, detail: str = "") -> None:
        return None

    def message(self, level: str, text: str) -> None:
        return None


@dataclass
class CaptureConsole:
    """Records every event as a tuple, for tests."""

    events: list[tuple[str, ...]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _add(self, *event: str) -> None:
        with self._lock:
            self.events.append(event)

    def step_started(self, step: str, detail: str = "") -> None:
        self._add("started", step, detail)

    def step_progress(self, step: str, detail: str) -> None:
        self._add("progress", step, detail)

    def step_finished(self, step: str, status: str, detail: str = "") -> None:
        self._add("finished", step, status, detail)

    def message(self, level: str, text: str) -> None:
        self._add("message", level, text)

    def text(self) -> str:
        """Everything recorded, one event per line."""
        return "\n".join(" | ".join(e) for e in self.events)
