"""`stackyard import access`: a warehouse's existing roles, users and grants become the
declaration, the next plan is empty, and a tightening edit then plans exactly that change.

Postgres is live (hand-made roles on a throwaway database, roles with a per-test prefix);
Snowflake is read from recorded SHOW output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from stackyard.cli.main import app
from tests.infra.conftest import PgProject
from tests.infra.helpers import project

runner = CliRunner()
FIXTURES = Path(__file__).parent / "fixtures"


def _cli(path: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "--project", str(path)])
    return result.exit_code, result.output


def _hand_made(p: PgProject) -> None:
    """Roles and grants as a team makes them by hand: a reader and a writer role, a loader
    login that writes through the writer, two people who read, and one role whose access
    the declaration cannot say (SELECT on one table of a schema only)."""
    r = p.role
    admin = p.admin
    statements = [
        "CREATE SCHEMA raw",
        "CREATE SCHEMA marts",
        "CREATE TABLE raw.orders (id int)",
        "CREATE TABLE marts.revenue (day date, amount numeric)",
        "CREATE TABLE marts.customers (id int)",
        f'CREATE ROLE "{r("reader")}" NOLOGIN',
        f'CREATE ROLE "{r("writer")}" NOLOGIN',
        f'GRANT "{r("reader")}" TO "{r("writer")}"',
        f'CREATE ROLE "{r("svc_loader")}" LOGIN',
        f'GRANT "{r("writer")}" TO "{r("svc_loader")}"',
        f'CREATE ROLE "{r("alice")}" LOGIN',
        f'CREATE ROLE "{r("bob")}" LOGIN',
        f'GRANT "{r("reader")}" TO "{r("alice")}", "{r("bob")}"',
        f'GRANT USAGE ON SCHEMA raw, marts TO "{r("reader")}"',
        f'GRANT SELECT ON ALL TABLES IN SCHEMA raw, marts TO "{r("reader")}"',
        f'GRANT USAGE, CREATE ON SCHEMA raw TO "{r("writer")}"',
        f'GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA raw TO "{r("writer")}"',
        # Tables created later, by the admin and by the loader, are readable too.
        f'ALTER DEFAULT PRIVILEGES FOR ROLE "{admin}" IN SCHEMA raw, marts '
        f'GRANT SELECT ON TABLES TO "{r("reader")}"',
        f'ALTER DEFAULT PRIVILEGES FOR ROLE "{admin}" IN SCHEMA raw '
        f'GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON TABLES TO "{r("writer")}"',
        f'ALTER DEFAULT PRIVILEGES FOR ROLE "{r("svc_loader")}" IN SCHEMA raw '
        f'GRANT SELECT ON TABLES TO "{r("reader")}"',
        f'ALTER DEFAULT PRIVILEGES FOR ROLE "{r("svc_loader")}" IN SCHEMA raw '
        f'GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON TABLES TO "{r("writer")}"',
        # Not expressible: one table of marts only.
        f'CREATE ROLE "{r("auditor")}" NOLOGIN',
        f'GRANT USAGE ON SCHEMA marts TO "{r("auditor")}"',
        f'GRANT SELECT ON marts.revenue TO "{r("auditor")}"',
    ]
    with p.connect() as conn:
        for statement in statements:
            conn.execute(statement)


def _plan_json(p: PgProject) -> tuple[int, dict[str, object]]:
    code, output = _cli(p.path, "plan", "-t", "prod", "--json", "--detailed-exitcode")
    return code, json.loads(output)


@pytest.mark.postgres
def test_import_gives_an_empty_plan_then_tightening_plans_exactly_it(
    pg_project: PgProject,
) -> None:
    _hand_made(pg_project)
    before = (pg_project.path / "stackyard.yml").read_text(encoding="utf-8")

    # --dry-run shows the declaration and writes nothing.
    code, output = _cli(pg_project.path, "import", "access", "-t", "prod", "--dry-run")
    assert code == 0, output
    assert "READER" in output and "would declare" in output
    # The heading counts every line listed under it (it counted one of its two lists).
    heading = next(line for line in output.splitlines() if line.startswith("not declared ("))
    listed = output.split(heading, 1)[1].splitlines()[1:]
    items = [line for line in listed if line.startswith("  - ")]
    assert heading == f"not declared ({len(items)}), kept as it is:", output
    assert len(items) > 1
    assert (pg_project.path / "stackyard.yml").read_text(encoding="utf-8") == before

    code, output = _cli(pg_project.path, "import", "access", "-t", "prod", "--json")
    assert code == 0, output
    result = json.loads(output)
    access = result["access"]
    assert access["defaults"] is False
    assert access["roles"]["WRITER"] == {"member_of": ["READER"]}
    assert access["service_accounts"]["SVC_LOADER"] == {"roles": ["WRITER"]}
    assert access["people"]["ALICE"] == {"roles": ["READER"]}
    assert access["people"]["BOB"] == {"roles": ["READER"]}
    database = pg_project.database.upper()
    grants = {g["role"]: g for g in access["grants"]}
    assert grants["READER"]["read"] == [f"{database}.marts", f"{database}.raw"]
    assert grants["WRITER"]["write"] == [f"{database}.raw"]
    # The role the declaration cannot say is listed, with why, and left undeclared.
    assert "AUDITOR" not in access["roles"]
    assert any(line.startswith("AUDITOR: not imported") for line in result["not_imported"])
    assert any("auditor" in line for line in result["unmanaged"])
    assert result["counts"] == {
        "roles": 2,
        "people": 2,
        "service_accounts": 1,
        "memberships": 4,
        "schemas": 2,
        "schema_grants": 3,
    }
    # The comment at the top of stackyard.yml survives the write.
    text = (pg_project.path / "stackyard.yml").read_text(encoding="utf-8")
    assert text.startswith("# An example project for access-control tests")

    code, plan = _plan_json(pg_project)
    assert code == 0, plan
    assert plan["steps"] == []

    # A second import refuses to overwrite the declaration without --replace.
    code, output = _cli(pg_project.path, "import", "access", "-t", "prod")
    assert code == 2
    assert "--replace" in output
    code, output = _cli(pg_project.path, "import", "access", "-t", "prod", "--replace")
    assert code == 0, output

    # Tighten: bob no longer reads. The plan is exactly that one revoke.
    data = yaml.safe_load(text)
    data["access"]["people"]["BOB"]["roles"] = []
    (pg_project.path / "stackyard.yml").write_text(yaml.safe_dump(data), encoding="utf-8")
    code, plan = _plan_json(pg_project)
    assert code == 2
    statements = [s["statement"] for s in plan["steps"]]  # type: ignore[index]
    reader, bob = pg_project.role("reader"), pg_project.role("bob")
    assert statements == [f'REVOKE "{reader}" FROM "{bob}"']


@pytest.mark.postgres
def test_import_replace_after_stackyard_applied_it_is_lossless(
    pg_project: PgProject, applier: str
) -> None:
    """A project stackyard applied as a non-superuser (which holds every login role that
    creates tables, to set their default privileges) imports back as it was declared."""
    pg_project.write(user=applier)
    path = pg_project.path
    for args in (
        ("user", "add", "alice"),
        ("user", "add", "SVC_BI", "--service", "--role", "REPORTING_READER"),
        ("user", "add", "SVC_FIVETRAN", "--service", "--loader", "fivetran", "--schema", "sf"),
        ("apply", "-t", "prod"),
    ):
        code, output = _cli(path, *args)
        assert code == 0, output
    before = yaml.safe_load((path / "stackyard.yml").read_text(encoding="utf-8"))["access"]
    code, output = _cli(path, "import", "access", "-t", "prod", "--replace")
    assert code == 0, output
    access = yaml.safe_load((path / "stackyard.yml").read_text(encoding="utf-8"))["access"]
    # alice is held by the applying user, which does not make her a service account.
    assert access["people"]["ALICE"] == {"roles": ["ANALYTICS_DEVELOPER"]}
    assert "ALICE" not in access["service_accounts"]
    # The databases' READER/WRITER pairs are their database roles again, not plain roles.
    assert {"DLT", "ANALYTICS", "ANALYTICS_DEV", "FIVETRAN"} <= set(access["databases"])
    fivetran = access["databases"]["FIVETRAN"]
    assert (fivetran["schemas"], fivetran["loader"]) == (["sf"], "fivetran")
    assert not any("_DB_" in role for role in access["roles"])
    assert not any(entry.get("database_roles") is False for entry in access["databases"].values())
    # The public keys Postgres never shows back are kept.
    for name in ("SVC_BI", "SVC_FIVETRAN"):
        kept = access["service_accounts"][name]
        assert kept["rsa_public_key"] == before["service_accounts"][name]["rsa_public_key"]
    assert access["service_accounts"]["SVC_FIVETRAN"]["loader"] == "fivetran"
    code, output = _cli(path, "policy", "check")
    assert code == 0, output
    code, plan = _plan_json(pg_project)
    assert (code, plan["steps"]) == (0, []), plan
    code, output = _cli(path, "apply", "-t", "prod")
    assert code == 0, output
    assert "nothing to apply" in output


def test_snowflake_recorded_show_output_gives_an_empty_plan(tmp_path: Path) -> None:
    path = project(tmp_path)
    recorded = FIXTURES / "snowflake_show_handmade.json"
    code, output = _cli(
        path, "import", "access", "-t", "prod", "--live-state", str(recorded), "--json"
    )
    assert code == 0, output
    result = json.loads(output)
    access = result["access"]
    assert access["roles"]["ANALYTICS_TRANSFORMER"]["member_of"] == [
        "ANALYTICS_DB_WRITER",
        "DLT_DB_READER",
    ]
    assert access["people"]["ALICE"]["roles"] == ["ANALYTICS_DEVELOPER"]
    assert access["people"]["ALICE"]["default_warehouse"] == "TRANSFORMING"
    assert access["warehouses"] == {"TRANSFORMING": {"size": "XSMALL", "auto_suspend_seconds": 300}}
    # The databases' reader and writer are their own roles, not listed as left out …
    assert sorted(access["databases"]) == ["ANALYTICS", "DLT"]
    assert not any("DB_READER" in line for line in result["not_imported"])
    # … while a single-table grant, which the declaration cannot say, and the built-in
    # SYSADMIN that holds the roles are listed and kept.
    assert any(line.startswith("PARTNER_READER: not imported") for line in result["not_imported"])
    assert any("SYSADMIN" in line for line in result["not_imported"])
    assert "PARTNER_READER" not in access["roles"]
    code, output = _cli(
        path, "plan", "-t", "prod", "--live-state", str(recorded), "--detailed-exitcode"
    )
    assert code == 0, output


def test_snowflake_without_recorded_output_is_refused(tmp_path: Path) -> None:
    path = project(tmp_path)
    code, output = _cli(path, "import", "access", "-t", "prod")
    assert code == 2
    assert "--live-state" in output


def test_a_target_without_roles_has_nothing_to_import(tmp_path: Path) -> None:
    path = project(tmp_path)
    before = (path / "stackyard.yml").read_text(encoding="utf-8")
    code, output = _cli(path, "import", "access", "-t", "dev")
    assert code == 2
    assert "no roles, users or grants" in output
    assert (path / "stackyard.yml").read_text(encoding="utf-8") == before


@pytest.mark.postgres
def test_a_role_held_by_a_role_that_cannot_be_declared_is_left_undeclared(
    pg_project: PgProject,
) -> None:
    """A plan takes a declared role back from an undeclared holder of the project's prefix;
    so a role held by one the declaration cannot name (capital letters) is not imported,
    and the holder keeps it."""
    _hand_made(pg_project)
    odd = f"{pg_project.prefix}Temp"
    with pg_project.connect() as conn:
        conn.execute(f'CREATE ROLE "{odd}" LOGIN')
        conn.execute(f'GRANT "{pg_project.role("reader")}" TO "{odd}"')
    code, output = _cli(pg_project.path, "import", "access", "-t", "prod", "--json")
    assert code == 0, output
    result = json.loads(output)
    assert "READER" not in result["access"]["roles"]
    assert any(
        line.startswith("READER: not imported") and odd in line for line in result["not_imported"]
    )
    assert result["access"]["roles"]["WRITER"] == {}
    code, plan = _plan_json(pg_project)
    assert (code, plan["steps"]) == (0, []), plan


@pytest.mark.postgres
def test_a_default_privilege_without_in_schema_is_worded_as_covering_every_schema(
    pg_project: PgProject,
) -> None:
    """Set without IN SCHEMA (a pg_default_acl row for no schema), a default privilege covers
    the tables its creator makes in every schema: the import says so, never an empty schema
    name, leaves the declared role holding it undeclared (the plan would take it back), and
    the next plan is empty."""
    _hand_made(pg_project)
    admin, reader = pg_project.admin, pg_project.role("reader")
    with pg_project.connect() as conn:
        conn.execute(
            f'ALTER DEFAULT PRIVILEGES FOR ROLE "{admin}" GRANT SELECT ON TABLES TO "{reader}"'
        )
    code, output = _cli(pg_project.path, "import", "access", "-t", "prod", "--json")
    assert code == 0, output
    result = json.loads(output)
    assert "READER" not in result["access"]["roles"]
    every = f"SELECT on future tables in every schema created by {admin}"
    assert f"{every} from {reader}" in next(
        line for line in result["not_imported"] if line.startswith("READER: not imported")
    )
    assert f"{every} to {reader}" in result["unmanaged"]
    assert not any(
        " in  " in line or "''" in line for line in [*result["not_imported"], *result["unmanaged"]]
    )
    code, plan = _plan_json(pg_project)
    assert (code, plan["steps"]) == (0, []), plan


def test_a_default_privilege_without_in_schema_is_never_listed_as_kept() -> None:
    """Before: the import's list of what it keeps for a declared role joined the schema of
    each default privilege, so one set without IN SCHEMA read "on future tables in  created
    by …: kept as it is", while the plan takes it back (it covers the declared schemas too)."""
    from stackyard.infra.importer import kept_as_is
    from stackyard.infra.state import Account, Container, FutureGrant, Principal, State

    role = Principal("role", "t_reader")
    desired = State(
        containers=frozenset({Container("schema", ("marts",))}),
        accounts=frozenset({Account(role)}),
    )
    live = State(
        future_grants=frozenset(
            {
                FutureGrant("SELECT", "TABLES", (), role, "admin"),
                FutureGrant("SELECT", "TABLES", ("raw",), role, "admin"),
            }
        )
    )
    assert kept_as_is(live, desired, {role}) == [
        "SELECT on future tables in raw created by admin to t_reader: kept as it is, not "
        "declared (its schema is not)"
    ]
