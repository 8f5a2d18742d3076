"""`stackyard perf` and the other recovery commands: bad input is refused before anything is
read (exit 2)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from stackyard.cli.main import app
from tests.runner.conftest import make_project


def test_perf_runs_below_1_is_a_usage_error_before_the_warehouse_is_read(
    tmp_path: Path,
) -> None:
    project = make_project(tmp_path / "p")
    for runs in ("0", "-1"):
        result = CliRunner().invoke(app, ["perf", "-p", str(project), "--runs", runs])
        assert result.exit_code == 2, result.output
        assert "--runs" in result.output
    assert not (project / ".stackyard" / "dev.duckdb").exists()
