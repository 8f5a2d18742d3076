"""`stackyard ci github` (and `stackyard init`) write a GitHub Actions workflow; its pull-request
steps' commands run here, as written, in the project."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from typer.testing import CliRunner

from stackyard import Context
from stackyard.cli.main import app
from stackyard.project import init_project

runner = CliRunner()
BIN = Path(sys.executable).parent
WORKFLOW = Path(".github/workflows/stackyard.yml")


def make_project(root: Path) -> Path:
    init_project(root)
    files = root / "sources" / "files"
    files.mkdir(parents=True, exist_ok=True)
    (files / "orders.csv").write_text("id,amount\n1,10\n2,20\n")
    entry = (
        "sources:\n  orders:\n    kind: filesystem\n    url: sources/files\n"
        "    tables: {orders: {glob: orders.csv, primary_key: id}}\n"
    )
    text = (root / "stackyard.yml").read_text().replace("sources: {}\n", entry)
    (root / "stackyard.yml").write_text(text)
    return root


def test_init_writes_the_workflow_and_its_pull_request_steps_run_here(tmp_path: Path) -> None:
    root = make_project(tmp_path / "shop")
    assert (root / WORKFLOW).is_file()  # written by init
    done = runner.invoke(app, ["ci", "github", "--json", "--project", str(root)])
    assert done.exit_code == 0, done.output
    result = json.loads(done.output)
    assert result["path"] == str(WORKFLOW)

    workflow = yaml.safe_load((root / WORKFLOW).read_text())
    assert set(workflow["on"]) == {"pull_request", "push"}
    assert workflow["on"]["push"]["branches"] == ["main"]
    check, deploy = workflow["jobs"]["check"], workflow["jobs"]["deploy"]
    assert "pull_request" in check["if"] and "push" in deploy["if"]
    commands = [s["run"] for s in check["steps"] if "run" in s and "pip install" not in s["run"]]
    assert [c.split()[:2] for c in commands] == [
        ["stackyard", "policy"],
        ["stackyard", "plan"],
        ["stackyard", "run"],
    ]
    assert "--detailed-exitcode" in commands[1]
    assert any("stackyard apply" in s.get("run", "") for s in deploy["steps"])

    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    for command in commands:
        ran = subprocess.run(
            ["bash", "-e", "-c", command],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert ran.returncode == 0, f"{command}\n{ran.stdout}\n{ran.stderr}"
    with Context(root) as context:
        assert context.sql("select count(*) from orders.orders").rows[0][0] == 2


def test_a_workflow_someone_took_over_is_left_alone(tmp_path: Path) -> None:
    root = make_project(tmp_path / "shop")
    path = root / WORKFLOW
    mine = "name: mine\n" + "\n".join(path.read_text().splitlines()[2:]) + "\n"
    path.write_text(mine)
    done = runner.invoke(app, ["ci", "github", "--project", str(root)])
    assert done.exit_code == 2, done.output
    assert "left as it is" in done.output
    assert path.read_text() == mine
