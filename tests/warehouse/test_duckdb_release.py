"""A run inside a process that lives on leaves the DuckDB file for other processes."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

from stackyard import Context
from tests.in_process import stackyard_in_process
from tests.runbooks.backfill.conftest import make_backfill_project


def _opened_by_another_process(root: Path) -> subprocess.CompletedProcess[str]:
    gc.collect()  # only what is still referenced holds the file
    code = "import duckdb, sys; duckdb.connect(sys.argv[1]).close()"
    return subprocess.run(
        [sys.executable, "-c", code, str(root / ".stackyard" / "dev.duckdb")],
        capture_output=True,
        text=True,
    )


def test_a_run_in_a_long_lived_process_leaves_the_duckdb_file_free(tmp_path: Path) -> None:
    """dbt-duckdb kept its connection open until the process ended, and dlt the cursor it
    loaded through: an orchestrator's worker that had run the project held the file, and
    `stackyard health` in a shell (or a BI tool) was refused: "Conflicting lock is held in
    … python". A file deleted meanwhile was not made again by the next run in that process
    (it wrote to the open, deleted one)."""
    root = make_backfill_project(tmp_path / "mini")
    with Context(root) as ctx:
        result = ctx.run()
        assert result.ok, result.to_dict()
    opened = _opened_by_another_process(root)
    assert opened.returncode == 0, opened.stderr
    (root / ".stackyard" / "dev.duckdb").unlink()
    ran = stackyard_in_process("reload", "app", "--yes", cwd=root)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    opened = _opened_by_another_process(root)
    assert opened.returncode == 0, opened.stderr
    assert (root / ".stackyard" / "dev.duckdb").exists()
