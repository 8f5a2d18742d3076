"""The live access-control state of a Postgres database, read from its catalog.

Read: ``pg_roles``, ``pg_auth_members`` (with ``admin_option``), the ACLs of the target's own
``pg_database`` row, of ``pg_namespace``, ``pg_class`` and ``pg_attribute`` (column
privileges) through ``aclexplode`` (with ``is_grantable``), and ``pg_default_acl``
(https://www.postgresql.org/docs/current/catalog-pg-default-acl.html).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from stackyard.infra.state import (
    Account,
    Container,
    FutureGrant,
    Grant,
    InactiveUser,
    Membership,
    Principal,
    State,
    Table,
)

_PG_SYSTEM_SCHEMAS = "n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'"
_PG_GRANTEE = "CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END"
# What PUBLIC holds on every database unless revoked: Postgres's own default, granted by
# nobody (https://www.postgresql.org/docs/current/ddl-priv.html, "default privileges").
_PUBLIC_DATABASE_DEFAULTS = frozenset({"CONNECT", "TEMPORARY"})

PG_ROLES_SQL = """
SELECT r.rolname, r.rolcanlogin, coalesce(shobj_description(r.oid, 'pg_authid'), ''),
       r.rolvaliduntil IS NOT NULL AND r.rolvaliduntil < now(),
       concat_ws(',', CASE WHEN r.rolsuper THEN 'SUPERUSER' END,
                 CASE WHEN r.rolcreaterole THEN 'CREATEROLE' END,
                 CASE WHEN r.rolcreatedb THEN 'CREATEDB' END,
                 CASE WHEN r.rolreplication THEN 'REPLICATION' END,
                 CASE WHEN r.rolbypassrls THEN 'BYPASSRLS' END),
       r.rolname = current_user, r.rolinherit
FROM pg_roles r WHERE r.rolname !~ '^pg_'
"""
PG_MEMBERSHIPS_SQL = """
SELECT g.rolname, m.rolname, am.admin_option FROM pg_auth_members am
JOIN pg_roles g ON g.oid = am.roleid JOIN pg_roles m ON m.oid = am.member
"""
PG_DATABASE_SQL = f"""
SELECT d.datname, pg_get_userbyid(d.datdba), {_PG_GRANTEE}, a.privilege_type, a.is_grantable
FROM pg_database d LEFT JOIN LATERAL aclexplode(d.datacl) a ON true
WHERE d.datname = current_database()
"""
PG_SCHEMAS_SQL = f"""
SELECT n.nspname, pg_get_userbyid(n.nspowner), {_PG_GRANTEE}, a.privilege_type, a.is_grantable
FROM pg_namespace n LEFT JOIN LATERAL aclexplode(n.nspacl) a ON true
WHERE {_PG_SYSTEM_SCHEMAS}
"""
PG_TABLES_SQL = f"""
SELECT n.nspname, c.relname, c.relkind::text, pg_get_userbyid(c.relowner), {_PG_GRANTEE},
       a.privilege_type, a.is_grantable
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN LATERAL aclexplode(c.relacl) a ON true
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND {_PG_SYSTEM_SCHEMAS}
"""
PG_COLUMNS_SQL = f"""
SELECT n.nspname, c.relname, att.attname, pg_get_userbyid(c.relowner), {_PG_GRANTEE},
       a.privilege_type, a.is_grantable
FROM pg_attribute att JOIN pg_class c ON c.oid = att.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace, LATERAL aclexplode(att.attacl) a
WHERE att.attnum > 0 AND NOT att.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND {_PG_SYSTEM_SCHEMAS}
"""
PG_DEFAULT_ACL_SQL = f"""
SELECT pg_get_userbyid(d.defaclrole), n.nspname, {_PG_GRANTEE}, a.privilege_type
FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace
CROSS JOIN LATERAL aclexplode(d.defaclacl) a
WHERE d.defaclobjtype = 'r'
"""
_QUERIES = {
    "roles": PG_ROLES_SQL,
    "memberships": PG_MEMBERSHIPS_SQL,
    "database": PG_DATABASE_SQL,
    "schemas": PG_SCHEMAS_SQL,
    "tables": PG_TABLES_SQL,
    "columns": PG_COLUMNS_SQL,
    "default_acl": PG_DEFAULT_ACL_SQL,
}


def pg_principal(name: str) -> Principal:
    """A Postgres role (users are roles there) or PUBLIC.

    >>> pg_principal("PUBLIC").kind
    'public'
    """
    return Principal("public", "PUBLIC") if name == "PUBLIC" else Principal("role", name)


def postgres_state(rows: Mapping[str, Iterable[tuple[Any, ...]]]) -> State:
    """The live state from the rows of the ``PG_*_SQL`` queries (keys: roles, memberships,
    database, schemas, tables, columns, default_acl).

    Privileges an owner holds on its own object are left out: they come with ownership,
    nobody granted them, and no plan should revoke them. So are PUBLIC's CONNECT and
    TEMPORARY on the database, which every database gives PUBLIC unless revoked.
    """
    accounts = set()
    inactive = []
    for name, can_login, comment, expired, powers, connected, inherit in rows["roles"]:
        # powers: the role's attributes beyond LOGIN (SUPERUSER, CREATEROLE …), which no
        # declared role has; left out for the target's own user, whose powers stay its own
        # (taking CREATEROLE from it would stop every later apply).
        attrs = (
            ("login", "true" if can_login else "false"),
            ("powers", "" if connected else str(powers)),
            # NOINHERIT: the role does not use the privileges of the roles granted to it.
            ("inherit", "true" if inherit else "false"),
        )
        accounts.add(Account(pg_principal(name), attrs, comment))
        if can_login and expired:
            inactive.append(InactiveUser(name, "password expired (VALID UNTIL is in the past)"))
    memberships = set()
    admin_options = set()
    for role, member, admin in rows["memberships"]:
        membership = Membership(pg_principal(role), pg_principal(member))
        memberships.add(membership)
        if admin:
            admin_options.add(membership)
    containers = set()
    grants = set()
    grant_options = set()

    def add(grant: Grant, grantable: bool) -> None:
        grants.add(grant)
        if grantable:
            grant_options.add(grant)

    for database, owner, grantee, privilege, grantable in rows.get("database", ()):
        containers.add(Container("database", (database,)))
        public_default = grantee == "PUBLIC" and privilege in _PUBLIC_DATABASE_DEFAULTS
        if grantee is not None and grantee != owner and not public_default:
            add(Grant(privilege, "DATABASE", (database,), pg_principal(grantee)), grantable)
    for schema, owner, grantee, privilege, grantable in rows["schemas"]:
        # Its owner uses it without a grant: the review needs it to tell who can reach a table.
        containers.add(Container("schema", (schema,), (("owner", owner),)))
        if grantee is not None and grantee != owner:
            add(Grant(privilege, "SCHEMA", (schema,), pg_principal(grantee)), grantable)
    tables = set()
    for schema, name, relkind, owner, grantee, privilege, grantable in rows["tables"]:
        kind = "VIEW" if relkind in ("v", "m") else "TABLE"
        tables.add(Table((schema,), name, owner, kind))
        if grantee is not None and grantee != owner:
            add(Grant(privilege, "TABLE", (schema, name), pg_principal(grantee)), grantable)
    # A column's own privileges (GRANT UPDATE (col) ON …) are apart from its table's: a
    # REVOKE on the table leaves them (https://www.postgresql.org/docs/current/sql-revoke.html).
    for schema, name, column, owner, grantee, privilege, grantable in rows.get("columns", ()):
        if grantee != owner:
            add(
                Grant(privilege, "COLUMN", (schema, name, column), pg_principal(grantee)), grantable
            )
    # A default privilege set without IN SCHEMA (defaclnamespace 0, no schema) covers the
    # tables its creator makes in every schema: its schema path is empty. Postgres's built-in
    # defaults are not rows here, so only what someone set is read.
    future = {
        FutureGrant(
            privilege, "TABLES", () if schema is None else (schema,), pg_principal(grantee), creator
        )
        for creator, schema, grantee, privilege in rows["default_acl"]
        if grantee != creator
    }
    return State(
        containers=frozenset(containers),
        accounts=frozenset(accounts),
        memberships=frozenset(memberships),
        grants=frozenset(grants),
        future_grants=frozenset(future),
        tables=frozenset(tables),
        inactive_users=tuple(sorted(inactive, key=lambda u: u.name)),
        grant_options=frozenset(grant_options),
        admin_options=frozenset(admin_options),
    )


def read_postgres_state(connection: Any) -> State:
    """Read the live state of the connected Postgres database.

    Args:
        connection: an open psycopg connection.

    Returns:
        Roles (cluster-wide) and the database's own, its schemas', tables' and grants.
    """
    rows: dict[str, list[tuple[Any, ...]]] = {}
    with connection.cursor() as cursor:
        for key, sql in _QUERIES.items():
            cursor.execute(sql)
            rows[key] = list(cursor.fetchall())
    return postgres_state(rows)
