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
