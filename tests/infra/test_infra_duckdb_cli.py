"""DuckDB creates schemas and reports access control as not enforced; the CLI's exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from stackyard.cli.main import app
from stackyard.context import Context
from tests.infra.helpers import project

runner = CliRunner()


def test_duckdb_creates_schemas_and_says_access_is_not_enforced(tmp_path: Path) -> None:
    path = project(tmp_path)
    plan = Context(path).access().plan("dev")
    assert {s.kind for s in plan.steps} == {"create_schema"}
    assert 'CREATE SCHEMA IF NOT EXISTS "shop_db"' in plan.statements()
    assert any("not enforced on DuckDB" in n for n in plan.notes)
    Context(path).access().apply(target="dev")
    again = Context(path).access().plan("dev")
    assert not again.has_changes and again.notes == plan.notes


def test_plan_detailed_exitcode_and_json(tmp_path: Path) -> None:
    path = project(tmp_path)
    changes = runner.invoke(app, ["plan", "-p", str(path), "--detailed-exitcode"])
    assert changes.exit_code == 2, changes.output
    assert "not enforced on DuckDB" in changes.output
    applied = runner.invoke(app, ["apply", "-p", str(path)])
    assert applied.exit_code == 0, applied.output
    none = runner.invoke(app, ["plan", "-p", str(path), "--detailed-exitcode"])
    assert none.exit_code == 0, none.output
    broken = runner.invoke(app, ["plan", "-p", str(path), "-t", "nope", "--detailed-exitcode"])
    assert broken.exit_code == 1
    as_json = runner.invoke(app, ["plan", "-p", str(path), "-t", "prod", "--json"])
    data = json.loads(as_json.stdout)
    assert data["format"] == "stackyard.access-plan/1" and data["live_known"] is False


def test_plan_out_and_sql_files(tmp_path: Path) -> None:
    path = project(tmp_path)
    plan_file, sql_file = tmp_path / "plan.json", tmp_path / "plan.sql"
    result = runner.invoke(
        app,
        ["plan", "-p", str(path), "-t", "prod", "--out", str(plan_file), "--sql", str(sql_file)],
    )
    assert result.exit_code == 0, result.output
    assert "CREATE DATABASE ROLE IF NOT EXISTS DLT.DLT_DB_READER" in sql_file.read_text()
    applied = runner.invoke(app, ["apply", str(plan_file), "-p", str(path)])
    assert applied.exit_code == 2  # planned without live state: refused
    assert "without reading the live state" in applied.output


def test_apply_refuses_a_file_that_is_not_a_plan(tmp_path: Path) -> None:
    path = project(tmp_path)
    bogus = tmp_path / "plan.json"
    bogus.write_text('{"format": "terraform"}')
    result = runner.invoke(app, ["apply", str(bogus), "-p", str(path)])
    assert result.exit_code == 2
    assert "not a stackyard access plan" in result.output
