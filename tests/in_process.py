"""The CLI run in the test's own process, answered as a finished process would be.

A new process pays dbt's import (and its schema setup) at every command, a few seconds
each: most of the time of a test that runs a handful of commands. A test whose point is a
process of its own (killed, holding a lease or a DuckDB file beside another) starts one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import traceback
from collections.abc import Mapping
from pathlib import Path

STACKYARD = str(Path(sys.executable).parent / "stackyard")


def stackyard_in_process(
    *args: str, cwd: Path, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``stackyard ARGS`` in ``cwd``, with ``env`` over this process's environment."""
    from typer.testing import CliRunner

    from stackyard.cli.main import app

    here = Path.cwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(app, list(args), env=dict(env or {}))
    finally:
        os.chdir(here)
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        # What a process would have printed as it died.
        stderr += "".join(traceback.format_exception(result.exception))
    return subprocess.CompletedProcess([STACKYARD, *args], result.exit_code, result.stdout, stderr)
