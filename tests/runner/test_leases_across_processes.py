"""A run in progress on DuckDB, seen from another process: DuckDB lets one process at a time
open the file, so the second process cannot read the lease table; it reads the run's mirror
of its leases instead. A second `stackyard run` is refused as a held lease is on Postgres
(exit 1, naming the holder), or waits with `--wait`; `status`, `health` and `sql` say a run
is in progress and since when (exit 2, nothing read); a mirror a killed run left never blocks
anything."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from stackyard import Context
from tests.runner.test_leases import project, wait_for

BIN = Path(sys.executable).parent
MIRROR = Path(".stackyard") / "dev.duckdb.run-leases.json"


def stackyard(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "stackyard"), *args], cwd=root, capture_output=True, text=True, timeout=300
    )


def start_run(root: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(BIN / "stackyard"), "run", *args],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def said(done: subprocess.CompletedProcess[str]) -> str:
    return " ".join((done.stdout + done.stderr).split())


def test_a_second_process_is_told_which_run_is_in_progress(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    first = start_run(root)
    try:
        wait_for(root / "sources" / "started")

        second = stackyard(root, "run")
        assert second.returncode == 1, said(second)  # as a held lease on Postgres
        assert "source 'events' is being run by" in said(second)
        assert f"pid {first.pid} (run " in said(second)
        assert "this run was not started" in said(second)
        assert "stackyard run --wait SECONDS" in said(second)

        for args, what in (
            (["status"], "the run history cannot be read"),
            (["health"], "table health cannot be read"),
            (["sql", "select 1"], "the query cannot run"),
        ):
            read = stackyard(root, *args)
            assert read.returncode == 2, said(read)
            text = said(read)
            assert "a stackyard run is in progress on DuckDB target 'dev'" in text, text
            assert f"pid {first.pid} (run " in text and "has been running source 'events'" in text
            assert " since 20" in text and what in text and "nothing was read" in text

        # Every other command is refused before it opens the file, naming the run: opened
        # between two of the run's steps, the file would be held from the run's next step.
        for args in (["doctor"], ["monitor"], ["report", "--out", "r.html"]):
            other = stackyard(root, *args)
            text = said(other)
            assert "a stackyard run is in progress on DuckDB target 'dev'" in text, (args, text)
            assert other.returncode in (1, 2), (args, text)

        as_json = stackyard(root, "status", "--json")
        assert as_json.returncode == 2
        error = json.loads(as_json.stdout)
        assert error["exit_code"] == 2 and "a stackyard run is in progress" in error["error"]

        with Context(root) as context:  # from this process too, without opening the file
            held = context.leases()
        assert {x.name for x in held} == {"source:events", "transformation"}
        assert all(f"pid {first.pid} " in x.holder for x in held)
    finally:
        (root / "sources" / "go").write_text("go")
        out, _ = first.communicate(timeout=300)
    assert first.returncode == 0, out[-3000:]
    assert not (root / MIRROR).exists()  # given back with the leases
    with Context(root) as context:
        assert context.sql("select count(*) from stackyard.runs").rows[0][0] == 1


def test_run_wait_starts_once_the_run_in_progress_ends(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    first = start_run(root)
    try:
        wait_for(root / "sources" / "started")
        waiting = start_run(root, "--wait", "240")
        time.sleep(3)
        assert waiting.poll() is None, waiting.communicate()[0][-3000:]
    finally:
        (root / "sources" / "go").write_text("go")
        out, _ = first.communicate(timeout=300)
    # The waiter never opened the file between two of the first run's steps (which would
    # have failed the first run's next step), and ran after it.
    assert first.returncode == 0, out[-3000:]
    out, _ = waiting.communicate(timeout=300)
    assert waiting.returncode == 0, out[-3000:]
    with Context(root) as context:
        assert context.sql("select count(*) from stackyard.runs").rows[0][0] == 2


# Holds the DuckDB file as any other program could (a DuckDB shell, a BI tool).
HOLD_FILE = """
import sys, time
import duckdb
connection = duckdb.connect(sys.argv[1])
print("holding", flush=True)
time.sleep(300)
"""


def test_a_mirror_left_by_a_killed_run_blocks_nothing(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    killed = start_run(root)
    wait_for(root / "sources" / "started")
    assert (root / MIRROR).exists()
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    assert (root / MIRROR).exists()  # left behind, its pid maybe reused by then

    # Another program holding the file is not taken for the killed run.
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_FILE, str(root / ".stackyard" / "dev.duckdb")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "holding\n"
        for args in (["status"], ["run"]):
            done = stackyard(root, *args)
            assert done.returncode == 2, said(done)
            assert "cannot open the DuckDB file" in said(done)
            assert "run is in progress" not in said(done) and "being run by" not in said(done)
    finally:
        holder.kill()
        holder.wait()

    (root / "sources" / "go").write_text("go")
    assert stackyard(root, "status").returncode == 0
    again = stackyard(root, "run")
    assert again.returncode == 0, said(again)[-3000:]
    assert not (root / MIRROR).exists()
