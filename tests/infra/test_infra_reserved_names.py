"""Reserved role and user names (PUBLIC, the Snowflake system roles, postgres, pg_*) are refused
wherever a name is declared, in any letter case, and a role granted to PUBLIC fails the
policy check: granting a role to PUBLIC hands it to every user."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stackyard.cli.main import app
from stackyard.context import Context
from stackyard.errors import ConfigError, UsageError
from tests.infra.helpers import project

runner = CliRunner()
RESERVED = [
    "public",
    "PUBLIC",
    "Public",
    "ACCOUNTADMIN",
    "sysadmin",
    "SecurityAdmin",
    "USERADMIN",
    "orgadmin",
    "postgres",
    "pg_read_all_data",
    "PG_MONITOR",
]
FIXTURE = Path(__file__).parent / "fixtures" / "snowflake_show_drifted.json"


@pytest.mark.parametrize("name", RESERVED)
def test_user_add_refuses_reserved_names(tmp_path: Path, name: str) -> None:
    path = project(tmp_path)
    before = (path / "stackyard.yml").read_text()
    result = runner.invoke(app, ["user", "add", name, "--project", str(path)])
    assert result.exit_code == 2, result.output
    assert "cannot add user" in result.output and name in result.output
    assert (path / "stackyard.yml").read_text() == before
    with pytest.raises(UsageError):
        Context(path).users().add(name, service=True)
    assert not (path / ".stackyard" / "keys").exists()


def test_user_add_public_says_it_is_a_built_in_role(tmp_path: Path) -> None:
    path = project(tmp_path)
    result = runner.invoke(app, ["user", "add", "public", "--project", str(path)])
    assert result.exit_code == 2, result.output
    assert "cannot add user 'public': it is a built-in role" in " ".join(result.output.split())


@pytest.mark.parametrize(
    "access",
    [
        "people: {public: {}}",
        "people: {Postgres: {}}",
        "service_accounts: {ACCOUNTADMIN: {}}",
        "service_accounts: {pg_svc: {}}",
        "roles: {SYSADMIN: {}}",
        "roles: {Pg_Write_All_Data: {}}",
        "roles: {MY_ROLE: {member_of: [securityadmin]}}",
        "people: {alice: {roles: [UserAdmin]}}",
        "service_accounts: {SVC_X: {roles: [ORGADMIN]}}",
        "grants: [{role: sysadmin, read: [DLT]}]",
        "role_prefix: pg_",
    ],
)
def test_declaration_refuses_reserved_names(tmp_path: Path, access: str) -> None:
    path = project(tmp_path, access)
    with pytest.raises(ConfigError, match=r"reserved|built-in role|predefined roles"):
        Context(path).access().declaration()
    result = runner.invoke(app, ["plan", "--project", str(path)])
    assert result.exit_code == 2, result.output
    assert "stackyard.yml:" in result.output


def test_ordinary_names_that_merely_contain_a_reserved_word_are_fine(tmp_path: Path) -> None:
    path = project(tmp_path, "people: {publicist: {}, postgresql_fan: {}}\nroles: {MY_PG: {}}")
    declaration = Context(path).access().declaration()
    assert declaration.user("PUBLICIST") is not None


def test_policy_check_flags_a_role_granted_to_public(tmp_path: Path) -> None:
    path = project(tmp_path, "people: {alice: {}}")
    show = json.loads(FIXTURE.read_text())
    show["grants"].append(
        {
            "privilege": "USAGE",
            "granted_on": "ROLE",
            "name": "ANALYTICS_DEVELOPER",
            "granted_to": "ROLE",
            "grantee_name": "PUBLIC",
        }
    )
    live = tmp_path / "live.json"
    live.write_text(json.dumps(show))
    report = Context(path).access().policy_check("prod", live_state=live)
    messages = [v.message for v in report.violations if v.rule == "no-public-grants"]
    assert any("PUBLIC holds role ANALYTICS_DEVELOPER" in m for m in messages), messages
    # Snowflake's own statement, from its engine module.
    assert any("(REVOKE ROLE ANALYTICS_DEVELOPER FROM ROLE PUBLIC)" in m for m in messages)
    result = runner.invoke(
        app, ["policy", "check", "-p", str(path), "-t", "prod", "--live-state", str(live)]
    )
    assert result.exit_code == 1, result.output
    assert "PUBLIC holds role ANALYTICS_DEVELOPER" in result.output
