"""Access control on DuckDB: schemas only.

DuckDB has no roles, users or grants (https://duckdb.org/docs/sql/statements/overview): the
schemas are created, and everything else the declaration asks for is reported in the plan as
not enforced, never silently dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, NoReturn

from stackyard.infra.engine import Engine
from stackyard.infra.state import Account, Container, FutureGrant, Grant, Membership, State
from stackyard.warehouse.base import Warehouse
from stackyard.warehouse.duckdb import DuckDBWarehouse


class DuckDBEngine(Engine):
    """Creates the declared schemas; reports roles and grants as not enforced."""

    KIND: ClassVar[str] = "duckdb"
    DIALECT: ClassVar[str] = "duckdb"

    def read_state(self, warehouse: Warehouse) -> State:
        result = warehouse.query(
            "SELECT schema_name FROM information_schema.schemata "
            "WHERE catalog_name = current_database()"
        )
        return State(containers=frozenset(Container("schema", (r[0],)) for r in result.rows))

    def desired(self, live: State) -> State:
        schemas = {
            Container("schema", (schema,))
            for db in self.declaration.databases
            for schema in db.schemas
        }
        return State(containers=frozenset(schemas), tables=live.tables)

    def notes(self) -> list[str]:
        decl = self.declaration
        return [
            f"not enforced on DuckDB, which has no access control: {len(decl.roles)} roles, "
            f"{len(decl.users)} users, {len(decl.memberships)} memberships and "
            f"{len(decl.access) + len(decl.warehouse_access)} grants are declared but only "
            "schemas are created; apply to a Postgres or Snowflake target to enforce them"
        ]

    def create_container(self, container: Container) -> list[str]:
        return [f"CREATE SCHEMA IF NOT EXISTS {DuckDBWarehouse.quote_for(*container.name)}"]

    def _never(self) -> NoReturn:
        raise AssertionError("DuckDB plans hold no access-control steps")

    def create_account(self, account: Account, marker: str) -> list[str]:
        self._never()

    def alter_account(self, old: Account, new: Account) -> list[tuple[str, bool]]:
        self._never()

    def drop_account(self, account: Account) -> list[str]:
        self._never()

    def grant_membership(self, membership: Membership) -> str:
        self._never()

    def revoke_membership(self, membership: Membership) -> str:
        self._never()

    def grant(self, grants: Sequence[Grant], revoke: bool = False) -> str:
        self._never()

    def grant_future(self, grants: Sequence[FutureGrant], revoke: bool = False) -> str:
        self._never()
