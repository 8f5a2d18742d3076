"""Postgres, live: who holds a declared role is the declaration's to say. A declared role
granted by hand to a role the project does not declare (or no longer declares) is drift:
plan, review and the security check show it, and apply takes it back; roles outside the
project's prefix keep what they were given, and are listed as kept."""

from __future__ import annotations

import uuid

import pytest

from stackyard.errors import UsageError
from tests.infra.conftest import PgProject

pytestmark = pytest.mark.postgres


def _held(project: PgProject, role: str, member: str) -> bool:
    with project.connect() as admin:
        found = admin.execute(
            "SELECT 1 FROM pg_auth_members am JOIN pg_roles g ON g.oid = am.roleid "
            "JOIN pg_roles m ON m.oid = am.member WHERE g.rolname = %s AND m.rolname = %s",
            (role, member),
        ).fetchone()
    return found is not None


def _exists(project: PgProject, role: str) -> bool:
    with project.connect() as admin:
        found = admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
    return found is not None


def test_removing_a_user_whose_role_existed_before_takes_back_its_roles(
    pg_project: PgProject,
) -> None:
    bob = pg_project.role("bob")
    reader = pg_project.role("reporting_reader")
    with pg_project.connect() as admin:  # made by hand, before the project declared it
        admin.execute(f'CREATE ROLE "{bob}" LOGIN')
    pg_project.write("people: {bob: {roles: [REPORTING_READER]}}")
    pg_project.context().access().apply(target="prod")
    assert _held(pg_project, reader, bob)

    # bob leaves the declaration: the role stackyard granted him is taken back, and his
    # role, which stackyard did not create, stays. (The plan said "no changes".)
    pg_project.write()
    access = pg_project.context().access()
    plan = access.plan("prod")
    revokes = [s for s in plan.steps if s.destructive]
    assert [(s.kind, s.statement, s.grantee, s.loses) for s in revokes] == [
        ("revoke_role", f'REVOKE "{reader}" FROM "{bob}"', bob, (f"role {reader}",))
    ]
    assert not any(s.kind.startswith("drop") for s in plan.steps)
    assert access.policy_check("prod").ok
    with pytest.raises(UsageError, match="destructive"):
        access.apply(target="prod")
    assert _held(pg_project, reader, bob)
    pg_project.context().access().apply(target="prod", allow_destructive=True)
    assert not _held(pg_project, reader, bob)
    assert _exists(pg_project, bob)
    assert not pg_project.context().access().plan("prod").has_changes


def test_a_declared_role_granted_by_hand_to_an_undeclared_role_is_drift(
    pg_project: PgProject,
) -> None:
    context = pg_project.context()
    context.access().apply(target="prod")
    developer = pg_project.role("analytics_developer")
    reader = pg_project.role("dlt_db_reader")
    sidekick = pg_project.role("sidekick")  # the project's prefix, undeclared
    outsider = f"x{uuid.uuid4().hex[:8]}_outsider"  # another project's prefix
    with pg_project.connect() as admin:
        admin.execute(f'CREATE ROLE "{sidekick}" LOGIN')
        admin.execute(f'CREATE ROLE "{outsider}" NOLOGIN')
    try:
        with pg_project.connect() as admin:
            admin.execute(f'GRANT "{developer}" TO "{sidekick}"')
            admin.execute(f'GRANT "{reader}" TO "{outsider}"')

        # The plan takes it back, marked destructive as every revocation is …
        access = pg_project.context().access()
        plan = access.plan("prod")
        revokes = [s for s in plan.steps if s.destructive]
        assert [(s.kind, s.statement, s.grantee) for s in revokes] == [
            ("revoke_role", f'REVOKE "{developer}" FROM "{sidekick}"', sidekick)
        ]
        # … and leaves a role outside the project's prefix alone, listed as kept.
        assert not any(outsider in s for s in plan.statements())
        assert f"role {reader} to {outsider}" in plan.unmanaged
        # The review and the security check report it as more than declared.
        review = access.review("prod")
        assert f"revoke role {developer} from {sidekick} (pending: on a declared role)" in (
            review.outside_declaration
        )
        report = pg_project.context().security_check("prod")
        excess = [f.message for f in report.findings if f.check == "excess-privileges"]
        assert excess == [
            f"more than declared: revoke role {developer} from {sidekick} "
            "(pending: on a declared role)"
        ]
        # The revocation is the project's own, so the policy check lets apply run it.
        assert access.policy_check("prod").ok
        with pytest.raises(UsageError, match="destructive"):
            access.apply(target="prod")
        pg_project.context().access().apply(target="prod", allow_destructive=True)
        assert not _held(pg_project, developer, sidekick)
        assert _exists(pg_project, sidekick)
        assert _held(pg_project, reader, outsider)
        assert not pg_project.context().access().plan("prod").has_changes
    finally:
        with pg_project.connect() as admin:
            admin.execute(f'DROP ROLE IF EXISTS "{outsider}"')
