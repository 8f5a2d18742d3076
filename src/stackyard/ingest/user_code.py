"""Where in the user's own code a load failed, and the traceback for ``--debug``.

dlt wraps an exception raised inside a source (``PipelineStepFailed`` around
``ResourceExtractionError`` around the user's error), so the message that reaches the user
names dlt's step, not the line of their file. :func:`user_frame` finds the deepest frame
that lies in the project folder (outside its virtual environment) along the exception chain.
"""

from __future__ import annotations

import traceback
from pathlib import Path


def _chain(exc: BaseException) -> list[BaseException]:
    seen: set[int] = set()
    found: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        inner = todo.pop()
        if inner is None or id(inner) in seen:
            continue
        seen.add(id(inner))
        found.append(inner)
        todo += [getattr(inner, "exception", None), inner.__cause__, inner.__context__]
    return found


def user_frame(exc: BaseException, project_dir: Path) -> str | None:
    """``path:line in function`` of the deepest frame in the project's own files, or ``None``.

    Args:
        exc: the exception as the load caught it (possibly wrapped by dlt).
        project_dir: the project folder; frames under ``.venv``/``site-packages`` are not its.
    """
    root = project_dir.resolve()
    where = None
    for inner in _chain(exc):
        for frame in traceback.extract_tb(inner.__traceback__):
            path = Path(frame.filename)
            if not path.is_absolute():
                continue
            try:
                relative = path.resolve().relative_to(root)
            except ValueError:
                continue
            if {".venv", "site-packages", ".stackyard"} & set(relative.parts):
                continue
            where = f"{relative}:{frame.lineno} in {frame.name}"
    return where


def format_traceback(exc: BaseException) -> str:
    """The whole traceback, causes included, as Python prints it."""
    return "".join(traceback.format_exception(exc))
