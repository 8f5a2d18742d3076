"""A new loader is one command: `user add SVC_<LOADER> --service --loader <loader>` declares
its database, READER/WRITER roles, its place in the read chain and its service account; the
next plan creates them and passes `policy check`; `apply` refuses a plan the check fails."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from stackyard.cli.main import app
from stackyard.config.edit import ProjectFile
from stackyard.context import Context
from stackyard.errors import PolicyViolationError, UsageError
from stackyard.infra.declaration import SOURCES_READER
from stackyard.infra.loaders import declare_loader
from tests.infra.conftest import PgProject
from tests.infra.helpers import parses_as_one_snowflake_statement, project

runner = CliRunner()

# The seeds' loaders (the "Adding Data Sources" runbook) and Fivetran (the blog).
LOADERS = ["airbyte", "snowpipe", "streaming", "fivetran"]


@pytest.mark.parametrize("loader", LOADERS)
def test_one_command_declares_database_roles_read_chain_and_account(
    tmp_path: Path, loader: str
) -> None:
    path = project(tmp_path)
    Context(path).users().add("SVC_DLT", service=True, print_key=True)  # dlt's key, for the check
    account = f"SVC_{loader.upper()}"
    result = runner.invoke(
        app, ["user", "add", account, "--service", "--loader", loader, "-p", str(path)]
    )
    assert result.exit_code == 0, result.output
    declaration = Context(path).access().declaration()
    database = declaration.database(loader.upper())
    assert database is not None and database.loader == loader
    assert f"{loader.upper()}_DB_READER" in declaration.roles_held(SOURCES_READER)
    assert f"{loader.upper()}_DB_WRITER" in declaration.roles_held(account)
    user = declaration.user(account)
    assert user is not None and user.kind == "service" and user.rsa_public_key
    assert Context(path).access().policy_check().ok
    report = Context(path).access().policy_check("prod")
    assert report.ok, report.violations
    statements = Context(path).access().plan("prod").statements()
    db = loader.upper()
    for expected in (
        f"CREATE DATABASE IF NOT EXISTS {db}",
        f"CREATE DATABASE ROLE IF NOT EXISTS {db}.{db}_DB_READER",
        f"GRANT DATABASE ROLE {db}.{db}_DB_READER TO ROLE {SOURCES_READER}",
        f"GRANT DATABASE ROLE {db}.{db}_DB_WRITER TO ROLE {account}",
        f"CREATE USER IF NOT EXISTS {account}",
    ):
        assert any(s.startswith(expected) for s in statements), (expected, statements)
    assert all(parses_as_one_snowflake_statement(s) for s in statements)


def test_declare_loader_adds_schemas_and_refuses_a_database_of_another_loader(
    tmp_path: Path,
) -> None:
    path = project(tmp_path, "databases: {RAW: {loader: airbyte, schemas: [stripe]}}")
    file = ProjectFile(path / "stackyard.yml")
    first = declare_loader(file, "Fivetran", schemas=["salesforce"])
    again = declare_loader(file, "fivetran", schemas=["salesforce", "hubspot"])
    assert (first.database, first.new_database, first.service_account) == (
        "FIVETRAN",
        True,
        "SVC_FIVETRAN",
    )
    assert again.schemas == ("salesforce", "hubspot") and not again.new_database
    file.save()
    assert Context(path).access().declaration().database("FIVETRAN").schemas == (  # type: ignore[union-attr]
        "salesforce",
        "hubspot",
    )
    file = ProjectFile(path / "stackyard.yml")
    with pytest.raises(UsageError, match="declared for loader 'airbyte'"):
        declare_loader(file, "raw")
    with pytest.raises(UsageError, match="not a valid name"):
        declare_loader(file, "fi've")


def test_a_database_declared_by_hand_joins_the_read_chain_with_its_account(
    tmp_path: Path,
) -> None:
    path = project(tmp_path, "databases: {AIRBYTE: {loader: airbyte, schemas: [stripe]}}")
    declaration = Context(path).access().declaration()
    assert "AIRBYTE_DB_READER" in declaration.roles_held(SOURCES_READER)
    assert "AIRBYTE_DB_WRITER" in declaration.roles_held("SVC_AIRBYTE")
    rules = {v.rule for v in Context(path).access().policy_check().violations}
    assert "read-chain" not in rules and "naming" not in rules


def test_schema_without_loader_is_refused_and_nothing_written(tmp_path: Path) -> None:
    path = project(tmp_path)
    before = (path / "stackyard.yml").read_text()
    result = runner.invoke(
        app, ["user", "add", "SVC_X", "--service", "--schema", "s", "-p", str(path)]
    )
    assert result.exit_code == 2
    assert "needs --service and --loader" in result.output
    assert (path / "stackyard.yml").read_text() == before


def test_dry_run_names_the_database_and_the_read_chain(tmp_path: Path) -> None:
    path = project(tmp_path)
    before = (path / "stackyard.yml").read_text()
    result = runner.invoke(
        app,
        [
            "user",
            "add",
            "SVC_FIVETRAN",
            "--service",
            "--loader",
            "fivetran",
            "--dry-run",
            "-p",
            str(path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "FIVETRAN_DB_READER joins ANALYTICS_SOURCES_READER" in result.output
    assert (path / "stackyard.yml").read_text() == before


def test_new_loader_on_postgres_applies_and_reads_through_the_chain(
    pg_project: PgProject,
) -> None:
    pg_project.write("people: {alice: {}}")
    users = pg_project.context().users()
    users.add("SVC_FIVETRAN", service=True, loader="fivetran", schemas=("salesforce",))
    assert pg_project.context().access().policy_check("prod").ok
    pg_project.context().access().apply(target="prod")
    with pg_project.connect("SVC_FIVETRAN") as loader:
        loader.execute("CREATE TABLE salesforce.accounts (id int)")
        loader.execute("INSERT INTO salesforce.accounts VALUES (1), (2)")
    with pg_project.connect("alice") as alice:
        assert alice.execute("SELECT count(*) FROM salesforce.accounts").fetchone() == (2,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            alice.execute("INSERT INTO salesforce.accounts VALUES (3)")
    with pg_project.connect("SVC_DLT") as dlt, pytest.raises(psycopg.errors.InsufficientPrivilege):
        dlt.execute("SELECT * FROM salesforce.accounts")
    assert not pg_project.context().access().plan("prod").has_changes


def test_apply_refuses_a_plan_that_policy_check_fails(pg_project: PgProject) -> None:
    # The read chain pinned by hand, without the new loader's reader: `policy check` fails.
    pg_project.write("""
        databases: {FIVETRAN: {loader: fivetran, schemas: [salesforce]}}
        roles: {ANALYTICS_SOURCES_READER: {member_of: [DLT_DB_READER]}}
    """)
    assert not pg_project.context().access().policy_check("prod").ok
    with pytest.raises(PolicyViolationError, match="read-chain") as caught:
        pg_project.context().access().apply(target="prod")
    assert "nothing applied" in caught.value.message
    with pg_project.connect() as admin:
        made = admin.execute(
            "SELECT count(*) FROM pg_roles WHERE rolname LIKE %s", (pg_project.prefix + "%",)
        ).fetchone()
    assert made == (0,)
    pg_project.context().access().plan("prod").save(pg_project.path / "plan.json")
    result = runner.invoke(
        app, ["apply", str(pg_project.path / "plan.json"), "-p", str(pg_project.path)]
    )
    assert result.exit_code == 2
    assert "FIVETRAN_DB_READER" in result.output


def test_a_new_loader_joins_a_read_chain_written_out_in_stackyard_yml(tmp_path: Path) -> None:
    # After `import access` the read chain is an explicit role in stackyard.yml, which the
    # layout leaves alone: `user add --loader` said the reader joined it but did not add it,
    # and the next `policy check` failed on the read chain.
    path = project(
        tmp_path,
        access=f"""
        roles:
          {SOURCES_READER}: {{member_of: [DLT_DB_READER]}}  # kept as imported
        """,
    )
    Context(path).users().add("SVC_DLT", service=True, print_key=True)
    args = ["user", "add", "SVC_STITCH", "--service", "--loader", "stitch", "--schema", "shopify"]
    result = runner.invoke(app, [*args, "-p", str(path)])
    assert result.exit_code == 0, result.output
    declaration = Context(path).access().declaration()
    assert {"DLT_DB_READER", "STITCH_DB_READER"} <= set(declaration.roles_held(SOURCES_READER))
    assert "# kept as imported" in (path / "stackyard.yml").read_text()
    report = Context(path).access().policy_check("prod")
    assert report.ok, report.violations
    # Adding the same loader again adds nothing twice.
    declare_loader(file := ProjectFile(path / "stackyard.yml"), "stitch")
    assert file.find("roles", SOURCES_READER, "member_of") == ["DLT_DB_READER", "STITCH_DB_READER"]
