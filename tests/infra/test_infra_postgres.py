"""Postgres, live: plan and apply on a throwaway database, then prove the access by connecting
as the roles created: loaders write only their own schemas, readers only read, developers
read raw data through the chain, and grants made by others survive an apply."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stackyard.errors import ConfigError, UsageError, WarehouseError
from tests.infra.conftest import PgProject

pytestmark = pytest.mark.postgres

PEOPLE = """
people:
  alice: {}
  rita: {roles: [REPORTING_READER]}
"""


def _apply(project: PgProject, allow_destructive: bool = False) -> None:
    access = project.context().access()
    access.apply(target="prod", allow_destructive=allow_destructive)


def test_plan_apply_gives_least_privilege_and_next_plan_is_empty(pg_project: PgProject) -> None:
    pg_project.write(PEOPLE)
    access = pg_project.context().access()
    plan = access.plan("prod")
    assert plan.has_changes and not plan.destructive_steps
    assert (
        f'GRANT "{pg_project.role("dlt_db_writer")}" TO "{pg_project.role("svc_dlt")}"'
        in plan.statements()
    )
    _apply(pg_project)
    assert not pg_project.context().access().plan("prod").has_changes

    # The loader writes its own schema, as itself, through DLT_DB_WRITER …
    assert pg_project.can("svc_dlt", "CREATE TABLE shop_db.customers (id int)")
    assert pg_project.can("svc_dlt", "INSERT INTO shop_db.customers VALUES (1)")
    # … and cannot write anywhere else.
    assert not pg_project.can("svc_dlt", "CREATE TABLE marts.x (id int)")
    assert not pg_project.can("svc_dlt", "CREATE TABLE dev_alice.x (id int)")
    # A developer reads the raw table through ANALYTICS_SOURCES_READER → DLT_DB_READER …
    assert pg_project.can("alice", "SELECT * FROM shop_db.customers")
    # … cannot write it, and writes only her own dev schema.
    assert not pg_project.can("alice", "INSERT INTO shop_db.customers VALUES (2)")
    assert not pg_project.can("alice", "CREATE TABLE shop_db.mine (id int)")
    assert pg_project.can("alice", "CREATE TABLE dev_alice.scratch (id int)")
    assert not pg_project.can("alice", "CREATE TABLE marts.x (id int)")
    # A reporting reader reads reporting only.
    with pg_project.connect() as admin:
        admin.execute("CREATE TABLE reporting.revenue (amount int)")
        admin.execute("CREATE TABLE marts.orders (id int)")
    assert pg_project.can("rita", "SELECT * FROM reporting.revenue")
    assert not pg_project.can("rita", "SELECT * FROM marts.orders")
    assert not pg_project.can("rita", "SELECT * FROM shop_db.customers")
    assert not pg_project.can("rita", "INSERT INTO reporting.revenue VALUES (1)")
    assert pg_project.can("alice", "SELECT * FROM marts.orders")

    # New tables were covered by default privileges: the plan is still empty.
    assert not pg_project.context().access().plan("prod").has_changes


def test_grants_made_by_others_survive_apply(pg_project: PgProject) -> None:
    _apply(pg_project)
    stranger = pg_project.role("intern")  # same prefix, so the fixture drops it
    with pg_project.connect() as admin:
        admin.execute(f'CREATE ROLE "{stranger}" LOGIN')
        admin.execute("CREATE TABLE shop_db.orders (id int)")
        admin.execute(f'GRANT USAGE ON SCHEMA shop_db TO "{stranger}"')
        admin.execute(f'GRANT SELECT ON shop_db.orders TO "{stranger}"')
        # A grant by hand to a declared role is not ours to keep: it will be revoked.
        admin.execute(f'GRANT INSERT ON shop_db.orders TO "{pg_project.role("dlt_db_reader")}"')
    plan = pg_project.context().access().plan("prod")
    assert any(stranger in u for u in plan.unmanaged)
    assert not any(stranger in s for s in plan.statements())
    revokes = [s for s in plan.steps if s.destructive]
    assert [s.statement for s in revokes] == [
        f'REVOKE INSERT ON TABLE "shop_db"."orders" FROM "{pg_project.role("dlt_db_reader")}"'
    ]
    with pytest.raises(UsageError, match="destructive"):
        _apply(pg_project)
    _apply(pg_project, allow_destructive=True)
    assert pg_project.can("intern", "SELECT * FROM shop_db.orders")
    assert not pg_project.context().access().plan("prod").has_changes


def test_powers_given_to_a_declared_role_by_hand_are_taken_back(pg_project: PgProject) -> None:
    pg_project.write(PEOPLE)
    _apply(pg_project)
    reader = pg_project.role("reporting_reader")
    with pg_project.connect() as admin:
        admin.execute(f'ALTER ROLE "{reader}" SUPERUSER CREATEROLE BYPASSRLS')
    # The plan said "no changes" and the role kept them.
    plan = pg_project.context().access().plan("prod")
    revokes = [s.statement for s in plan.steps if s.destructive]
    assert revokes == [f'ALTER ROLE "{reader}" NOSUPERUSER NOCREATEROLE NOBYPASSRLS']
    _apply(pg_project, allow_destructive=True)
    with pg_project.connect() as admin:
        held = admin.execute(
            "SELECT rolsuper, rolcreaterole, rolbypassrls FROM pg_roles WHERE rolname = %s",
            (reader,),
        ).fetchone()
    assert held == (False, False, False)
    assert not pg_project.context().access().plan("prod").has_changes


def test_saved_plan_refused_when_stale_edited_or_foreign(
    pg_project: PgProject, tmp_path: Path
) -> None:
    access = pg_project.context().access()
    plan_file = tmp_path / "plan.json"
    access.plan("prod").save(plan_file)

    edited = tmp_path / "edited.json"
    data = json.loads(plan_file.read_text())
    data["steps"][0]["statement"] = "DROP SCHEMA public CASCADE"
    edited.write_text(json.dumps(data))
    with pytest.raises(UsageError, match="edited"):
        access.apply(edited)

    pg_project.write(name="other")
    with pytest.raises(UsageError, match=f"planned for project '{pg_project.name}'"):
        pg_project.context().access().apply(plan_file)
    pg_project.write()

    reader = pg_project.role("dlt_db_reader")
    with pg_project.connect() as admin:  # a declared role appears after planning
        admin.execute(f'CREATE ROLE "{reader}"')
    with pytest.raises(UsageError, match=r"live state .* changed"):
        pg_project.context().access().apply(plan_file)
    with pg_project.connect() as admin:
        assert admin.execute(
            "SELECT rolname FROM pg_roles WHERE rolname LIKE %s", (pg_project.prefix + "%",)
        ).fetchall() == [(reader,)]  # nothing was applied
        admin.execute(f'DROP ROLE "{reader}"')

    fresh = tmp_path / "fresh.json"
    pg_project.context().access().plan("prod").save(fresh)
    # Roles are shared by the whole server: what others create or grant outside this plan's
    # roles and schemas does not make it stale.
    bystander = pg_project.role("bystander")
    with pg_project.connect() as admin:
        admin.execute("CREATE SCHEMA surprise")
        admin.execute(f'CREATE ROLE "{bystander}"')
        admin.execute(f'CREATE ROLE "{bystander}_member" IN ROLE "{bystander}"')
        admin.execute(f'GRANT USAGE ON SCHEMA surprise TO "{bystander}"')
    pg_project.context().access().apply(fresh)
    assert not pg_project.context().access().plan("prod").has_changes
    # Applied twice: nothing left to do, and said so. Before: "the live state of target
    # 'prod' changed since fresh.json was planned (someone granted, revoked or created
    # something)", exit 2, the someone being that same plan.
    again = pg_project.context().access().apply(fresh)
    assert not again.plan.has_changes


def test_removing_a_user_is_destructive_and_drops_only_ours(pg_project: PgProject) -> None:
    pg_project.write(PEOPLE)
    _apply(pg_project)
    with pg_project.connect("alice") as conn:
        conn.execute("CREATE TABLE dev_alice.keep_me (id int)")
    pg_project.write("people: {rita: {roles: [REPORTING_READER]}}")
    plan = pg_project.context().access().plan("prod")
    drops = [s.statement for s in plan.steps if s.kind.startswith("drop")]
    assert f'DROP ROLE "{pg_project.role("alice")}"' in drops
    assert f'DROP ROLE "{pg_project.role("dev_alice")}"' in drops
    assert all(s.destructive for s in plan.steps if s.kind.startswith("drop"))
    _apply(pg_project, allow_destructive=True)
    with pg_project.connect() as admin:
        assert admin.execute("SELECT count(*) FROM dev_alice.keep_me").fetchone() == (0,)
        roles = {r[0] for r in admin.execute("SELECT rolname FROM pg_roles").fetchall()}
    assert pg_project.role("alice") not in roles and pg_project.role("rita") in roles
    assert not pg_project.context().access().plan("prod").has_changes


def test_hostile_schema_names_are_quoted_not_pasted(pg_project: PgProject) -> None:
    pg_project.write("""
        databases:
          FILES:
            schemas: ['we"ird; DROP ROLE postgres; --', "Mixed Case", "50% off"]
        grants:
          - {role: SVC_DLT, write: [FILES]}
    """)
    _apply(pg_project)
    with pg_project.connect() as admin:
        schemas = {r[0] for r in admin.execute("SELECT nspname FROM pg_namespace").fetchall()}
        assert admin.execute(
            "SELECT count(*) FROM pg_roles WHERE rolname = 'postgres'"
        ).fetchone() == (1,)
    assert {'we"ird; DROP ROLE postgres; --', "Mixed Case", "50% off"} <= schemas
    assert pg_project.can("svc_dlt", 'CREATE TABLE "Mixed Case".t (id int)')
    assert not pg_project.context().access().plan("prod").has_changes


@pytest.mark.parametrize(
    ("access", "message"),
    [
        ("roles: {A_ROLE: {member_of: [B_ROLE]}, B_ROLE: {member_of: [A_ROLE]}}", "cycle"),
        ("people: {dan: {roles: [NOT_A_ROLE]}}", "role 'NOT_A_ROLE' is not declared"),
        ("grants: [{role: GHOST, read: [DLT]}]", "role 'GHOST' is not declared"),
        ('roles: {"bad\\"; DROP ROLE x": {}}', "not a valid name"),
    ],
)
def test_bad_declarations_apply_nothing(pg_project: PgProject, access: str, message: str) -> None:
    pg_project.write(access)
    with pytest.raises(ConfigError, match=message):
        pg_project.context().access().apply(target="prod")
    with pg_project.connect() as admin:
        assert admin.execute(
            "SELECT count(*) FROM pg_roles WHERE rolname LIKE %s", (pg_project.prefix + "%",)
        ).fetchone() == (0,)


def test_a_failing_statement_rolls_back_the_whole_apply(pg_project: PgProject) -> None:
    with pg_project.connect() as admin:  # a role of that name exists already, unmarked
        admin.execute(f'CREATE ROLE "{pg_project.role("svc_dlt")}" LOGIN')
        admin.execute(f'CREATE SCHEMA shop_db AUTHORIZATION "{pg_project.role("svc_dlt")}"')
    access = pg_project.context().access()
    plan = access.plan("prod")
    # The existing role is adopted, not created; so force a failure another way:
    with pg_project.connect() as admin:
        admin.execute("CREATE SCHEMA marts")
    with pytest.raises(UsageError, match="changed"):
        plan.save(pg_project.path / "p.json")
        access.apply(pg_project.path / "p.json")
    from stackyard.infra.executor import execute
    from stackyard.infra.plan import Step

    broken = plan.__class__(
        plan.project,
        plan.target,
        plan.engine,
        (*plan.steps, Step("grant", "GRANT nonsense", "broken")),
    )
    with pytest.raises(WarehouseError, match="nothing was applied"):
        execute(broken, access.sessions.get("prod").warehouse)
    with pg_project.connect() as admin:
        count = admin.execute(
            "SELECT count(*) FROM pg_roles WHERE rolname LIKE %s", (pg_project.prefix + "%",)
        ).fetchone()
    assert count == (1,)  # only the role made by hand above


def test_a_removed_users_open_session_is_ended(pg_project: PgProject) -> None:
    import psycopg

    pg_project.write(PEOPLE)
    _apply(pg_project)
    rita, alice = pg_project.connect("rita"), pg_project.connect("alice")
    with rita, alice:
        rita.execute("SELECT 1")
        alice.execute("SELECT 1")
        pg_project.write(PEOPLE.replace("  rita: {roles: [REPORTING_READER]}\n", ""))
        plan = pg_project.context().access().plan("prod")
        ends = [s for s in plan.steps if "pg_terminate_backend" in s.statement]
        assert (
            len(ends) == 1 and ends[0].destructive and pg_project.role("rita") in ends[0].statement
        )
        _apply(pg_project, allow_destructive=True)
        # Before: the dropped role's session kept reading with every privilege it had.
        with pytest.raises(psycopg.OperationalError):
            rita.execute("SELECT 1")
        alice.execute("SELECT 1")  # only the removed user's sessions end
    assert not pg_project.context().access().plan("prod").has_changes


def test_a_login_given_by_hand_is_taken_back_with_its_sessions(pg_project: PgProject) -> None:
    import psycopg

    _apply(pg_project)
    reader = pg_project.role("reporting_reader")
    with pg_project.connect() as admin:
        admin.execute(f'ALTER ROLE "{reader}" LOGIN')
    with pg_project.connect("reporting_reader") as session:
        session.execute("SELECT 1")
        _apply(pg_project, allow_destructive=True)
        # Before: NOLOGIN was set back, and the session it had let in kept running.
        with pytest.raises(psycopg.OperationalError):
            session.execute("SELECT 1")
    assert not pg_project.context().access().plan("prod").has_changes


def test_a_same_named_project_whose_prefix_starts_with_ours_keeps_its_roles(
    pg_project: PgProject, tmp_path: Path
) -> None:
    pg_project.write(PEOPLE)
    _apply(pg_project)
    # A second project of the same name on the server, its prefix ours and more ("t…_b_").
    other = PgProject(
        tmp_path / "other",
        pg_project.prefix + "b_",
        pg_project.database,
        pg_project.host,
        pg_project.port,
        pg_project.admin,
    )
    other.path.mkdir()
    other.write(PEOPLE, name=pg_project.name)
    _apply(other)
    plan = pg_project.context().access().plan("prod")
    # Before: this plan granted every "t…_b_" role to the applier, then dropped them all.
    assert not plan.has_changes, plan.statements()
    assert not [s for s in plan.statements() if other.prefix in s]
    # Kept, and said: another project's roles, or this one's under a prefix it had before.
    (note,) = [n for n in plan.notes if "another role_prefix" in n]
    assert other.role("alice") in note
    assert pg_project.context().access().plan("prod").statements() == plan.statements()
    assert not other.context().access().plan("prod").has_changes
    assert other.can("alice", "CREATE TABLE dev_alice.scratch_b (id int)")


def test_a_declared_table_handed_to_a_reader_is_more_than_declared(
    pg_project: PgProject,
) -> None:
    pg_project.write(PEOPLE)
    _apply(pg_project)
    with pg_project.connect() as admin:
        admin.execute("CREATE TABLE marts.orders (id int)")
        admin.execute(f'ALTER TABLE marts.orders OWNER TO "{pg_project.role("alice")}"')
    # Their own tables are theirs: the loader's in its schema, alice's in her dev schema.
    assert pg_project.can("svc_dlt", "CREATE TABLE shop_db.customers (id int)")
    assert pg_project.can("alice", "CREATE TABLE dev_alice.scratch (id int)")
    # Before: review, plan and security check all read "nothing found", while alice (who
    # reads marts) could delete every row.
    assert pg_project.can("alice", "DELETE FROM marts.orders")
    outside = pg_project.context().access().review("prod").outside_declaration
    owned = [e for e in outside if e.startswith("owner: ")]
    assert len(owned) == 1 and "owns table marts.orders" in owned[0], outside
    checked = pg_project.context().security_check("prod")
    excess = [f for f in checked.findings if f.check == "excess-privileges"]
    assert any("marts.orders" in f.message for f in excess), checked.findings


def test_inheritance_turned_off_by_hand_is_turned_back_on(pg_project: PgProject) -> None:
    """Before: NOINHERIT on a user or a chain role left it without the privileges of its
    roles while the plan said "no changes"."""
    pg_project.write(PEOPLE)
    _apply(pg_project)
    rita, chain = pg_project.role("rita"), pg_project.role("analytics_sources_reader")
    with pg_project.connect() as admin:
        admin.execute("CREATE TABLE reporting.revenue (amount int)")
        admin.execute("CREATE TABLE shop_db.customers (id int)")
        admin.execute(f'ALTER ROLE "{rita}" NOINHERIT')
        admin.execute(f'ALTER ROLE "{chain}" NOINHERIT')
    assert not pg_project.can("rita", "SELECT * FROM reporting.revenue")
    assert not pg_project.can("alice", "SELECT * FROM shop_db.customers")
    plan = pg_project.context().access().plan("prod")
    assert sorted(plan.statements()) == [
        f'ALTER ROLE "{chain}" INHERIT',
        f'ALTER ROLE "{rita}" INHERIT',
    ]
    _apply(pg_project)
    assert pg_project.can("rita", "SELECT * FROM reporting.revenue")
    assert pg_project.can("alice", "SELECT * FROM shop_db.customers")
    assert not pg_project.context().access().plan("prod").has_changes


def test_a_database_wide_default_privilege_to_a_declared_role_is_revoked(
    pg_project: PgProject,
) -> None:
    """Before: set without IN SCHEMA, it was not read: the plan said "no changes" and rita could
    delete from every table the admin made later."""
    pg_project.write(PEOPLE)
    _apply(pg_project)
    rita, admin_role = pg_project.role("rita"), pg_project.admin
    with pg_project.connect() as admin:
        admin.execute(
            f'ALTER DEFAULT PRIVILEGES FOR ROLE "{admin_role}" GRANT DELETE ON TABLES TO "{rita}"'
        )
        admin.execute("CREATE TABLE reporting.revenue (amount int)")
    assert pg_project.can("rita", "DELETE FROM reporting.revenue")
    plan = pg_project.context().access().plan("prod")
    revoke = (
        f'ALTER DEFAULT PRIVILEGES FOR ROLE "{admin_role}" REVOKE DELETE ON TABLES FROM "{rita}"'
    )
    assert revoke in [s.statement for s in plan.steps if s.destructive]
    review = pg_project.context().access().review("prod")
    assert (
        f"revoke DELETE on future tables in every schema created by {admin_role} from {rita} "
        "(pending: on a declared role)"
    ) in review.outside_declaration
    _apply(pg_project, allow_destructive=True)
    with pg_project.connect() as admin:
        rows = admin.execute("SELECT count(*) FROM pg_default_acl WHERE defaclnamespace = 0")
        assert rows.fetchone() == (0,)
        admin.execute("CREATE TABLE reporting.later (amount int)")
    assert not pg_project.can("rita", "DELETE FROM reporting.later")
    assert not pg_project.context().access().plan("prod").has_changes
