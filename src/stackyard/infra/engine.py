"""What every access-control engine module implements.

An engine turns the engine-neutral :class:`~stackyard.infra.declaration.Declaration` into the
engine's desired :class:`~stackyard.infra.state.State`, and each kind of change into SQL. The
diff itself (:mod:`stackyard.infra.plan`) is the same for every engine.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

from stackyard.errors import WarehouseError
from stackyard.infra.declaration import Declaration
from stackyard.infra.state import (
    Account,
    Container,
    FutureGrant,
    Grant,
    Membership,
    Principal,
    State,
)
from stackyard.warehouse.base import Warehouse

READ_TABLE_PRIVILEGES = ("SELECT",)
WRITE_TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")


class Engine(ABC):
    """Compiles a declaration for one kind of warehouse.

    An engine module holds all of access control on its kind of warehouse: this compiler,
    the live-state reader (:meth:`read_state`) and the executor (:meth:`execute`). Whether
    the engine enforces roles at all is the warehouse's ``SUPPORTS_ROLES``.

    Attributes:
        KIND: the target ``type``.
        DIALECT: sqlglot dialect the statements are written in.
        USERS_ARE_ROLES: users are login roles, named in lower case with
            ``access.role_prefix``, shared by every database of the server (Postgres).
        DATABASE_ROLES: the engine has database roles, ``<DB>_DB_READER``/``_WRITER``
            (Snowflake).
        TABLES_NEED_SCHEMA_USAGE: a privilege on a table (or a column) works only for a
            role that may use its schema (USAGE on it, held through the roles or by
            PUBLIC, or owning it); the live state carries each schema's ``owner``
            (Postgres: https://www.postgresql.org/docs/current/ddl-schemas.html#DDL-SCHEMAS-PRIV).
    """

    KIND: ClassVar[str]
    DIALECT: ClassVar[str]
    USERS_ARE_ROLES: ClassVar[bool] = False
    DATABASE_ROLES: ClassVar[bool] = False
    TABLES_NEED_SCHEMA_USAGE: ClassVar[bool] = False

    def __init__(self, declaration: Declaration, admin_user: str = "") -> None:
        self.declaration = declaration
        self.admin_user = admin_user

    @classmethod
    def for_target(cls, declaration: Declaration, target: Any) -> Engine:
        """The engine for a target's config (its ``user`` is the administrator)."""
        return cls(declaration, admin_user=getattr(target, "user", ""))

    def read_state(self, warehouse: Warehouse) -> State:
        """What exists in the warehouse now (default: nothing known)."""
        return State()

    @classmethod
    def execute(cls, statements: Sequence[str], warehouse: Warehouse) -> int:
        """Run statements in one transaction; return how many ran.

        Raises:
            StatementFailed: a statement failed (the transaction was rolled back).
        """
        warehouse.execute("BEGIN TRANSACTION")
        done = 0
        try:
            for statement in statements:
                warehouse.execute(statement)
                done += 1
        except WarehouseError as exc:
            warehouse.execute("ROLLBACK")
            raise StatementFailed(done, exc.message) from None
        warehouse.execute("COMMIT")
        return done

    def check_can_apply(self, live: State) -> None:
        """Refuse, before planning, when the applying user lacks a right apply needs.

        Raises:
            UsageError: the right it lacks, named, and how to grant it.
        """
        return None  # an engine stackyard does not connect to has no applier to check

    def applier_grants(
        self, live: State, acts_as: set[str], grants: set[str]
    ) -> list[tuple[str, str]]:
        """``(statement, description)`` pairs that give the applying user the memberships
        the plan needs first (default: none)."""
        return []

    def takes_back_from(self, holder: Principal, live: State) -> bool:
        """Whether the plan revokes a declared role from ``holder``, a role or user the
        project does not declare (never did, or declares no longer) that holds it.

        Default: no; such a membership is listed as kept. Snowflake's role hierarchy is
        meant to hang custom roles under system roles such as SYSADMIN
        (https://docs.snowflake.com/en/user-guide/security-access-control-considerations),
        and who else holds them is the account administrators' to say.

        Args:
            holder: the principal holding a declared role.
            live: the live state (with the applying user, when known).
        """
        return False

    def principal(self, declared: str) -> Principal:
        """The principal a declared role or user is in the warehouse, as the live state
        names it (default: a role of the declared name, for engines without roles)."""
        return Principal("role", declared)

    @abstractmethod
    def desired(self, live: State) -> State:
        """The state the declaration asks for, given what exists (existing tables get the
        grants their schema's access implies)."""

    def notes(self) -> list[str]:
        """What the declaration asks for that this engine cannot do, said plainly."""
        return []

    @abstractmethod
    def create_container(self, container: Container) -> list[str]:
        """Statements that create a database, schema or warehouse."""

    def alter_container(self, old: Container, new: Container) -> list[str]:
        """Statements that bring a container's attributes to the desired ones."""
        return []

    @abstractmethod
    def create_account(self, account: Account, marker: str) -> list[str]:
        """Statements that create a role or user, tagged with ``marker`` in its comment."""

    @abstractmethod
    def alter_account(self, old: Account, new: Account) -> list[tuple[str, bool]]:
        """``(statement, destructive)`` pairs that change an account's attributes."""

    @abstractmethod
    def drop_account(self, account: Account) -> list[str]:
        """Statements that remove a role or user."""

    @abstractmethod
    def grant_membership(self, membership: Membership) -> str:
        """Grant a role to a role or user."""

    @abstractmethod
    def revoke_membership(self, membership: Membership) -> str:
        """Revoke a role from a role or user."""

    @abstractmethod
    def grant(self, grants: Sequence[Grant], revoke: bool = False) -> str:
        """Grant (or revoke) privileges sharing one object and one grantee."""

    def revoke_grant_option(self, grants: Sequence[Grant]) -> str:
        """Take back the right to pass privileges on (sharing one object and one grantee),
        leaving the privileges themselves.

        Only live-state readers that record grant options (:attr:`State.grant_options`)
        lead a plan here.
        """
        raise NotImplementedError(f"{self.KIND}: grant options are not read")

    def revoke_admin_option(self, membership: Membership) -> str:
        """Take back the right to grant a role on, leaving the membership itself.

        Only live-state readers that record admin options (:attr:`State.admin_options`)
        lead a plan here.
        """
        raise NotImplementedError(f"{self.KIND}: admin options are not read")

    @abstractmethod
    def grant_future(self, grants: Sequence[FutureGrant], revoke: bool = False) -> str:
        """Grant (or revoke) privileges on future tables sharing schema, kind, grantee and
        creator."""


class StatementFailed(Exception):
    """A plan's statement failed; ``index`` is its position, ``reason`` the engine's words."""

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(reason)
        self.index = index
        self.reason = reason
