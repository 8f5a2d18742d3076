"""`stackyard user …` at the command line: `--json` gives data, not the human lines."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from stackyard.cli.main import app
from stackyard.project import init_project


def test_user_add_json_prints_the_change_as_data(tmp_path: Path) -> None:
    root = tmp_path / "p"
    init_project(root)
    runner = CliRunner()
    result = runner.invoke(app, ["user", "add", "amy", "-p", str(root), "--json"])
    assert result.exit_code == 0, result.output
    person = json.loads(result.stdout)
    assert (person["name"], person["kind"], person["action"]) == ("amy", "person", "added")
    assert person["key_file"] is None and "stackyard plan" in person["next_step"]
    result = runner.invoke(app, ["user", "add", "SVC_X", "--service", "-p", str(root), "--json"])
    assert result.exit_code == 0, result.output
    service = json.loads(result.stdout)
    assert service["kind"] == "service" and service["private_key"] is None
    assert Path(service["key_file"]).is_file()
    assert "amy" in (root / "stackyard.yml").read_text()
