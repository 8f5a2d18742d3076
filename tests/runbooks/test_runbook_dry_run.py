"""`--dry-run` explains a runbook's steps, with their undo, and changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from stackyard.cli.main import app
from stackyard.project import init_project
from tests.conftest import write

runner = CliRunner()


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "target" not in p.parts and "logs" not in p.parts
    }


def test_source_add_and_remove_dry_runs_change_nothing(tmp_path: Path) -> None:
    root = tmp_path / "shop"
    init_project(root)
    write(root / "sources/exports/things.csv", "id,name\n1,a\n2,b\n")
    add = ["source", "add", "things", "--kind", "filesystem", "--url", "sources/exports"]
    add += ["--table", "things=things*.csv", "--primary-key", "things=id", "-p", str(root)]
    before = snapshot(root)
    result = runner.invoke(app, [*add, "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "source add things: 5 steps (dry run: nothing changed)" in result.output
    assert "first load: load things with dlt into things" in result.output
    assert "undo: `stackyard source remove things" in result.output
    assert snapshot(root) == before

    assert runner.invoke(app, add).exit_code == 0
    after_add = snapshot(root)
    result = runner.invoke(
        app, ["source", "remove", "things", "--drop-data", "--dry-run", "--json", "-p", str(root)]
    )
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    actions = [s["action"] for s in plan["steps"]]
    assert actions == [
        "delete files",
        "edit dbt sources",
        "edit stackyard.yml",
        "forget dlt state",
        "drop schema",
        "drop schema",  # dlt's staging schema, made by the first load's merge on the key
    ]
    assert "things_staging" in json.dumps(plan["steps"][-1])
    assert plan["steps"][-1]["destructive"] is True
    assert snapshot(root) == after_add


def test_user_add_dry_run_writes_no_key_and_no_config(tmp_path: Path) -> None:
    root = tmp_path / "shop"
    init_project(root)
    before = snapshot(root)
    result = runner.invoke(app, ["user", "add", "SVC_X", "--service", "--dry-run", "-p", str(root)])
    assert result.exit_code == 0, result.output
    assert "create key pair" in result.output and "access.service_accounts" in result.output
    assert snapshot(root) == before
    assert not (root / ".stackyard" / "keys").exists()
