"""kill -9 at a random moment of a multi-partition, multi-worker backfill, then the same
command again: no duplicate key, no missing day, the table equals the source (what a full
refresh would load), and partitions that had succeeded are not run again."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from tests.runbooks.backfill.conftest import (
    STACKYARD,
    add_postgres_target,
    backfill_json,
    make_backfill_project,
    sql,
    stackyard,
)

RANGE = ["--start", "2024-02-20", "--end", "2024-03-21", "--workers", "4"]  # 30 days


def _source_rows(root: Path) -> set[tuple[Any, ...]]:
    db = sqlite3.connect(root / "sources" / "app.sqlite")
    rows = {(int(i), k, int(a), u) for i, k, a, u in db.execute("SELECT * FROM events")}
    db.close()
    return rows


def _target_rows(root: Path) -> list[tuple[Any, ...]]:
    rows = sql(root, "select id, kind, amount, updated_at from app.events")
    return [
        (int(r["id"]), r["kind"], int(r["amount"]), str(r["updated_at"])[:19].replace("T", " "))
        for r in rows
    ]


def _kill_and_resume(root: Path, target: str, delay: float, bump: int) -> None:
    db = sqlite3.connect(root / "sources" / "app.sqlite")
    # An upstream correction the cursor does not show: only a backfill picks it up.
    db.execute("UPDATE events SET amount = amount + ? WHERE kind = 'a'", (bump,))
    db.commit()
    db.close()
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.Popen(
        [STACKYARD, "backfill", target, *RANGE, "--json"],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = backfill_json(root, "status")
    done = {}
    if before and before[0]["target"] == target and before[0]["status"] != "success":
        done = {p["seq"]: p["attempt"] for p in before[0]["partitions"] if p["status"] == "success"}
        # Killed, it is still "running" in the ledger; status says its process is gone.
        assert before[0]["stopped"] == (before[0]["status"] == "running"), before[0]
        if before[0]["stopped"]:
            shown = stackyard(root, "backfill", "status", check=0).stdout
            assert "stopped: its process is gone" in shown and "resume" in shown, shown
    result = backfill_json(root, target, *RANGE)
    assert result["ok"], result["validation"]
    for p in result["partitions"]:
        seq = result["partitions"].index(p)
        if seq in done:
            assert not p["executed"] and p["attempt"] == done[seq], (seq, p)
    assert result["validation"]["duplicate_keys"] == 0
    assert result["validation"]["missing_partitions"] == []
    # The ledger agrees with the table: what each partition says it wrote is what is there.
    written = sum(p["rows_written"] for p in result["partitions"])
    assert written == result["validation"]["rows_actual"] == result["validation"]["rows_expected"]


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_kill_9_during_a_source_backfill_then_resume(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    root = make_backfill_project(tmp_path / "mini", days=30)
    if engine == "postgres":
        add_postgres_target(root, request.getfixturevalue("pg_database"))
    stackyard(root, "run", "--json", check=0)
    bumps = iter(range(1, 100))

    @settings(max_examples=3, deadline=None, phases=[Phase.generate], database=None)
    @given(delay=st.floats(1.0, 12.0))
    def kill_resume_check(delay: float) -> None:
        _kill_and_resume(root, "app.events", delay, next(bumps))
        target = _target_rows(root)
        assert len(target) == len(set(target))
        assert set(target) == _source_rows(root)

    kill_resume_check()


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_kill_9_during_a_model_backfill_then_resume(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    root = make_backfill_project(tmp_path / "mini", days=30)
    if engine == "postgres":
        add_postgres_target(root, request.getfixturevalue("pg_database"))
    stackyard(root, "run", "--json", check=0)

    @settings(max_examples=2, deadline=None, phases=[Phase.generate], database=None)
    @given(delay=st.floats(2.0, 15.0))
    def kill_resume_check(delay: float) -> None:
        _kill_and_resume(root, "daily_events", delay, 0)
        # The microbatch table equals a full rebuild of the model over the same days: no
        # duplicate (a day written twice would double its counts), no gap.
        diff = sql(
            root,
            "select count(*) as n from ((select * from marts.daily_events except select "
            "cast(date_trunc('day', updated_at) as timestamp), kind, count(*), sum(amount) "
            "from staging.stg_events group by 1, 2) union all (select "
            "cast(date_trunc('day', updated_at) as timestamp), kind, count(*), sum(amount) "
            "from staging.stg_events group by 1, 2 except select * from marts.daily_events)) "
            "as d",
        )
        assert diff[0]["n"] == 0
        days = sql(root, "select count(distinct event_day) as n from marts.daily_events")
        assert days[0]["n"] == 30

    kill_resume_check()


@pytest.mark.postgres
def _partitions_done(root: Path, db: dict[str, Any] | None) -> int:
    """Partitions recorded ``success`` so far, read without taking the DuckDB file from the
    backfill (its ledger's JSON mirror) or from the Postgres ledger."""
    if db is None:
        import json

        found = 0
        for f in (root / ".stackyard" / "backfills").glob("*.json"):
            if not f.name.startswith("lease-"):
                try:
                    partitions = json.loads(f.read_text()).get("partitions", [])
                except ValueError:  # being written
                    continue
                found += sum(1 for p in partitions if p.get("status") == "success")
        return found
    import psycopg

    dsn = f"host={db['host']} port={db['port']} user={db['user']} dbname={db['database']}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        found = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = "
            "'stackyard' AND table_name = 'backfill_partitions'"
        ).fetchone()
        if not (found and found[0]):
            return 0
        row = conn.execute(
            "SELECT count(*) FROM stackyard.backfill_partitions WHERE status = 'success'"
        ).fetchone()
        return int(row[0]) if row else 0


@pytest.mark.parametrize(
    ("engine", "force"),
    [
        ("duckdb", False),
        # The hint said to run the same command again, which with --force starts over.
        ("duckdb", True),
        pytest.param("postgres", False, marks=pytest.mark.postgres),
    ],
)
def test_ctrl_c_during_a_backfill_with_workers_stops_without_tracebacks(
    tmp_path: Path, request: pytest.FixtureRequest, engine: str, force: bool
) -> None:
    # Each worker printed "Exception in thread backfill-w0: … the connection is closed":
    # the main thread had closed the ledger's connection under them. On DuckDB, where the
    # workers' cursors share the connection, closing it under a running one ended in
    # "connection is busy", a traceback and exit 134.
    root = make_backfill_project(tmp_path / "mini", days=30)
    db = request.getfixturevalue("pg_database") if engine == "postgres" else None
    if db is not None:
        add_postgres_target(root, db)
    stackyard(root, "run", "--json", check=0)
    args = ["backfill", "app.events", *RANGE[:4], "--workers", "2", "--run-size", "1"]
    proc = subprocess.Popen(
        [STACKYARD, *args, *(["--force"] if force else [])],
        cwd=root,
        env={**os.environ, "NO_COLOR": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Stopped once its workers are running partitions (a fixed wait met a busy machine's
    # startup, before the backfill had begun).
    done = 0
    for _ in range(1200):
        time.sleep(0.1)
        done = _partitions_done(root, db)
        if done >= 1:
            break
    assert done >= 1 and proc.poll() is None
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err and "Exception in thread" not in err, err[-3000:]
    assert "busy" not in err, err[-3000:]
    assert "interrupted: the backfill was stopped" in err and "run the same command again" in err
    assert ("without --force: it resumes" in err) == force, err[-3000:]
    result = backfill_json(root, "app.events", *RANGE[:4], "--workers", "2", "--run-size", "1")
    assert result["ok"] and result["validation"]["duplicate_keys"] == 0
    assert not force or not all(p["executed"] for p in result["partitions"]), "not resumed"


def test_a_killed_backfill_started_over_with_force_is_superseded_and_can_be_pruned(
    tmp_path: Path,
) -> None:
    # It stayed "running" forever: status said to run the same command to resume it (which
    # started new backfills), and prune refused it as running.
    root = make_backfill_project(tmp_path / "mini", days=30)
    stackyard(root, "run", "--json", check=0)
    args = ["backfill", "app.events", *RANGE[:4], "--run-size", "1", "--force"]
    proc = subprocess.Popen(
        [STACKYARD, *args], cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    killed = None
    for _ in range(600):
        time.sleep(0.1)
        try:
            listed = backfill_json(root, "status", check=None)
        except ValueError:  # no answer yet
            continue
        # Before the ledger exists (or while the file is busy) status answers with an error.
        if isinstance(listed, list) and listed and listed[0]["progress"]["success"] >= 2:
            killed = listed[0]["backfill_id"]
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert killed is not None
    assert backfill_json(root, "status", killed)["status"] == "running"
    again = backfill_json(root, *args[1:])
    assert again["ok"] and again["backfill_id"] != killed
    old = backfill_json(root, "status", killed)
    assert old["status"] == "superseded" and not old["stopped"]
    shown = stackyard(root, "backfill", "status", killed, check=0).stdout
    assert "superseded" in shown and f"backfill prune {killed}" in shown, shown
    stackyard(root, "backfill", "prune", killed, check=0)
