"""Access review: effective privileges through the role hierarchy, inactive users, and grants
outside the declaration."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stackyard.cli.main import app
from stackyard.context import Context
from tests.infra.conftest import PgProject
from tests.infra.helpers import project

runner = CliRunner()
FIXTURES = Path(__file__).parent / "fixtures"


def test_snowflake_review_from_recorded_show_output(tmp_path: Path) -> None:
    path = project(tmp_path)
    show = json.loads((FIXTURES / "snowflake_show_drifted.json").read_text())
    show["users"][0]["last_success_login"] = None
    recorded = tmp_path / "show.json"
    recorded.write_text(json.dumps(show))
    report = Context(path).access().review("prod", live_state=recorded)
    rows = {(p.user, p.privilege, p.object_name, p.via) for p in report.privileges}
    assert ("SVC_DLT", "CREATE TABLE", "DLT.SHOP_DB", "SVC_DLT → DLT.DLT_DB_WRITER") in rows
    assert ("SVC_DLT", "USAGE", "LOADING", "SVC_DLT") in rows
    assert [u.name for u in report.inactive] == ["SVC_DLT"]
    assert any("FINANCE_ANALYST" in g for g in report.outside_declaration)
    assert any("INSERT" in g and "pending" in g for g in report.outside_declaration)


@pytest.mark.postgres
def test_postgres_review_lists_privileges_through_the_chain(pg_project: PgProject) -> None:
    pg_project.write("people: {alice: {}}")
    pg_project.context().access().apply(target="prod")
    with pg_project.connect() as admin:
        admin.execute("CREATE TABLE shop_db.customers (id int)")
    result = runner.invoke(
        app, ["access", "review", "-p", str(pg_project.path), "-t", "prod", "--format", "csv"]
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    alice = pg_project.role("alice")
    select = [r for r in rows if r["user"] == alice and r["object"] == "shop_db.customers"]
    assert [r["privilege"] for r in select] == ["SELECT"]
    assert select[0]["via"] == " → ".join(
        pg_project.role(r)
        for r in ("analytics_developer", "analytics_sources_reader", "dlt_db_reader")
    )
    assert not any(r["user"] == alice and r["privilege"] == "INSERT" for r in rows)

    # The same review as JSON, for a script: the same rows, and --json means the same.
    done = runner.invoke(
        app, ["access", "review", "-p", str(pg_project.path), "-t", "prod", "--json"]
    )
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["target"] == "prod"
    assert len(report["privileges"]) == len(rows)
    chosen = [
        p for p in report["privileges"] if p["user"] == alice and p["object"] == "shop_db.customers"
    ]
    assert [(p["privilege"], p["via"]) for p in chosen] == [("SELECT", select[0]["via"])]
    both = runner.invoke(
        app,
        ["access", "review", "-p", str(pg_project.path), "-t", "prod", "--json", "--format", "csv"],
    )
    assert both.exit_code == 2 and "give one" in both.output
