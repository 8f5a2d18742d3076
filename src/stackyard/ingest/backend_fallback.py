"""Panics in native readers: a failed load, and for ConnectorX under ``backend: auto`` a second
read through SQLAlchemy.

A Rust extension that panics raises pyo3's ``PanicException``, which derives from
``BaseException``, not ``Exception``: without this module it would pass every ``except
Exception`` and end the whole run. ConnectorX panics on values it cannot convert, e.g. SQLite
``DATETIME`` text holding a date only (``2024-01-05``) beside full timestamps; dlt's
SQLAlchemy → Arrow backend reads the same values (a date becomes midnight).

A panic during extraction leaves nothing dlt would load later: the interrupted package stays in
an uncommitted extract folder (``pipeline.has_pending_data`` is false), and the pipeline state
is not saved (dlt saves it only when extraction ends). The second read therefore starts from a
fresh pipeline object, with the state as it was on disk before the first.
"""

from __future__ import annotations

import dataclasses
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stackyard.config.secrets import Secrets
from stackyard.config.sources import SqlDatabaseSource

# Never caught by a load: the user or the interpreter is stopping the process.
FATAL = (KeyboardInterrupt, SystemExit, GeneratorExit)

_HINT = "set `backend: pyarrow` on the source to read it through SQLAlchemy instead"


def is_panic(exc: BaseException) -> bool:
    """A ``BaseException`` that is neither an ``Exception`` nor a request to stop (alone or
    inside an exception group): a native extension's panic (pyo3's ``PanicException``), or a
    cancellation that escaped a source's event loop."""
    if isinstance(exc, BaseExceptionGroup):
        return exc.subgroup(FATAL) is None and not isinstance(exc, Exception)
    return not isinstance(exc, Exception) and not isinstance(exc, FATAL)


def from_connectorx(exc: BaseException) -> bool:
    """Whether ``exc`` was raised while ConnectorX was reading (a frame of its Python module
    or of dlt's ConnectorX reader is on the traceback)."""
    return any(
        "connectorx" in frame.filename.lower() or "connectorx" in frame.name.lower()
        for frame in traceback.extract_tb(exc.__traceback__)
    )


def _short(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def panic_message(source: str, config: Any, exc: BaseException) -> str:
    """A failed load's message for a panic, saying what to do next."""
    if type(exc).__name__ == "CancelledError":  # asyncio's, from a stream source's event loop
        return f"loading source '{source}' was cancelled before it finished (CancelledError)"
    if isinstance(config, SqlDatabaseSource) and from_connectorx(exc):
        return (
            f"ConnectorX could not read source '{source}' ({_short(exc)}); {_HINT} "
            "(slower, but it reads values ConnectorX cannot convert)"
        )
    return (
        f"a native extension crashed while loading source '{source}' "
        f"({type(exc).__name__}: {_short(exc)})"
    )


def auto_chose_connectorx(source: str, config: Any, project_dir: Path, secrets: Secrets) -> bool:
    """Whether the source reads with ConnectorX because its backend is ``auto``."""
    from stackyard.ingest.sources import connection_url
    from stackyard.ingest.sql_backend import sql_backend

    if not isinstance(config, SqlDatabaseSource) or config.backend != "auto":
        return False
    try:
        url = connection_url(source, config, project_dir, secrets)
    except Exception:  # it resolved for the first read; if not now, no second read
        return False
    return sql_backend(config, url)[0] == "connectorx"


def with_fallback(
    request: Any,
    load: Callable[[Any], Any],
    *,
    project_dir: Path,
    secrets: Secrets,
    on_fallback: Callable[[str], None],
    redact: Callable[[str], str] = str,
) -> Any:
    """``load(request)``; if ConnectorX chosen by ``backend: auto`` panics, ``load`` again with
    the ``pyarrow`` backend, and the result carries a note saying so.

    Args:
        request: the :class:`~stackyard.ingest.loader.LoadRequest` (its ``config`` is copied
            with ``backend: pyarrow`` for the second read).
        load: one read of the source into the warehouse; it builds its own pipeline object.
        project_dir, secrets: to tell which backend ``auto`` chose.
        on_fallback: told the note before the second read starts.
        redact: takes secrets out of the note (the panic's text may quote a value).

    Raises:
        BaseException: whatever ``load`` raised, unless it was such a panic.
    """
    try:
        return load(request)
    except BaseException as exc:
        if not (
            is_panic(exc)
            and from_connectorx(exc)
            and auto_chose_connectorx(request.name, request.config, project_dir, secrets)
        ):
            raise
        note = redact(
            f"ConnectorX could not read a value ({_short(exc)}); read through SQLAlchemy "
            "instead: set `backend: pyarrow` on the source to skip ConnectorX"
        )
    on_fallback(note)
    config = request.config.model_copy(update={"backend": "pyarrow"})
    result = load(dataclasses.replace(request, config=config))
    return dataclasses.replace(result, notes=(*result.notes, note))
