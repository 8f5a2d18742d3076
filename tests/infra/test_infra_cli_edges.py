"""`apply plan.json -t prod` is accepted when the plan is for prod (and refused, naming both,
when it is not); `user remove` says what the user loses."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from stackyard.cli.main import app
from tests.infra.conftest import PgProject
from tests.infra.helpers import project

runner = CliRunner()


def test_apply_saved_plan_with_its_own_target(pg_project: PgProject) -> None:
    pg_project.write("people: {alice: {}}")
    path = str(pg_project.path)
    plan_file = str(pg_project.path / "plan.json")
    planned = runner.invoke(app, ["plan", "-t", "prod", "--out", plan_file, "-p", path])
    assert planned.exit_code == 0, planned.output
    wrong = runner.invoke(app, ["apply", plan_file, "-t", "dev", "-p", path])
    assert wrong.exit_code == 2
    assert "planned for target 'prod', not 'dev'" in " ".join(wrong.output.split())
    applied = runner.invoke(app, ["apply", plan_file, "-t", "prod", "-p", path])
    assert applied.exit_code == 0, applied.output
    assert "applied" in applied.output
    again = runner.invoke(app, ["plan", "-t", "prod", "--detailed-exitcode", "-p", path])
    assert again.exit_code == 0, again.output


def test_user_remove_says_what_the_user_loses(tmp_path: Path) -> None:
    path = project(tmp_path, "people: {alice: {}, rita: {roles: [REPORTING_READER]}}")
    result = runner.invoke(app, ["user", "remove", "rita", "-p", str(path)])
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert "rita loses: role REPORTING_READER, read ANALYTICS.reporting" in flat
    alice = runner.invoke(app, ["user", "remove", "alice", "-p", str(path)])
    flat = " ".join(alice.output.split())
    assert "role ANALYTICS_DEVELOPER" in flat and "write ANALYTICS_DEV.dev_alice" in flat
    assert "read DLT.shop_db" in flat
