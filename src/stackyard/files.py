"""Files a later run reads back, written so that a kill never leaves half of one.

A run killed mid-write (kill -9, a lost machine) would otherwise leave a truncated file that
every later run fails to read: the marker of loads still to check, the dbt profiles stackyard
generates, the journal of a schema change.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


def write_atomic(path: Path, text: str, mode: int | None = None) -> None:
    """Write ``text`` to ``path``: readers see the old file or the new one, never a part;
    with ``mode``, the file has those permissions from the moment it appears.

    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "state.json"
    >>> write_atomic(target, "{}")
    >>> target.read_text(), sorted(p.name for p in target.parent.iterdir())
    ('{}', ['state.json'])
    """
    # One draft per thread: two threads of one process may write the same file.
    draft = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        draft.write_text(text, encoding="utf-8")
        if mode is not None:
            draft.chmod(mode)
        os.replace(draft, path)
    finally:
        draft.unlink(missing_ok=True)


def folder_problem(root: Path) -> str | None:
    """Why files cannot be written into ``root`` (made if missing), or ``None``: it is a
    file, lies under one, or its nearest existing folder cannot be written.

    >>> import tempfile
    >>> base = Path(tempfile.mkdtemp())
    >>> (base / "f").write_text("x")
    1
    >>> folder_problem(base / "new" / "deeper"), folder_problem(base / "f" / "sub")[-23:]
    (None, 'is a file, not a folder')
    """
    existing = root
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} cannot be written"
    return None


@contextmanager
def temporary_copy(suffix: str, write: Callable[[IO[bytes]], object]) -> Iterator[str]:
    """The path of a temporary file ``write`` fills, removed once the block ends (a reader
    such as DuckDB needs a file with the right ending, not a stream).

    >>> with temporary_copy(".txt", lambda f: f.write(b"hi")) as name:
    ...     open(name).read(), name.endswith(".txt")
    ('hi', True)
    """
    with tempfile.NamedTemporaryFile(suffix=suffix, delete=False) as tmp:
        name = tmp.name
        try:
            write(tmp)
        except BaseException:
            tmp.close()
            os.unlink(name)
            raise
    try:
        yield name
    finally:
        os.unlink(name)
