"""Fixtures for access-control tests: a project on a throwaway Postgres database whose roles
carry a per-test prefix (Postgres roles are shared by the whole server) and are all dropped
afterwards."""

from __future__ import annotations

import textwrap
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from stackyard.context import Context

PROJECT_YML = """\
# An example project for access-control tests (comments must survive `stackyard user`).
name: {name}

targets:
  dev:
    type: duckdb
    path: .stackyard/dev.duckdb
  prod:
    type: postgres
    host: {host}
    port: {port}
    user: {user}
    database: {database}
    sslmode: disable

sources:
  shop_db:                   # loaded by dlt into schema shop_db
    kind: sql_database
    connection: sqlite:///sources/app.sqlite
    tables:
      customers: {{primary_key: id}}
  shop_files:
    kind: filesystem
    url: sources/files
    tables:
      products: {{glob: products.csv, primary_key: sku}}

access:
  role_prefix: {prefix}
{access}
"""


@dataclass
class PgProject:
    """A project folder whose prod target is a throwaway Postgres database."""

    path: Path
    prefix: str
    database: str
    host: str
    port: int
    admin: str

    @property
    def name(self) -> str:
        """The project's name, its own: roles are server-wide and an apply claims every role
        carrying its project's marker, so a test project named like docs/access-control.md's
        ``shop`` (which has no prefix) would be planned away by that page running beside it."""
        return "shop_" + self.prefix.rstrip("_")

    def write(self, access: str = "", name: str | None = None, user: str | None = None) -> None:
        """(Re)write stackyard.yml with extra lines under ``access:``; ``user``: the prod
        target's user, default the admin."""
        text = PROJECT_YML.format(
            name=name or self.name,
            host=self.host,
            port=self.port,
            user=user or self.admin,
            database=self.database,
            prefix=self.prefix,
            access=textwrap.indent(textwrap.dedent(access).strip(), "  "),
        )
        (self.path / "stackyard.yml").write_text(text, encoding="utf-8")

    def context(self) -> Context:
        """A fresh Context on the project."""
        return Context(self.path)

    def role(self, name: str) -> str:
        """The Postgres name of a declared role or user."""
        return f"{self.prefix}{name.lower()}"

    def can(self, role: str, sql: str) -> bool:
        """Whether a declared login role may run ``sql`` (``False``: permission denied)."""
        import psycopg

        with self.connect(role) as conn:
            try:
                conn.execute(sql)
            except psycopg.errors.InsufficientPrivilege:
                return False
        return True

    def connect(self, role: str | None = None, **kwargs: Any) -> Any:
        """A connection to the test database, as the admin or as a declared login role."""
        import psycopg

        user = self.role(role) if role else self.admin
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=user,
            dbname=self.database,
            autocommit=True,
            **kwargs,
        )


@pytest.fixture()
def pg_project(
    tmp_path: Path, pg_database: dict[str, Any], pg_admin_dsn: str
) -> Iterator[PgProject]:
    """A project on a throwaway database; every role with the test's prefix is dropped after."""
    import psycopg

    prefix = f"t{uuid.uuid4().hex[:8]}_"
    project = PgProject(
        tmp_path,
        prefix,
        str(pg_database["database"]),
        str(pg_database["host"]),
        int(pg_database["port"]),
        str(pg_database["user"]),
    )
    project.write()
    try:
        yield project
    finally:
        # Roles are server-wide: drop ours from the test database first, then the roles.
        with psycopg.connect(
            host=project.host,
            port=project.port,
            user=project.admin,
            dbname=project.database,
            autocommit=True,
        ) as conn:
            roles = [
                r[0]
                for r in conn.execute(
                    "SELECT rolname FROM pg_roles WHERE rolname LIKE %s", (prefix + "%",)
                ).fetchall()
            ]
            for role in roles:
                conn.execute(f'DROP OWNED BY "{role}"')
        with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{project.database}" WITH (FORCE)')
            for role in roles:
                conn.execute(f'DROP ROLE IF EXISTS "{role}"')


@pytest.fixture()
def make_applier(pg_project: PgProject) -> Iterator[Callable[[str, bool], str]]:
    """Makes a LOGIN role (not SUPERUSER) with the given rights, owner of the test database
    or not; what it owns goes back to the admin afterwards, for the project's cleanup."""
    name = f"{pg_project.prefix}applier"

    def make(rights: str, owner: bool) -> str:
        with pg_project.connect() as admin:
            admin.execute(f'CREATE ROLE "{name}" LOGIN NOSUPERUSER {rights}')
            if owner:
                admin.execute(f'ALTER DATABASE "{pg_project.database}" OWNER TO "{name}"')
        return name

    yield make
    with pg_project.connect() as admin:
        if admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone():
            admin.execute(f'REASSIGN OWNED BY "{name}" TO CURRENT_USER')


@pytest.fixture()
def applier(make_applier: Callable[[str, bool], str]) -> str:
    """A LOGIN role with CREATEROLE (not SUPERUSER) that owns the test database."""
    return make_applier("CREATEROLE", True)
