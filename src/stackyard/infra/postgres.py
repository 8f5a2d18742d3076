"""Access control on Postgres: the declaration mapped onto one database and its server's roles.

The mapping (docs/access-control.md has the table):

* every declared database is the target's one Postgres database; their schemas sit side by
  side in it, so a schema name may be declared in only one of them;
* account roles and database roles are both plain roles, ``NOLOGIN``, named in lower case
  with ``access.role_prefix`` in front (``DLT_DB_READER`` → ``dlt_db_reader``);
* people and service accounts are ``LOGIN`` roles; a service account's dedicated role is the
  login role itself, since Postgres users are roles;
* warehouses and key pairs have no Postgres equivalent and are reported as notes;
* read on a schema is ``USAGE`` plus ``SELECT`` on its tables; write adds ``CREATE`` and
  ``INSERT, UPDATE, DELETE, TRUNCATE``; tables created later get the same through
  ``ALTER DEFAULT PRIVILEGES FOR ROLE <creator>``, set for every login role that may create
  tables in the schema and for the target's own user (which ``stackyard run`` connects as).
  Default privileges apply per creating role
  (https://www.postgresql.org/docs/current/sql-alterdefaultprivileges.html).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import ClassVar

from sqlglot import exp

from stackyard.config.names import reserved_reason
from stackyard.errors import ConfigError, UsageError
from stackyard.infra.declaration import PUBLIC, Declaration
from stackyard.infra.engine import (
    READ_TABLE_PRIVILEGES,
    WRITE_TABLE_PRIVILEGES,
    Engine,
    StatementFailed,
)
from stackyard.infra.postgres_applier import read_applier, role_rules
from stackyard.infra.state import (
    Account,
    Container,
    FutureGrant,
    Grant,
    Membership,
    Principal,
    State,
    another_prefix,
)
from stackyard.warehouse.base import Warehouse
from stackyard.warehouse.postgres import PostgresWarehouse

_ORDER = (
    "CONNECT",
    "USAGE",
    "CREATE",
    "TEMPORARY",
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "TRUNCATE",
)


def _ordered(privileges: Sequence[str], column: str = "") -> str:
    """Privileges in the order GRANT lists them; on a column, each names it (quoted).

    >>> _ordered(["UPDATE", "SELECT", "UPDATE"], '"c"')
    'SELECT ("c"), UPDATE ("c")'
    """
    rank = {p: i for i, p in enumerate(_ORDER)}
    suffix = f" ({column})" if column else ""
    return ", ".join(
        p + suffix for p in sorted(set(privileges), key=lambda p: (rank.get(p, 99), p))
    )


def _literal(text: str) -> str:
    return exp.Literal.string(text).sql(dialect="postgres")


class PostgresEngine(Engine):
    """Compiles a declaration to Postgres roles, grants and default privileges."""

    KIND: ClassVar[str] = "postgres"
    DIALECT: ClassVar[str] = "postgres"
    USERS_ARE_ROLES: ClassVar[bool] = True
    TABLES_NEED_SCHEMA_USAGE: ClassVar[bool] = True

    def __init__(self, declaration: Declaration, admin_user: str = "") -> None:
        super().__init__(declaration, admin_user)
        seen: dict[str, str] = {}
        for database in declaration.databases:
            for schema in database.schemas:
                if schema in seen and seen[schema] != database.name:
                    raise ConfigError(
                        f"schema '{schema}' is declared in databases {seen[schema]} and "
                        f"{database.name}; on Postgres both are the target's one database",
                        hint="rename one of the schemas (docs/access-control.md: Postgres mapping)",
                    )
                seen[schema] = database.name

    def read_state(self, warehouse: Warehouse) -> State:
        from stackyard.infra.postgres_catalog import read_postgres_state

        connection = warehouse.raw_connection()  # type: ignore[attr-defined]
        state = read_postgres_state(connection)
        return replace(state, applier=read_applier(connection))

    def check_can_apply(self, live: State) -> None:
        """Refuse, before planning, an applying user without the rights apply needs."""
        applier = live.applier
        if applier is None or applier.superuser:
            return
        missing = []
        if not applier.createrole:
            missing.append(f"CREATEROLE (ALTER ROLE {self.q(applier.name)} CREATEROLE)")
        if not applier.create_on_database:
            missing.append(
                "CREATE on the database (make it the owner: ALTER DATABASE … OWNER TO "
                f"{self.q(applier.name)})"
            )
        if missing:
            raise UsageError(
                f"the target's user '{applier.name}' is not a superuser and lacks "
                f"{' and '.join(missing)}: nothing was planned",
                hint="apply needs a superuser, or a user with CREATEROLE that owns the "
                "database (docs/access-control.md, Postgres)",
            )

    def applier_grants(
        self, live: State, acts_as: set[str], grants: set[str]
    ) -> list[tuple[str, str]]:
        """Memberships a non-superuser applier needs first: PostgreSQL lets a user set
        default privileges for, or reassign the objects of, only roles it is a member of
        (https://www.postgresql.org/docs/current/sql-alterdefaultprivileges.html,
        https://www.postgresql.org/docs/current/sql-reassign-owned.html).

        From PostgreSQL 16 CREATEROLE acts only on roles held WITH ADMIN OPTION, which the
        creator of a role gets; a role made by someone else must be granted so first
        (https://www.postgresql.org/docs/16/release-16.html, "CREATEROLE").

        Args:
            live: the live state, with its applier.
            acts_as: roles the plan sets default privileges for or drops.
            grants: existing roles the plan grants, alters or comments on.

        Raises:
            UsageError: PostgreSQL 16+ and the applier holds an existing role without ADMIN
                OPTION; nothing is planned.
        """
        applier = live.applier
        if applier is None or applier.superuser:
            return []
        rules = role_rules(applier.server_version)
        existing = {a.principal.name for a in live.accounts}
        if rules.createrole_needs_admin:
            lacking = sorted(
                r for r in (acts_as | grants) & existing if r not in applier.administers
            )
            if lacking:
                raise UsageError(
                    f"the target's user '{applier.name}' has CREATEROLE but not ADMIN OPTION "
                    f"on {', '.join(lacking)}, which PostgreSQL 16+ needs to change a role it "
                    "did not create: nothing was planned",
                    hint="as a superuser: "
                    + "; ".join(
                        f"GRANT {self.q(r)} TO {self.q(applier.name)} WITH ADMIN OPTION"
                        for r in lacking
                    ),
                )
        needed = sorted(r for r in acts_as if r and r != applier.name)
        return [
            (
                f"GRANT {self.q(r)} TO {self.q(applier.name)}",
                f"grant role {r} to the applying user {applier.name}, so it may set {r}'s "
                "default privileges and reassign its objects",
            )
            for r in needed
            if r not in applier.usable
        ]

    @classmethod
    def execute(cls, statements: Sequence[str], warehouse: Warehouse) -> int:
        import psycopg

        done = 0
        try:
            with warehouse.transaction() as cursor:  # type: ignore[attr-defined]
                for statement in statements:
                    cursor.execute(statement)
                    done += 1
        except psycopg.Error as exc:
            raise StatementFailed(done, str(exc).strip()) from None
        return done

    def name(self, declared: str) -> str:
        """The Postgres role name of a declared role or user.

        >>> from stackyard.infra.declaration import Declaration
        >>> e = PostgresEngine(Declaration("p", (), (), (), (), (), (), (), role_prefix="t_"))
        >>> e.name("SVC_DLT")
        't_svc_dlt'
        """
        if declared.upper() == PUBLIC:
            return PUBLIC
        return f"{self.declaration.role_prefix}{declared.lower()}"

    def principal(self, declared: str) -> Principal:
        """The principal of a declared role or user."""
        if declared.upper() == PUBLIC:
            return Principal("public", PUBLIC)
        return Principal("role", self.name(declared))

    def takes_back_from(self, holder: Principal, live: State) -> bool:
        """A declared role held by an undeclared role of this project's prefix is taken back,
        as a grant made by hand to a declared role is.

        Roles are shared by the whole server, so a role outside the prefix is another
        project's; the applying user holds roles to apply plans (see :meth:`applier_grants`);
        ``postgres`` and the ``pg_*`` roles are the server's own.

        >>> from stackyard.infra.declaration import Declaration
        >>> e = PostgresEngine(Declaration("p", (), (), (), (), (), (), (), role_prefix="t_"),
        ...     admin_user="t_admin")
        >>> [e.takes_back_from(Principal("role", n), State()) for n in ("t_bob", "bob", "t_admin")]
        [True, False, False]
        """
        applier = live.applier.name if live.applier else ""
        prefix = self.declaration.role_prefix
        comment = next((a.comment for a in live.accounts if a.principal == holder), "")
        return (
            holder.kind == "role"
            and holder.name.lower().startswith(prefix.lower())
            and not another_prefix(comment, prefix)
            and holder.name not in {self.admin_user, applier}
            and reserved_reason(holder.name) is None
        )

    # ------------------------------------------------------------------ desired state

    def desired(self, live: State) -> State:
        decl = self.declaration
        schemas = {Container("schema", (schema,)) for db in decl.databases for schema in db.schemas}
        # No declared role or user holds SUPERUSER, CREATEROLE … ("powers"): one given by hand
        # is drift, taken back like a grant. Every one inherits: a NOINHERIT role set by hand
        # would lose the privileges of the roles the declaration grants it.
        accounts = {
            Account(self.principal(r.name), _attrs("false"), r.comment or "")
            for r in decl.roles
            if r.dedicated_to is None
        }
        accounts |= {
            Account(self.principal(u.name), _attrs("true"), u.comment or "") for u in decl.users
        }
        memberships = {
            Membership(self.principal(m.role), self.principal(m.member))
            for m in decl.memberships
            if self.name(m.role) != self.name(m.member)
        }
        creators = self._creators()
        tables_by_schema: dict[str, list[tuple[str, str]]] = {}
        for table in live.tables:
            tables_by_schema.setdefault(table.schema[0], []).append((table.name, table.owner))
        grants: set[Grant] = set()
        future: set[FutureGrant] = set()
        for access in decl.access:
            grantee = self.principal(access.role)
            table_privileges = (
                WRITE_TABLE_PRIVILEGES if access.level == "write" else READ_TABLE_PRIVILEGES
            )
            grants.add(Grant("USAGE", "SCHEMA", (access.schema,), grantee))
            if access.level == "write":
                grants.add(Grant("CREATE", "SCHEMA", (access.schema,), grantee))
            for table_name, owner in tables_by_schema.get(access.schema, []):
                if owner != grantee.name:
                    for privilege in table_privileges:
                        on = (access.schema, table_name)
                        grants.add(Grant(privilege, "TABLE", on, grantee))
            for creator in creators.get(access.schema, set()):
                if creator != grantee.name:
                    for privilege in table_privileges:
                        future.add(
                            FutureGrant(privilege, "TABLES", (access.schema,), grantee, creator)
                        )
        database, kept = self._target_database(live, {a.principal for a in accounts})
        containers = schemas | database
        return State(
            containers=frozenset(containers),
            accounts=frozenset(accounts),
            memberships=frozenset(memberships),
            grants=frozenset(grants | kept),
            future_grants=frozenset(future),
            tables=live.tables,
        )

    @staticmethod
    def _target_database(
        live: State, declared: set[Principal]
    ) -> tuple[set[Container], set[Grant]]:
        """The target's database, which every declared database maps onto, and what of its
        own privileges the declaration gives.

        The project manages who holds privileges on it: no declared role needs CREATE (new
        schemas) or TEMPORARY there, so one given by hand is drift. CONNECT is what declaring
        a role or user is for, and a database hardened with ``REVOKE CONNECT … FROM PUBLIC``
        needs it granted to each: a declared one holding it keeps it, and none is granted.
        """
        containers = {c for c in live.containers if c.kind == "database"}
        kept = {
            g
            for g in live.grants
            if g.on_kind == "DATABASE" and g.privilege == "CONNECT" and g.grantee in declared
        }
        return containers, kept

    def _creators(self) -> dict[str, set[str]]:
        """For each schema, the roles whose new tables need default privileges: every login
        role that may create tables there, and the target's own user."""
        decl = self.declaration
        creators: dict[str, set[str]] = {}
        for db in decl.databases:
            for schema in db.schemas:
                creators[schema] = {self.admin_user} if self.admin_user else set()
        for user in decl.users:
            for access in decl.access_of(user.name):
                if access.level == "write":
                    creators.setdefault(access.schema, set()).add(self.name(user.name))
        return creators

    def notes(self) -> list[str]:
        decl = self.declaration
        notes = []
        if decl.warehouses:
            names = ", ".join(w.name for w in decl.warehouses)
            notes.append(
                f"warehouses ({names}) are Snowflake compute; Postgres has none, so they are "
                "not created and default_warehouse settings are not used"
            )
        keyed = [u.name for u in decl.users if u.rsa_public_key or u.rsa_public_key_2]
        if keyed:
            notes.append(
                f"RSA public keys of {', '.join(keyed)} are not used on Postgres: login roles "
                "authenticate as pg_hba.conf says (client certificates recommended); "
                "stackyard never sets passwords"
            )
        return notes

    # ------------------------------------------------------------------ statements

    def q(self, *parts: str) -> str:
        """Quote a name for Postgres (PUBLIC stays the keyword)."""
        if parts == (PUBLIC,):
            return PUBLIC
        return PostgresWarehouse.quote_for(*parts)

    def create_container(self, container: Container) -> list[str]:
        return [f"CREATE SCHEMA IF NOT EXISTS {self.q(*container.name)}"]

    def create_account(self, account: Account, marker: str) -> list[str]:
        login = "LOGIN" if account.attr("login") == "true" else "NOLOGIN"
        name = self.q(account.principal.name)
        comment = f"{marker} {account.comment}".strip()
        return [f"CREATE ROLE {name} {login}", f"COMMENT ON ROLE {name} IS {_literal(comment)}"]

    def alter_account(self, old: Account, new: Account) -> list[tuple[str, bool]]:
        name = self.q(new.principal.name)
        steps: list[tuple[str, bool]] = []
        if old.attr("login") != new.attr("login"):
            login = new.attr("login") == "true"
            steps.append((f"ALTER ROLE {name} {'LOGIN' if login else 'NOLOGIN'}", not login))
            if not login:
                steps.append((_end_sessions(new.principal.name), True))
        if old.attr("inherit") == "false" and new.attr("inherit") == "true":
            steps.append((f"ALTER ROLE {name} INHERIT", False))
        powers = [p for p in old.attr("powers").split(",") if p]
        if powers:  # given by hand: taken back, as a hand-made grant is
            steps.append((f"ALTER ROLE {name} {' '.join('NO' + p for p in powers)}", True))
        return steps

    def drop_account(self, account: Account) -> list[str]:
        name = self.q(account.principal.name)
        # DROP ROLE fails while the role owns objects or holds privileges in this database;
        # its tables are handed to the applying user, so no data is lost.
        return [
            _end_sessions(account.principal.name),
            f"REASSIGN OWNED BY {name} TO CURRENT_USER",
            f"DROP OWNED BY {name}",
            f"DROP ROLE {name}",
        ]

    def grant_membership(self, membership: Membership) -> str:
        return f"GRANT {self.q(membership.role.name)} TO {self.q(membership.member.name)}"

    def revoke_membership(self, membership: Membership) -> str:
        return f"REVOKE {self.q(membership.role.name)} FROM {self.q(membership.member.name)}"

    def _privileges_on(self, grants: Sequence[Grant]) -> tuple[str, str]:
        """``(privileges, object)`` as GRANT and REVOKE write them; a column's privileges
        name the column and sit on its table (``UPDATE ("c") ON TABLE "s"."t"``)."""
        first = grants[0]
        privileges = [g.privilege for g in grants]
        if first.on_kind == "COLUMN":
            column = self.q(first.on[-1])
            return _ordered(privileges, column), f"TABLE {self.q(*first.on[:-1])}"
        return _ordered(privileges), f"{first.on_kind} {self.q(*first.on)}"

    def grant(self, grants: Sequence[Grant], revoke: bool = False) -> str:
        privileges, target = self._privileges_on(grants)
        grantee = self.q(grants[0].grantee.name)
        if revoke:
            return f"REVOKE {privileges} ON {target} FROM {grantee}"
        return f"GRANT {privileges} ON {target} TO {grantee}"

    def revoke_grant_option(self, grants: Sequence[Grant]) -> str:
        privileges, target = self._privileges_on(grants)
        return f"REVOKE GRANT OPTION FOR {privileges} ON {target} FROM {self.q(grants[0].grantee.name)}"

    def revoke_admin_option(self, membership: Membership) -> str:
        role, member = self.q(membership.role.name), self.q(membership.member.name)
        return f"REVOKE ADMIN OPTION FOR {role} FROM {member}"

    def grant_future(self, grants: Sequence[FutureGrant], revoke: bool = False) -> str:
        first = grants[0]
        privileges = _ordered([g.privilege for g in grants])
        # No schema: a default privilege for the whole database (set without IN SCHEMA).
        where = f" IN SCHEMA {self.q(*first.schema)}" if first.schema else ""
        head = f"ALTER DEFAULT PRIVILEGES FOR ROLE {self.q(first.creator)}{where}"
        grantee = self.q(first.grantee.name)
        if revoke:
            return f"{head} REVOKE {privileges} ON TABLES FROM {grantee}"
        return f"{head} GRANT {privileges} ON TABLES TO {grantee}"


def _attrs(login: str) -> tuple[tuple[str, str], ...]:
    """A declared role's (``login``: ``"false"``) or user's (``"true"``) attributes.

    >>> _attrs("true")
    (('login', 'true'), ('powers', ''), ('inherit', 'true'))
    """
    return (("login", login), ("powers", ""), ("inherit", "true"))


def _end_sessions(role: str) -> str:
    """The statement that ends ``role``'s open sessions on the server.

    Postgres checks a role's right to log in only when a session starts: a dropped role's
    session keeps running with every privilege it had (under no name, in
    ``pg_stat_activity``), so a removed user could go on reading. Run before the role is
    dropped; the applying user needs ``pg_signal_backend`` (or to be a superuser), else
    Postgres refuses and nothing of the apply is kept.

    >>> print(_end_sessions("alice"))
    SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'alice' AND pid <> pg_backend_pid()
    """
    return (
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE usename = {_literal(role)} AND pid <> pg_backend_pid()"
    )
