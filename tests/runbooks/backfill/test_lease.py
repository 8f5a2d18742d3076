"""One backfill per target: an overlapping one fails within seconds naming the holder, a stale
lease is taken over, and status reads progress from another process meanwhile."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.runbooks.backfill.conftest import (
    STACKYARD,
    add_postgres_target,
    backfill_json,
    in_own_process,
    make_backfill_project,
    sql,
    stackyard,
)


def test_a_live_lease_blocks_and_a_stale_one_is_taken_over(project: Path) -> None:
    first = backfill_json(project, "app.events", "--start", "2024-02-20", "--end", "2024-02-21")
    assert first["ok"]
    sql(
        project,
        "insert into stackyard.backfill_leases values ('app.events', 'other', "
        "'alice@elsewhere pid 7 (backfill other)', now())",
    )
    started = time.monotonic()
    blocked = stackyard(
        project, "backfill", "app.events", "--start", "2024-02-20", "--end", "2024-02-21", "--force"
    )
    assert blocked.returncode == 2  # refused before it started: nothing was attempted
    assert "alice@elsewhere pid 7 (backfill other)" in blocked.stderr
    assert time.monotonic() - started < 60  # the CLI's start-up, not a wait on the lease
    sql(project, "update stackyard.backfill_leases set heartbeat = now() - interval 1 hour")
    taken = backfill_json(
        project, "app.events", "--start", "2024-02-20", "--end", "2024-02-21", "--force"
    )
    assert taken["ok"]


def test_a_duckdb_file_held_by_a_running_backfill_is_a_refusal(project: Path) -> None:
    """The second backfill cannot even open the DuckDB file: it names the holder from the lease
    mirror and exits 2 at once, having attempted nothing."""
    import duckdb

    holder = "alice@elsewhere pid 7 (backfill other)"
    mirror = project / ".stackyard" / "backfills"
    mirror.mkdir(parents=True, exist_ok=True)
    (mirror / "lease-app.events.json").write_text(
        json.dumps({"target": "app.events", "holder": holder})
    )
    (warehouse,) = (project / ".stackyard").glob("*.duckdb")
    lock = duckdb.connect(str(warehouse))  # as the running backfill would hold it
    try:
        started = time.monotonic()
        blocked = in_own_process(
            project, "backfill", "app.events", "--start", "2024-02-20", "--end", "2024-02-21"
        )
    finally:
        lock.close()
    assert blocked.returncode == 2, blocked.stderr[-2000:]
    assert "held by a running backfill" in blocked.stderr and holder in blocked.stderr
    assert time.monotonic() - started < 60
    status = stackyard(project, "backfill", "status", "--json", check=0)
    assert status.stdout.strip() in ("", "[]")  # no backfill was started


def test_status_from_another_process_while_a_backfill_runs(project: Path) -> None:
    env = {**os.environ, "NO_COLOR": "1"}
    running = subprocess.Popen(
        [
            STACKYARD,
            "backfill",
            "app.events",
            "--start",
            "2024-02-20",
            "--end",
            "2024-03-11",
            # A dlt run per day keeps it running long enough to be watched on a busy machine.
            "--run-size",
            "1",
            "--json",
        ],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen = None
    overlap = None
    deadline = time.monotonic() + 300
    while running.poll() is None and time.monotonic() < deadline:
        status = stackyard(project, "backfill", "status", "--json")
        if status.returncode == 0 and status.stdout.strip() not in ("", "[]"):
            data = json.loads(status.stdout)
            if data and data[0]["status"] == "running":
                seen = data[0]
                overlap = stackyard(
                    project,
                    "backfill",
                    "app.events",
                    "--start",
                    "2024-02-20",
                    "--end",
                    "2024-03-11",
                )
                break
        time.sleep(0.5)
    _out, err = running.communicate(timeout=600)
    assert running.returncode == 0, err[-2000:]
    assert seen is not None, "status never showed the running backfill"
    assert seen["target"] == "app.events" and seen["progress"]["total"] == 20
    assert overlap is not None and overlap.returncode != 0
    assert "backfill " + seen["backfill_id"] in overlap.stderr


@pytest.mark.postgres
def test_the_same_backfill_run_again_while_it_runs_is_refused_on_postgres(
    tmp_path: Path, pg_database: dict[str, Any]
) -> None:
    root = make_backfill_project(tmp_path / "mini")
    add_postgres_target(root, pg_database)
    stackyard(root, "run", "--json", check=0)
    window = ["app.events", "--start", "2024-02-20", "--end", "2024-03-11", "--run-size", "1"]
    running = subprocess.Popen(
        [STACKYARD, "backfill", *window, "--json"],
        cwd=root,
        env={**os.environ, "NO_COLOR": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    overlap = None
    deadline = time.monotonic() + 300
    while running.poll() is None and time.monotonic() < deadline:
        if leases_held(root):
            overlap = stackyard(root, "backfill", *window)
            break
        time.sleep(0.3)
    _out, err = running.communicate(timeout=600)
    assert running.returncode == 0, err[-2000:]
    assert overlap is not None, "the backfill ended before it was seen running"
    # Before: "backfill id: … (resumed)": both processes worked the same partitions in one
    # staging folder, and both failed.
    assert overlap.returncode == 2, overlap.stdout + overlap.stderr
    assert "is being backfilled by" in overlap.stderr, overlap.stderr


def leases_held(root: Path) -> int:
    """Leases in the ledger; 0 while the backfill has not yet made the ledger table."""
    proc = stackyard(root, "sql", "select count(*) as n from stackyard.backfill_leases", "--json")
    if proc.returncode != 0:
        assert "does not exist" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
        return 0
    return int(json.loads(proc.stdout)["rows"][0]["n"])


def test_the_mirror_status_reads_is_of_its_own_target(tmp_path: Path) -> None:
    # Before: with the DuckDB file held by a run, `backfill status` showed the newest mirror
    # in .stackyard/backfills, here prod's backfill, as dev's.
    from stackyard.runbooks.backfill.ledger import read_mirror

    for n, (backfill_id, target) in enumerate([("dev1", "dev"), ("prod1", "prod")]):
        path = tmp_path / f"{backfill_id}.json"
        path.write_text(json.dumps({"backfill_id": backfill_id, "warehouse_target": target}))
        os.utime(path, (1_000_000 + n, 1_000_000 + n))  # prod's is the newest
    (tmp_path / "lease-shop_db.orders.json").write_text(json.dumps({"holder": "x"}))
    assert read_mirror(tmp_path, None, "dev") == {"backfill_id": "dev1", "warehouse_target": "dev"}
    assert read_mirror(tmp_path, "prod1", "dev") is None
    assert read_mirror(tmp_path, "prod1", "prod") is not None
    assert read_mirror(tmp_path, None, "qa") is None
