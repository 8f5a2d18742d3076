"""The ``access:`` section of stackyard.yml: warehouse infrastructure and access control.

Everything here is optional. With an empty section stackyard derives a least-privilege layout
from the project's sources (see :mod:`stackyard.infra.declaration` and docs/access-control.md):
a loader database per loader with its ``<DB>_DB_READER``/``<DB>_DB_WRITER`` roles, one service
account per loader, the transformer, developer and reporting-reader roles. What is written here
adds to that layout or, under the same name, replaces a derived entry.

Names of roles, users and warehouses follow Snowflake's convention (``ANALYTICS_DEVELOPER``);
engines that fold names differently map them (Postgres: ``analytics_developer``).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from stackyard.config.base import StrictModel
from stackyard.config.names import reserved_reason

# Letters, digits and underscores, starting with a letter: the names every engine can hold
# unquoted. Anything else (quotes, spaces, semicolons) is refused here rather than quoted,
# because a principal name also ends up in connection strings and key file names.
PRINCIPAL_PATTERN = r"^[A-Za-z][A-Za-z0-9_]{0,62}$"
_PRINCIPAL = re.compile(PRINCIPAL_PATTERN)

WarehouseSize = Literal["XSMALL", "SMALL", "MEDIUM", "LARGE", "XLARGE", "XXLARGE"]


def _check_names(
    names: list[str] | dict[str, object], what: str, *, principal: bool = True
) -> None:
    for name in names:
        if not _PRINCIPAL.match(name):
            raise ValueError(
                f"{what} '{name}' is not a valid name: use letters, digits and _, starting "
                "with a letter, at most 63 characters (no quotes, spaces or semicolons)"
            )
        reason = reserved_reason(name) if principal else None
        if reason:
            raise ValueError(f"{what} '{name}': {reason}; pick another name")
    # Warehouses fold unquoted names to one case: FINANCE and finance are one role, and the
    # second entry's grants silently replaced the first's.
    seen: dict[str, str] = {}
    for name in names:
        first = seen.setdefault(name.upper(), name)
        if first != name:
            raise ValueError(
                f"{what}s '{first}' and '{name}' differ only in case, and the warehouse reads "
                "them as one: keep one entry"
            )


class DatabaseConfig(StrictModel):
    """A database; on Postgres every declared database maps onto the target's database."""

    loader: str | None = Field(
        None,
        description="The loader that writes it (dlt, airbyte …); its SVC_<LOADER> "
        "account gets the database's WRITER role.",
    )
    schemas: list[str] = Field(default_factory=list, description="Schemas in the database.")
    database_roles: bool = Field(
        True,
        description="Give it the <DB>_DB_READER and <DB>_DB_WRITER roles; false for a layout "
        "taken over with `stackyard import access`, whose roles are declared one by one.",
    )
    comment: str | None = None


class WarehouseConfig(StrictModel):
    """A Snowflake virtual warehouse (compute). Other engines have none."""

    size: WarehouseSize = "XSMALL"
    auto_suspend_seconds: int = Field(60, ge=60, le=86_400)


class RoleConfig(StrictModel):
    """A functional (account) role and the roles it holds."""

    member_of: list[str] = Field(
        default_factory=list, description="Roles granted to this role (it inherits them)."
    )
    comment: str | None = None

    @field_validator("member_of")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        _check_names(value, "role")
        return value


class GrantConfig(StrictModel):
    """Explicit access for a role: ``read``/``write`` on ``DATABASE`` or ``DATABASE.SCHEMA``."""

    role: str
    read: list[str] = Field(default_factory=list)
    write: list[str] = Field(default_factory=list)
    warehouses: list[str] = Field(default_factory=list, description="USAGE on warehouses.")

    @field_validator("role")
    @classmethod
    def _role(cls, value: str) -> str:
        if value.upper() != "PUBLIC":
            _check_names([value], "role")
        return value


class ServiceAccountConfig(StrictModel):
    """A service account: a SERVICE user with a dedicated role of the same name."""

    loader: str | None = Field(None, description="Loader whose database it writes.")
    roles: list[str] = Field(default_factory=list, description="Extra roles for its role.")
    default_warehouse: str | None = Field(
        None,
        description="Default: LOADING for a loader's account, else the first warehouse its "
        "roles may use (SVC_BI with REPORTING_READER: REPORTING).",
    )
    rsa_public_key: str | None = Field(None, description="PEM public key (slot 1).")
    rsa_public_key_2: str | None = Field(None, description="PEM public key (slot 2, rotation).")
    comment: str | None = None

    @field_validator("roles")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        _check_names(value, "role")
        return value


class PersonConfig(StrictModel):
    """A person: a PERSON user holding functional roles."""

    roles: list[str] = Field(default_factory=lambda: ["ANALYTICS_DEVELOPER"])
    default_role: str | None = Field(None, description="Default: the first of roles.")
    default_warehouse: str | None = Field(
        None, description="Default: the first warehouse the default role may use."
    )
    comment: str | None = None

    @field_validator("roles")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        _check_names(value, "role")
        return value


class AccessConfig(StrictModel):
    """Databases, schemas, warehouses, roles, service accounts, people and grants."""

    defaults: bool = Field(
        True, description="Derive the least-privilege layout from sources (docs/access-control.md)."
    )
    role_prefix: str = Field(
        "",
        pattern=r"^([a-z][a-z0-9_]{0,20})?$",
        description="Prepended to every role and user name on Postgres, where roles are shared "
        "by all databases of a server (e.g. 'prod_').",
    )
    production_targets: list[str] = Field(
        default_factory=lambda: ["prod"], description="Targets the production policy rules cover."
    )
    analytics_database: str = "ANALYTICS"
    analytics_schemas: list[str] = Field(
        default_factory=lambda: ["staging", "intermediate", "marts", "reporting", "stackyard"],
        description="Schemas dbt and `stackyard run` write (run history goes to 'stackyard'); "
        "the transformer writes them, developers read them.",
    )
    dev_database: str = Field(
        "ANALYTICS_DEV", description="Where each developer's own schema dev_<person> lives."
    )
    reporting_schemas: list[str] = Field(
        default_factory=lambda: ["reporting"], description="What REPORTING_READER reads."
    )
    databases: dict[str, DatabaseConfig] = Field(default_factory=dict)
    warehouses: dict[str, WarehouseConfig] = Field(default_factory=dict)
    roles: dict[str, RoleConfig] = Field(default_factory=dict)
    service_accounts: dict[str, ServiceAccountConfig] = Field(default_factory=dict)
    people: dict[str, PersonConfig] = Field(default_factory=dict)
    grants: list[GrantConfig] = Field(default_factory=list)

    @field_validator("databases", "warehouses", "roles", "service_accounts", "people")
    @classmethod
    def _keys(cls, value: dict[str, object], info: ValidationInfo) -> dict[str, object]:
        principal = info.field_name in ("roles", "service_accounts", "people")
        _check_names(value, "name", principal=principal)
        return value

    @field_validator("analytics_database", "dev_database")
    @classmethod
    def _database(cls, value: str) -> str:
        _check_names([value], "database", principal=False)
        return value

    @field_validator("role_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if value.lower().startswith("pg_"):
            raise ValueError(
                "role_prefix 'pg_…' would give every role a name Postgres keeps for its "
                "predefined roles: pick another prefix"
            )
        return value
