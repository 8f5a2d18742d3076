"""Each target turns into the dlt destination and dbt profile a team would write by hand."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import sqlglot
import yaml

from stackyard.config.model import DuckDBTarget, ProjectConfig
from stackyard.config.secrets import Secrets
from stackyard.errors import WarehouseUnreachableError
from stackyard.transform.dbt import write_profiles
from stackyard.warehouse import open_warehouse
from stackyard.warehouse.cloud import SnowflakeWarehouse
from stackyard.warehouse.duckdb import DuckDBWarehouse
from stackyard.warehouse.postgres import PostgresWarehouse

KEY = "-----BEGIN PRIVATE KEY-----\nMIIfake\n-----END PRIVATE KEY-----"
SERVICE_ACCOUNT = {"client_email": "svc@proj.iam.gserviceaccount.com", "private_key": KEY}

CONFIG = ProjectConfig.model_validate(
    {
        "name": "shop",
        "targets": {
            "dev": {"type": "duckdb"},
            "prod": {
                "type": "postgres",
                "user": "svc_dlt",
                "database": "analytics",
                "password": {"secret": "PG_PASSWORD"},
            },
            "snow": {
                "type": "snowflake",
                "account": "xy12345.eu-west-1",
                "user": "SVC_DLT",
                "role": "SVC_DLT",
                "warehouse": "LOADING",
                "database": "DLT",
                "private_key": {"secret": "SNOWFLAKE_KEY"},
            },
            "bq": {
                "type": "bigquery",
                "project": "acme-data",
                "location": "EU",
                "keyfile_json": {"secret": "BQ_KEY"},
            },
        },
    }
)
ENV = {"PG_PASSWORD": "pg-pass-123", "SNOWFLAKE_KEY": KEY, "BQ_KEY": json.dumps(SERVICE_ACCOUNT)}


def warehouse(tmp_path: Path, name: str):  # type: ignore[no-untyped-def]
    return open_warehouse(name, CONFIG.targets[name], tmp_path, Secrets(tmp_path, ENV))


def test_duckdb_file_lives_in_the_project(tmp_path: Path) -> None:
    w = warehouse(tmp_path, "dev")
    assert isinstance(w, DuckDBWarehouse)
    assert w.dlt_destination_settings() == {"credentials": str(tmp_path / ".stackyard/dev.duckdb")}
    assert w.dbt_output()["path"] == str(tmp_path / ".stackyard/dev.duckdb")
    assert not w.SUPPORTS_ROLES


def test_duckdb_file_is_owner_only_from_its_first_query(tmp_path: Path) -> None:
    # A query (stackyard sql, apply) created the file under the umask, 0644, and the next
    # `stackyard security check` reported a file stackyard itself had just made.
    umask = os.umask(0o022)
    try:
        w = warehouse(tmp_path, "dev")
        w.query("select 1")
        w.execute("create table t as select 1 as x")
        w.close()
    finally:
        os.umask(umask)
    for path in (tmp_path / ".stackyard").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_duckdb_memory_limit_holds_for_loads_and_dbt(tmp_path: Path) -> None:
    from pydantic import ValidationError

    config = ProjectConfig.model_validate(
        {"name": "shop", "targets": {"dev": {"type": "duckdb", "memory_limit": "300MB"}}}
    )
    w = open_warehouse("dev", config.targets["dev"], tmp_path, Secrets(tmp_path, {}))
    assert w.dbt_output()["settings"] == {"memory_limit": "300MB"}
    (limit,) = w.query("SELECT current_setting('memory_limit')").rows[0]
    assert limit in ("286.1 MiB", "300.0 MB"), limit
    w.close()
    with pytest.raises(ValidationError, match="memory_limit"):
        ProjectConfig.model_validate(
            {"name": "shop", "targets": {"dev": {"type": "duckdb", "memory_limit": "1GB'; x"}}}
        )


def test_postgres_settings_keep_the_password_out_of_profiles(tmp_path: Path) -> None:
    w = warehouse(tmp_path, "prod")
    assert isinstance(w, PostgresWarehouse)
    creds = w.dlt_destination_settings()["credentials"]
    assert creds["password"] == "pg-pass-123" and creds["database"] == "analytics"
    output = w.dbt_output()
    assert output["password"] == "{{ env_var('PG_PASSWORD') }}"
    assert w.secret_env() == {"PG_PASSWORD": "pg-pass-123", "PGTZ": "UTC"}


def test_snowflake_settings(tmp_path: Path) -> None:
    w = warehouse(tmp_path, "snow")
    creds = w.dlt_destination_settings()["credentials"]
    assert creds == {
        "database": "DLT",
        "host": "xy12345.eu-west-1",
        "username": "SVC_DLT",
        "warehouse": "LOADING",
        "role": "SVC_DLT",
        "private_key": KEY,
    }
    output = w.dbt_output()
    assert output["type"] == "snowflake" and output["account"] == "xy12345.eu-west-1"
    assert output["private_key"] == "{{ env_var('SNOWFLAKE_KEY') }}"
    assert "password" not in output
    destination = w.dlt_destination()
    assert destination.destination_type.endswith("snowflake")


def test_bigquery_settings(tmp_path: Path) -> None:
    w = warehouse(tmp_path, "bq")
    settings = w.dlt_destination_settings()
    assert settings["location"] == "EU"
    assert settings["credentials"] == {"project_id": "acme-data", **SERVICE_ACCOUNT}
    output = w.dbt_output()
    assert output["method"] == "service-account-json"
    assert output["keyfile_json"] == "{{ env_var('BQ_KEY') | as_native }}"
    assert w.dlt_destination().destination_type.endswith("bigquery")


def test_remote_targets_say_why_they_cannot_query(tmp_path: Path) -> None:
    with pytest.raises(WarehouseUnreachableError, match="snowflake-connector-python"):
        warehouse(tmp_path, "snow").query("select 1")


def test_snowflake_requires_exactly_one_credential() -> None:
    with pytest.raises(ValueError, match="exactly one of private_key"):
        ProjectConfig.model_validate(
            {
                "name": "x",
                "targets": {
                    "dev": {
                        "type": "snowflake",
                        "account": "a",
                        "user": "u",
                        "role": "r",
                        "warehouse": "w",
                        "database": "d",
                    }
                },
                "defaults": {"target": "dev"},
            }
        )


def test_generated_profiles_hold_every_target_and_no_secret(tmp_path: Path) -> None:
    (tmp_path / "dbt_project.yml").write_text("name: shop\nprofile: stackyard\n")
    outputs = {name: warehouse(tmp_path, name).dbt_output() for name in CONFIG.targets}
    path = write_profiles(tmp_path, outputs, "dev")
    text = path.read_text()
    profile = yaml.safe_load(text)["stackyard"]
    assert profile["target"] == "dev"
    assert set(profile["outputs"]) == {"dev", "prod", "snow", "bq"}
    for value in ENV.values():
        assert value not in text


@pytest.mark.parametrize("name", ['we"ird', "semi;colon", "Mixed Case", "drop table x; --"])
def test_hostile_identifiers_are_quoted(name: str) -> None:
    for cls, dialect in (
        (DuckDBWarehouse, "duckdb"),
        (PostgresWarehouse, "postgres"),
        (SnowflakeWarehouse, "snowflake"),
    ):
        sql = f"CREATE SCHEMA IF NOT EXISTS {cls.quote_for(name)}"
        parsed = sqlglot.parse(sql, read=dialect)
        assert len(parsed) == 1, sql
        assert parsed[0].find(sqlglot.exp.Identifier).name == name  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "name", ['we"ird', '""', "semi;colon", "Mixed Case", "drop table x; --", "ünï", "a.b", "`x`"]
)
def test_quoting_without_sqlglot_renders_what_sqlglot_renders(name: str) -> None:
    # DuckDB and Postgres quote by hand (IDENTIFIER_QUOTE) to keep sqlglot's import off a
    # no-op run; the text must be exactly sqlglot's.
    for cls in (DuckDBWarehouse, PostgresWarehouse):
        assert cls.IDENTIFIER_QUOTE is not None
        expected = ".".join(
            sqlglot.exp.to_identifier(p, quoted=True).sql(dialect=cls.DIALECT) for p in (name, "t")
        )
        assert cls.quote_for(name, "t") == expected


def test_metadata_rows_insert_as_lists_exactly_as_as_values(tmp_path: Path) -> None:
    # DuckDB binds one list per column (LIST_PARAMETERS); the rows stored must be those the
    # portable multi-row VALUES statement stores, NULLs, ints in DOUBLE columns and naive
    # and aware times included.
    from datetime import UTC, date, datetime
    from decimal import Decimal

    from stackyard.metadata.schema import MONITOR_TABLES, ensure_tables, insert_rows

    aware = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
    rows = [
        ("r1", aware, "app.t", "source", "app.t", "volume", None, date(2026, 3, 1), "ok", 3,
         2.5, None, float("inf"), "it's 3 rows"),
        ("r1", datetime(2026, 3, 1, 1, 2), "app.t", "model", "t", "null_rate", "a\"b", None,
         "anomaly", Decimal("0.25"), None, 0.0, 1e300, ""),
    ]  # fmt: skip
    stored = []
    for as_lists in (True, False):
        w = DuckDBWarehouse(
            "dev", DuckDBTarget(type="duckdb", path=f"w{as_lists}.duckdb"), tmp_path,
            Secrets(tmp_path, environ={}),
        )  # fmt: skip
        w.LIST_PARAMETERS = as_lists  # type: ignore[misc]
        ensure_tables(w, MONITOR_TABLES)
        insert_rows(w, "monitor_findings", rows)
        stored.append(w.query('SELECT * FROM "stackyard"."monitor_findings"').rows)
        w.close()
    assert stored[0] == stored[1]
    assert len(stored[0]) == 2
