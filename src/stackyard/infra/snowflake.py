"""Access control on Snowflake: the declaration compiled to Snowflake SQL.

Databases and their ``<DB>_DB_READER``/``<DB>_DB_WRITER`` *database roles*, account roles,
warehouses, ``TYPE = SERVICE`` users with ``RSA_PUBLIC_KEY``/``RSA_PUBLIC_KEY_2`` and
``TYPE = PERSON`` users, grants on existing objects and ``FUTURE`` grants. Database roles can
hold privileges only on objects in their own database and cannot be granted to users
(https://docs.snowflake.com/en/user-guide/security-access-control-overview#database-roles),
which the compiler checks.

Identifiers are written bare when Snowflake would read them unchanged (upper case letters,
digits, ``_``, not a reserved word) and quoted by sqlglot otherwise, so a hostile name can
only ever be one quoted identifier.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence
from typing import Any, ClassVar

from sqlglot import exp

from stackyard.errors import ConfigError
from stackyard.infra.declaration import DEFAULT_LOADER, PUBLIC, Declaration, writer_role
from stackyard.infra.engine import READ_TABLE_PRIVILEGES, WRITE_TABLE_PRIVILEGES, Engine
from stackyard.infra.state import (
    Account,
    Container,
    FutureGrant,
    Grant,
    Membership,
    Principal,
    State,
)
from stackyard.warehouse.cloud import SnowflakeWarehouse

_BARE = re.compile(r"^[A-Z_][A-Z0-9_$]*$")
# docs.snowflake.com/en/sql-reference/reserved-keywords
_RESERVED = frozenset(
    [
        "ACCOUNT",
        "ALL",
        "ALTER",
        "AND",
        "ANY",
        "AS",
        "BETWEEN",
        "BY",
        "CASE",
        "CAST",
        "CHECK",
        "COLUMN",
        "CONNECT",
        "CONNECTION",
        "CONSTRAINT",
        "CREATE",
        "CROSS",
        "CURRENT",
        "CURRENT_DATE",
        "CURRENT_TIME",
        "CURRENT_TIMESTAMP",
        "CURRENT_USER",
        "DATABASE",
        "DELETE",
        "DISTINCT",
        "DROP",
        "ELSE",
        "EXISTS",
        "FALSE",
        "FOLLOWING",
        "FOR",
        "FROM",
        "FULL",
        "GRANT",
        "GROUP",
        "GSCLUSTER",
        "HAVING",
        "ILIKE",
        "IN",
        "INCREMENT",
        "INNER",
        "INSERT",
        "INTERSECT",
        "INTO",
        "IS",
        "ISSUE",
        "JOIN",
        "LATERAL",
        "LEFT",
        "LIKE",
        "LOCALTIME",
        "LOCALTIMESTAMP",
        "MINUS",
        "NATURAL",
        "NOT",
        "NULL",
        "OF",
        "ON",
        "OR",
        "ORDER",
        "ORGANIZATION",
        "QUALIFY",
        "REGEXP",
        "REVOKE",
        "RIGHT",
        "RLIKE",
        "ROW",
        "ROWS",
        "SAMPLE",
        "SCHEMA",
        "SELECT",
        "SET",
        "SOME",
        "START",
        "TABLE",
        "TABLESAMPLE",
        "THEN",
        "TO",
        "TRIGGER",
        "TRUE",
        "TRY_CAST",
        "UNION",
        "UNIQUE",
        "UPDATE",
        "USING",
        "VALUES",
        "VIEW",
        "WHEN",
        "WHENEVER",
        "WHERE",
        "WITH",
    ]
)
_ORDER = (
    "USAGE",
    "CREATE TABLE",
    "CREATE VIEW",
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "TRUNCATE",
)
SCHEMA_WRITE_PRIVILEGES = ("CREATE TABLE", "CREATE VIEW")


def ident(*parts: str) -> str:
    """A Snowflake name, bare when that reads back unchanged, else quoted.

    >>> ident("DLT", "SHOP_DB")
    'DLT.SHOP_DB'
    >>> ident("DLT", 'we"ird; x')
    'DLT."we""ird; x"'
    """
    out = []
    for part in parts:
        if _BARE.match(part) and part not in _RESERVED:
            out.append(part)
        else:
            out.append(SnowflakeWarehouse.quote_for(part))
    return ".".join(out)


def literal(text: str) -> str:
    """A Snowflake string literal.

    >>> literal("it's")
    "'it\\\\'s'"
    """
    return exp.Literal.string(text).sql(dialect="snowflake")


def key_body(pem: str) -> str:
    """The base64 body of a PEM public key, as ``RSA_PUBLIC_KEY`` takes it.

    >>> key_body("-----BEGIN PUBLIC KEY-----\\nAAAA\\nBBBB\\n-----END PUBLIC KEY-----\\n")
    'AAAABBBB'
    """
    body = re.sub(r"-----(BEGIN|END) [A-Z ]+-----", "", pem)
    return "".join(body.split())


def key_fingerprint(pem: str) -> str:
    """The fingerprint Snowflake shows in ``DESC USER`` (``RSA_PUBLIC_KEY_FP``): SHA-256 of
    the DER public key, base64 (docs.snowflake.com/en/user-guide/key-pair-auth).

    Raises:
        ConfigError: the text is not a base64 key.
    """
    try:
        der = base64.b64decode(key_body(pem), validate=True)
    except ValueError:
        raise ConfigError(
            "a public key in access.service_accounts is not valid PEM/base64",
            hint="regenerate it with `stackyard user rotate-key NAME`",
        ) from None
    return "SHA256:" + base64.b64encode(hashlib.sha256(der).digest()).decode()


class SnowflakeEngine(Engine):
    """Compiles a declaration to Snowflake objects, grants and future grants."""

    KIND: ClassVar[str] = "snowflake"
    DIALECT: ClassVar[str] = "snowflake"
    DATABASE_ROLES: ClassVar[bool] = True

    @classmethod
    def for_target(cls, declaration: Declaration, target: Any) -> Engine:
        """The engine, once the target's dlt and dbt settings agree with the plan: dlt
        loads into the dlt loader database, dbt builds into a database its role writes.

        Raises:
            ConfigError: they disagree; the message names both sides.
        """
        where = "targets (snowflake)"
        loading = [d.name for d in declaration.loader_databases() if d.loader == DEFAULT_LOADER]
        if loading and target.database.upper() not in loading:
            raise ConfigError(
                f"{where}: database '{target.database}' is where dlt loads, but the access plan "
                f"gives the dlt loader database {loading[0]}",
                hint=f"set the target's database: {loading[0]} (dbt builds into "
                "transform.database)",
            )
        build = target.transform
        database = declaration.database(build.database)
        if database is None or writer_role(database.name) not in declaration.roles_held(build.role):
            raise ConfigError(
                f"{where}: dbt builds into database '{build.database}' as role '{build.role}', "
                "which the access plan does not let write it",
                hint="set transform.database to access.analytics_database (ANALYTICS) and "
                "transform.role to ANALYTICS_TRANSFORMER, or grant that role the database's "
                "writer under access:",
            )
        return super().for_target(declaration, target)

    def __init__(self, declaration: Declaration, admin_user: str = "") -> None:
        super().__init__(declaration, admin_user)
        for membership in self._memberships():
            role, member = membership.role, membership.member
            if role.kind == "database_role" and member.kind == "user":
                raise ConfigError(
                    f"{role.label} is a database role, which Snowflake cannot grant to user "
                    f"{member.name}",
                    hint="grant it to an account role (e.g. ANALYTICS_SOURCES_READER) and give "
                    "the user that role",
                )
            if role.kind == "role" and member.kind == "database_role":
                raise ConfigError(
                    f"account role {role.name} cannot be granted to database role "
                    f"{member.label} in Snowflake",
                    hint="grant the database role to the account role instead",
                )

    def principal(self, declared: str, as_user: bool = False) -> Principal:
        """The principal of a declared role or user."""
        name = declared.upper()
        if name == PUBLIC:
            return Principal("public", PUBLIC)
        if as_user:
            return Principal("user", name)
        role = self.declaration.role(name)
        if role is not None and role.database:
            return Principal("database_role", name, role.database)
        if role is None and self.declaration.user(name) is not None:
            return Principal("user", name)
        return Principal("role", name)

    def _memberships(self) -> set[Membership]:
        decl = self.declaration
        out = {
            Membership(self.principal(m.role), self.principal(m.member)) for m in decl.memberships
        }
        for user in decl.users:
            if user.kind == "service":
                for role in user.roles:
                    out.add(Membership(self.principal(role), self.principal(user.name, True)))
        return out

    # ------------------------------------------------------------------ desired state

    def desired(self, live: State) -> State:
        decl = self.declaration
        containers: set[Container] = set()
        for db in decl.databases:
            containers.add(Container("database", (db.name,)))
            containers |= {Container("schema", (db.name, s.upper())) for s in db.schemas}
        for wh in decl.warehouses:
            attrs = (("auto_suspend", str(wh.auto_suspend_seconds)), ("size", wh.size))
            containers.add(Container("warehouse", (wh.name,), attrs))
        accounts: set[Account] = set()
        for role in decl.roles:
            accounts.add(Account(self.principal(role.name), (), role.comment or ""))
        for user in decl.users:
            keys = [
                ("rsa_public_key", user.rsa_public_key),
                ("rsa_public_key_2", user.rsa_public_key_2),
            ]
            # A service logs in with a key pair only; a person's password (or SSO) is theirs.
            password = (("has_password", "false"),) if user.kind == "service" else ()
            attrs = (
                ("default_role", user.default_role or ""),
                ("default_warehouse", user.default_warehouse or ""),
                *password,
                (
                    "rsa_public_key_2_fp",
                    key_fingerprint(user.rsa_public_key_2) if user.rsa_public_key_2 else "",
                ),
                (
                    "rsa_public_key_fp",
                    key_fingerprint(user.rsa_public_key) if user.rsa_public_key else "",
                ),
                ("type", "SERVICE" if user.kind == "service" else "PERSON"),
            )
            payload = tuple((k, key_body(v)) for k, v in keys if v)
            accounts.add(
                Account(self.principal(user.name, True), attrs, user.comment or "", payload)
            )
        grants: set[Grant] = set()
        future: set[FutureGrant] = set()
        tables: dict[tuple[str, ...], list[tuple[str, str, str]]] = {}
        for table in live.tables:
            tables.setdefault(table.schema, []).append((table.name, table.owner, table.kind))
        for access in decl.access:
            grantee = self.principal(access.role)
            schema = (access.database, access.schema.upper())
            write = access.level == "write"
            table_privileges = WRITE_TABLE_PRIVILEGES if write else READ_TABLE_PRIVILEGES
            grants.add(Grant("USAGE", "DATABASE", (access.database,), grantee))
            grants.add(Grant("USAGE", "SCHEMA", schema, grantee))
            if write:
                grants |= {Grant(p, "SCHEMA", schema, grantee) for p in SCHEMA_WRITE_PRIVILEGES}
            for name, owner, kind in tables.get(schema, []):
                if owner == grantee.name:
                    continue
                for privilege in table_privileges if kind == "TABLE" else ("SELECT",):
                    grants.add(Grant(privilege, "TABLE", (*schema, name), grantee))
            future |= {FutureGrant(p, "TABLES", schema, grantee) for p in table_privileges}
            future.add(FutureGrant("SELECT", "VIEWS", schema, grantee))
        for wa in decl.warehouse_access:
            grants.add(Grant("USAGE", "WAREHOUSE", (wa.warehouse,), self.principal(wa.role)))
        return State(
            containers=frozenset(containers),
            accounts=frozenset(accounts),
            memberships=frozenset(self._memberships()),
            grants=frozenset(grants),
            future_grants=frozenset(future),
            tables=live.tables,
        )

    # ------------------------------------------------------------------ statements

    def grantee(self, principal: Principal) -> str:
        """``ROLE X``, ``DATABASE ROLE DB.X`` or ``USER X``."""
        if principal.kind == "database_role":
            return f"DATABASE ROLE {ident(principal.database, principal.name)}"
        if principal.kind == "user":
            return f"USER {ident(principal.name)}"
        return f"ROLE {ident(principal.name)}"

    def create_container(self, container: Container) -> list[str]:
        name = ident(*container.name)
        if container.kind == "database":
            db = self.declaration.database(container.name[0])
            comment = f" COMMENT = {literal(db.comment)}" if db and db.comment else ""
            return [f"CREATE DATABASE IF NOT EXISTS {name}{comment}"]
        if container.kind == "warehouse":
            attrs = dict(container.attrs)
            return [
                f"CREATE WAREHOUSE IF NOT EXISTS {name} WAREHOUSE_SIZE = {attrs['size']} "
                f"AUTO_SUSPEND = {int(attrs['auto_suspend'])} AUTO_RESUME = TRUE "
                "INITIALLY_SUSPENDED = TRUE"
            ]
        return [f"CREATE SCHEMA IF NOT EXISTS {name}"]

    def alter_container(self, old: Container, new: Container) -> list[str]:
        attrs = dict(new.attrs)
        return [
            f"ALTER WAREHOUSE {ident(*new.name)} SET WAREHOUSE_SIZE = {attrs['size']} "
            f"AUTO_SUSPEND = {int(attrs['auto_suspend'])}"
        ]

    def create_account(self, account: Account, marker: str) -> list[str]:
        p = account.principal
        comment = literal(f"{account.comment} {marker}".strip())
        if p.kind == "database_role":
            return [
                f"CREATE DATABASE ROLE IF NOT EXISTS {ident(p.database, p.name)} "
                f"COMMENT = {comment}"
            ]
        if p.kind == "role":
            return [f"CREATE ROLE IF NOT EXISTS {ident(p.name)} COMMENT = {comment}"]
        attrs = dict(account.attrs)
        payload = dict(account.payload)
        parts = [f"CREATE USER IF NOT EXISTS {ident(p.name)} TYPE = {attrs['type']}"]
        if attrs["default_role"]:
            parts.append(f"DEFAULT_ROLE = {ident(attrs['default_role'])}")
        if attrs["default_warehouse"]:
            parts.append(f"DEFAULT_WAREHOUSE = {ident(attrs['default_warehouse'])}")
        for key in ("rsa_public_key", "rsa_public_key_2"):
            if key in payload:
                parts.append(f"{key.upper()} = {literal(payload[key])}")
        parts.append(f"COMMENT = {comment}")
        return [" ".join(parts)]

    def alter_account(self, old: Account, new: Account) -> list[tuple[str, bool]]:
        if new.principal.kind != "user":
            return []
        name = ident(new.principal.name)
        before, after, payload = dict(old.attrs), dict(new.attrs), dict(new.payload)
        out: list[tuple[str, bool]] = []
        sets = []
        for key in ("type", "default_role", "default_warehouse"):
            if before.get(key, "") != after[key] and after[key]:
                value = after[key] if key == "type" else ident(after[key])
                sets.append(f"{key.upper()} = {value}")
            elif before.get(key, "") != after[key]:
                out.append((f"ALTER USER {name} UNSET {key.upper()}", False))
        if sets:
            out.insert(0, (f"ALTER USER {name} SET {' '.join(sets)}", False))
        # Slot 2 first, then slot 1: during a rotation some slot always holds a live key.
        for key in ("rsa_public_key_2", "rsa_public_key"):
            fp = f"{key}_fp"
            if before.get(fp, "") == after[fp]:
                continue
            if after[fp]:
                statement = f"ALTER USER {name} SET {key.upper()} = {literal(payload[key])}"
                out.append((statement, bool(before.get(fp))))
            else:
                out.append((f"ALTER USER {name} UNSET {key.upper()}", True))
        if before.get("has_password") == "true" and after.get("has_password") == "false":
            out.append((f"ALTER USER {name} UNSET PASSWORD", True))
        return out

    def drop_account(self, account: Account) -> list[str]:
        p = account.principal
        if p.kind == "user":
            return [f"DROP USER IF EXISTS {ident(p.name)}"]
        if p.kind == "role":
            return [f"DROP ROLE IF EXISTS {ident(p.name)}"]
        return []  # database roles go with their database, which stackyard never drops

    def _role_ref(self, principal: Principal) -> str:
        if principal.kind == "database_role":
            return f"DATABASE ROLE {ident(principal.database, principal.name)}"
        return f"ROLE {ident(principal.name)}"

    def grant_membership(self, membership: Membership) -> str:
        return f"GRANT {self._role_ref(membership.role)} TO {self.grantee(membership.member)}"

    def revoke_membership(self, membership: Membership) -> str:
        return f"REVOKE {self._role_ref(membership.role)} FROM {self.grantee(membership.member)}"

    def grant(self, grants: Sequence[Grant], revoke: bool = False) -> str:
        first = grants[0]
        rank = {p: i for i, p in enumerate(_ORDER)}
        privileges = ", ".join(sorted({g.privilege for g in grants}, key=lambda p: rank.get(p, 99)))
        target = f"{first.on_kind} {ident(*first.on)}"
        verb, prep = ("REVOKE", "FROM") if revoke else ("GRANT", "TO")
        return f"{verb} {privileges} ON {target} {prep} {self.grantee(first.grantee)}"

    def grant_future(self, grants: Sequence[FutureGrant], revoke: bool = False) -> str:
        first = grants[0]
        rank = {p: i for i, p in enumerate(_ORDER)}
        privileges = ", ".join(sorted({g.privilege for g in grants}, key=lambda p: rank.get(p, 99)))
        verb, prep = ("REVOKE", "FROM") if revoke else ("GRANT", "TO")
        return (
            f"{verb} {privileges} ON FUTURE {first.on_kind} IN SCHEMA {ident(*first.schema)} "
            f"{prep} {self.grantee(first.grantee)}"
        )
