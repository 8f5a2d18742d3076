"""The README's promise, end to end, as a user runs it: separate processes for each command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stackyard import Context

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "COLUMNS": "120"}
    return subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, env=env, timeout=600)


def test_example_project_end_to_end(tmp_path: Path) -> None:
    project = tmp_path / "demo"
    stackyard = str(BIN / "stackyard")
    assert (
        run(stackyard, "init", str(project), "--example", "jaffle_shop", cwd=tmp_path).returncode
        == 0
    )
    first = run(stackyard, "run", cwd=project)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "71 tests passed" in first.stdout

    status = run(stackyard, "status", cwd=project / "transform" / "models")  # searches upward
    assert (
        status.returncode == 0
        and "success" in status.stdout
        and "71 passed, 0 failed" in status.stdout
    )

    # transform/ is a plain dbt project: dbt itself builds it with the generated profile
    manual = run(str(BIN / "dbt"), "build", cwd=project / "transform")
    assert manual.returncode == 0, manual.stdout[-3000:]
    assert "PASS=84" in manual.stdout  # 13 models + 71 tests

    ctx = Context(project)
    for mart in ("customers", "orders", "products", "stores"):
        assert ctx.sql(f"select count(*) from marts.{mart}").rows[0][0] > 0
    assert ctx.sql("select count(*) from reporting.rpt_daily_revenue").rows[0][0] > 300
    runs = ctx.status()
    assert len(runs) == 1 and runs[0].status == "success" and runs[0].tests_passed == 71
    ctx.close()
