"""The CLI's error boundary: what a Ctrl-C prints depends on the command it stopped."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from stackyard.cli.common import RUN_STOPPED, _guard

STACKYARD = str(Path(sys.executable).parent / "stackyard")


def _stopped() -> None:
    raise KeyboardInterrupt


def test_only_stackyard_run_promises_that_the_next_run_completes_the_load(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(typer.Exit) as run:
        _guard(_stopped, RUN_STOPPED)
    assert run.value.exit_code == 130
    assert "the next run completes any pending load" in capsys.readouterr().err
    # restore, evolve, backfill …: nothing is promised about a next run
    with pytest.raises(typer.Exit) as other:
        _guard(_stopped)
    assert other.value.exit_code == 130
    printed = capsys.readouterr().err
    assert "interrupted: nothing further was done" in printed
    assert "pending load" not in printed


def test_with_json_an_error_is_also_json_on_stdout(tmp_path: Path) -> None:
    """A script that pipes ``--json`` into a parser gets an answer it can read when the
    command fails, with the exit code; the message stays on stderr for people."""
    from stackyard.project import init_project

    project = init_project(tmp_path / "shop").path
    failed = subprocess.run(
        [STACKYARD, "restore-table", "main.nope", "--from", "latest", "--json"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert failed.returncode == 2, failed
    answer = json.loads(failed.stdout)
    assert answer["ok"] is False and answer["exit_code"] == 2
    assert answer["error"].startswith("error: ") and answer["hint"]
    assert answer["error"].removeprefix("error: ") in failed.stderr
    # Without --json, stdout stays empty: the message is on stderr only.
    plain = subprocess.run(
        [STACKYARD, "restore-table", "main.nope", "--from", "latest"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert plain.returncode == 2 and plain.stdout == "" and "error: " in plain.stderr


def test_with_json_a_command_line_click_cannot_read_is_json_too(tmp_path: Path) -> None:
    # An unknown option or a missing argument is refused before any command runs: the
    # JSON answer was missing, and a script reading stdout got nothing.
    for args, said in (
        (["run", "--json", "--dry-run"], "No such option: --dry-run"),
        (["lineage", "--json"], "Missing argument"),
    ):
        done = subprocess.run(
            [STACKYARD, *args], cwd=tmp_path, capture_output=True, text=True, check=False
        )
        assert done.returncode == 2, done
        answer = json.loads(done.stdout)
        assert answer["ok"] is False and answer["exit_code"] == 2
        assert said in answer["error"] and said in done.stderr
        assert answer["hint"] == f"`stackyard {args[0]} --help` lists what it takes"
    plain = subprocess.run(
        [STACKYARD, "run", "--dry-run"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert plain.returncode == 2 and plain.stdout == ""


def test_duckdbs_query_interrupted_is_a_ctrl_c_and_a_full_disk_says_so(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import errno

    def interrupted() -> None:
        raise RuntimeError("Query interrupted")  # DuckDB's, where it stopped a query

    with pytest.raises(typer.Exit) as stopped:
        _guard(interrupted)
    assert stopped.value.exit_code == 130 and "unexpected" not in capsys.readouterr().err

    def full() -> None:
        raise OSError(errno.ENOSPC, "No space left on device", "/backups/x/warehouse.duckdb")

    with pytest.raises(typer.Exit) as failed:
        _guard(full)
    printed = capsys.readouterr().err
    assert failed.value.exit_code == 1 and "the disk is full" in printed
    assert "unexpected" not in printed and "--to" in printed


def test_the_width_is_read_when_a_command_prints_not_when_the_cli_is_imported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Rich fixed it from COLUMNS at import: a command run later in the same process (an
    orchestrator's, a notebook's) was drawn at the width of the moment it was imported."""
    from stackyard.cli.common import _Environ, _Terminal

    monkeypatch.setenv("COLUMNS", "60")
    terminal = _Terminal(_environ=_Environ())
    monkeypatch.setenv("COLUMNS", "200")
    assert terminal.width == 200
