"""kill -9 in the middle of a run: the warehouse stays readable, and the next run completes
without duplicate rows (dlt finishes or redoes the pending load package; keys merge)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stackyard import Context
from stackyard.project import init_project

BIN = Path(sys.executable).parent


@pytest.mark.slow
@pytest.mark.parametrize("after_seconds", [1.0, 2.5, 4.0])
def test_kill_9_mid_run_then_rerun_has_no_duplicates(tmp_path: Path, after_seconds: float) -> None:
    project = tmp_path / "shop"
    init_project(project, example="jaffle_shop")
    run = subprocess.Popen(
        [str(BIN / "stackyard"), "run", "--json"],
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    time.sleep(after_seconds)
    if run.poll() is None:
        os.killpg(run.pid, signal.SIGKILL)
    run.wait()

    again = subprocess.run(
        [str(BIN / "stackyard"), "run", "--json"], cwd=project, capture_output=True, text=True
    )
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]

    source = sqlite3.connect(project / "sources" / "jaffle_app.sqlite")
    ctx = Context(project)
    for table in ("customers", "orders", "order_items"):
        expected = source.execute(f"select count(*) from {table}").fetchone()[0]
        loaded = ctx.sql(f"select count(*), count(distinct id) from shop_db.{table}").rows[0]
        assert loaded == (expected, expected), table
    assert (
        ctx.sql("select count(*) from marts.orders").rows[0][0]
        == source.execute("select count(*) from orders").fetchone()[0]
    )
    ctx.close()
