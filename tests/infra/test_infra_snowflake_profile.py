"""The Snowflake dbt profile, the dlt destination and the access plan agree: dlt loads into
the database SVC_DLT writes, dbt builds into the one ANALYTICS_TRANSFORMER writes, each on the
warehouse its role may use (golden file + the plan's SQL read with sqlglot); a service account
that is not a loader's gets its role's warehouse; `plan -t bq` says what it supports."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlglot
import yaml
from typer.testing import CliRunner

from stackyard.cli.main import app
from stackyard.context import Context
from stackyard.errors import ConfigError, WarehouseUnreachableError
from tests.infra.helpers import parses_as_one_snowflake_statement, project

GOLDEN = Path(__file__).parent / "golden" / "snowflake_profile.yml"
ENV = {"SF_KEY": "dlt's key", "SF_DBT_KEY": "dbt's key"}
runner = CliRunner()


def _names(statement: str) -> list[str]:
    """The identifiers and keywords of a statement, as sqlglot's Snowflake tokenizer reads it."""
    return [t.text.upper() for t in sqlglot.tokenize(statement, read="snowflake")]


def _grants(statements: list[str], role: str, to: str) -> bool:
    for s in statements:
        names = _names(s)
        if names[:1] == ["GRANT"] and role in names and names[-1] == to:
            return True
    return False


# dlt loads as SVC_DLT; dbt builds as SVC_DBT, a service account holding the transformer role.
LOAD_TARGET = (
    "load: {type: snowflake, account: acme-xy12345, user: SVC_DLT, role: SVC_DLT, "
    "warehouse: LOADING, database: DLT, private_key: {secret: SF_KEY}, "
    "transform: {user: SVC_DBT, private_key: {secret: SF_DBT_KEY}}}"
)


def test_profile_destination_and_plan_agree(tmp_path: Path) -> None:
    path = project(
        tmp_path,
        "service_accounts: {SVC_DBT: {roles: [ANALYTICS_TRANSFORMER], rsa_public_key: MIIB}}",
        targets=LOAD_TARGET,
    )
    context = Context(path, environ=ENV)
    warehouse = context.warehouse("load")
    profile = warehouse.dbt_output()
    destination = dict(warehouse.dlt_destination_settings()["credentials"])
    destination.pop("private_key")
    pinned = {"dbt_profile": profile, "dlt_destination": destination}
    assert pinned == yaml.safe_load(GOLDEN.read_text())
    assert warehouse.secret_env()["SF_DBT_KEY"] == "dbt's key"

    # dbt builds into ANALYTICS but reads the sources dlt loaded from DLT.
    assert profile["database"] == "ANALYTICS"
    assert warehouse.secret_env()["STACKYARD_RAW_DATABASE"] == "DLT"
    statements = context.access().plan("load").statements()
    assert all(parses_as_one_snowflake_statement(s) for s in statements)
    build_db, build_role = profile["database"], profile["role"]
    assert _grants(statements, build_role, profile["user"])
    assert _grants(statements, f"{build_db}_DB_WRITER", build_role)
    assert _grants(statements, profile["warehouse"], build_role)
    load_db = destination["database"]
    assert _grants(statements, f"{load_db}_DB_WRITER", "SVC_DLT")
    assert _grants(statements, destination["warehouse"], "SVC_DLT")
    # the sources dbt reads are in the database dlt loads, through the read chain
    assert _grants(statements, f"{load_db}_DB_READER", "ANALYTICS_SOURCES_READER")
    assert _grants(statements, "ANALYTICS_SOURCES_READER", build_role)


def test_generated_dbt_sources_read_raw_tables_from_the_loaders_database() -> None:
    """The database of every generated dbt source is the loader's, set by the warehouse for
    dbt (the target's own database where nothing sets it: DuckDB, Postgres)."""
    from jinja2 import Template

    from stackyard.transform.staging import sources_entry

    entry = sources_entry("crm", "crm", "rest_api", ["contacts"], {
        "warn_after_hours": 24, "error_after_hours": 48,
    })  # fmt: skip
    database = str(entry["database"])

    def render(env: dict[str, str]) -> str:
        def env_var(name: str, default: str) -> str:
            return env.get(name, default)

        return Template(database).render(env_var=env_var, target={"database": "ANALYTICS"})

    assert render({"STACKYARD_RAW_DATABASE": "DLT"}) == "DLT"
    assert render({}) == "ANALYTICS"


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        (
            "prod2: {type: snowflake, account: a, user: U, role: R, warehouse: W, database: RAW,"
            " private_key: {secret: SF_KEY}}",
            "database 'RAW' is where dlt loads",
        ),
        (
            "prod2: {type: snowflake, account: a, user: U, role: R, warehouse: W, database: DLT,"
            " private_key: {secret: SF_KEY}, transform: {database: DLT}}",
            "dbt builds into database 'DLT' as role 'ANALYTICS_TRANSFORMER'",
        ),
    ],
)
def test_a_profile_that_disagrees_with_the_plan_is_refused(
    tmp_path: Path, targets: str, message: str
) -> None:
    path = project(tmp_path, targets=targets)
    with pytest.raises(ConfigError, match=message):
        Context(path, environ=ENV).access().plan("prod2")


def test_a_service_account_gets_its_roles_warehouse(tmp_path: Path) -> None:
    path = project(tmp_path)
    Context(path).users().add("SVC_BI", service=True, roles=["REPORTING_READER"], print_key=True)
    declaration = Context(path).access().declaration()
    assert declaration.user("SVC_BI").default_warehouse == "REPORTING"  # type: ignore[union-attr]
    assert declaration.user("SVC_DLT").default_warehouse == "LOADING"  # type: ignore[union-attr]
    create = next(
        s
        for s in Context(path, environ=ENV).access().plan("prod").statements()
        if s.startswith("CREATE USER IF NOT EXISTS SVC_BI")
    )
    assert "DEFAULT_WAREHOUSE = REPORTING" in create


def test_bigquery_says_what_plan_supports(tmp_path: Path) -> None:
    path = project(
        tmp_path, targets="bq: {type: bigquery, project: acme-data, keyfile_json: {secret: BQ}}"
    )
    result = runner.invoke(app, ["plan", "-t", "bq", "-p", str(path)])
    assert result.exit_code == 2
    flat = " ".join(result.output.split())
    assert "not implemented for bigquery targets" in flat
    assert "supports duckdb, postgres, snowflake targets" in flat
    assert "IAM" in flat
    with pytest.raises(WarehouseUnreachableError) as caught:
        Context(path, environ={"BQ": "{}"}).warehouse("bq").query("select 1")
    assert "stackyard plan`" not in (caught.value.hint or "").replace(
        "outside `stackyard plan`", ""
    )
