"""Policy checks: the default layout passes, a person holding a loader's WRITER role in prod
fails, project rules in policies/*.py run, and their failures are reported as theirs."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from stackyard.cli.main import app
from stackyard.context import Context
from stackyard.errors import PolicyViolationError, UserCodeError
from tests.infra.conftest import PgProject
from tests.infra.helpers import project

runner = CliRunner()
PG_TARGET = """
ci:
  type: postgres
  user: stackyard
  database: shop
"""


def _rules(path: Path, target: str | None = None) -> dict[str, list[str]]:
    report = Context(path).access().policy_check(target)
    out: dict[str, list[str]] = {}
    for v in report.violations:
        out.setdefault(v.rule, []).append(v.message)
    return out


def test_default_layout_passes_every_rule(tmp_path: Path) -> None:
    path = project(
        tmp_path,
        """
        service_accounts:
          SVC_DLT: {loader: dlt, rsa_public_key: "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"}
        people: {alice: {}}
    """,
    )
    report = Context(path).access().policy_check()
    assert report.ok, report.violations
    assert report.production
    assert "no-person-loader-writer-in-prod" in report.rules


def test_person_with_loader_writer_fails_in_prod_only(tmp_path: Path) -> None:
    path = project(
        tmp_path, "people: {mallory: {roles: [ANALYTICS_DEVELOPER, SVC_DLT]}}", targets=PG_TARGET
    )
    rules = _rules(path)
    assert rules["no-person-loader-writer-in-prod"] == [
        "person mallory holds DLT_DB_WRITER (through SVC_DLT) in production: only the loader's "
        "service account may write database DLT; give the person a reader role instead"
    ]
    assert "no-person-loader-writer-in-prod" not in _rules(path, "dev")  # not a prod target
    result = runner.invoke(app, ["policy", "check", "--project", str(path)])
    assert result.exit_code == 1
    assert "no-person-loader-writer-in-prod" in result.output


def test_service_accounts_need_a_key_on_snowflake(tmp_path: Path) -> None:
    rules = _rules(project(tmp_path))
    assert rules["service-key-pair-only"][0].startswith("service account SVC_DLT has no RSA")


@pytest.mark.parametrize(
    ("access", "rule", "fragment"),
    [
        ("grants: [{role: PUBLIC, read: [DLT]}]", "no-public-grants", "PUBLIC read on DLT"),
        ("roles: {ANALYTICS_SOURCES_READER: {}}", "read-chain", "does not hold DLT_DB_READER"),
        ("service_accounts: {LOADER_BOT: {loader: dlt}}", "naming", "SVC_<NAME>"),
        ("databases: {DLT: {schemas: [Raw Data]}}", "naming", "not lower-case snake case"),
    ],
)
def test_built_in_rules(tmp_path: Path, access: str, rule: str, fragment: str) -> None:
    messages = _rules(project(tmp_path, access)).get(rule, [])
    assert any(fragment in m for m in messages), messages


def test_project_rules_run_and_their_errors_are_theirs(tmp_path: Path) -> None:
    path = project(tmp_path, "people: {alice: {}, bob: {}}")
    (path / "policies").mkdir()
    (path / "policies" / "team.py").write_text(
        "def check_team_size(declaration, plan):\n"
        "    people = [u for u in declaration.users if u.kind == 'person']\n"
        "    if len(people) > 1:\n"
        "        yield f'{len(people)} people declared; the team has one seat'\n"
        "def helper():\n"
        "    raise AssertionError('not a check: never called')\n"
    )
    rules = _rules(path)
    assert rules["team.check_team_size"] == ["2 people declared; the team has one seat"]
    (path / "policies" / "broken.py").write_text("def check(declaration, plan):\n    1 / 0\n")
    with pytest.raises(UserCodeError, match=r"policies/broken\.py: check raised ZeroDivisionError"):
        _rules(path)


@pytest.mark.postgres
def test_policy_check_against_a_live_target(pg_project: PgProject) -> None:
    pg_project.write("people: {alice: {}}")
    access = pg_project.context().access()
    access.apply(target="prod")
    report = access.policy_check("prod")
    assert report.ok, report.violations
    assert report.plan is not None and not report.plan.has_changes
    with pg_project.connect() as admin:
        admin.execute("GRANT USAGE ON SCHEMA shop_db TO PUBLIC")
    report = pg_project.context().access().policy_check("prod")
    assert [v.rule for v in report.violations] == ["no-public-grants"]
    # The deliberately bad change: a person gets the loader's writer role in prod.
    pg_project.write("people: {alice: {roles: [ANALYTICS_DEVELOPER, DLT_DB_WRITER]}}")
    result = runner.invoke(app, ["policy", "check", "-p", str(pg_project.path), "-t", "prod"])
    assert result.exit_code == 1, result.output
    assert "holds DLT_DB_WRITER (directly) in production" in result.output


@pytest.mark.postgres
def test_a_loader_writer_granted_to_a_person_by_hand_fails_the_live_check(
    pg_project: PgProject,
) -> None:
    # Before: `policy check -t prod` read only the declaration for this rule and passed,
    # while plan and security check reported the same grants as drift.
    pg_project.write("people: {alice: {}, bob: {}}")
    pg_project.context().access().apply(target="prod")
    writer, helper = pg_project.role("dlt_db_writer"), pg_project.role("helper")
    alice, bob = pg_project.role("alice"), pg_project.role("bob")
    with pg_project.connect() as admin:
        admin.execute(f'CREATE ROLE "{helper}"')
        admin.execute(f'GRANT "{writer}" TO "{alice}"')
        admin.execute(f'GRANT "{writer}" TO "{helper}"')
        admin.execute(f'GRANT "{helper}" TO "{bob}"')
    assert _rules(pg_project.path, "prod")["no-person-loader-writer-in-prod"] == [
        f"person {name} holds DLT_DB_WRITER ({how}) in the warehouse, granted outside the "
        "declaration, in production: only the loader's service account may write database "
        "DLT; `stackyard apply -t prod --allow-destructive` revokes it "
        f'(REVOKE "{writer}" FROM "{holder}")'
        for name, how, holder in (
            ("alice", "directly", alice),
            ("bob", f"through {helper}", helper),
        )
    ]
    result = runner.invoke(app, ["policy", "check", "-p", str(pg_project.path), "-t", "prod"])
    assert result.exit_code == 1, result.output
    assert "no-person-loader-writer-in-prod" in result.output
    assert "no-person-loader-writer-in-prod" not in _rules(pg_project.path)  # no target
    # The apply that takes them back is not refused for them, and afterwards the check passes.
    pg_project.context().access().apply(target="prod", allow_destructive=True)
    assert pg_project.context().access().policy_check("prod").ok
    # A grant stackyard does not take back (to a role outside the project's prefix) is
    # reported with the statement to run by hand, and blocks an apply.
    outsider = f"x{pg_project.prefix}"
    try:
        with pg_project.connect() as admin:
            admin.execute(f'CREATE ROLE "{outsider}"')
            admin.execute(f'GRANT "{writer}" TO "{outsider}"')
            admin.execute(f'GRANT "{outsider}" TO "{alice}"')
        assert _rules(pg_project.path, "prod")["no-person-loader-writer-in-prod"] == [
            f"person alice holds DLT_DB_WRITER (through {outsider}) in the warehouse, granted "
            "outside the declaration, in production: only the loader's service account may "
            f'write database DLT; revoke it by hand (REVOKE "{writer}" FROM "{outsider}")'
        ]
        with pytest.raises(PolicyViolationError, match="no-person-loader-writer-in-prod"):
            pg_project.context().access().apply(target="prod", allow_destructive=True)
    finally:
        with pg_project.connect() as admin:
            admin.execute(f'DROP ROLE IF EXISTS "{outsider}"')


@pytest.mark.postgres
def test_a_person_given_the_loaders_service_account_is_told_to_give_it_back(
    pg_project: PgProject,
) -> None:
    # Before: the fix named the service account's own WRITER membership (revoking it would
    # stop the loader), and apply --allow-destructive, whose plan takes the person's grant
    # back, was refused for it. And the way named the account as Postgres does (t…_svc_dlt)
    # beside DLT_DB_WRITER as declared: it is SVC_DLT, as stackyard.yml and the docs name it.
    pg_project.write("people: {alice: {}}")
    pg_project.context().access().apply(target="prod")
    svc, alice = pg_project.role("svc_dlt"), pg_project.role("alice")
    with pg_project.connect() as admin:
        admin.execute(f'GRANT "{svc}" TO "{alice}"')
    assert _rules(pg_project.path, "prod")["no-person-loader-writer-in-prod"] == [
        "person alice holds DLT_DB_WRITER (through SVC_DLT) in the warehouse, granted outside "
        "the declaration, in production: only the loader's service account may write database "
        f'DLT; `stackyard apply -t prod --allow-destructive` revokes it (REVOKE "{svc}" FROM '
        f'"{alice}")'
    ]
    pg_project.context().access().apply(target="prod", allow_destructive=True)
    assert pg_project.context().access().policy_check("prod").ok


@pytest.mark.postgres
def test_public_grants_are_found_in_schemas_the_project_does_not_declare(
    pg_project: PgProject,
) -> None:
    # An adopted dbt project's models in 'analytics', a 'raw' schema: stackyard declares
    # neither, and a table there readable by every user is as open as one in marts.
    with pg_project.connect() as admin:
        admin.execute("CREATE SCHEMA analytics")
        admin.execute("CREATE TABLE analytics.t (i int)")
        admin.execute("GRANT USAGE ON SCHEMA analytics TO PUBLIC")
        admin.execute("GRANT SELECT ON analytics.t TO PUBLIC")
        admin.execute("CREATE SCHEMA raw")
        admin.execute("GRANT CREATE ON SCHEMA raw TO PUBLIC")
        admin.execute(
            f'ALTER DEFAULT PRIVILEGES FOR ROLE "{pg_project.admin}" IN SCHEMA raw '
            "GRANT SELECT ON TABLES TO PUBLIC"
        )
    rules = _rules(pg_project.path, "prod")
    # Each with Postgres's own REVOKE (before: none; a role held by PUBLIC got Snowflake's
    # REVOKE ROLE … FROM ROLE PUBLIC whatever the engine).
    assert rules["no-public-grants"] == [
        "PUBLIC holds CREATE on schema raw in the warehouse: revoke it by hand (REVOKE CREATE "
        """ON SCHEMA "raw" FROM PUBLIC; stackyard does not own PUBLIC's grants)""",
        "PUBLIC holds SELECT on table analytics.t in the warehouse: revoke it by hand (REVOKE "
        """SELECT ON TABLE "analytics"."t" FROM PUBLIC; stackyard does not own PUBLIC's """
        "grants)",
        f"PUBLIC is given SELECT on the tables {pg_project.admin} creates in schema raw from "
        "now on (a default privilege in the warehouse): revoke it by hand (ALTER DEFAULT "
        f'PRIVILEGES FOR ROLE "{pg_project.admin}" IN SCHEMA "raw" REVOKE SELECT ON TABLES '
        "FROM PUBLIC; stackyard does not own PUBLIC's grants)",
    ]
    result = runner.invoke(app, ["policy", "check", "-p", str(pg_project.path), "-t", "prod"])
    assert result.exit_code == 1, result.output
    assert "made there by hand, not in stackyard.yml: revoke each by hand" in result.output
    report = pg_project.context().security_check("prod")
    public = [f.message for f in report.findings if f.check == "public-access"]
    assert "PUBLIC holds SELECT on table analytics.t" in public[1]


@pytest.mark.postgres
def test_a_database_wide_default_privilege_to_public_is_found(pg_project: PgProject) -> None:
    """Before: set without IN SCHEMA (a pg_default_acl row for no schema), it was not read and
    both checks passed, while every table the admin makes was readable by everybody."""
    pg_project.context().access().apply(target="prod")
    with pg_project.connect() as admin:
        admin.execute(
            f'ALTER DEFAULT PRIVILEGES FOR ROLE "{pg_project.admin}" '
            "GRANT SELECT ON TABLES TO PUBLIC"
        )
    expected = (
        f"PUBLIC is given SELECT on the tables {pg_project.admin} creates in every schema from "
        "now on (a default privilege in the warehouse): revoke it by hand (ALTER DEFAULT "
        f'PRIVILEGES FOR ROLE "{pg_project.admin}" REVOKE SELECT ON TABLES FROM PUBLIC; '
        "stackyard does not own PUBLIC's grants)"
    )
    assert _rules(pg_project.path, "prod")["no-public-grants"] == [expected]
    result = runner.invoke(app, ["policy", "check", "-p", str(pg_project.path), "-t", "prod"])
    assert result.exit_code == 1, result.output
    assert "made there by hand, not in stackyard.yml: revoke each by hand" in result.output
    report = pg_project.context().security_check("prod")
    assert [f.message for f in report.findings if f.check == "public-access"] == [expected]


def test_the_check_counts_in_words_that_fit_the_count(tmp_path: Path) -> None:
    # Before: "✘ 1 policy violations in the declaration".
    path = project(
        tmp_path,
        """
        service_accounts:
          SVC_DLT: {loader: dlt, rsa_public_key: "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"}
        people: {svc_mallory: {}}
    """,
    )
    result = runner.invoke(app, ["policy", "check", "--project", str(path)])
    assert result.exit_code == 1
    assert "✘ 1 policy violation in the declaration (production rules on):" in result.output
    # What to do about it, as apply's refusal says (the check said nothing of it).
    assert "→ fix stackyard.yml (or policies/*.py) until the check passes" in result.output
    (path / "stackyard.yml").write_text(
        (path / "stackyard.yml").read_text().replace("svc_mallory", "mallory")
    )
    result = runner.invoke(app, ["policy", "check", "--project", str(path)])
    assert result.exit_code == 0, result.output
    assert "✔ 6 policies hold for the declaration" in result.output


@pytest.mark.postgres
def test_each_way_a_person_holds_a_loader_writer_by_hand_is_named(pg_project: PgProject) -> None:
    # Before: one way only (the shortest); the user revoked it, and the next check failed
    # again on the next way, one REVOKE at a time.
    pg_project.write("people: {alice: {}}")
    pg_project.context().access().apply(target="prod")
    writer, svc = pg_project.role("dlt_db_writer"), pg_project.role("svc_dlt")
    alice, own = pg_project.role("alice"), pg_project.role("dev_alice")
    with pg_project.connect() as admin:
        admin.execute(f'GRANT "{writer}" TO "{alice}"')
        admin.execute(f'GRANT "{svc}" TO "{alice}"')
        admin.execute(f'GRANT "{writer}" TO "{own}"')
    apply = "`stackyard apply -t prod --allow-destructive` revokes it"
    assert _rules(pg_project.path, "prod")["no-person-loader-writer-in-prod"] == [
        f"person alice holds DLT_DB_WRITER ({how}, one of 3 ways) in the warehouse, granted "
        "outside the declaration, in production: only the loader's service account may write "
        f"database DLT; {apply} ({revoke})"
        for how, revoke in (
            ("directly", f'REVOKE "{writer}" FROM "{alice}"'),
            ("through DEV_ALICE", f'REVOKE "{writer}" FROM "{own}"'),
            ("through SVC_DLT", f'REVOKE "{svc}" FROM "{alice}"'),
        )
    ]
    assert pg_project.context().access().policy_check("prod").fix() == (
        "`stackyard apply -t prod --allow-destructive` takes back the grants made by hand in "
        "the warehouse that its plan revokes; then plan again"
    )
    # Every REVOKE named, run by hand, is the whole fix.
    with pg_project.connect() as admin:
        for statement in (
            f'REVOKE "{writer}" FROM "{alice}"',
            f'REVOKE "{writer}" FROM "{own}"',
            f'REVOKE "{svc}" FROM "{alice}"',
        ):
            admin.execute(statement)
    assert pg_project.context().access().policy_check("prod").ok


@pytest.mark.postgres
def test_an_apply_refused_for_a_grant_made_by_hand_says_to_revoke_it_there(
    pg_project: PgProject,
) -> None:
    # Before: every refusal said "fix stackyard.yml", which leaves out the grant already;
    # no edit of it could let the apply through.
    pg_project.context().access().apply(target="prod")
    with pg_project.connect() as admin:
        admin.execute("CREATE TABLE shop_db.t (i int)")
        admin.execute("GRANT SELECT ON shop_db.t TO PUBLIC")
    with pytest.raises(PolicyViolationError) as refused:
        pg_project.context().access().apply(target="prod", allow_destructive=True)
    assert refused.value.hint == (
        "the violations in the warehouse were made there by hand, not in stackyard.yml: revoke "
        "each by hand, as its line says; then plan again"
    )
    report = pg_project.context().access().policy_check("prod")
    assert [(v.found_in, v.taken_back) for v in report.violations] == [("warehouse", False)]
    # One in the declaration as well: stackyard.yml is named for it.
    pg_project.write("people: {alice: {roles: [ANALYTICS_DEVELOPER, DLT_DB_WRITER]}}")
    with pytest.raises(PolicyViolationError) as refused:
        pg_project.context().access().apply(target="prod", allow_destructive=True)
    assert refused.value.hint is not None
    assert refused.value.hint.endswith(
        "as its line says; fix stackyard.yml (or policies/*.py) for the others; then plan again"
    )
    with pg_project.connect() as admin:
        admin.execute("REVOKE SELECT ON shop_db.t FROM PUBLIC")
    with pytest.raises(PolicyViolationError) as refused:
        pg_project.context().access().apply(target="prod", allow_destructive=True)
    assert refused.value.hint == (
        "fix stackyard.yml (or policies/*.py) until the check passes, then plan again"
    )
