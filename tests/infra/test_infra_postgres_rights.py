"""Postgres apply as a user that is not a superuser: CREATEROLE and owner of the database is
enough (the plan first makes it a member of the roles whose default privileges it sets or
whose objects it reassigns); without those rights the plan is refused, naming the right."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from stackyard.errors import UsageError
from stackyard.infra.applier import Applier
from stackyard.infra.declaration import Declaration
from stackyard.infra.postgres import PostgresEngine
from stackyard.infra.postgres_applier import role_rules
from stackyard.infra.state import Account, Principal, State
from tests.infra.conftest import PgProject

PEOPLE = """
people:
  alice: {}
roles:
  FINANCE_ANALYST: {member_of: [ANALYTICS_DEVELOPER]}
"""


def test_createrole_owner_applies_and_next_plan_is_empty(
    pg_project: PgProject, applier: str
) -> None:
    pg_project.write(PEOPLE, user=applier)
    plan = pg_project.context().access().plan("prod")
    statements = plan.statements()
    for login in ("svc_dlt", "alice"):
        assert f'GRANT "{pg_project.role(login)}" TO "{applier}"' in statements
    # The membership comes before the default privileges that need it.
    first_default = next(i for i, s in enumerate(statements) if "DEFAULT PRIVILEGES" in s)
    grant = statements.index(f'GRANT "{pg_project.role("svc_dlt")}" TO "{applier}"')
    assert grant < first_default
    pg_project.context().access().apply(target="prod")
    assert not pg_project.context().access().plan("prod").has_changes
    # Default privileges set for svc_dlt by the non-superuser work: alice reads its new table.
    assert pg_project.can("svc_dlt", "CREATE TABLE shop_db.customers (id int)")
    assert pg_project.can("alice", "SELECT * FROM shop_db.customers")
    assert not pg_project.can("alice", "INSERT INTO shop_db.customers VALUES (1)")

    # Dropping a person with objects and a role: REASSIGN/DROP OWNED need membership too.
    assert pg_project.can("alice", "CREATE TABLE dev_alice.scratch (id int)")
    pg_project.write("people: {}", user=applier)
    plan = pg_project.context().access().plan("prod")
    assert f'GRANT "{pg_project.role("finance_analyst")}" TO "{applier}"' in plan.statements()
    pg_project.context().access().apply(target="prod", allow_destructive=True)
    assert not pg_project.context().access().plan("prod").has_changes
    with pg_project.connect() as admin:
        owner = admin.execute(
            "SELECT tableowner FROM pg_tables WHERE tablename = 'scratch'"
        ).fetchone()
        gone = admin.execute(
            "SELECT count(*) FROM pg_roles WHERE rolname IN (%s, %s)",
            (pg_project.role("alice"), pg_project.role("finance_analyst")),
        ).fetchone()
    assert owner == (applier,) and gone == (0,)


@pytest.mark.parametrize(
    ("rights", "owner", "missing"),
    [
        ("NOCREATEROLE", True, "lacks CREATEROLE"),
        ("CREATEROLE", False, "lacks CREATE on the database"),
    ],
)
def test_missing_right_is_named_before_planning(
    pg_project: PgProject,
    make_applier: Callable[[str, bool], str],
    rights: str,
    owner: bool,
    missing: str,
) -> None:
    name = make_applier(rights, owner)
    pg_project.write(PEOPLE, user=name)
    with pytest.raises(UsageError, match=missing) as caught:
        pg_project.context().access().apply(target="prod")
    assert "nothing was planned" in caught.value.message
    with pg_project.connect() as admin:
        made = admin.execute(
            "SELECT count(*) FROM pg_roles WHERE rolname LIKE %s AND rolname <> %s",
            (pg_project.prefix + "%", name),
        ).fetchone()
    assert made == (0,)


def test_postgres_16_rules_need_admin_option_on_roles_made_by_others() -> None:
    # PostgreSQL 16 is not installed here: its rule is checked on a recorded state.
    engine = PostgresEngine(Declaration("p", (), (), (), (), (), (), ()))
    live = State(
        accounts=frozenset({Account(Principal("role", "svc_dlt"), (("login", "true"),))}),
        applier=Applier("ops", False, True, True, 160002, frozenset(), frozenset()),
    )
    with pytest.raises(UsageError, match="ADMIN OPTION on svc_dlt"):
        engine.applier_grants(live, {"svc_dlt"}, set())
    admin = State(
        accounts=live.accounts,
        applier=Applier("ops", False, True, True, 160002, frozenset(), frozenset({"svc_dlt"})),
    )
    assert engine.applier_grants(admin, {"svc_dlt"}, set())[0][0] == 'GRANT "svc_dlt" TO "ops"'
    pg15 = State(accounts=live.accounts, applier=Applier("ops", False, True, True, 150004))
    assert engine.applier_grants(pg15, {"svc_dlt"}, set())[0][0] == 'GRANT "svc_dlt" TO "ops"'
    assert (
        role_rules(160000).createrole_needs_admin and not role_rules(150004).createrole_needs_admin
    )


def test_a_non_superuser_ends_a_removed_users_sessions(pg_project: PgProject, applier: str) -> None:
    import psycopg

    pg_project.write(PEOPLE, user=applier)
    pg_project.context().access().apply(target="prod")
    with pg_project.connect("alice") as session:
        session.execute("SELECT 1")
        pg_project.write("people: {}", user=applier)
        # The plan makes the applier a member of the role it drops, which lets it end the
        # role's sessions without pg_signal_backend.
        pg_project.context().access().apply(target="prod", allow_destructive=True)
        with pytest.raises(psycopg.OperationalError):
            session.execute("SELECT 1")
    assert not pg_project.context().access().plan("prod").has_changes


def test_a_power_only_a_superuser_takes_back_fails_naming_the_superuser(
    pg_project: PgProject, applier: str
) -> None:
    from stackyard.errors import WarehouseError

    pg_project.write(PEOPLE, user=applier)
    pg_project.context().access().apply(target="prod")
    with pg_project.connect() as admin:
        admin.execute(f'ALTER ROLE "{pg_project.role("alice")}" BYPASSRLS')
    with pytest.raises(WarehouseError) as failed:
        pg_project.context().access().apply(target="prod", allow_destructive=True)
    # Before: "the applying user needs CREATEROLE", which it has.
    assert "bypassrls" in failed.value.message.lower()
    assert failed.value.hint is not None and "superuser" in failed.value.hint
    assert "CREATEROLE" not in failed.value.hint
