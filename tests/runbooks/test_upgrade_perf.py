"""``upgrade check`` against pinned stacks, and ``perf`` on the example project's history."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from stackyard import Context
from stackyard.errors import Interrupted
from stackyard.project import init_project
from stackyard.results import RunResult
from stackyard.runbooks.upgrade_test import upgrade_test
from tests.in_process import stackyard_in_process

STACKYARD = str(Path(sys.executable).with_name("stackyard"))


def cli(project: Path, *args: str, code: int = 0) -> Any:
    done = stackyard_in_process(*args, "--project", str(project), cwd=project)
    assert done.returncode == code, done.stdout + done.stderr
    return json.loads(done.stdout) if "--json" in args else done.stdout


def test_upgrade_check_in_sync_with_the_pinned_stack(tmp_path: Path) -> None:
    project = init_project(tmp_path / "shop", example="jaffle_shop").path
    report = cli(project, "upgrade", "check", "--json")
    assert report["in_sync"] and report["breaking"] == []
    names = {p["name"]: p for p in report["packages"]}
    assert (
        names["dbt-core"]["installed"]
        == metadata.version("dbt-core")
        == names["dbt-core"]["pinned"]
    )
    assert {"dlt", "duckdb", "sqlglot"} <= set(names)


def test_upgrade_check_lists_the_breaking_changes_this_project_would_notice(tmp_path: Path) -> None:
    project = init_project(tmp_path / "shop", example="jaffle_shop").path
    # The project uses the old `tests:` key in one properties file.
    (project / "transform" / "models" / "extra.yml").write_text(
        "version: 2\nmodels:\n  - name: orders\n    columns:\n      - name: order_id\n        tests: [unique]\n"
    )
    pinned = tmp_path / "old.txt"
    pinned.write_text("dbt-core==1.7.0\nduckdb==0.10.3\ndlt==0.5.4\n")
    report = cli(project, "upgrade", "check", "--json", "--constraints", str(pinned), code=1)
    assert not report["in_sync"]
    assert {p["name"]: p["status"] for p in report["packages"]} == {
        "dbt-core": "differs",
        "dlt": "differs",
        "duckdb": "differs",
    }
    found = {(b["package"], b["version"]) for b in report["breaking"]}
    # 1.8 (`tests:` used here), 1.10 (every project), DuckDB 1.0 (a DuckDB target)...
    assert found == {("dbt-core", "1.8.0"), ("dbt-core", "1.10.0"), ("duckdb", "1.0.0")}
    # ...but not dlt 1.0's moved sources: this project has no Python source.


def test_upgrade_check_warns_of_any_duckdb_downgrade_after_1_0(tmp_path: Path) -> None:
    """Going back from the installed DuckDB to an older 1.x or later does not cross 1.0, yet
    the older version cannot open the file the newer one wrote."""
    from packaging.version import Version

    installed = Version(metadata.version("duckdb"))
    assert installed >= Version("1.1.0")  # the pinned stack is past 1.0
    project = init_project(tmp_path / "shop").path
    older = tmp_path / "older.txt"
    older.write_text("duckdb==1.0.0\n")
    report = cli(project, "upgrade", "check", "--json", "--constraints", str(older), code=1)
    assert [(b["package"], b["version"]) for b in report["breaking"]] == [("duckdb", "1.0.0")]
    newer = tmp_path / "newer.txt"
    newer.write_text(f"duckdb=={installed.major + 1}.0.0\n")
    report = cli(project, "upgrade", "check", "--json", "--constraints", str(newer), code=1)
    assert report["breaking"] == []  # an upgrade past 1.0 reads the file as it is


def test_upgrade_check_without_the_constraints_file(tmp_path: Path) -> None:
    project = init_project(tmp_path / "shop").path
    done = subprocess.run(
        [
            STACKYARD,
            "upgrade",
            "check",
            "--constraints",
            str(tmp_path / "x"),
            "--project",
            str(project),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2 and f"no constraints file at {tmp_path / 'x'}" in done.stderr


@pytest.mark.slow
def test_perf_on_the_example_history(tmp_path: Path) -> None:
    project = init_project(tmp_path / "shop", example="jaffle_shop").path
    cli(project, "run")
    cli(project, "run", "--force-build")
    report = cli(project, "perf", "--json")
    assert report["runs"] == 2
    models = {m["name"]: m for m in report["models"]}
    assert models["orders"]["runs"] == 2 and models["orders"]["trend"] is not None
    assert report["models"] == sorted(report["models"], key=lambda m: -m["last_seconds"])
    assert {s["name"] for s in report["sources"]} == {"shop_db", "shop_files"}
    # The second run found nothing new and skipped the loads: no timing ("0.00 s, faster").
    assert all(s["runs"] == 1 and s["last_seconds"] > 0 for s in report["sources"])
    # customers aggregates every order into one row per customer: 20x more read than written.
    scans = {s["model"]: s for s in report["scans"]}
    assert scans["customers"]["rows_written"] == 1500
    assert scans["customers"]["rows_read"] >= 10 * 1500
    # rpt_customer_lifetime filters customers on first_ordered_at: its partition key.
    keys = {k["table"]: k for k in report["keys"]}
    assert keys["marts.customers"]["partition_by"] == "first_ordered_at"
    assert keys["marts.stores"]["cluster_by"] == ["store_id"]
    text = cli(project, "perf")
    assert "candidate for materialized='incremental'" in text


def test_perf_does_not_suggest_incremental_for_an_incremental_model(tmp_path: Path) -> None:
    import duckdb

    project = init_project(tmp_path / "shop").path
    database = project / ".stackyard" / "dev.duckdb"
    database.parent.mkdir(mode=0o700, exist_ok=True)
    with duckdb.connect(str(database)) as con:
        con.execute("CREATE SCHEMA raw; CREATE SCHEMA marts")
        con.execute("CREATE TABLE raw.events AS SELECT range AS id FROM range(20000)")
        for model in ("daily_table", "daily_incremental"):
            con.execute(f"CREATE TABLE marts.{model} AS SELECT range AS day FROM range(10)")
    source = {"resource_type": "source", "relation_name": "x", "schema": "raw", "name": "events"}
    nodes = {
        f"model.shop.{model}": {
            "resource_type": "model",
            "name": model,
            "schema": "marts",
            "relation_name": f"marts.{model}",
            "config": {"materialized": materialized},
            "depends_on": {"nodes": ["source.shop.raw.events"]},
        }
        for model, materialized in (("daily_table", "table"), ("daily_incremental", "incremental"))
    }
    manifest = project / "transform" / "target" / "manifest.json"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps({"nodes": nodes, "sources": {"source.shop.raw.events": source}}))
    report = cli(project, "perf", "--json")
    assert [s["model"] for s in report["scans"]] == ["daily_table"]
    text = cli(project, "perf")
    assert "daily_table (table)" in text and "daily_incremental" not in text


@pytest.mark.parametrize("content", ["hello world\n", "duckdb>=1.0\n", None])
def test_upgrade_check_refuses_a_file_that_pins_nothing(
    tmp_path: Path, content: str | None
) -> None:
    """A file with no name==version pin of the stack (or a folder) is a usage error, not
    'the installed stack matches the pinned one (0 packages)'."""
    project = init_project(tmp_path / "shop").path
    constraints = tmp_path / "new-constraints.txt"
    if content is None:
        constraints.mkdir()
    else:
        constraints.write_text(content, encoding="utf-8")
    done = subprocess.run(
        [
            STACKYARD,
            "upgrade",
            "check",
            "--constraints",
            str(constraints),
            "--project",
            str(project),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "matches the pinned one" not in done.stdout
    assert "--constraints FILE" in done.stderr or "constraints.txt" in done.stderr


def test_upgrade_check_names_a_line_that_is_no_pin(tmp_path: Path) -> None:
    project = init_project(tmp_path / "shop").path
    constraints = tmp_path / "pins.txt"
    constraints.write_text("# ours\nduckdb==1.1.0\ndbt-core=1.8.0\n", encoding="utf-8")
    done = subprocess.run(
        [
            STACKYARD,
            "upgrade",
            "check",
            "--constraints",
            str(constraints),
            "--project",
            str(project),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    # Before: the typo was skipped, and dbt-core was never compared ("1 of 1 packages differ").
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{constraints}:3: 'dbt-core=1.8.0' is not a name==version pin" in done.stderr


@pytest.mark.slow
def test_upgrade_test_runs_on_a_clone_and_leaves_the_target_alone(tmp_path: Path) -> None:
    import hashlib

    project = init_project(tmp_path / "shop", example="jaffle_shop").path
    cli(project, "run")
    database = project / ".stackyard" / "dev.duckdb"
    state = project / ".stackyard" / "pipelines" / "shop__shop_db__dev" / "state.json"
    manifest = project / "transform" / "target" / "manifest.json"
    probes = project / ".stackyard" / "probes.json"  # what the next run checks for new data
    measured = project / ".stackyard" / "monitor_measurements.json"  # what a no-op reuses
    kept = (database, state, manifest, probes, measured)
    before = [hashlib.sha256(p.read_bytes()).hexdigest() for p in kept]
    report = cli(project, "upgrade", "test", "--json")
    assert report["ok"] and report["versions"]["dbt-core"] == metadata.version("dbt-core")
    steps = {s["name"]: s["detail"] for s in report["run"]["steps"]}
    assert steps["load"].startswith("0 rows")  # the clone continued from the target's cursors
    assert "71 tests passed" in steps["dbt build"]
    # dbt builds every node: a new dbt or adapter is tested whole
    assert {n["engine"] for n in report["run"]["nodes"]} == {"dbt"}
    after = [hashlib.sha256(p.read_bytes()).hexdigest() for p in kept]
    assert after == before
    assert sorted(p.name for p in (project / ".stackyard").iterdir()) == [
        "dev.duckdb",
        "monitor_measurements.json",
        "pipelines",
        "probes.json",
        "targets",  # the first run's mark (the upgrade test's clone leaves none)
    ]


def test_upgrade_test_does_not_create_a_missing_duckdb_file(tmp_path: Path) -> None:
    """A target without its file (not run yet, or lost) is cloned as an empty file: the
    target's own file is not created, so a lost one still shows as lost."""
    project = init_project(tmp_path / "shop").path
    database = project / ".stackyard" / "dev.duckdb"
    report = cli(project, "upgrade", "test", "--json")
    assert report["ok"]
    assert not database.exists()


@pytest.mark.postgres
def test_upgrade_test_of_a_postgres_database_that_is_gone(
    tmp_path: Path, pg_database: dict[str, Any]
) -> None:
    """A target database that does not exist is a configuration error (exit 2) that says
    so, not a retry-when-no-session-is-connected failure."""
    project = init_project(tmp_path / "shop").path
    gone = f"{pg_database['database']}_gone"
    config = project / "stackyard.yml"
    config.write_text(
        config.read_text().replace(
            "targets:\n",
            f"targets:\n  prod:\n    type: postgres\n    host: {pg_database['host']}\n"
            f"    port: {pg_database['port']}\n    user: {pg_database['user']}\n"
            f"    database: {gone}\n",
        )
    )
    done = subprocess.run(
        [STACKYARD, "upgrade", "test", "--target", "prod", "--project", str(project)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"createdb {gone}" in done.stderr and "no other sessions" not in done.stderr


@pytest.mark.postgres
def test_upgrade_test_as_a_user_who_cannot_create_databases_says_so(
    tmp_path: Path, pg_database: dict[str, Any], pg_admin_dsn: str
) -> None:
    """It said to retry when no other session is connected (exit 1): retrying never helps."""
    import uuid

    import psycopg

    role = f"t{uuid.uuid4().hex[:8]}_nocreatedb"
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN NOCREATEDB')
    try:
        project = init_project(tmp_path / "shop").path
        config = project / "stackyard.yml"
        config.write_text(
            config.read_text().replace(
                "targets:\n",
                f"targets:\n  prod:\n    type: postgres\n    host: {pg_database['host']}\n"
                f"    port: {pg_database['port']}\n    user: {role}\n"
                f"    database: {pg_database['database']}\n",
            )
        )
        done = subprocess.run(
            [STACKYARD, "upgrade", "test", "--target", "prod", "--project", str(project)],
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')
    said = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 2, said
    assert f'ALTER ROLE "{role}" CREATEDB' in said and "no other sessions" not in said, said


def test_a_failed_upgrade_test_names_what_failed_and_what_to_do() -> None:
    from datetime import UTC, datetime

    from stackyard.results import NodeResult, SourceLoad, StepResult
    from stackyard.runbooks.upgrade_test import UpgradeTestResult

    now = datetime.now(UTC)
    run = RunResult(
        run_id="r",
        project="shop",
        target="dev_upgrade_test",
        started_at=now,
        finished_at=now,
        steps=(
            StepResult("load shop_db", "failed", "source 'shop_db': no such table"),
            StepResult("dbt build", "failed", "1 test failed"),
            StepResult("source freshness", "failed", "1/2 source tables fresh"),
        ),
        loads=(SourceLoad("shop_db", "shop_db", "failed", error="no such table: orders\nat …"),),
        nodes=(
            NodeResult("test.a", "unique_orders_id", "test", "fail", "Got 3 results"),
            NodeResult("model.b", "orders", "model", "success"),
        ),
    )
    summary = UpgradeTestResult("dev", "clone", {"dbt-core": "9.9"}, run).summary
    assert summary.startswith("upgrade test FAILED on a clone of target 'dev'")
    assert "✘ load shop_db: no such table: orders\n" in summary
    assert "✘ test unique_orders_id: fail (Got 3 results)" in summary
    assert "✘ source freshness: 1/2 source tables fresh" in summary
    assert "✘ dbt build" not in summary and "orders: success" not in summary
    assert "next: run `stackyard run` on the target itself" in summary


_KILLED_MID_TEST = """
import os, sys
from pathlib import Path
from stackyard import Context
from stackyard.runbooks.upgrade_test import upgrade_test

root = Path(sys.argv[1])
ctx = Context(root)

def run_on(config):
    # As the clone's run does: the target's pipeline folders take the clone's cursors.
    (root / ".stackyard/pipelines/shop__app__dev/state.json").write_text("clone")
    (root / ".stackyard/pipelines/shop__new__dev").mkdir()
    os._exit(9)  # killed: no finally runs

upgrade_test(ctx._project_files(), ctx.session(None), run_on)
"""


def test_a_killed_upgrade_test_leaves_no_clone_cursor_behind(tmp_path: Path) -> None:
    # kill -9 during `upgrade test` left the clone's cursors as the target's: the next run
    # loaded 0 rows, exit 0, past rows the real target never received.
    project = init_project(tmp_path / "shop").path
    state = project / ".stackyard" / "pipelines" / "shop__app__dev" / "state.json"
    state.parent.mkdir(parents=True)
    state.write_text("before")
    killed = subprocess.run([sys.executable, "-c", _KILLED_MID_TEST, str(project)], check=False)
    assert killed.returncode == 9
    assert state.read_text() == "clone"
    cli(project, "run")
    assert state.read_text() == "before"
    assert not (project / ".stackyard" / "pipelines" / "shop__new__dev").exists()
    assert not (project / ".stackyard" / "upgrade-test-state" / "dev").exists()


def test_an_upgrade_test_stopped_mid_run_says_the_target_was_not_touched(tmp_path: Path) -> None:
    # SIGTERM (taken as Ctrl-C) during the clone's run passed on the run's own advice, "run
    # the command again", about a clone that was dropped by then.
    project = init_project(tmp_path / "shop").path
    state = project / ".stackyard" / "pipelines" / "shop__app__dev" / "state.json"
    state.parent.mkdir(parents=True)
    state.write_text("before")

    def run_on(config: object) -> RunResult:
        state.write_text("clone")
        raise Interrupted("load shop_db stopped", hint="run the command again: the next run …")

    ctx = Context(project)
    with pytest.raises(Interrupted) as stopped:
        upgrade_test(ctx._project_files(), ctx.session(None), run_on)
    ctx.close()
    assert "clone of 'dev' was stopped" in stopped.value.message
    assert "'dev' itself was not touched" in stopped.value.message
    assert stopped.value.hint == "run `stackyard upgrade test` again to test the upgrade"
    assert state.read_text() == "before"
