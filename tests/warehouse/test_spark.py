"""The spark target: settings without Spark, then the example project live on Spark local.

The live tests share one run of the example project (module-scoped: starting Spark costs
seconds, a dbt build on it most of a minute), each command in its own process as a user runs
it. Each test session has its own project folder, so its Derby metastore is never shared with
another pytest worker.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlglot

from stackyard.config.model import ProjectConfig
from stackyard.config.secrets import Secrets
from stackyard.errors import UsageError, WarehouseError
from stackyard.infra.engines import engine_class
from stackyard.warehouse import open_warehouse
from stackyard.warehouse.spark import SparkWarehouse, _rewrite_mutation, spark_type

BIN = Path(sys.executable).parent
# The example project: its models (ephemeral ones are not built) and its data tests.
EXAMPLE_MODELS = 13
EXAMPLE_TESTS = 71
SPARK_TARGET = "\n  spark:\n    type: spark\n    master: local[2]\n"


def _warehouse(tmp_path: Path, **target: object) -> SparkWarehouse:
    config = ProjectConfig.model_validate(
        {"name": "shop", "targets": {"dev": {"type": "duckdb"}, "big": {"type": "spark", **target}}}
    )
    found = open_warehouse("big", config.targets["big"], tmp_path, Secrets(tmp_path, {}))
    assert isinstance(found, SparkWarehouse)
    return found


def test_spark_target_defaults_live_in_the_project(tmp_path: Path) -> None:
    spark = _warehouse(tmp_path)
    assert spark.dlt_destination_settings() == {
        "bucket_url": str(tmp_path / ".stackyard/spark/lakehouse")
    }
    assert spark.dlt_environment() == {"NORMALIZE__LOADER_FILE_FORMAT": "parquet"}
    assert spark.dbt_output()["method"] == "session"
    settings = spark._settings()
    assert settings["spark.sql.warehouse.dir"] == str(tmp_path / ".stackyard/spark/warehouse")
    assert (
        str(tmp_path / ".stackyard/spark/metastore/metastore_db")
        in (settings["spark.hadoop.javax.jdo.option.ConnectionURL"])
    )


def test_spark_target_points_at_a_cluster(tmp_path: Path) -> None:
    spark = _warehouse(
        tmp_path,
        master="spark://head:7077",
        lakehouse="s3a://lake/raw",
        metastore_dir=None,
        conf={"spark.hadoop.hive.metastore.uris": "thrift://meta:9083"},
    )
    assert spark.lakehouse == "s3a://lake/raw"
    assert spark.table_location("shop_db", "orders") == "s3a://lake/raw/shop_db/orders"
    settings = spark._settings()
    assert "spark.hadoop.javax.jdo.option.ConnectionURL" not in settings
    assert "spark.sql.shuffle.partitions" not in settings  # a cluster keeps its own
    assert settings["spark.hadoop.hive.metastore.uris"] == "thrift://meta:9083"
    assert "spark://head:7077" in spark.describe()


def test_unknown_spark_keys_are_rejected() -> None:
    with pytest.raises(ValueError, match="mastr"):
        ProjectConfig.model_validate(
            {"name": "shop", "targets": {"dev": {"type": "spark", "mastr": "local"}}}
        )


def test_metadata_types_and_deletes_become_spark_sql() -> None:
    assert spark_type("VARCHAR NOT NULL PRIMARY KEY") == "STRING"
    assert spark_type("TIMESTAMPTZ") == "TIMESTAMP"
    table, keep, params = _rewrite_mutation(
        "DELETE FROM `stackyard`.`run_leases` WHERE name = ? AND run_id = ?", ["a", "r"]
    ) or ("", "", [])
    assert table == "`stackyard`.`run_leases`" and params == ["a", "r"]
    # rows where the condition is NULL stay, as a DELETE keeps them
    assert "NOT COALESCE(" in keep
    sqlglot.parse_one(keep, dialect="spark")
    assert _rewrite_mutation("SELECT 1", []) is None
    with pytest.raises(WarehouseError, match="UPDATE"):
        _rewrite_mutation("UPDATE `s`.`t` SET a = 1", [])


def test_plan_on_spark_says_why_there_is_nothing_to_grant() -> None:
    with pytest.raises(UsageError) as raised:
        engine_class("spark", "big")
    assert raised.value.hint is not None and "Unity Catalog" in raised.value.hint


# --------------------------------------------------------------------------- live


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "COLUMNS": "200"}
    return subprocess.run(
        [str(BIN / "stackyard"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,  # a loaded 2-core CI machine; Spark itself needs no more than minutes
    )


@pytest.fixture(scope="module")
def spark_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The example project, with a spark target, after one `stackyard run -t spark`."""
    pytest.importorskip("pyspark", reason="the spark extra is not installed")
    root = tmp_path_factory.mktemp("spark")
    project = root / "shop"
    init = _run("init", str(project), "--example", "jaffle_shop", cwd=root)
    assert init.returncode == 0, init.stdout + init.stderr
    config = project / "stackyard.yml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("\ntargets:", "\ntargets:" + SPARK_TARGET, 1), encoding="utf-8")
    yield project


@pytest.fixture(scope="module")
def spark_run(spark_project: Path) -> dict[str, Any]:
    result = _run("run", "-t", "spark", "--json", cwd=spark_project)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-6000:]
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def _rows(load: dict[str, Any]) -> int:
    return sum(int(table["rows"]) for table in load["tables"])


@pytest.mark.spark
@pytest.mark.slow
def test_run_on_spark_loads_builds_tests_records_and_monitors(
    spark_project: Path, spark_run: dict[str, Any]
) -> None:
    steps = {s["name"]: s for s in spark_run["steps"]}
    assert spark_run["status"] == "success", steps
    loads = {load["source"]: load for load in spark_run["loads"]}
    assert set(loads) == {"shop_db", "shop_files"}
    assert all(load["status"] == "loaded" and _rows(load) > 0 for load in loads.values())
    counts = spark_run["counts"]
    # every model of the example project built and every one of its tests passed
    assert counts["models_built"] == EXAMPLE_MODELS and counts["models_errored"] == 0
    assert counts["tests_passed"] == EXAMPLE_TESTS and counts["tests_failed"] == 0
    assert steps["record run"]["status"] == "ok"
    assert steps["source freshness"]["status"] == "ok"
    assert steps["monitors"]["status"] in ("ok", "warn")
    assert "could not run" not in steps["monitors"]["detail"]
    # the loaded Parquet files are where the target says, one folder per table
    lakehouse = spark_project / ".stackyard/spark/lakehouse"
    assert any((lakehouse / "shop_db" / "orders").glob("*.parquet"))


@pytest.mark.spark
@pytest.mark.slow
def test_status_and_sql_read_the_spark_catalog(
    spark_project: Path, spark_run: dict[str, Any]
) -> None:
    status = _run("status", "-t", "spark", "--json", cwd=spark_project)
    assert status.returncode == 0, status.stderr[-3000:]
    runs = json.loads(status.stdout)
    assert [r["run_id"] for r in runs] == [spark_run["run_id"]]
    assert runs[0]["status"] == "success" and runs[0]["tests_passed"] == EXAMPLE_TESTS
    loaded = sum(_rows(load) for load in spark_run["loads"] if load["source"] == "shop_db")

    query = (
        "select (select count(*) from shop_db.orders) + (select count(*) from shop_db.customers)"
        " + (select count(*) from shop_db.order_items) as raw_rows,"
        " (select count(*) from marts.orders) as mart_orders,"
        " (select count(*) from shop_db.orders) as raw_orders,"
        " (select count(*) from stackyard.run_leases) as leases_held"
    )
    sql = _run("sql", "-t", "spark", "--json", query, cwd=spark_project)
    assert sql.returncode == 0, sql.stderr[-3000:]
    row = json.loads(sql.stdout)["rows"][0]
    # counts shown equal the warehouse: every loaded row is in the registered tables
    assert row["raw_rows"] == loaded
    assert row["mart_orders"] == row["raw_orders"] > 0
    # the run gave its leases back: a DELETE on a Parquet table, rewritten by the warehouse
    assert row["leases_held"] == 0


@pytest.mark.spark
@pytest.mark.slow
def test_plan_on_a_spark_target_explains_itself(spark_project: Path) -> None:
    plan = _run("plan", "-t", "spark", cwd=spark_project)
    assert plan.returncode == 2
    assert "Unity Catalog" in plan.stdout + plan.stderr


@pytest.mark.spark
@pytest.mark.slow
def test_a_second_run_merges_changed_rows_as_on_duckdb(
    spark_project: Path, spark_run: dict[str, Any]
) -> None:
    """Plain Parquet cannot merge: the files keep every version, and the tables a user and dbt
    read keep each key's latest row (runs after the tests above, which read the first run)."""
    from tests.runbooks.test_restore_drill import add_orders, source_counts

    add_orders(spark_project, 10)  # ten more orders and their items; customer 1 renamed
    second = _run("run", "-t", "spark", "--json", cwd=spark_project)
    assert second.returncode == 0, second.stdout[-6000:] + second.stderr[-6000:]
    assert json.loads(second.stdout)["status"] == "success"

    query = (
        "select (select count(*) from shop_db.customers) as customers,"
        " (select count(distinct id) from shop_db.customers) as customer_ids,"
        " (select count(*) from shop_db.customers where name = 'Renamed') as renamed,"
        " (select count(*) from shop_db__files.customers) as customer_versions,"
        " (select count(*) from shop_db.orders) as orders,"
        " (select count(distinct id) from shop_db.orders) as order_ids,"
        " (select count(*) from shop_db.order_items) as items,"
        " (select count(*) from marts.orders) as mart_orders"
    )
    sql = _run("sql", "-t", "spark", "--json", query, cwd=spark_project)
    assert sql.returncode == 0, sql.stderr[-3000:]
    row = json.loads(sql.stdout)["rows"][0]
    upstream = source_counts(spark_project)
    assert row["customers"] == row["customer_ids"] == upstream["customers"]  # no duplicate
    assert row["renamed"] == 1  # the latest version of the changed row
    assert row["customer_versions"] == upstream["customers"] + 1  # the files keep both
    assert row["orders"] == row["order_ids"] == upstream["orders"]
    assert row["items"] == upstream["order_items"]
    assert row["mart_orders"] == upstream["orders"]
