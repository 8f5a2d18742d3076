"""The CLI's error boundary: what a Ctrl-C prints depends on the command it stopped."""

from __future__ import annotations

import pytest
import typer

from stackyard.cli.common import RUN_STOPPED, _guard


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
