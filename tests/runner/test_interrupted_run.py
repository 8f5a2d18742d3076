"""kill -9 in the middle of a run: the warehouse stays readable, and the next run completes
without duplicate rows (dlt finishes or redoes the pending load package; keys merge)."""

from __future__ import annotations

import json
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
    assert again.returncode == 0, _what_failed(again)

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


def _what_failed(run: subprocess.CompletedProcess[str]) -> str:
    """The failed steps and loads of a `run --json`, not the tail of its health checks."""
    try:
        result = json.loads(run.stdout)
    except ValueError:
        return run.stdout[-2000:] + run.stderr[-2000:]
    failed = {
        "error": result.get("error"),
        "steps": [s for s in result.get("steps", []) if s.get("status") != "ok"],
        "loads": [x for x in result.get("loads", []) if x.get("status") != "ok"],
    }
    return json.dumps(failed, indent=1, default=str)[:6000] + run.stderr[-2000:]


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
    _next_run_loads_each_row_once(ctx)
    ctx.close()


def _next_run_loads_each_row_once(ctx: Context) -> None:
    """The run after the kill finishes the load, counts each row once, and so does the table."""
    again = ctx.run(select=["app"])
    assert again.ok, again.to_dict()
    assert {t.table: t.rows for load in again.loads for t in load.tables} == {
        "customers": 50,
        "orders": 200,
    }
    for table, expected in (("customers", 50), ("orders", 200)):
        loaded = ctx.sql(f"select count(*), count(distinct id) from app.{table}").rows[0]
        assert tuple(loaded) == (expected, expected), table


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


# `stackyard run` receiving SIGINT from its build thread while that thread runs a DuckDB query
# on a cursor of the project's connection: the query only an interrupt ends (ten billion rows)
# stands in for a slow model, so the interrupt always lands mid-query.
SIGINT_MID_BUILD_QUERY = """
import os, signal, sys
from stackyard.runbooks.backfill import connection
query = connection.Connection.query
def interrupted_query(self, sql, params=()):
    if "information_schema.tables" in sql:
        os.kill(os.getpid(), signal.SIGINT)
        sql, params = "SELECT count(*) FROM range(10000000000) t(n) WHERE n % 7 = 3", ()
    return query(self, sql, params)
connection.Connection.query = interrupted_query
sys.argv = ["stackyard", "run"]
from stackyard.cli.main import main
main()
"""


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_ctrl_c_during_the_sql_build_exits_130_and_records_the_run(
    project: Path, signal_name: str
) -> None:
    """The query running in the build thread is cancelled before the connection is used or
    closed by the main thread (was: "connection is busy", exit 1, or an abort). SIGTERM (kill,
    systemd) is taken as Ctrl-C: it ended the process with no trace in `status`."""
    stopped = subprocess.run(
        [sys.executable, "-c", SIGINT_MID_BUILD_QUERY.replace("SIGINT", signal_name)],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=600,  # a failsafe only: an interrupt that is not honoured never ends the query
    )
    assert stopped.returncode == 130, stopped.stdout[-2000:] + stopped.stderr[-2000:]
    assert "busy" not in stopped.stderr
    assert "interrupted during dbt build" in stopped.stderr
    assert "run `stackyard run` again" in stopped.stderr
    ctx = Context(project)
    [run] = ctx.status(limit=1)
    assert run.status == "interrupted"
    # what the run loaded is recorded with it, and is what the warehouse holds
    assert run.rows_loaded == 50 + 200 + 2
    again = ctx.run()
    assert again.ok, again.to_dict()
    assert ctx.sql("select count(*) from marts.customer_orders").rows[0][0] == 50
    ctx.close()


# `stackyard run` loading its sources one at a time, Ctrl-C arriving once `app` has loaded and
# `files` is starting: the hook waits until the run has asked dlt to stop, as a long extract
# would be told.
SIGINT_BETWEEN_SOURCES = """
import os, signal, sys
from dlt.common.runtime import signals
from stackyard.ingest import loader
finish = loader.finish_pending
def interrupted(pipeline, *args):
    if "__files__" in pipeline.pipeline_name:
        os.kill(os.getpid(), signal.SIGINT)
        while not signals.was_signal_received():
            signals.exit_event.wait(60)
        signals.raise_if_signalled()
    return finish(pipeline, *args)
loader.finish_pending = interrupted
sys.argv = ["stackyard", "run"]
from stackyard.cli.main import main
main()
"""


def test_rows_loaded_before_ctrl_c_are_recorded_in_the_interrupted_run(project: Path) -> None:
    """A source that finished loading before Ctrl-C counts in the interrupted run (its package
    is done: no later run counts it), and `status` shows what the warehouse holds."""
    yml = project / "stackyard.yml"
    yml.write_text(yml.read_text() + "defaults:\n  parallel_loads: 1\n")
    stopped = subprocess.run(
        [sys.executable, "-c", SIGINT_BETWEEN_SOURCES],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert stopped.returncode == 130, stopped.stdout[-2000:] + stopped.stderr[-2000:]
    assert "interrupted during load" in stopped.stderr
    ctx = Context(project)
    [run] = ctx.status(limit=1)
    assert (run.status, run.rows_loaded) == ("interrupted", 250)
    in_warehouse = ctx.sql(
        "select (select count(*) from app.customers) + (select count(*) from app.orders)"
    ).rows[0][0]
    assert in_warehouse == run.rows_loaded
    again = ctx.run()
    assert again.ok, again.to_dict()
    assert {load.source: load.rows for load in again.loads} == {"app": 0, "files": 2}
    ctx.close()


# `stackyard run`, dying (Ctrl-C or a kill) right after dlt committed an extracted package (its
# rows and new cursors) and before dlt saved the pipeline's own schema and state.
DIE_AFTER_THE_PACKAGE_IS_COMMITTED = """
import os, sys
from dlt.extract.extract import Extract
commit = Extract.commit_packages
def die_after(self):
    commit(self)
    os._exit(130)
Extract.commit_packages = die_after
sys.argv = ["stackyard", "run", "--select", "app"]
from stackyard.cli.main import main
main()
"""


def test_an_incremental_package_left_pending_is_merged_not_appended(project: Path) -> None:
    """The next run finishes the pending package with the schema it was extracted with (the
    table merges on its key), not the older one that still says its first load appended."""
    first = subprocess.run(
        [str(BIN / "stackyard"), "run", "--select", "app"], cwd=project, capture_output=True
    )
    assert first.returncode == 0, first.stdout + first.stderr
    source = sqlite3.connect(project / "sources" / "app.sqlite")
    source.execute(
        "UPDATE orders SET amount = amount + 1, updated_at = '2026-01-03 10:00:00' WHERE id <= 5"
    )
    source.execute("INSERT INTO orders VALUES (201, 1, 1, 'placed', '2026-01-03 10:00:00')")
    source.commit()
    died = subprocess.run(
        [sys.executable, "-c", DIE_AFTER_THE_PACKAGE_IS_COMMITTED],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert died.returncode == 130, died.stdout + died.stderr
    ctx = Context(project)
    again = ctx.run(select=["app"])
    loaded = ctx.sql("select count(*), count(distinct id), sum(amount) from app.orders").rows[0]
    expected = source.execute("select count(*), count(*), sum(amount) from orders").fetchone()
    assert tuple(loaded) == tuple(expected)  # was: one more row per changed key
    assert again.ok, again.to_dict()
    ctx.close()


def test_ctrl_c_while_the_run_is_recorded_records_it_once_with_its_build(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C between the INSERTs of the "record run" step: the run is recorded once (was:
    twice, its loads doubled) and with the nodes its finished build ran (was: none, "not
    run")."""
    from stackyard.errors import Interrupted
    from stackyard.metadata.history import History

    insert = History._insert

    def cut_after_runs(self: History, table: str, rows: list[tuple[object, ...]]) -> None:
        insert(self, table, rows)
        if table == "steps":  # the run's row is written, its steps and loads not yet
            monkeypatch.setattr(History, "_insert", insert)
            raise KeyboardInterrupt

    monkeypatch.setattr(History, "_insert", cut_after_runs)
    ctx = Context(project)
    with pytest.raises(Interrupted, match="interrupted during record run"):
        ctx.run()
    [run] = ctx.status(limit=5)
    assert (run.status, run.rows_loaded) == ("interrupted", 50 + 200 + 2)
    assert run.models_built > 0
    run_id = run.run_id
    for table, expected in (("runs", 1), ("loads", 3)):
        found = ctx.sql(f"select count(*) from stackyard.{table} where run_id = '{run_id}'")
        assert found.rows[0][0] == expected, table
    assert ctx.sql("select dbt_build from stackyard.runs").rows[0][0] == "built"
    assert ctx.sql("select count(*) from stackyard.node_results").rows[0][0] > 0
    ctx.close()


# `stackyard run --select app`, dying the way kill -9 does right after one step of a two-step
# commit in dlt: normalize renamed the normalized package into place (the extracted one is not
# deleted yet), or load marked the package completed (it is not moved to the loaded ones yet).
DIE_AFTER = """
import importlib, os, sys
module, owner, method = sys.argv[1:4]
cls = getattr(importlib.import_module(module), owner)
original = getattr(cls, method)
def then_die(self, *args, **kwargs):
    original(self, *args, **kwargs)
    os._exit(137)
setattr(cls, method, then_die)
sys.argv = ["stackyard", "run", "--select", "app"]
from stackyard.cli.main import main
main()
"""


@pytest.mark.parametrize(
    "step",
    [
        "dlt.common.storages.load_storage:LoadStorage.commit_new_load_package",
        "dlt.common.storages.load_package:PackageStorage.complete_loading_package",
    ],
    ids=["normalized-package-committed", "package-marked-completed"],
)
def test_a_run_killed_half_way_through_a_dlt_commit_does_not_stop_every_later_run(
    project: Path, step: str
) -> None:
    """Every later run failed for good ("Directory not empty", "already completed"): the
    next run now takes the step dlt was about to take, and counts the rows once."""
    module, _, qualified = step.partition(":")
    died = subprocess.run(
        [sys.executable, "-c", DIE_AFTER, module, *qualified.split(".")],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert died.returncode == 137, died.stdout[-2000:] + died.stderr[-2000:]
    ctx = Context(project)
    _next_run_loads_each_row_once(ctx)
    assert ctx.run(select=["app"]).ok
    ctx.close()
