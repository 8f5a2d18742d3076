"""Files a later run reads back, written so that a kill never leaves half of one.

A run killed mid-write (kill -9, a lost machine) would otherwise leave a truncated file that
every later run fails to read: the marker of loads still to check, the dbt profiles stackyard
generates, the journal of a schema change.
"""

from __future__ import annotations

import os
from pathlib import Path


def write_atomic(path: Path, text: str, mode: int | None = None) -> None:
    """Write ``text`` to ``path``: readers see the old file or the new one, never a part;
    with ``mode``, the file has those permissions from the moment it appears.

    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "state.json"
    >>> write_atomic(target, "{}")
    >>> target.read_text(), sorted(p.name for p in target.parent.iterdir())
    ('{}', ['state.json'])
    """
    draft = path.with_name(f".{path.name}.{os.getpid()}.tmp")
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
