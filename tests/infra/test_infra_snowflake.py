"""Snowflake: the default declaration compiles to the seed runbook's objects (golden SQL),
every statement parses with sqlglot's Snowflake dialect, live state comes from recorded SHOW
output, and after an apply the next plan is empty."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from stackyard.context import Context
from stackyard.errors import ConfigError
from stackyard.infra.plan import Plan, diff
from stackyard.infra.snowflake import key_fingerprint
from stackyard.infra.state import State, snowflake_state
from tests.infra.helpers import (
    PUBLIC_KEY,
    parses_as_one_snowflake_statement,
    project,
    snowflake_show_output,
)

GOLDEN = Path(__file__).parent / "golden"
FIXTURES = Path(__file__).parent / "fixtures"
ACCESS_WITH_PEOPLE = f"""
service_accounts:
  SVC_DLT:
    loader: dlt
    rsa_public_key: "{PUBLIC_KEY.replace(chr(10), "")}"
people:
  alice: {{}}
  bob: {{roles: [REPORTING_READER]}}
"""


def _plan(path: Path, live: State | None = None) -> Plan:
    access = Context(path).access()
    declaration = access.declaration()
    engine = access.engine("prod", declaration)
    return diff(
        engine,
        live or State(),
        project="shop",
        target="prod",
        declaration_hash=declaration.digest(),
    )


def _golden(name: str, sql: str) -> None:
    path = GOLDEN / name
    if os.environ.get("STACKYARD_UPDATE_GOLDEN"):  # regenerate: review the diff before committing
        path.write_text(sql, encoding="utf-8")
    assert sql == path.read_text(encoding="utf-8"), f"SQL differs from {path}"


def test_default_declaration_matches_golden_sql(tmp_path: Path) -> None:
    plan = _plan(project(tmp_path))
    sql = "".join(f"{s};\n" for s in plan.statements())
    _golden("snowflake_default.sql", sql)
    # The seed runbook's objects, by name.
    for statement in (
        "CREATE DATABASE IF NOT EXISTS DLT COMMENT = 'Raw data loaded by dlt.'",
        "CREATE DATABASE ROLE IF NOT EXISTS DLT.DLT_DB_READER COMMENT = '[stackyard:shop]'",
        "CREATE DATABASE ROLE IF NOT EXISTS DLT.DLT_DB_WRITER COMMENT = '[stackyard:shop]'",
        "GRANT DATABASE ROLE DLT.DLT_DB_READER TO ROLE ANALYTICS_SOURCES_READER",
        "GRANT DATABASE ROLE DLT.DLT_DB_WRITER TO ROLE SVC_DLT",
        "GRANT ROLE SVC_DLT TO USER SVC_DLT",
        "GRANT USAGE ON WAREHOUSE LOADING TO ROLE SVC_DLT",
        "CREATE SCHEMA IF NOT EXISTS DLT.SHOP_DB",
        "CREATE SCHEMA IF NOT EXISTS DLT.SHOP_FILES",
    ):
        assert statement in plan.statements()
    user = next(s for s in plan.statements() if s.startswith("CREATE USER"))
    assert "SVC_DLT TYPE = SERVICE DEFAULT_ROLE = SVC_DLT DEFAULT_WAREHOUSE = LOADING" in user


def test_people_and_keys_match_golden_sql(tmp_path: Path) -> None:
    plan = _plan(project(tmp_path, ACCESS_WITH_PEOPLE))
    sql = "".join(f"{s};\n" for s in plan.statements())
    _golden("snowflake_people.sql", sql)
    assert any("RSA_PUBLIC_KEY = 'MIIB" in s for s in plan.statements())
    assert (
        "CREATE USER IF NOT EXISTS ALICE TYPE = PERSON DEFAULT_ROLE = ANALYTICS_DEVELOPER "
        "DEFAULT_WAREHOUSE = TRANSFORMING COMMENT = '[stackyard:shop]'" in plan.statements()
    )
    assert "GRANT ROLE DEV_ALICE TO USER ALICE" in plan.statements()
    assert (
        "GRANT USAGE, CREATE TABLE, CREATE VIEW ON SCHEMA ANALYTICS_DEV.DEV_ALICE TO ROLE "
        "DEV_ALICE" in plan.statements()
    )


@pytest.mark.parametrize("golden", ["snowflake_default.sql", "snowflake_people.sql"])
def test_every_golden_statement_parses_as_one_snowflake_statement(golden: str) -> None:
    statements = [s for s in (GOLDEN / golden).read_text().split(";\n") if s.strip()]
    assert len(statements) > 50
    for statement in statements:
        assert parses_as_one_snowflake_statement(statement), statement


def test_plan_is_empty_after_apply(tmp_path: Path) -> None:
    path = project(tmp_path, ACCESS_WITH_PEOPLE)
    first = _plan(path)
    assert first.has_changes
    # Simulate the apply: the account now reports, through SHOW, what the plan created.
    access = Context(path).access()
    desired = access.engine("prod").desired(State())
    live = snowflake_state(json.loads(json.dumps(snowflake_show_output(desired))))
    second = _plan(path, live)
    assert second.steps == (), [s.statement for s in second.steps]


def test_recorded_show_output_keeps_others_grants_and_revokes_ours(tmp_path: Path) -> None:
    path = project(tmp_path)
    show = json.loads((FIXTURES / "snowflake_show_drifted.json").read_text())
    plan = _plan(path, snowflake_state(show))
    statements = plan.statements()
    # A grant someone made to a role this project does not declare is kept …
    assert not any("FINANCE_ANALYST" in s for s in statements)
    assert any("FINANCE_ANALYST" in u for u in plan.unmanaged)
    # … one on a declared role that the declaration lacks is revoked, marked destructive …
    revoke = next(s for s in plan.steps if s.kind == "revoke")
    assert revoke.statement == (
        "REVOKE INSERT ON TABLE DLT.SHOP_DB.CUSTOMERS FROM DATABASE ROLE DLT.DLT_DB_READER"
    )
    assert revoke.destructive
    # … a role this project created and no longer declares is dropped; a stranger's is not.
    drops = [s.statement for s in plan.steps if s.kind.startswith("drop")]
    assert drops == ["DROP ROLE IF EXISTS OLD_ROLE"]
    # … and existing tables get their schema's grants.
    assert (
        "GRANT SELECT ON TABLE DLT.SHOP_DB.CUSTOMERS TO DATABASE ROLE DLT.DLT_DB_READER"
        in statements
    )


def test_key_rotation_sets_slot_two_then_replaces_slot_one(tmp_path: Path) -> None:
    from stackyard.infra.users import generate_key_pair

    new_key = generate_key_pair().public_pem.replace("\n", "")
    old_key = PUBLIC_KEY.replace("\n", "")
    start = project(
        tmp_path,
        f"""
        service_accounts:
          SVC_DLT: {{loader: dlt, rsa_public_key: "{old_key}"}}
    """,
    )
    live = snowflake_state(
        snowflake_show_output(Context(start).access().engine("prod").desired(State()))
    )
    project(
        tmp_path,
        f"""
        service_accounts:
          SVC_DLT: {{loader: dlt, rsa_public_key: "{old_key}", rsa_public_key_2: "{new_key}"}}
    """,
    )
    rotating = _plan(tmp_path, live)
    assert [s.kind for s in rotating.steps] == ["alter_user"]
    assert rotating.steps[0].statement.startswith("ALTER USER SVC_DLT SET RSA_PUBLIC_KEY_2 = ")
    assert not rotating.steps[0].destructive  # both keys work: no downtime
    live = snowflake_state(
        snowflake_show_output(Context(tmp_path).access().engine("prod").desired(State()))
    )
    project(
        tmp_path,
        f"""
        service_accounts:
          SVC_DLT: {{loader: dlt, rsa_public_key: "{new_key}"}}
    """,
    )
    finishing = _plan(tmp_path, live)
    assert [s.statement.split(" = ")[0] for s in finishing.steps] == [
        "ALTER USER SVC_DLT UNSET RSA_PUBLIC_KEY_2",
        "ALTER USER SVC_DLT SET RSA_PUBLIC_KEY",
    ] or [s.statement.split(" = ")[0] for s in finishing.steps] == [
        "ALTER USER SVC_DLT SET RSA_PUBLIC_KEY",
        "ALTER USER SVC_DLT UNSET RSA_PUBLIC_KEY_2",
    ]
    assert all(s.destructive for s in finishing.steps)
    assert key_fingerprint(new_key).startswith("SHA256:")


def test_hostile_names_are_single_quoted_identifiers(tmp_path: Path) -> None:
    path = project(
        tmp_path,
        """
        databases:
          DLT:
            schemas: ['we"ird; DROP DATABASE DLT; --', "Mixed Case", "it's"]
    """,
    )
    plan = _plan(path)
    hostile = [s for s in plan.statements() if "IRD" in s or "MIXED" in s or "IT'" in s]
    assert len(hostile) > 10
    for statement in plan.statements():
        assert parses_as_one_snowflake_statement(statement), statement
    assert 'CREATE SCHEMA IF NOT EXISTS DLT."WE""IRD; DROP DATABASE DLT; --"' in plan.statements()
    assert 'CREATE SCHEMA IF NOT EXISTS DLT."MIXED CASE"' in plan.statements()
    assert 'CREATE SCHEMA IF NOT EXISTS DLT."IT\'S"' in plan.statements()


def test_database_role_granted_to_a_person_is_refused(tmp_path: Path) -> None:
    path = project(tmp_path, "people: {carol: {roles: [DLT_DB_WRITER]}}")
    with pytest.raises(ConfigError, match="database role, which Snowflake cannot grant to user"):
        _plan(path)


def test_plan_without_live_state_is_marked_and_cannot_be_applied(tmp_path: Path) -> None:
    from stackyard.errors import UsageError

    access = Context(project(tmp_path)).access()
    plan = access.plan("prod")
    assert not plan.live_known and plan.has_changes
    with pytest.raises(UsageError, match="without reading the live state"):
        access.apply(target="prod")
    recorded = tmp_path / "show.json"
    recorded.write_text(json.dumps(snowflake_show_output(access.engine("prod").desired(State()))))
    assert not access.plan("prod", live_state=recorded).has_changes
