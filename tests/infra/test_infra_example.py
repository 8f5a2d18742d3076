"""Issue 4's promise on the real example project: on Postgres, run it, plan and apply its
least-privilege layout, get an empty next plan, pass the policy check; then a person given the
loader's writer role fails it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stackyard.cli.main import app
from stackyard.project import init_project
from tests.infra.conftest import PgProject

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
runner = CliRunner()


def cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_example_project_on_postgres(pg_project: PgProject, tmp_path: Path) -> None:
    root = tmp_path / "jaffle"
    init_project(root, example="jaffle_shop")
    text = (root / "stackyard.yml").read_text()
    prod = (
        "  prod:                      # the same project on Postgres\n"
        "    type: postgres\n"
        f"    host: {pg_project.host}\n"
        f"    port: {pg_project.port}\n"
        f"    user: {pg_project.admin}\n"
        f"    database: {pg_project.database}\n"
    )
    text = re.sub(r"  prod:.*?\n(?=\nsources:)", prod, text, flags=re.S)
    text += f"\naccess:\n  role_prefix: {pg_project.prefix}\n"
    (root / "stackyard.yml").write_text(text)
    p = ["-p", str(root)]

    code, output = cli("run", "-t", "prod", *p)
    assert code == 0, output
    assert "71 tests passed" in output

    code, output = cli(
        "plan", "-t", "prod", "--out", str(tmp_path / "plan.json"), "--detailed-exitcode", *p
    )
    assert code == 2, output  # changes present
    code, output = cli("apply", str(tmp_path / "plan.json"), *p)
    assert code == 0, output
    code, output = cli("plan", "-t", "prod", "--detailed-exitcode", *p)
    assert code == 0, output  # nothing left to change
    code, output = cli("policy", "check", "-t", "prod", *p)
    assert code == 0, output

    # the loader writes its own schemas, the reporting reader reads reporting only
    import psycopg

    with pg_project.connect() as admin:
        admin.execute(f'CREATE ROLE "{pg_project.role("probe")}" LOGIN')
        admin.execute(
            f'GRANT "{pg_project.role("reporting_reader")}" TO "{pg_project.role("probe")}"'
        )
    with pg_project.connect("probe") as probe:
        assert probe.execute("SELECT count(*) FROM reporting.rpt_daily_revenue").fetchone()[0]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            probe.execute("SELECT count(*) FROM marts.orders")
    with pg_project.connect("svc_dlt") as loader:
        loader.execute("CREATE TABLE shop_db.probe (id int)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            loader.execute("CREATE TABLE marts.probe (id int)")

    # a deliberately bad change: a person holding the loader's writer role in prod
    (root / "stackyard.yml").write_text(
        (root / "stackyard.yml").read_text()
        + "  people: {bob: {roles: [ANALYTICS_DEVELOPER, DLT_DB_WRITER]}}\n"
    )
    code, output = cli("policy", "check", "-t", "prod", *p)
    assert code == 1, output
    assert "holds DLT_DB_WRITER" in output
