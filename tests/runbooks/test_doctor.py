"""``stackyard doctor``: healthy exits 0; each fault is a finding with its fix; a DuckDB WAL
that will not replay is moved aside by ``--fix`` with the loss window stated."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from stackyard.project import init_project
from tests.in_process import stackyard_in_process

STACKYARD = str(Path(sys.executable).with_name("stackyard"))


def cli(project: Path, *args: str, code: int = 0) -> str:
    done = stackyard_in_process(*args, "--project", str(project), cwd=project)
    assert done.returncode == code, done.stdout + done.stderr
    return done.stdout + done.stderr


def doctor(project: Path, *args: str, code: int) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(cli(project, "doctor", "--json", *args, code=code))
    return report


def checks(report: dict[str, Any]) -> list[str]:
    return [f["check"] for f in report["findings"]]


def make_project(tmp_path: Path) -> Path:
    project = init_project(tmp_path / "shop").path
    cli(project, "sql", "CREATE TABLE orders AS SELECT range AS id FROM range(1000)")
    return project


def leave_wal(
    database: Path, change: str = "INSERT INTO orders SELECT range + 1000 FROM range(500)"
) -> None:
    """Commit a change (500 rows) after the last checkpoint and exit without checkpointing,
    as a killed process would: the change is only in the write-ahead log."""
    script = (
        "import duckdb, sys\n"
        "c = duckdb.connect(sys.argv[1])\n"
        "c.execute('PRAGMA disable_checkpoint_on_shutdown')\n"
        "c.execute(\"SET checkpoint_threshold = '1GB'\")\n"
        "c.execute(sys.argv[2])\n"
        "c.close()\n"
    )
    subprocess.run([sys.executable, "-c", script, str(database), change], check=True)
    assert Path(f"{database}.wal").stat().st_size > 0


def test_healthy_project_exits_0(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    report = doctor(project, code=0)
    assert report["healthy"] and report["findings"] == []
    assert any(p.startswith("warehouse:") for p in report["passed"])
    assert "healthy" in cli(project, "doctor")


def test_a_dbt_project_file_that_is_not_yaml_is_a_finding(tmp_path: Path) -> None:
    """Before: "healthy", while every run stopped on the file."""
    project = make_project(tmp_path)
    dbt_project = project / "transform" / "dbt_project.yml"
    kept = dbt_project.read_text()
    dbt_project.write_text("name: [broken\n  profile: x\n")
    (finding,) = doctor(project, code=1)["findings"]
    assert finding["check"] == "dbt_project" and finding["severity"] == "error"
    assert finding["what"].startswith(f"{dbt_project}:2:10: not valid YAML: expected ','")
    assert f"fix {dbt_project}" in finding["fix"]
    assert f"{dbt_project}:2:10" in " ".join(cli(project, "doctor", code=1).split())
    dbt_project.write_text(kept)
    assert f"dbt_project: {dbt_project} reads" in doctor(project, code=0)["passed"]


def test_corrupt_wal_is_found_moved_aside_and_the_loss_stated(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    database = project / ".stackyard" / "dev.duckdb"
    cli(project, "backup")
    leave_wal(database)
    wal = Path(f"{database}.wal")
    with wal.open("r+b") as handle:  # a bit flip in the log's first entry
        handle.seek(100)
        handle.write(b"\xff" * 64)

    # Every other command says what is wrong and where to go.
    error = cli(project, "sql", "SELECT 1", code=2)
    assert "write-ahead log will not replay" in error and "stackyard doctor" in error

    report = doctor(project, code=1)
    (finding,) = report["findings"]
    assert finding["check"] == "wal" and str(wal) in finding["what"]
    assert "changes made between" in finding["why"]  # the loss window
    assert "stackyard doctor --fix" in finding["fix"]
    assert "stackyard restore" in finding["fix"]  # the last backup is offered

    fixed = doctor(project, "--fix", code=0)
    assert fixed["findings"] == []
    assert "moved the write-ahead log aside" in fixed["repaired"][0]
    assert not wal.exists()
    assert len(list((project / ".stackyard" / "quarantine").iterdir())) == 1
    rows = json.loads(cli(project, "sql", "SELECT count(*) AS n FROM orders", "--json"))["rows"]
    assert rows == [{"n": 1000}]  # as of the last checkpoint; the 500 were in the lost log


@pytest.mark.slow
def test_rows_lost_with_the_wal_are_loaded_again_by_the_next_run(tmp_path: Path) -> None:
    """The log held a load; dlt's local state kept its cursor. After `doctor --fix` the
    documented `stackyard run` loaded 0 rows, exit 0, and the rows were gone for good."""
    import shutil
    import sqlite3

    project = init_project(tmp_path / "shop", example="jaffle_shop").path
    cli(project, "run")
    database = project / ".stackyard" / "dev.duckdb"
    checkpointed = tmp_path / "checkpointed.duckdb"
    shutil.copyfile(database, checkpointed)
    source = sqlite3.connect(project / "sources" / "jaffle_app.sqlite")
    source.execute("UPDATE orders SET updated_at = '2099-01-01 08:00:00' WHERE id <= 3")
    source.commit()
    cli(project, "run")
    # As after a crash: the file as of its last checkpoint and the load only in a log that
    # will not replay.
    shutil.copyfile(checkpointed, database)
    leave_wal(database, "CREATE TABLE scratch AS SELECT 1 AS x")
    wal = Path(f"{database}.wal")
    with wal.open("r+b") as handle:
        handle.seek(100)
        handle.write(b"\xff" * 64)
    fixed = doctor(project, "--fix", code=0)
    assert "dlt's local state" in fixed["repaired"][0], fixed["repaired"]
    cli(project, "run")
    query = "select count(*) as n from shop_db.orders where updated_at >= '2099-01-01'"
    assert json.loads(cli(project, "sql", query, "--json"))["rows"] == [{"n": 3}]


def test_truncated_wal_replays_its_complete_entries(tmp_path: Path) -> None:
    # DuckDB treats a torn tail as a write cut short by a crash: the complete transactions
    # replay, so the database opens and the doctor has nothing to repair.
    project = make_project(tmp_path)
    database = project / ".stackyard" / "dev.duckdb"
    leave_wal(database)
    wal = Path(f"{database}.wal")
    os.truncate(wal, wal.stat().st_size - 10)
    report = doctor(project, code=0)
    assert "wal: the write-ahead log replays" in report["passed"]


def test_secrets_file_readable_by_others(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    secrets = project / ".stackyard" / "secrets.toml"
    secrets.write_text('X = "1"\n')
    secrets.chmod(0o644)
    (finding,) = doctor(project, code=1)["findings"]
    assert finding["check"] == "secrets" and finding["fix"] == f"chmod 600 {secrets}"


def test_pending_package_and_backup_older_than_the_rpo(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    config = project / "stackyard.yml"
    config.write_text(config.read_text() + "\nbackups:\n  rpo_hours: 0.0001\n")
    assert checks(doctor(project, code=1)) == ["backup"]  # configured, never taken
    cli(project, "backup")
    time.sleep(1)
    pending = project / ".stackyard" / "pipelines" / "shop__app__dev" / "load" / "normalized"
    (pending / "1764580000.123").mkdir(parents=True)
    report = doctor(project, code=1)
    assert checks(report) == ["pending", "backup"]
    assert "stackyard run" in report["findings"][0]["fix"]
    assert "stackyard backup" in report["findings"][1]["fix"]


def test_missing_secret(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    config = project / "stackyard.yml"
    text = config.read_text().replace(
        "targets:\n",
        "targets:\n  prod:\n    type: postgres\n    user: nobody\n    database: nowhere\n"
        "    password: {secret: SHOP_NOPE_PASSWORD}\n",
    )
    config.write_text(text)
    report = doctor(project, "--target", "prod", code=1)
    (finding,) = report["findings"]  # not also "unreachable": that would only repeat it
    assert finding["check"] == "secrets" and "SHOP_NOPE_PASSWORD" in finding["what"]
    assert "export SHOP_NOPE_PASSWORD" in finding["fix"]


def test_failing_freshness_in_the_last_run(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from stackyard.context import Context
    from stackyard.metadata.history import History

    project = make_project(tmp_path)
    context = Context(project)
    history = History(context.warehouse())
    history.ensure()
    now = datetime.now(UTC)
    w = context.warehouse()
    w.execute(
        "INSERT INTO stackyard.runs (run_id, status, started_at) VALUES (?, 'success', ?)",
        ("r1", now),
    )
    w.execute(
        "INSERT INTO stackyard.freshness VALUES ('r1', 'dlt_app', 'orders', 'error', "
        "'2026-01-01 00:00:00', 72.0)"
    )
    context.close()
    (finding,) = doctor(project, code=1)["findings"]
    assert finding["check"] == "freshness"
    assert "dlt_app.orders" in finding["what"] and "72 h ago" in finding["what"]
    assert finding["fix"].startswith("stackyard run --select app")


@pytest.mark.postgres
def with_postgres_target(project: Path, database: object) -> Path:
    """Add a target ``prod`` on the local Postgres database ``database``."""
    config = project / "stackyard.yml"
    config.write_text(
        config.read_text().replace(
            "targets:\n",
            "targets:\n  prod:\n    type: postgres\n    host: 127.0.0.1\n    user: postgres\n"
            f"    database: {database}\n",
        )
    )
    return project


def test_postgres_target_healthy(tmp_path: Path, pg_database: dict[str, Any]) -> None:
    project = with_postgres_target(make_project(tmp_path), pg_database["database"])
    report = doctor(project, "--target", "prod", code=0)
    assert "wal: no write-ahead log waiting to replay" not in report["passed"]  # DuckDB only
    assert any(p.startswith("warehouse: Postgres target 'prod'") for p in report["passed"])


def test_pg_dump_older_than_the_server_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stackyard.errors import UsageError
    from stackyard.runbooks.backup_engines import check_pg_client

    old = tmp_path / "bin" / "pg_dump"
    old.parent.mkdir()
    old.write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 13.9'\n")
    old.chmod(0o755)
    monkeypatch.setenv("PATH", f"{old.parent}:{os.environ['PATH']}")
    with pytest.raises(UsageError, match="pg_dump is version 13 but the server is version 15"):
        check_pg_client("pg_dump", 15)
    assert check_pg_client("pg_dump", 13) == str(old)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(UsageError, match="pg_dump is not installed"):
        check_pg_client("pg_dump", 15)


def test_lost_duckdb_file_points_to_the_last_backup(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    (project / ".stackyard" / "pipelines" / "shop__app__dev").mkdir(parents=True)
    cli(project, "backup")
    database = project / ".stackyard" / "dev.duckdb"
    database.unlink()
    (finding,) = doctor(project, code=1)["findings"]
    assert finding["check"] == "warehouse" and "is missing" in finding["what"]
    assert finding["fix"].startswith("stackyard restore latest")
    assert not database.exists()  # the doctor did not create an empty one


def test_lost_duckdb_file_created_again_empty_by_a_read_is_still_lost(tmp_path: Path) -> None:
    """A command that opens the target after the file is lost (`stackyard sql`, another
    tool) creates it empty: the doctor still reports the loss, not a healthy warehouse."""
    import duckdb

    project = make_project(tmp_path)
    (project / ".stackyard" / "pipelines" / "shop__app__dev").mkdir(parents=True)
    database = project / ".stackyard" / "dev.duckdb"
    database.unlink()
    duckdb.connect(str(database)).close()
    (finding,) = doctor(project, code=1)["findings"]
    assert finding["check"] == "warehouse" and "holds no table" in finding["what"]


def test_reads_name_a_lost_duckdb_file_instead_of_creating_it_empty(tmp_path: Path) -> None:
    # perf, report, monitor, source list, incident marks and backfill status each created an
    # empty file, and most then reported on it with exit 0 ("rows 0 / last load never").
    project = make_project(tmp_path)
    (project / ".stackyard" / "pipelines" / "shop__app__dev").mkdir(parents=True)
    database = project / ".stackyard" / "dev.duckdb"
    database.unlink()
    for command in (
        ["perf"],
        ["report", "--out", str(tmp_path / "r.html")],
        ["monitor"],
        ["source", "list"],
        ["incident", "marks"],
        ["backfill", "status"],
        ["status"],
        ["sql", "select 1"],
    ):
        out = cli(project, *command, code=2)
        assert "is missing, but this target has been loaded before" in " ".join(out.split())
        assert not database.exists(), command


@pytest.mark.slow
def test_lost_duckdb_file_without_a_backup_is_loaded_again_by_the_fix_given(
    tmp_path: Path,
) -> None:
    """With no backup, the fix the doctor names loads every source again in full (a plain
    run would load only the rows past the saved cursors)."""
    import sqlite3

    project = init_project(tmp_path / "shop", example="jaffle_shop").path
    cli(project, "run")
    (project / ".stackyard" / "dev.duckdb").unlink()
    (finding,) = doctor(project, code=1)["findings"]
    assert finding["check"] == "warehouse" and "no backup exists" in finding["fix"]
    command = finding["fix"].split("`")[1]
    assert command.startswith("stackyard ")
    cli(project, *command.split()[1:])
    source = sqlite3.connect(project / "sources" / "jaffle_app.sqlite")
    for table in ("customers", "orders"):
        expected = source.execute(f"select count(*) from {table}").fetchone()[0]
        got = cli(project, "sql", f"select count(*) as n from shop_db.{table}", "--json")
        assert json.loads(got)["rows"] == [{"n": expected}], table
    assert doctor(project, code=0)["healthy"]


def test_empty_duckdb_file_never_loaded_is_healthy(tmp_path: Path) -> None:
    import duckdb

    project = init_project(tmp_path / "shop").path
    (project / ".stackyard").mkdir(exist_ok=True)
    duckdb.connect(str(project / ".stackyard" / "dev.duckdb")).close()
    assert doctor(project, code=0)["healthy"]


def _leases_table(project: Path, target: str, rows: list[tuple[str, str, str]]) -> None:
    from stackyard.metadata.schema import BACKFILL_TABLES

    columns = BACKFILL_TABLES["backfill_leases"]
    values = ", ".join(f"('{t}', 'b-{t}', '{h}', TIMESTAMPTZ '{at}')" for t, h, at in rows)
    for statement in (
        "CREATE SCHEMA IF NOT EXISTS stackyard",
        f"CREATE TABLE stackyard.backfill_leases ({columns})",
        f"INSERT INTO stackyard.backfill_leases VALUES {values}",
    ):
        cli(project, "sql", statement, "--target", target)


def _lease_keys(project: Path, target: str) -> list[str]:
    out = cli(
        project,
        "sql",
        "SELECT target FROM stackyard.backfill_leases ORDER BY 1",
        "--json",
        "--target",
        target,
    )
    return [row["target"] for row in json.loads(out)["rows"]]


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_stale_leases_are_found_and_released(
    tmp_path: Path, engine: str, request: pytest.FixtureRequest
) -> None:
    import socket

    project = make_project(tmp_path)
    target = "dev"
    if engine == "postgres":
        pg = request.getfixturevalue("pg_database")
        config = project / "stackyard.yml"
        config.write_text(
            config.read_text().replace(
                "targets:\n",
                "targets:\n  prod:\n    type: postgres\n    host: 127.0.0.1\n    user: postgres\n"
                f"    database: {pg['database']}\n",
            )
        )
        target = "prod"
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    here = socket.gethostname()
    _leases_table(
        project,
        target,
        [
            # a process that exited, heartbeat fresh (in the future, so no clock matters)
            (
                "shop.dead",
                f"ana@{here} pid {gone.stdout.strip()} (backfill b1)",
                "2999-01-01 00:00:00+00",
            ),
            # a holder elsewhere that stopped beating long ago
            ("shop.silent", "bo@other-host pid 7 (backfill b2)", "2020-01-01 00:00:00+00"),
            # alive and beating
            ("shop.busy", f"cy@{here} pid {os.getpid()} (backfill b3)", "2999-01-01 00:00:00+00"),
        ],
    )
    report = doctor(project, "--target", target, code=1)
    found = {f["what"].split("'")[1]: f for f in report["findings"] if f["check"] == "leases"}
    assert sorted(found) == ["shop.dead", "shop.silent"]
    assert "process is gone" in found["shop.dead"]["what"]
    assert "last heartbeat was" in found["shop.silent"]["what"]
    assert found["shop.dead"]["fix"].startswith(f"stackyard doctor --fix --target {target}")

    dry = doctor(project, "--target", target, "--fix", "--dry-run", code=1)
    assert len(dry["would_repair"]) == 2 and dry["repaired"] == []
    assert _lease_keys(project, target) == ["shop.busy", "shop.dead", "shop.silent"]

    fixed = doctor(project, "--target", target, "--fix", code=0)
    assert len(fixed["repaired"]) == 2 and fixed["findings"] == []
    assert _lease_keys(project, target) == ["shop.busy"]
    again = doctor(project, "--target", target, code=0)
    assert "leases: no stale lease (1 held, all alive)" in again["passed"]


def test_transient_tables_on_snowflake(tmp_path: Path) -> None:
    project = init_project(tmp_path / "shop", example="jaffle_shop").path
    config = project / "stackyard.yml"
    config.write_text(
        config.read_text().replace(
            "targets:\n",
            "targets:\n  sf:\n    type: snowflake\n    account: xy12345\n    user: SVC\n"
            "    role: TRANSFORMER\n    warehouse: WH\n    database: ANALYTICS\n"
            "    password: {secret: SF_PASSWORD}\n",
            1,
        )
    )
    dbt_project = project / "transform" / "dbt_project.yml"
    report = doctor(project, "--target", "sf", code=1)
    (finding,) = [f for f in report["findings"] if f["check"] == "transient"]
    assert finding["what"].startswith("all table models on target 'sf'")
    assert "+transient: false" in finding["fix"] and str(dbt_project) in finding["fix"]
    assert "transient" not in checks(doctor(project, code=0))  # DuckDB has no such thing

    # After a build, dbt's manifest says model by model.
    manifest = project / "transform" / "target" / "manifest.json"
    manifest.parent.mkdir(exist_ok=True)
    node = {"resource_type": "model", "schema": "marts", "config": {"materialized": "table"}}
    nodes = {
        "model.shop.orders": {**node, "name": "orders"},
        "model.shop.kept": {
            **node,
            "name": "kept",
            "config": {**node["config"], "transient": False},
        },
        "model.shop.v": {**node, "name": "v", "config": {"materialized": "view"}},
    }
    manifest.write_text(json.dumps({"nodes": nodes}))
    (finding,) = [
        f
        for f in doctor(project, "--target", "sf", code=1)["findings"]
        if f["check"] == "transient"
    ]
    assert finding["what"].startswith("1 table models") and finding["what"].endswith("marts.orders")

    manifest.unlink()
    dbt_project.write_text(
        dbt_project.read_text().replace("models:\n", "models:\n  +transient: false\n", 1)
    )
    report = doctor(project, "--target", "sf", code=1)  # still unreachable from here
    assert "transient" not in checks(report)
    assert any(p.startswith("transient: no table model") for p in report["passed"])
