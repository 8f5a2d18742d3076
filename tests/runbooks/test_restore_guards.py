"""`stackyard restore` replaces nothing while the target is in use: a run in progress (its
leases: the mirror file beside a DuckDB file, the lease table on Postgres) or another process
holding the DuckDB file. Restoring then would move the rows that run loads aside with the
current data while its dlt state says they were loaded, so later runs would skip them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from stackyard import Context
from stackyard.metadata.run_leases import RunLeases, holder_name
from tests.runner.test_leases import project, wait_for
from tests.runner.test_leases_across_processes import HOLD_FILE, said, stackyard, start_run


def backed_up(root: Path) -> list[str]:
    """Run the held source once (it goes at once while ``go`` exists) and back up; return the
    files beside the warehouse, as a refused restore must leave them."""
    (root / "sources" / "go").write_text("go")
    assert stackyard(root, "run").returncode == 0
    assert stackyard(root, "backup").returncode == 0
    (root / "sources" / "go").unlink()
    (root / "sources" / "started").unlink()
    return files(root)


def on_postgres(root: Path, database: str) -> Path:
    """Give the project a target ``pg`` on a throwaway Postgres database."""
    text = (root / "stackyard.yml").read_text()
    target = (
        "targets:\n  pg:\n    type: postgres\n    host: 127.0.0.1\n    user: postgres\n"
        f"    database: {database}\n"
    )
    (root / "stackyard.yml").write_text(text.replace("targets:\n", target, 1))
    return root


def files(root: Path) -> list[str]:
    return sorted(p.name for p in (root / ".stackyard").iterdir() if "run-leases" not in p.name)


def test_restore_is_refused_while_a_run_is_in_progress(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    before = backed_up(root)
    run = start_run(root)
    try:
        wait_for(root / "sources" / "started")
        for args in (["latest", "--yes"], ["latest", "--yes", "--dry-run"]):
            refused = stackyard(root, "restore", *args)
            text = said(refused)
            assert refused.returncode == 2, text
            assert "a stackyard run is in progress on DuckDB target 'dev'" in text, text
            assert f"pid {run.pid} (run " in text and "nothing was restored" in text, text
            assert "wait for run " in text and "or stop it" in text, text
            assert files(root) == before  # nothing staged, nothing moved aside
    finally:
        (root / "sources" / "go").write_text("go")
        out, _ = run.communicate(timeout=300)
    assert run.returncode == 0, out[-3000:]
    with Context(root) as context:  # the run's rows went into the live file
        assert context.sql("select count(*) from stackyard.runs").rows[0][0] == 2


def test_restore_is_refused_while_another_process_holds_the_file(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    before = backed_up(root)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_FILE, str(root / ".stackyard" / "dev.duckdb")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "holding\n"
        refused = stackyard(root, "restore", "latest", "--yes")
        text = said(refused)
        assert refused.returncode == 2, text
        assert "another process holds the DuckDB file" in text, text
        assert "nothing was restored" in text, text
        assert files(root) == before
    finally:
        holder.kill()
        holder.wait()
    assert stackyard(root, "restore", "latest", "--yes").returncode == 0


@pytest.mark.postgres
def test_restore_is_refused_while_a_run_holds_leases_on_postgres(
    tmp_path: Path, pg_database: dict[str, Any], pg_admin_dsn: str
) -> None:
    root = on_postgres(project(tmp_path / "p"), str(pg_database["database"]))
    (root / "sources" / "go").write_text("go")
    assert stackyard(root, "run", "--target", "pg").returncode == 0
    assert stackyard(root, "backup", "--target", "pg").returncode == 0
    with Context(root) as context:
        # A run in this (live) process holds a lease, as one in another process would.
        RunLeases(context.warehouse("pg")).acquire(["source:events"], "r-held", seconds=600)
        refused = stackyard(root, "restore", "latest", "--yes", "--target", "pg")
        said_ = said(refused)
        assert refused.returncode == 2, said_
        assert f"{holder_name('r-held')} has been running source 'events'" in said_, said_
        assert "nothing was restored" in said_, said_
        assert "wait for run r-held to end, or stop it" in said_, said_
        RunLeases(context.warehouse("pg")).release(["source:events"], "r-held")
    done = stackyard(root, "restore", "latest", "--yes", "--target", "pg")
    assert done.returncode == 0, said(done)
    assert "__before_restore_" in said(done)
    drop_kept_aside(pg_admin_dsn, str(pg_database["database"]))


def drop_kept_aside(dsn: str, database: str) -> None:
    """Drop the databases a restore kept aside (the fixture drops only its own)."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        kept = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", (f"{database}\\_\\_%",)
        ).fetchall()
        for (name,) in kept:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


# `--to` the target's own file or database: the data would go back to the backup while dlt's
# state stayed ahead of it, and the next run would load nothing of what came after.


def test_restore_to_the_targets_own_file_is_refused(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    before = backed_up(root)
    for to in (".stackyard/dev.duckdb", str(root / ".stackyard" / "dev.duckdb")):
        refused = stackyard(root, "restore", "latest", "--yes", "--to", to)
        text = said(refused)
        assert refused.returncode == 2, text
        assert "is target 'dev''s own file" in text and "nothing was done" in text, text
        assert "drop --to for a full restore, which also puts back the dlt state" in text, text
        assert files(root) == before
    elsewhere = stackyard(root, "restore", "latest", "--to", "copy.duckdb")
    assert elsewhere.returncode == 0, said(elsewhere)
    assert files(root) == before  # the target and its state left alone


def test_restore_to_a_path_under_a_file_is_refused(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    before = backed_up(root)
    (tmp_path / "afile").write_text("x")
    refused = stackyard(root, "restore", "latest", "--yes", "--to", str(tmp_path / "afile" / "x"))
    # Before: "unexpected error: NotADirectoryError …", exit 1.
    assert refused.returncode == 2, said(refused)
    assert "afile is a file, not a folder" in said(refused)
    assert files(root) == before


@pytest.mark.postgres
def test_restore_to_the_targets_own_database_is_refused(
    tmp_path: Path, pg_database: dict[str, Any], pg_admin_dsn: str
) -> None:
    database = str(pg_database["database"])
    root = on_postgres(project(tmp_path / "p"), database)
    (root / "sources" / "go").write_text("go")
    assert stackyard(root, "run", "--target", "pg").returncode == 0
    assert stackyard(root, "backup", "--target", "pg").returncode == 0
    refused = stackyard(root, "restore", "latest", "--yes", "--target", "pg", "--to", database)
    said_ = said(refused)
    assert refused.returncode == 2, said_
    assert "is target 'pg''s own database" in said_ and "nothing was done" in said_, said_
    assert "drop --to for a full restore" in said_, said_
    # A file's name: a Postgres backup restores into a database (it made one named so).
    for to in ("look.duckdb", str(tmp_path / "look")):
        refused = stackyard(root, "restore", "latest", "--yes", "--target", "pg", "--to", to)
        assert refused.returncode == 2, said(refused)
        assert "looks like a file, but the target is Postgres" in said(refused), said(refused)
        assert f"--to {database}_restored" in said(refused)
    import psycopg

    with psycopg.connect(pg_admin_dsn) as conn:  # nothing was staged or moved aside
        kept = conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname LIKE %s", (f"{database}\\_\\_%",)
        ).fetchone()
        made = conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'look%%'"
        ).fetchone()
    drop_kept_aside(pg_admin_dsn, database)
    assert kept == (0,) and made == (0,)


@pytest.mark.postgres
def test_a_restore_stopped_before_its_swap_drops_its_staged_database(
    tmp_path: Path, pg_database: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    from stackyard.runbooks.restore import RestoreRunbook

    database = str(pg_database["database"])
    root = on_postgres(project(tmp_path / "p"), database)
    (root / "sources" / "go").write_text("go")
    assert stackyard(root, "run", "-t", "pg").returncode == 0
    assert stackyard(root, "backup", "-t", "pg").returncode == 0

    def stopped(self: Any, scratch: dict[str, Any]) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(RestoreRunbook, "_verify", stopped)
    with Context(root) as ctx:
        runbook = ctx.restores("pg")
        with pytest.raises(KeyboardInterrupt):
            runbook.run(runbook.plan(runbook.resolve("latest")))
    # Before: the staged copy, a whole database, stayed until the next restore.
    with psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres") as admin:
        left = admin.execute(
            "SELECT datname FROM pg_database WHERE datname = %s", (f"{database}__restoring",)
        ).fetchall()
    assert left == []


@pytest.mark.postgres
def test_a_swap_refused_half_way_leaves_the_warehouse_in_place(
    tmp_path: Path, pg_database: dict[str, Any], pg_admin_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    from stackyard.errors import WarehouseError
    from stackyard.runbooks.restore import RestoreRunbook

    database = str(pg_database["database"])
    root = on_postgres(project(tmp_path / "p"), database)
    (root / "sources" / "go").write_text("go")
    assert stackyard(root, "run", "-t", "pg").returncode == 0
    assert stackyard(root, "backup", "-t", "pg").returncode == 0
    verify, held = RestoreRunbook._verify, []

    def verified_then_held(self: Any, scratch: dict[str, Any]) -> None:
        verify(self, scratch)
        # A session on the restored copy (someone looking at it) makes its rename fail
        # after the warehouse's own rename to the aside name went through.
        dsn = {"host": "127.0.0.1", "user": "postgres", "dbname": scratch["staged"]}
        held.append(psycopg.connect(**dsn))

    monkeypatch.setattr(RestoreRunbook, "_verify", verified_then_held)
    try:
        with Context(root) as ctx:
            runbook = ctx.restores("pg")
            with pytest.raises(WarehouseError) as refused:
                runbook.run(runbook.plan(runbook.resolve("latest")))
    finally:
        for conn in held:
            conn.close()
    assert "nothing was replaced" in str(refused.value), str(refused.value)
    with psycopg.connect(pg_admin_dsn) as admin:
        names = {
            name
            for (name,) in admin.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s", (f"{database}%",)
            ).fetchall()
        }
    drop_kept_aside(pg_admin_dsn, database)
    # Before: the warehouse was renamed aside and nothing took its name (a lost warehouse).
    assert database in names and not any("before_restore" in n for n in names), names
    assert stackyard(root, "sql", "select 1", "-t", "pg").returncode == 0
