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
def test_postgres_review_marks_a_table_grant_in_a_schema_the_user_cannot_use(
    pg_project: PgProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: 'SELECT table secret.salaries (direct)' read as access Postgres refuses."""
    from stackyard.cli.common import out

    # Rich reads COLUMNS when its console is made, at import: a wide table needs it set here.
    monkeypatch.setattr(out, "_width", 200)
    pg_project.write("people: {alice: {}}")
    pg_project.context().access().apply(target="prod")
    alice = pg_project.role("alice")
    with pg_project.connect() as admin:
        admin.execute("CREATE TABLE shop_db.customers (id int)")
        admin.execute("CREATE SCHEMA secret")
        admin.execute("CREATE TABLE secret.salaries (id int)")
        admin.execute(f'GRANT SELECT ON secret.salaries TO "{alice}"')
        admin.execute(f'CREATE SCHEMA mine AUTHORIZATION "{alice}"')  # owned: no grant needed
        admin.execute("CREATE TABLE mine.notes (id int)")
        admin.execute(f'GRANT SELECT ON mine.notes TO "{alice}"')

    def review(*extra: str) -> str:
        done = runner.invoke(
            app,
            ["access", "review", "-p", str(pg_project.path), "-t", "prod", *extra],
            env={"COLUMNS": "200"},
        )
        assert done.exit_code == 0, done.output
        return done.stdout

    try:
        assert not pg_project.can("alice", "SELECT * FROM secret.salaries")
        assert pg_project.can("alice", "SELECT * FROM mine.notes")
        assert pg_project.can("alice", "SELECT * FROM shop_db.customers")
        chosen = {
            p["object"]: p
            for p in json.loads(review("--json"))["privileges"]
            if p["user"] == alice and p["privilege"] == "SELECT"
        }
        assert chosen["secret.salaries"]["effective"] is False
        assert chosen["secret.salaries"]["blocked"] == "no USAGE on schema secret"
        assert chosen["mine.notes"]["effective"] is True
        assert chosen["shop_db.customers"]["effective"] is True  # USAGE through the read chain

        lines = review().splitlines()
        (at,) = [n for n, text in enumerate(lines) if "secret.salaries" in text]
        assert "not effective: no USAGE on schema secret" in lines[at + 1], "\n".join(lines)
        rows = csv.DictReader(io.StringIO(review("--format", "csv")))
        blocked = {r["object"]: r["blocked"] for r in rows if r["user"] == alice}
        assert blocked["secret.salaries"] == "no USAGE on schema secret"
        assert blocked["mine.notes"] == "" and blocked["shop_db.customers"] == ""
    finally:  # the role's teardown cannot drop a schema holding an admin's table
        with pg_project.connect() as admin:
            admin.execute("DROP SCHEMA mine CASCADE")


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


@pytest.mark.postgres
def test_postgres_review_marks_privileges_past_a_noinherit_role_not_effective(
    pg_project: PgProject,
) -> None:
    """Before: rita's SELECT through her role read "effective" although NOINHERIT on her (or
    on a role of the chain) left Postgres refusing it."""
    pg_project.write("people: {alice: {}, rita: {roles: [REPORTING_READER]}}")
    pg_project.context().access().apply(target="prod")
    rita, alice = pg_project.role("rita"), pg_project.role("alice")
    chain = pg_project.role("analytics_sources_reader")
    with pg_project.connect() as admin:
        admin.execute("CREATE TABLE reporting.revenue (amount int)")
        admin.execute("CREATE TABLE shop_db.customers (id int)")
        admin.execute("CREATE TABLE marts.orders (id int)")
        admin.execute(f'ALTER ROLE "{rita}" NOINHERIT')
        admin.execute(f'ALTER ROLE "{chain}" NOINHERIT')
    assert not pg_project.can("rita", "SELECT * FROM reporting.revenue")
    assert not pg_project.can("alice", "SELECT * FROM shop_db.customers")
    assert pg_project.can("alice", "SELECT * FROM marts.orders")  # not through the chain
    done = runner.invoke(
        app, ["access", "review", "-p", str(pg_project.path), "-t", "prod", "--json"]
    )
    assert done.exit_code == 0, done.output
    chosen = {
        (p["user"], p["object"]): p
        for p in json.loads(done.stdout)["privileges"]
        if p["privilege"] == "SELECT"
    }
    revenue = chosen[(rita, "reporting.revenue")]
    assert revenue["effective"] is False
    assert revenue["blocked"].startswith(f"{rita} is NOINHERIT")
    customers = chosen[(alice, "shop_db.customers")]
    assert customers["effective"] is False
    assert customers["blocked"].startswith(f"{chain} is NOINHERIT")
    assert chosen[(alice, "marts.orders")]["effective"] is True
