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


# `stackyard run`, dying the way kill -9 does (no cleanup, no finally) after the warehouse
# committed the first load job of a table and before dlt marked that job done.
DIE_BEFORE_JOB_IS_MARKED = """
import os, sys
from dlt.common.storages.load_package import PackageStorage
complete = PackageStorage.complete_job
def die_on_a_table(self, load_id, file_name):
    if not file_name.startswith("_dlt"):
        os._exit(137)
    return complete(self, load_id, file_name)
PackageStorage.complete_job = die_on_a_table
sys.argv = ["stackyard", "run", "--select", "app"]
from stackyard.cli.main import main
main()
"""


# On DuckDB. On Postgres, a job still running on the server for the killed client once failed
# terminally when the next run loaded it again (not yet understood), so it is not run there.
def test_a_load_job_done_in_the_warehouse_but_not_marked_is_not_appended_twice(
    project: Path,
) -> None:
    """dlt loads a pending package's unfinished jobs again: one that had already reached the
    warehouse must not add its rows a second time (a first load, which appends, included)."""
    died = subprocess.run(
        [sys.executable, "-c", DIE_BEFORE_JOB_IS_MARKED],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert died.returncode == 137, died.stdout + died.stderr
    ctx = Context(project)
    again = ctx.run(select=["app"])
    assert again.ok, again.to_dict()
    assert {t.table: t.rows for load in again.loads for t in load.tables} == {
        "customers": 50,
        "orders": 200,
    }
    for table, expected in (("customers", 50), ("orders", 200)):
        loaded = ctx.sql(f"select count(*), count(distinct id) from app.{table}").rows[0]
        assert tuple(loaded) == (expected, expected), table
    ctx.close()


def test_a_check_that_failed_after_the_package_loaded_is_done_by_the_next_run(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ids of an interrupted package are kept until its rows have been checked: a run that
    loads the package and then fails before the check leaves it to the next run."""
    from stackyard.ingest import recovery

    died = subprocess.run(
        [sys.executable, "-c", DIE_BEFORE_JOB_IS_MARKED],
        cwd=project,
        capture_output=True,
    )
    assert died.returncode == 137
    check = recovery.drop_rows_loaded_twice

    def fail_once(*args: object) -> None:
        monkeypatch.setattr(recovery, "drop_rows_loaded_twice", check)
        raise RuntimeError("the connection dropped")

    monkeypatch.setattr(recovery, "drop_rows_loaded_twice", fail_once)
    ctx = Context(project)
    assert not ctx.run(select=["app"], retry_loads=False).ok
    assert ctx.run(select=["app"]).ok
    for table, expected in (("customers", 50), ("orders", 200)):
        loaded = ctx.sql(f"select count(*), count(distinct id) from app.{table}").rows[0]
        assert tuple(loaded) == (expected, expected), table
    ctx.close()
