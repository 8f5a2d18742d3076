"""Access-control state as sets of small facts, and readers of the live state.

Desired and live state have the same shape (:class:`State`), so a plan is a set difference.
Names in facts are the engine's own: ``dlt_db_reader`` on Postgres, ``DLT_DB_READER`` in
database ``DLT`` on Snowflake.

Live state is read without a state file:

* Postgres: from its catalog (:mod:`stackyard.infra.postgres_catalog`);
* Snowflake: the rows of ``SHOW ROLES``, ``SHOW DATABASE ROLES``, ``SHOW USERS``,
  ``DESC USER``, ``SHOW GRANTS TO ROLE|DATABASE ROLE|USER`` and ``SHOW FUTURE GRANTS IN
  SCHEMA``, recorded as JSON (see :func:`snowflake_state`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from stackyard.errors import ConfigError
from stackyard.infra.applier import Applier

MARKER_PREFIX = "[stackyard:"


def marker(project: str) -> str:
    """The tag stackyard puts in the comment of every role and user it creates.

    It is how an apply knows, without a state file, that a role no longer declared was
    created by this project and may be dropped.

    >>> marker("shop")
    '[stackyard:shop]'
    """
    return f"{MARKER_PREFIX}{project}]"


def prefix_marker(role_prefix: str) -> str:
    """The tag beside :func:`marker` naming the ``access.role_prefix`` a role was created with.

    Roles are cluster-wide on Postgres, and two projects of the same name are told apart by
    their prefixes; a name alone cannot say which of ``shop_`` and ``shop_b_`` made the role
    ``shop_b_reader``, the tag can.

    >>> prefix_marker("shop_"), prefix_marker("")
    ('[stackyard-prefix:shop_]', '')
    """
    return f"[stackyard-prefix:{role_prefix}]" if role_prefix else ""


_PREFIX_TAG = re.compile(r"\[stackyard-prefix:([^\]]*)\]")


def created_by(comment: str, name: str, project: str, role_prefix: str) -> bool:
    """Whether the role or user ``name`` with ``comment`` was created by this project with
    this prefix. A role created before the prefix was tagged is told by its name alone.

    >>> created_by("[stackyard:shop] [stackyard-prefix:shop_b_]", "shop_b_reader", "shop", "shop_")
    False
    >>> created_by("[stackyard:shop] [stackyard-prefix:shop_]", "shop_b_reader", "shop", "shop_")
    True
    >>> created_by("[stackyard:shop]", "shop_reader", "shop", "shop_")
    True
    """
    if marker(project) not in comment or not name.lower().startswith(role_prefix.lower()):
        return False
    return not another_prefix(comment, role_prefix)


def another_prefix(comment: str, role_prefix: str) -> bool:
    """Whether a role's comment tags it with a prefix other than ``role_prefix``: another
    project's role, whatever its name starts with.

    >>> another_prefix("[stackyard:shop] [stackyard-prefix:shop_b_]", "shop_"), another_prefix("", "x_")
    (True, False)
    """
    tagged = _PREFIX_TAG.search(comment)
    return tagged is not None and tagged.group(1).lower() != role_prefix.lower()


def user_comment(comment: str, project: str) -> str | None:
    """The part of a role's comment that is not stackyard's tags.

    >>> user_comment("[stackyard:shop] [stackyard-prefix:shop_] the finance team", "shop")
    'the finance team'
    """
    return _PREFIX_TAG.sub("", comment.replace(marker(project), "")).strip() or None


@dataclass(frozen=True, order=True)
class Principal:
    """Who can hold access: a role, a database role (Snowflake), a user, or PUBLIC."""

    kind: str  # "role" | "database_role" | "user" | "public"
    name: str
    database: str = ""

    @property
    def label(self) -> str:
        """How plans and reviews name it.

        >>> Principal("database_role", "R", "DLT").label
        'DLT.R'
        """
        return f"{self.database}.{self.name}" if self.database else self.name


@dataclass(frozen=True, order=True)
class Account:
    """A role or user that exists. ``attrs`` are compared and changed in place with ALTER;
    ``payload`` carries values the warehouse never shows back (a full public key)."""

    principal: Principal
    attrs: tuple[tuple[str, str], ...] = ()
    comment: str = field(default="", compare=False)
    payload: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    def attr(self, key: str) -> str:
        """One attribute, ``""`` when unset."""
        return dict(self.attrs).get(key, "")


@dataclass(frozen=True, order=True)
class Container:
    """A database, schema or warehouse; ``name`` is its dotted path."""

    kind: str  # "database" | "schema" | "warehouse"
    name: tuple[str, ...]
    attrs: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, order=True)
class Membership:
    """``role`` is granted to ``member``."""

    role: Principal
    member: Principal


@dataclass(frozen=True, order=True)
class Grant:
    """A privilege on one object (``on_kind``: DATABASE, SCHEMA, TABLE, WAREHOUSE)."""

    privilege: str
    on_kind: str
    on: tuple[str, ...]
    grantee: Principal


@dataclass(frozen=True, order=True)
class FutureGrant:
    """A privilege on tables not created yet in a schema.

    Postgres: ``ALTER DEFAULT PRIVILEGES FOR ROLE creator IN SCHEMA`` (one per creating role);
    Snowflake: ``GRANT … ON FUTURE TABLES IN SCHEMA`` (``creator`` is empty).
    """

    privilege: str
    on_kind: str  # "TABLES" | "VIEWS"
    schema: tuple[str, ...]
    grantee: Principal
    creator: str = ""


@dataclass(frozen=True, order=True)
class Table:
    """A table or view that exists, with its owner."""

    schema: tuple[str, ...]
    name: str
    owner: str = ""
    kind: str = "TABLE"

    @property
    def path(self) -> tuple[str, ...]:
        """Its dotted path."""
        return (*self.schema, self.name)


@dataclass(frozen=True)
class InactiveUser:
    """A user the warehouse reports as disabled, expired or long unused."""

    name: str
    reason: str


@dataclass(frozen=True)
class State:
    """A complete access-control state, desired or live."""

    containers: frozenset[Container] = frozenset()
    accounts: frozenset[Account] = frozenset()
    memberships: frozenset[Membership] = frozenset()
    grants: frozenset[Grant] = frozenset()
    future_grants: frozenset[FutureGrant] = frozenset()
    tables: frozenset[Table] = frozenset()
    inactive_users: tuple[InactiveUser, ...] = ()
    applier: Applier | None = None  # who a plan is applied as, when the reader knows
    # Live grants and memberships held WITH GRANT OPTION / WITH ADMIN OPTION: their holder
    # may pass them on. A declaration never gives an option, so the desired state has none.
    grant_options: frozenset[Grant] = frozenset()
    admin_options: frozenset[Membership] = frozenset()

    def account(self, principal: Principal) -> Account | None:
        """The account for a principal, or ``None``."""
        return next((a for a in self.accounts if a.principal == principal), None)

    def principals(self) -> set[Principal]:
        """Every principal that has an account."""
        return {a.principal for a in self.accounts}

    def fingerprint(self) -> str:
        """A hash of everything in the state, to tell whether it changed since a plan.

        Account comments are included: they carry the ownership marker.
        """
        parts: list[Any] = []
        for facts in (
            self.containers,
            self.memberships,
            self.grants,
            self.future_grants,
            self.tables,
            self.grant_options,
            self.admin_options,
        ):
            parts.append(sorted(json.dumps(asdict(f), sort_keys=True) for f in facts))
        parts.append(
            sorted(json.dumps([asdict(a.principal), a.attrs, a.comment]) for a in self.accounts)
        )
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


# ---------------------------------------------------------------------- Snowflake

# SHOW WAREHOUSES reports sizes as words (docs.snowflake.com/en/sql-reference/sql/show-warehouses).
_SIZES = {
    "X-SMALL": "XSMALL",
    "SMALL": "SMALL",
    "MEDIUM": "MEDIUM",
    "LARGE": "LARGE",
    "X-LARGE": "XLARGE",
    "2X-LARGE": "XXLARGE",
    "XSMALL": "XSMALL",
    "XLARGE": "XLARGE",
    "XXLARGE": "XXLARGE",
}
SNOWFLAKE_SHOW_KEYS = (
    "databases",
    "schemas",
    "warehouses",
    "roles",
    "database_roles",
    "users",
    "user_keys",
    "grants",
    "future_grants",
    "tables",
)
_SF_GRANTED_ON = {"DATABASE", "SCHEMA", "TABLE", "VIEW", "WAREHOUSE"}


def split_snowflake_name(name: str) -> tuple[str, ...]:
    """Split a dotted Snowflake name as SHOW prints it, honouring double quotes.

    >>> split_snowflake_name('DLT."we""ird.x".T')
    ('DLT', 'we"ird.x', 'T')
    """
    parts: list[str] = []
    current = ""
    quoted = False
    i = 0
    while i < len(name):
        ch = name[i]
        if quoted:
            if ch == '"' and name[i + 1 : i + 2] == '"':
                current += '"'
                i += 1
            elif ch == '"':
                quoted = False
            else:
                current += ch
        elif ch == '"':
            quoted = True
        elif ch == ".":
            parts.append(current)
            current = ""
        else:
            current += ch
        i += 1
    parts.append(current)
    return tuple(parts)


def _sf_principal(granted_to: str, name: str) -> Principal:
    kind = granted_to.upper()
    if kind == "DATABASE_ROLE":
        database, role = split_snowflake_name(name)
        return Principal("database_role", role, database)
    if kind == "USER":
        return Principal("user", name)
    if name.upper() == "PUBLIC":
        return Principal("public", "PUBLIC")
    return Principal("role", name)


def snowflake_state(show: Mapping[str, Any]) -> State:
    """The live state from recorded SHOW output.

    Args:
        show: a mapping with the keys in ``SNOWFLAKE_SHOW_KEYS``, each the rows (as dicts
            with Snowflake's column names) of: ``SHOW DATABASES``, ``SHOW SCHEMAS IN
            ACCOUNT``, ``SHOW WAREHOUSES``, ``SHOW ROLES``, ``SHOW DATABASE ROLES IN DATABASE
            <db>`` (a mapping from database to rows), ``SHOW USERS``, ``DESC USER`` (a mapping
            from user to ``{property: value}``), ``SHOW GRANTS TO ROLE|DATABASE ROLE|USER``
            (all rows in one list), ``SHOW FUTURE GRANTS IN SCHEMA`` and ``SHOW TABLES`` /
            ``SHOW VIEWS``. Missing keys count as empty.

    Returns:
        The live state.

    Raises:
        ConfigError: the recording is not in that shape.
    """
    if not isinstance(show, Mapping):
        raise ConfigError(
            f"recorded SHOW output is a JSON {type(show).__name__}, expected an object",
            hint=f"expected an object with the keys: {', '.join(SNOWFLAKE_SHOW_KEYS)}",
        )
    unknown = {str(key) for key in show} - set(SNOWFLAKE_SHOW_KEYS)
    if unknown:
        raise ConfigError(
            f"recorded SHOW output has unknown keys: {', '.join(sorted(unknown))}",
            hint=f"expected keys: {', '.join(SNOWFLAKE_SHOW_KEYS)}",
        )
    try:
        return _snowflake_state(show)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(
            f"recorded SHOW output is not in the expected shape: {exc!r}",
            hint="record the rows with their Snowflake column names (docs/access-control.md)",
        ) from None


def _snowflake_state(show: Mapping[str, Any]) -> State:
    containers: set[Container] = set()
    for row in show.get("databases", []):
        containers.add(Container("database", (row["name"],)))
    for row in show.get("schemas", []):
        containers.add(Container("schema", (row["database_name"], row["name"])))
    for row in show.get("warehouses", []):
        attrs = (
            ("auto_suspend", str(row.get("auto_suspend", ""))),
            ("size", _SIZES.get(str(row.get("size", "")).upper(), str(row.get("size", "")))),
        )
        containers.add(Container("warehouse", (row["name"],), attrs))
    accounts: set[Account] = set()
    for row in show.get("roles", []):
        accounts.add(Account(_sf_principal("ROLE", row["name"]), (), row.get("comment") or ""))
    for database, rows in show.get("database_roles", {}).items():
        for row in rows:
            accounts.add(
                Account(
                    Principal("database_role", row["name"], database), (), row.get("comment") or ""
                )
            )
    keys: Mapping[str, Mapping[str, str]] = show.get("user_keys", {})
    inactive = []
    for row in show.get("users", []):
        name = row["name"]
        described = keys.get(name, {})
        user_attrs: tuple[tuple[str, str], ...] = (
            ("default_role", row.get("default_role") or ""),
            ("default_warehouse", row.get("default_warehouse") or ""),
            ("has_password", str(row.get("has_password", "false")).lower()),
            ("rsa_public_key_2_fp", described.get("RSA_PUBLIC_KEY_2_FP") or ""),
            ("rsa_public_key_fp", described.get("RSA_PUBLIC_KEY_FP") or ""),
            ("type", (row.get("type") or "PERSON").upper()),
        )
        accounts.add(Account(Principal("user", name), user_attrs, row.get("comment") or ""))
        if str(row.get("disabled", "false")).lower() == "true":
            inactive.append(InactiveUser(name, "disabled"))
        elif not row.get("last_success_login"):
            inactive.append(InactiveUser(name, "never logged in"))
    memberships: set[Membership] = set()
    grants: set[Grant] = set()
    for row in show.get("grants", []):
        grantee = _sf_principal(row["granted_to"], row["grantee_name"])
        privilege = row["privilege"].upper()
        granted_on = row["granted_on"].upper()
        if granted_on in ("ROLE", "DATABASE_ROLE"):
            # SHOW GRANTS TO USER lists the role in `role`; TO ROLE lists it in `name`.
            held = row.get("role") or row["name"]
            memberships.add(Membership(_sf_principal(granted_on, held), grantee))
        elif privilege != "OWNERSHIP" and granted_on in _SF_GRANTED_ON:
            kind = "TABLE" if granted_on == "VIEW" else granted_on
            grants.add(Grant(privilege, kind, split_snowflake_name(row["name"]), grantee))
    future: set[FutureGrant] = set()
    for row in show.get("future_grants", []):
        path = split_snowflake_name(row["name"])  # DB.SCHEMA.<TABLE>
        on_kind = "VIEWS" if row["grant_on"].upper() == "VIEW" else "TABLES"
        future.add(
            FutureGrant(
                row["privilege"].upper(),
                on_kind,
                path[:2],
                _sf_principal(row["grant_to"], row["grantee_name"]),
            )
        )
    tables = {
        Table(
            (row["database_name"], row["schema_name"]),
            row["name"],
            row.get("owner", ""),
            "VIEW" if row.get("kind", "TABLE").upper() == "VIEW" else "TABLE",
        )
        for row in show.get("tables", [])
    }
    return State(
        containers=frozenset(containers),
        accounts=frozenset(accounts),
        memberships=frozenset(memberships),
        grants=frozenset(grants),
        future_grants=frozenset(future),
        tables=frozenset(tables),
        inactive_users=tuple(sorted(inactive, key=lambda u: u.name)),
    )
