"""`apply plan.json -t prod` is accepted when the plan is for prod (and refused, naming both,
when it is not); `apply --allow-destructive` does not ask for itself; `user remove` says what
the user loses and which of its key files are kept."""

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


def test_apply_allow_destructive_does_not_ask_for_allow_destructive(pg_project: PgProject) -> None:
    pg_project.write("people: {alice: {}}")
    path = str(pg_project.path)
    applied = runner.invoke(app, ["apply", "-t", "prod", "-p", path])
    assert applied.exit_code == 0, applied.output
    pg_project.write("people: {}")
    refused = runner.invoke(app, ["apply", "-t", "prod", "-p", path])
    assert refused.exit_code == 2 and "--allow-destructive" in refused.output
    applied = runner.invoke(app, ["apply", "-t", "prod", "--allow-destructive", "-p", path])
    assert applied.exit_code == 0, applied.output
    assert "DROP ROLE" in applied.output and "applied" in applied.output
    assert "--allow-destructive" not in applied.output


def test_user_remove_names_only_key_files_that_exist(tmp_path: Path) -> None:
    path = project(tmp_path, "people: {rita: {roles: [REPORTING_READER]}}")
    person = runner.invoke(app, ["user", "remove", "rita", "-p", str(path)])
    assert person.exit_code == 0, person.output
    assert "key" not in person.output
    for args in (["SVC_BI", "--role", "REPORTING_READER"], ["SVC_CI", "--print-key"]):
        added = runner.invoke(app, ["user", "add", *args, "--service", "-p", str(path)])
        assert added.exit_code == 0, added.output
    (key_file,) = (path / ".stackyard" / "keys").glob("svc_bi-*.p8")
    service = runner.invoke(app, ["user", "remove", "SVC_BI", "-p", str(path)])
    assert service.exit_code == 0, service.output
    flat = " ".join(service.output.split())
    assert f"kept: .stackyard/keys/{key_file.name}; delete it once no client uses it" in flat
    printed = runner.invoke(app, ["user", "remove", "SVC_CI", "-p", str(path)])
    assert printed.exit_code == 0, printed.output
    assert "key" not in printed.output
