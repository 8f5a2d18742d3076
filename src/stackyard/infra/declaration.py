"""The desired state, engine-neutral: what access control makes true in a warehouse.

A :class:`Declaration` is the ``access:`` section with nothing implicit any more: every
database with its schemas and its two database roles, every role with the roles it holds,
every user with its roles, and every read/write access of a role on a schema.
:func:`stackyard.infra.layout.build_declaration` builds one from stackyard.yml.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Literal

Level = Literal["read", "write"]
UserKind = Literal["person", "service"]

# Every source stackyard loads today goes through dlt.
DEFAULT_LOADER = "dlt"
SOURCES_READER = "ANALYTICS_SOURCES_READER"
TRANSFORMER = "ANALYTICS_TRANSFORMER"
DEVELOPER = "ANALYTICS_DEVELOPER"
REPORTING_READER = "REPORTING_READER"
PUBLIC = "PUBLIC"


def reader_role(database: str) -> str:
    """The READER database role of a database.

    >>> reader_role("DLT")
    'DLT_DB_READER'
    """
    return f"{database.upper()}_DB_READER"


def writer_role(database: str) -> str:
    """The WRITER database role of a database.

    >>> writer_role("dlt")
    'DLT_DB_WRITER'
    """
    return f"{database.upper()}_DB_WRITER"


# What starts a service account's name (SVC_<NAME>): the naming policy holds every service
# account to it and keeps it from people.
SERVICE_PREFIX = "SVC_"


def service_account_name(loader: str) -> str:
    """The service account of a loader, as the runbook names it.

    >>> service_account_name("dlt")
    'SVC_DLT'
    """
    return f"{SERVICE_PREFIX}{loader.upper()}"


def looks_like_service_account(name: str) -> bool:
    """Whether a user's name is a service account's (``SVC_<NAME>``, in any case).

    >>> looks_like_service_account("svc_x"), looks_like_service_account("alice")
    (True, False)
    """
    return name.upper().startswith(SERVICE_PREFIX)


def is_service_account_name(name: str) -> bool:
    """Whether a name is one the naming policy takes for a service account: ``SVC_`` and a
    name after it.

    >>> [is_service_account_name(n) for n in ("svc_bi", "SVC_", "bi_tool")]
    [True, False, False]
    """
    return looks_like_service_account(name) and len(name) > len(SERVICE_PREFIX)


def dev_schema(person: str) -> str:
    """A developer's own schema.

    >>> dev_schema("ALICE")
    'dev_alice'
    """
    return f"dev_{person.lower()}"


@dataclass(frozen=True)
class Database:
    """A database and its schemas; ``loader`` is set for a loader's raw database."""

    name: str
    schemas: tuple[str, ...]
    loader: str | None = None
    comment: str | None = None

    @property
    def reader(self) -> str:
        """Its READER database role."""
        return reader_role(self.name)

    @property
    def writer(self) -> str:
        """Its WRITER database role."""
        return writer_role(self.name)


@dataclass(frozen=True)
class Warehouse:
    """A Snowflake virtual warehouse."""

    name: str
    size: str = "XSMALL"
    auto_suspend_seconds: int = 60


@dataclass(frozen=True)
class Role:
    """A role. ``database`` is set for a database role; ``dedicated_to`` for a service
    account's own role (on Postgres, where users are roles, it is the user itself)."""

    name: str
    database: str | None = None
    dedicated_to: str | None = None
    comment: str | None = None


@dataclass(frozen=True)
class User:
    """A person or service account, with the roles granted to it directly."""

    name: str
    kind: UserKind
    roles: tuple[str, ...]
    default_role: str | None
    default_warehouse: str | None
    rsa_public_key: str | None = None
    rsa_public_key_2: str | None = None
    loader: str | None = None
    comment: str | None = None


@dataclass(frozen=True, order=True)
class Membership:
    """``role`` is granted to ``member`` (a role or a user)."""

    role: str
    member: str


@dataclass(frozen=True, order=True)
class SchemaAccess:
    """A role reads or writes one schema (write includes read)."""

    role: str
    database: str
    schema: str
    level: Level


@dataclass(frozen=True, order=True)
class WarehouseAccess:
    """A role may use a warehouse."""

    role: str
    warehouse: str


@dataclass(frozen=True)
class Declaration:
    """Everything the project declares, fully expanded. Names of roles, users, databases
    and warehouses are upper case; schema names are as written."""

    project: str
    databases: tuple[Database, ...]
    warehouses: tuple[Warehouse, ...]
    roles: tuple[Role, ...]
    users: tuple[User, ...]
    memberships: tuple[Membership, ...]
    access: tuple[SchemaAccess, ...]
    warehouse_access: tuple[WarehouseAccess, ...]
    role_prefix: str = ""
    production_targets: tuple[str, ...] = ("prod",)

    # ------------------------------------------------------------------ lookups

    def database(self, name: str) -> Database | None:
        """The database of that name, or ``None``."""
        return next((d for d in self.databases if d.name == name.upper()), None)

    def role(self, name: str) -> Role | None:
        """The role of that name, or ``None``."""
        return next((r for r in self.roles if r.name == name.upper()), None)

    def user(self, name: str) -> User | None:
        """The user of that name, or ``None``."""
        return next((u for u in self.users if u.name == name.upper()), None)

    def loader_databases(self) -> tuple[Database, ...]:
        """Databases written by a loader."""
        return tuple(d for d in self.databases if d.loader)

    def roles_held(self, member: str) -> set[str]:
        """Every role ``member`` holds, directly or through other roles.

        >>> d = Declaration("p", (), (), (Role("A"), Role("B")), (), (Membership("A", "B"),
        ...     Membership("B", "U")), (), ())
        >>> sorted(d.roles_held("U"))
        ['A', 'B']
        """
        return held_roles(self.memberships, member)

    def access_of(self, principal: str) -> set[SchemaAccess]:
        """Every schema access ``principal`` has, through every role it holds."""
        names = self.roles_held(principal) | {principal}
        return {a for a in self.access if a.role in names}

    def digest(self) -> str:
        """A hash of the whole declaration, to tie a saved plan to it."""
        data = asdict(self)
        text = json.dumps(data, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()


def held_roles(memberships: Iterable[Membership], member: str) -> set[str]:
    held: set[str] = set()
    todo = [member]
    links = list(memberships)
    while todo:
        current = todo.pop()
        for m in links:
            if m.member == current and m.role not in held:
                held.add(m.role)
                todo.append(m.role)
    return held
