"""The project's private folder, ``.stackyard/``: readable by its owner only.

It holds what must not leak: ``secrets.toml``, private keys, the DuckDB dev database, dlt's
pipeline state and load packages (rows of source data, and request URLs in dlt's traces).
The folder and everything in it are kept at mode 0700/0600, the rule ssh applies to
``~/.ssh``, whatever the umask; dlt's ``trace.pickle`` (a pickled record of every step, with
resolved config values and failing request URLs) is not kept at all.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from stackyard.files import write_atomic

PRIVATE_DIR = ".stackyard"
DIR_MODE = 0o700
FILE_MODE = 0o600
TRACE_FILE = "trace.pickle"  # dlt.pipeline.trace.TRACE_FILE_NAME


def private_dir(project_dir: Path, *parts: str) -> Path:
    """``<project>/.stackyard/<parts…>``, created (with parents inside it) at mode 0700.

    Returns:
        The folder's path.
    """
    folder = project_dir / PRIVATE_DIR
    for part in ("", *parts):
        folder = folder / part if part else folder
        folder.mkdir(mode=DIR_MODE, exist_ok=True)
        if stat.S_IMODE(folder.stat().st_mode) != DIR_MODE:
            os.chmod(folder, DIR_MODE)
    return folder


def private_folder(folder: Path) -> Path:
    """``folder``, created with its parents; from a ``.stackyard`` folder on its path down,
    each level is made (or put back to) 0700 by :func:`private_dir`. A folder outside
    ``.stackyard/`` is only created.

    >>> import tempfile
    >>> base = Path(tempfile.mkdtemp())
    >>> oct(private_folder(base / ".stackyard" / "dbt").stat().st_mode & 0o777)
    '0o700'
    """
    parts = folder.parts
    if PRIVATE_DIR not in parts:
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    at = parts.index(PRIVATE_DIR)
    project_dir = Path(*parts[:at]) if at else Path()
    project_dir.mkdir(parents=True, exist_ok=True)
    return private_dir(project_dir, *parts[at + 1 :])


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` owner-only (0600 from the moment it appears, the whole file
    or the old one, never a part); the folders made for it inside ``.stackyard/`` are 0700.
    Every file stackyard writes under ``.stackyard/`` goes through here, so ``security
    check`` never finds one of stackyard's own files open to others.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / ".stackyard" / "backfills" / "b1.json"
    >>> write_private(path, "{}")
    >>> oct(path.stat().st_mode & 0o777), oct(path.parent.parent.stat().st_mode & 0o777)
    ('0o600', '0o700')
    """
    private_folder(path.parent)
    write_atomic(path, text, mode=FILE_MODE)


def tighten(path: Path) -> None:
    """Make ``path`` and everything under it owner-only: folders 0700, files 0600.

    Symbolic links are not followed. A file that vanishes meanwhile (dlt cleaning up) is
    skipped.
    """
    if path.is_symlink() or not path.exists():
        return
    _chmod(path, DIR_MODE if path.is_dir() else FILE_MODE)
    if not path.is_dir():
        return
    for root, dirs, files in os.walk(path):
        for name in dirs:
            _chmod(Path(root) / name, DIR_MODE)
        for name in files:
            _chmod(Path(root) / name, FILE_MODE)


def drop_trace(pipeline_dir: Path) -> None:
    """Remove dlt's ``trace.pickle`` from a pipeline's working folder.

    stackyard records each run itself (the ``stackyard`` schema); dlt's trace is only read
    by ``dlt pipeline … trace`` and holds request URLs, query strings included. dlt's own
    switch, ``enable_runtime_trace: false``, would also drop the in-memory trace the loader
    reads row counts from, so the file is removed after each load instead.
    """
    (pipeline_dir / TRACE_FILE).unlink(missing_ok=True)


def _chmod(path: Path, mode: int) -> None:
    try:
        if path.is_symlink():
            return
        if stat.S_IMODE(path.stat().st_mode) != mode:
            os.chmod(path, mode)
    except FileNotFoundError:
        pass
