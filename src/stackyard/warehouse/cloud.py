"""Snowflake and BigQuery: settings for dlt and dbt, generated and checked here.

stackyard ships no Snowflake or BigQuery driver, so these targets cannot run queries from this
package alone; what they do is turn the target in stackyard.yml into the dlt destination and
the dbt profile a team would otherwise write by hand. Statements for them are built with
sqlglot in their dialect and checked by its parser in tests.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, ClassVar, NoReturn

from stackyard.config.model import BigQueryTarget, SnowflakeTarget
from stackyard.errors import WarehouseUnreachableError
from stackyard.warehouse.base import QueryResult, Warehouse


def _env_ref(name: str) -> str:
    return f"{{{{ env_var('{name}') }}}}"


class _RemoteOnly(Warehouse):
    """A warehouse whose driver stackyard does not bundle."""

    REACHABLE_HERE = False
    DRIVER: ClassVar[str]
    # what a user can run here instead, to see the SQL stackyard would run there
    REVIEW_HINT: ClassVar[str] = "runbooks print their SQL with --dry-run"

    def _unreachable(self) -> NoReturn:
        raise WarehouseUnreachableError(
            f"{self.describe()}: stackyard does not bundle the {self.KIND} driver, so it cannot "
            "run queries there itself",
            hint=f"install {self.DRIVER} in the same environment to load with dlt and build "
            f"with dbt; {self.REVIEW_HINT}",
        )

    def query(self, sql: str, params: Sequence[Any] = ()) -> QueryResult:
        self._unreachable()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._unreachable()

    def close(self) -> None:
        return None


class SnowflakeWarehouse(_RemoteOnly):
    """Snowflake, key-pair authentication preferred."""

    KIND: ClassVar[str] = "snowflake"
    STORAGE: ClassVar[str] = "cloud"
    TIME_TRAVEL: ClassVar[str | None] = "clone"
    # https://docs.getdbt.com/reference/resource-configs/snowflake-configs#transient-tables
    TRANSIENT_TABLES_BY_DEFAULT: ClassVar[bool] = True
    SUPPORTS_KEY_PAIR_AUTH: ClassVar[bool] = True
    # https://docs.snowflake.com/en/user-guide/data-load-snowpipe-intro
    SNOWPIPE: ClassVar[bool] = True
    # dbt builds as the output's role, in its database and warehouse: stackyard's transformer.
    DBT_OUTPUT: ClassVar[dict[str, tuple[str, ...]]] = {
        **{key: (key,) for key in ("account", "user", "schema", "threads", "password")},
        **{key: (key,) for key in ("private_key", "private_key_passphrase")},
        **{key: (key, f"transform.{key}") for key in ("role", "warehouse", "database")},
    }
    DIALECT: ClassVar[str] = "snowflake"
    DRIVER = "snowflake-connector-python and dbt-snowflake"
    REVIEW_HINT = (
        "`stackyard plan -t TARGET --sql plan.sql` writes the access-control SQL to run with "
        "snowsql; runbooks print theirs with --dry-run"
    )
    SUPPORTS_ROLES = True
    # Snowflake commits DDL implicitly (docs.snowflake.com/en/sql-reference/transactions).
    SUPPORTS_TRANSACTIONAL_DDL = False
    TRANSACTIONS = True  # DML only: the DDL above commits the open transaction
    config: SnowflakeTarget

    def dlt_destination_settings(self) -> dict[str, Any]:
        c = self.config
        credentials: dict[str, Any] = {
            "database": c.database,
            "host": c.account,
            "username": c.user,
            "warehouse": c.warehouse,
            "role": c.role,
        }
        if c.private_key:
            credentials["private_key"] = self.secrets.resolve(
                c.private_key, used_for=f"targets.{self.target_name}.private_key"
            )
        if c.private_key_passphrase:
            credentials["private_key_passphrase"] = self.secrets.resolve(
                c.private_key_passphrase,
                used_for=f"targets.{self.target_name}.private_key_passphrase",
            )
        if c.password:
            credentials["password"] = self.secrets.resolve(
                c.password, used_for=f"targets.{self.target_name}.password"
            )
        return {"credentials": credentials}

    def dbt_output(self) -> dict[str, Any]:
        c = self.config
        output: dict[str, Any] = {
            "type": "snowflake",
            "account": c.account,
            "user": c.transform.user or c.user,
            # dbt builds as the transformer, into the analytics database the access plan
            # grants on; dlt loads with the target's own database, role and warehouse.
            "role": c.transform.role,
            "warehouse": c.transform.warehouse,
            "database": c.transform.database,
            "schema": c.schema_,
            "threads": c.threads,
        }
        key = c.transform.private_key or c.private_key
        if key:
            output["private_key"] = _env_ref(key.secret)
        if c.private_key_passphrase:
            output["private_key_passphrase"] = _env_ref(c.private_key_passphrase.secret)
        if c.password:
            output["password"] = _env_ref(c.password.secret)
        return output

    def secret_env(self) -> dict[str, str]:
        env = super().secret_env()
        # dlt loads into the target's database (DLT) and dbt builds into transform's
        # (ANALYTICS): the generated dbt sources read raw tables from the former.
        env["STACKYARD_RAW_DATABASE"] = self.config.database
        key = self.config.transform.private_key
        if key is not None:
            env[key.secret] = self.secrets.resolve(
                key, used_for=f"targets.{self.target_name}.transform.private_key"
            )
        return env

    def describe(self) -> str:
        return (
            f"Snowflake target '{self.target_name}' ({self.config.account}/{self.config.database})"
        )


class BigQueryWarehouse(_RemoteOnly):
    """BigQuery; a dataset is what the other engines call a schema."""

    KIND: ClassVar[str] = "bigquery"
    STORAGE: ClassVar[str] = "cloud"
    # OAuth only: a key file's settings are not read, so an output with one is left out.
    DBT_OUTPUT: ClassVar[dict[str, tuple[str, ...]]] = {
        **{key: (key,) for key in ("project", "dataset", "location", "threads")},
        "database": ("project",),
        "schema": ("dataset",),
        "method": (),
    }
    TIME_TRAVEL: ClassVar[str | None] = "system_time"
    GRANTS_IN_CATALOG: ClassVar[bool] = False
    DIALECT: ClassVar[str] = "bigquery"
    DRIVER = "google-cloud-bigquery and dbt-bigquery"
    REVIEW_HINT = (
        "runbooks print their SQL with --dry-run (access control on BigQuery is IAM, "
        "outside `stackyard plan`)"
    )
    SUPPORTS_ROLES = True
    SUPPORTS_TRANSACTIONAL_DDL = False
    MAX_IDENTIFIER_LENGTH = 1024
    config: BigQueryTarget

    def dlt_destination_settings(self) -> dict[str, Any]:
        c = self.config
        credentials: dict[str, Any] = {"project_id": c.project}
        if c.keyfile_json:
            raw = self.secrets.resolve(
                c.keyfile_json, used_for=f"targets.{self.target_name}.keyfile_json"
            )
            key = json.loads(raw)
            credentials.update({k: key[k] for k in ("private_key", "client_email") if k in key})
        return {"credentials": credentials, "location": c.location}

    def dbt_output(self) -> dict[str, Any]:
        c = self.config
        output: dict[str, Any] = {
            "type": "bigquery",
            "project": c.project,
            "dataset": c.dataset,
            "location": c.location,
            "threads": c.threads,
        }
        if c.keyfile_json:
            output["method"] = "service-account-json"
            output["keyfile_json"] = f"{{{{ env_var('{c.keyfile_json.secret}') | as_native }}}}"
        else:
            output["method"] = "oauth"
        return output

    def describe(self) -> str:
        return f"BigQuery target '{self.target_name}' ({self.config.project})"
