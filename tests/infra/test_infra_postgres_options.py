"""Postgres, live: what a declared role holds beyond its grants is drift too. An option added
by hand to a grant or membership the project manages (WITH GRANT OPTION, WITH ADMIN OPTION)
lets the role pass it on; CREATE or TEMPORARY on the target's database lets it make schemas
or temporary tables. Plan, review and the security check show them, apply takes them back,
and the grants and memberships the declaration gives stay."""

from __future__ import annotations

import uuid

import pytest

from stackyard.errors import UsageError
from tests.infra.conftest import PgProject

pytestmark = pytest.mark.postgres

PEOPLE = "people: {rita: {roles: [REPORTING_READER]}}"


def _one(project: PgProject, sql: str, *args: object) -> object:
    with project.connect() as admin:
        row = admin.execute(sql, args).fetchone()
    return row[0] if row else None


def _pending(project: PgProject) -> tuple[list[str], list[str]]:
    """What access review lists as pending, and what security check reports as excess."""
    review = project.context().access().review("prod")
    pending = [e for e in review.outside_declaration if e.endswith("(pending: on a declared role)")]
    report = project.context().security_check("prod")
    excess = [f.message for f in report.findings if f.check == "excess-privileges"]
    return pending, excess


def _apply_takes_it_back(project: PgProject) -> None:
    access = project.context().access()
    assert access.policy_check("prod").ok
    with pytest.raises(UsageError, match="destructive"):
        access.apply(target="prod")
    project.context().access().apply(target="prod", allow_destructive=True)
    assert not project.context().access().plan("prod").has_changes


def test_a_grant_option_added_by_hand_is_taken_back_and_the_grant_kept(
    pg_project: PgProject,
) -> None:
    pg_project.write(PEOPLE)
    pg_project.context().access().apply(target="prod")
    reader = pg_project.role("reporting_reader")
    stranger = pg_project.role("stranger")
    with pg_project.connect() as admin:
        admin.execute("CREATE TABLE reporting.revenue (amount int)")
        admin.execute(f'CREATE ROLE "{stranger}" NOLOGIN')
        admin.execute(f'GRANT USAGE ON SCHEMA reporting TO "{reader}" WITH GRANT OPTION')
        admin.execute(f'GRANT SELECT ON reporting.revenue TO "{reader}" WITH GRANT OPTION')

    # The plan said "no changes", while every holder of the role could hand the table out.
    plan = pg_project.context().access().plan("prod")
    assert [(s.kind, s.statement, s.grantee, s.loses) for s in plan.destructive_steps] == [
        (
            "revoke_grant_option",
            f'REVOKE GRANT OPTION FOR USAGE ON SCHEMA "reporting" FROM "{reader}"',
            reader,
            ("grant option for USAGE on schema reporting",),
        ),
        (
            "revoke_grant_option",
            f'REVOKE GRANT OPTION FOR SELECT ON TABLE "reporting"."revenue" FROM "{reader}"',
            reader,
            ("grant option for SELECT on table reporting.revenue",),
        ),
    ]
    assert plan.steps == plan.destructive_steps
    pending, excess = _pending(pg_project)
    said = f"revoke grant option for SELECT on table reporting.revenue from {reader}"
    assert f"{said} (pending: on a declared role)" in pending
    assert f"more than declared: {said} (pending: on a declared role)" in excess

    _apply_takes_it_back(pg_project)
    # Without the option Postgres only warns ("no privileges were granted"): nothing passes.
    assert pg_project.can("rita", f'GRANT SELECT ON reporting.revenue TO "{stranger}"')
    assert not _one(
        pg_project, "SELECT has_table_privilege(%s, 'reporting.revenue', 'SELECT')", stranger
    )
    assert pg_project.can("rita", "SELECT * FROM reporting.revenue")
    assert not _one(
        pg_project,
        "SELECT has_table_privilege(%s, 'reporting.revenue', 'SELECT WITH GRANT OPTION')",
        reader,
    )


def test_an_admin_option_added_by_hand_is_taken_back_and_the_membership_kept(
    pg_project: PgProject,
) -> None:
    pg_project.write(PEOPLE)
    pg_project.context().access().apply(target="prod")
    reader = pg_project.role("reporting_reader")
    rita = pg_project.role("rita")
    stranger = pg_project.role("stranger")
    with pg_project.connect() as admin:
        admin.execute(f'CREATE ROLE "{stranger}" LOGIN')
        admin.execute(f'GRANT "{reader}" TO "{rita}" WITH ADMIN OPTION')

    plan = pg_project.context().access().plan("prod")
    assert [(s.kind, s.statement, s.grantee, s.loses) for s in plan.destructive_steps] == [
        (
            "revoke_admin_option",
            f'REVOKE ADMIN OPTION FOR "{reader}" FROM "{rita}"',
            rita,
            (f"admin option on role {reader}",),
        )
    ]
    pending, excess = _pending(pg_project)
    said = f"revoke admin option on role {reader} from {rita} (pending: on a declared role)"
    assert pending == [said]
    assert excess == [f"more than declared: {said}"]

    _apply_takes_it_back(pg_project)
    assert not pg_project.can("rita", f'GRANT "{reader}" TO "{stranger}"')
    admin_option = _one(
        pg_project,
        "SELECT am.admin_option FROM pg_auth_members am JOIN pg_roles g ON g.oid = am.roleid "
        "JOIN pg_roles m ON m.oid = am.member WHERE g.rolname = %s AND m.rolname = %s",
        reader,
        rita,
    )
    assert admin_option is False  # still a member, without the option


def test_database_privileges_given_by_hand_are_taken_back(pg_project: PgProject) -> None:
    pg_project.write(PEOPLE)
    pg_project.context().access().apply(target="prod")
    db = pg_project.database
    reader = pg_project.role("reporting_reader")
    rita = pg_project.role("rita")
    outsider = f"x{uuid.uuid4().hex[:8]}_outsider"  # another project's prefix
    with pg_project.connect() as admin:
        admin.execute(f'CREATE ROLE "{outsider}" NOLOGIN')
    try:
        with pg_project.connect() as admin:
            admin.execute(f'GRANT CREATE, TEMPORARY ON DATABASE "{db}" TO "{reader}"')
            # CONNECT is what a declared user is for (a database hardened with REVOKE CONNECT
            # … FROM PUBLIC needs it): kept; its grant option is not.
            admin.execute(f'GRANT CONNECT ON DATABASE "{db}" TO "{rita}" WITH GRANT OPTION')
            admin.execute(f'GRANT CREATE ON DATABASE "{db}" TO "{outsider}"')
        # Through the role, rita could create schemas of her own.
        assert pg_project.can("rita", "CREATE SCHEMA rita_was_here")
        with pg_project.connect() as admin:
            admin.execute("DROP SCHEMA rita_was_here")

        plan = pg_project.context().access().plan("prod")
        assert [(s.kind, s.statement, s.loses) for s in plan.destructive_steps] == [
            (
                "revoke",
                f'REVOKE CREATE, TEMPORARY ON DATABASE "{db}" FROM "{reader}"',
                (f"CREATE, TEMPORARY on database {db}",),
            ),
            (
                "revoke_grant_option",
                f'REVOKE GRANT OPTION FOR CONNECT ON DATABASE "{db}" FROM "{rita}"',
                (f"grant option for CONNECT on database {db}",),
            ),
        ]
        assert not any(outsider in s for s in plan.statements())
        assert f"CREATE on database {db} to {outsider}" in plan.unmanaged
        pending, excess = _pending(pg_project)
        said = f"revoke CREATE, TEMPORARY on database {db} from {reader}"
        assert f"{said} (pending: on a declared role)" in pending
        assert f"more than declared: {said} (pending: on a declared role)" in excess

        _apply_takes_it_back(pg_project)
        assert not pg_project.can("rita", "CREATE SCHEMA rita_was_here")
        held = _one(
            pg_project,
            "SELECT count(*) FROM pg_database d, aclexplode(d.datacl) a "
            "WHERE d.datname = %s AND a.grantee = %s::regrole",
            db,
            reader,
        )
        assert held == 0
        assert _one(pg_project, "SELECT has_database_privilege(%s, %s, 'CONNECT')", rita, db)
        assert _one(pg_project, "SELECT has_database_privilege(%s, %s, 'CREATE')", outsider, db)
    finally:
        with pg_project.connect() as admin:
            admin.execute(f'DROP OWNED BY "{outsider}"')
            admin.execute(f'DROP ROLE "{outsider}"')


def test_column_privileges_given_by_hand_are_taken_back(pg_project: PgProject) -> None:
    pg_project.write(PEOPLE)
    pg_project.context().access().apply(target="prod")
    reader = pg_project.role("reporting_reader")
    outsider = pg_project.role("outsider")  # the project's prefix, undeclared
    with pg_project.connect() as admin:
        admin.execute('CREATE TABLE reporting.revenue (amount int, "Note" text)')
        admin.execute(f'CREATE ROLE "{outsider}" NOLOGIN')
        # A reader that may rewrite one column of the table it reads.
        admin.execute(f'GRANT UPDATE ("Note"), INSERT ("Note") ON reporting.revenue TO "{reader}"')
        admin.execute(f'GRANT UPDATE (amount) ON reporting.revenue TO "{outsider}"')
    assert pg_project.can("rita", "UPDATE reporting.revenue SET \"Note\" = 'mine'")

    plan = pg_project.context().access().plan("prod")
    assert [(s.kind, s.statement, s.grantee, s.loses) for s in plan.destructive_steps] == [
        (
            "revoke",
            f'REVOKE INSERT ("Note"), UPDATE ("Note") ON TABLE "reporting"."revenue" '
            f'FROM "{reader}"',
            reader,
            ("INSERT, UPDATE on column reporting.revenue.Note",),
        )
    ]
    # A grant to a role the project does not declare is kept, as on a table.
    assert f"UPDATE on column reporting.revenue.amount to {outsider}" in plan.unmanaged
    pending, excess = _pending(pg_project)
    said = f"revoke INSERT, UPDATE on column reporting.revenue.Note from {reader}"
    assert pending == [f"{said} (pending: on a declared role)"]
    assert excess == [f"more than declared: {said} (pending: on a declared role)"]

    _apply_takes_it_back(pg_project)
    assert not pg_project.can("rita", "UPDATE reporting.revenue SET \"Note\" = 'mine'")
    assert pg_project.can("rita", "SELECT * FROM reporting.revenue")
    assert _one(
        pg_project,
        "SELECT has_column_privilege(%s, 'reporting.revenue', 'amount', 'UPDATE')",
        outsider,
    )


def test_a_column_privilege_given_to_public_is_reported(pg_project: PgProject) -> None:
    pg_project.context().access().apply(target="prod")
    with pg_project.connect() as admin:
        admin.execute("CREATE TABLE reporting.revenue (amount int)")
        admin.execute("GRANT UPDATE (amount) ON reporting.revenue TO PUBLIC")
    report = pg_project.context().security_check("prod")
    public = [f.message for f in report.findings if f.check == "public-access"]
    assert public == [
        "PUBLIC holds UPDATE on column reporting.revenue.amount in the warehouse: revoke it by "
        """hand (REVOKE UPDATE ("amount") ON TABLE "reporting"."revenue" FROM PUBLIC; """
        "stackyard does not own PUBLIC's grants)"
    ]
