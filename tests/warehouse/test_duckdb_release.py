"""A run inside a process that lives on leaves the DuckDB file for other processes."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

from stackyard import Context
from tests.runbooks.backfill.conftest import make_backfill_project


def test_a_run_in_a_long_lived_process_leaves_the_duckdb_file_free(tmp_path: Path) -> None:
    """dbt-duckdb kept its connection open until the process ended: an orchestrator's worker
    that had run the project held the file, and `stackyard health` in a shell (or a BI
    tool) was refused: "Conflicting lock is held in … python"."""
    root = make_backfill_project(tmp_path / "mini")
    with Context(root) as ctx:
        result = ctx.run()
        assert result.ok, result.to_dict()
    gc.collect()  # only what is still referenced holds the file
    code = "import duckdb, sys; duckdb.connect(sys.argv[1]).close()"
    opened = subprocess.run(
        [sys.executable, "-c", code, str(root / ".stackyard" / "dev.duckdb")],
        capture_output=True,
        text=True,
    )
    assert opened.returncode == 0, opened.stderr
    with Context(root) as ctx:  # and the next run in this process opens it again
        assert ctx.run().ok
