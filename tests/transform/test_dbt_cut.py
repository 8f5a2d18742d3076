"""Ctrl-C during `stackyard run` cuts the dbt invocation running in the build thread: the model's
statement is cancelled, dbt starts nothing else, the run exits 130 recorded as interrupted, and
the next run works (real `stackyard run` processes, real DuckDB and Postgres)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stackyard import Context
from tests.conftest import write

BIN = Path(sys.executable).parent

# Far longer than the bound below: on DuckDB a count only an interrupt ends (a trillion rows).
SLOW = {
    "duckdb": "select count(*) as n from range(1000000000000) t(n) where n % 7 = 3",
    "postgres": "select 1 as n from (select pg_sleep(300)) slept",
}
# A hang guard, not a timing: cut, the run ends within seconds; uncut, the model runs for
# minutes (Postgres: pg_sleep(300)), so a run still going after this long was not cut.
BOUND_SECONDS = 120.0


def make_project(root: Path, target: str) -> Path:
    write(root / "stackyard.yml", f"name: slow\ntargets:\n  dev: {target}\nsources: {{}}\n")
    write(
        root / "transform" / "dbt_project.yml",
        'name: slow\nversion: "1.0.0"\nprofile: stackyard\nmodels:\n'
        "  slow:\n    +materialized: table\n",
    )
    write(root / "transform" / "models" / "quick.sql", "select 1 as n\n")
    return root


def slow_started(log: Path) -> bool:
    """dbt logged the slow model's start (its statements follow at once)."""
    lines = log.read_text().splitlines() if log.is_file() else []
    return any("START sql table model" in line and ".slow " in line for line in lines)


def run_cut_by_ctrl_c(project: Path, engine: str) -> None:
    write(project / "transform" / "models" / "slow.sql", SLOW[engine] + "\n")
    log = project / "transform" / "logs" / "dbt.log"
    # --engine dbt: dbt builds the model (the SQL engine's own queries are cut elsewhere)
    run = subprocess.Popen(
        [str(BIN / "stackyard"), "run", "--engine", "dbt"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        until = time.monotonic() + 120
        while not slow_started(log):
            assert run.poll() is None and time.monotonic() < until, "the model never started"
            time.sleep(0.1)
        run.send_signal(signal.SIGINT)
        try:
            out, err = run.communicate(timeout=BOUND_SECONDS)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {BOUND_SECONDS:.0f} s after Ctrl-C: dbt was not cut")
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert run.returncode == 130, out[-2000:] + err[-2000:]
    assert "interrupted during dbt build" in err
    assert "run `stackyard run` again" in err
    text = log.read_text()
    assert "CANCEL query" in text, text[-3000:]  # dbt's own cancel line, on every connection


def run_again(project: Path) -> None:
    ctx = Context(project)
    [stopped] = ctx.status(limit=1)
    assert stopped.status == "interrupted"
    ctx.close()
    write(project / "transform" / "models" / "slow.sql", "select 2 as n\n")
    again = subprocess.run(
        [str(BIN / "stackyard"), "run", "--engine", "dbt"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]


def test_ctrl_c_cuts_a_dbt_model_running_on_duckdb(tmp_path: Path) -> None:
    project = make_project(tmp_path / "slow", "{type: duckdb}")
    run_cut_by_ctrl_c(project, "duckdb")
    run_again(project)


@pytest.mark.postgres
def test_ctrl_c_cuts_a_dbt_model_running_on_postgres(
    tmp_path: Path, pg_database: dict[str, object]
) -> None:
    db = pg_database
    target = (
        f"{{type: postgres, host: '{db['host']}', port: {db['port']}, user: {db['user']}, "
        f"database: {db['database']}}}"
    )
    project = make_project(tmp_path / "slow", target)
    run_cut_by_ctrl_c(project, "postgres")
    run_again(project)
