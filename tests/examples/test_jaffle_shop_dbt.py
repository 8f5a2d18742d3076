"""The jaffle_shop example's dbt project, run for real on DuckDB and Postgres over the
generator's data, loaded the way stackyard lays it out (raw schemas ``shop_db`` and
``shop_files``, each row stamped with ``_loaded_at`` and ``_dlt_load_id``); then stackyard's SQL
engine over the same project, which must agree with dbt."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from stackyard.examples.jaffle_shop.generator import DATABASE, FILES
from tests.examples.conftest import APP_TABLES

FILE_TABLES = ("products", "stores", "supplies")


@dataclass
class DbtRun:
    """What one dbt invocation reported."""

    success: bool
    statuses: dict[str, str]  # unique_id → status
    failures: dict[str, int | None] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def test_dbt_builds_and_tests_the_example_on_duckdb(shop: Path, tmp_path: Path) -> None:
    import duckdb

    warehouse = tmp_path / "dev.duckdb"
    raw = _raw_tables(shop, csv_as_text=True)
    with duckdb.connect(str(warehouse)) as con:
        for schema, tables in raw.items():
            con.execute(f"CREATE SCHEMA {schema}")
            for name, table in tables.items():
                con.register("arrow_table", table)
                con.execute(f"CREATE TABLE {schema}.{name} AS SELECT * FROM arrow_table")
                con.unregister("arrow_table")
    project = _project(tmp_path)
    _profiles(tmp_path, {"type": "duckdb", "path": str(warehouse), "schema": "main"})

    build = _dbt(["build"], project, tmp_path)
    freshness = _dbt(["source", "freshness"], project, tmp_path)

    _assert_all_passed(build)
    assert not build.warnings, build.warnings
    assert freshness.success and set(freshness.statuses.values()) == {"pass"}
    assert len(freshness.statuses) == 6

    # dbt-duckdb keeps its in-process database open, so connect with the same (default) settings.
    with duckdb.connect(str(warehouse)) as con:
        counts = {
            f"{s}.{t}": con.execute(f"SELECT count(*) FROM {s}.{t}").fetchone()[0]
            for s, t in (
                ("marts", "customers"),
                ("marts", "orders"),
                ("marts", "products"),
                ("marts", "stores"),
                ("reporting", "rpt_daily_revenue"),
                ("reporting", "rpt_customer_lifetime"),
                ("staging", "stg_dlt__order_items"),
            )
        }
        raw_total = con.execute("SELECT sum(order_total) FROM shop_db.orders").fetchone()[0]
        mart_total, inconsistent = con.execute(
            "SELECT sum(order_total), count(*) FILTER (WHERE order_total <> subtotal + tax_paid)"
            " FROM marts.orders"
        ).fetchone()
        revenue, store_revenue = con.execute(
            "SELECT (SELECT sum(revenue) FROM reporting.rpt_daily_revenue),"
            " (SELECT sum(revenue) FROM marts.stores)"
        ).fetchone()
        schemas = {
            r[0]
            for r in con.execute(
                "SELECT DISTINCT table_schema FROM information_schema.tables"
                " WHERE table_name LIKE 'stg_%' OR table_name LIKE 'rpt_%'"
                " OR table_name IN ('orders', 'customers')"
            ).fetchall()
        }
    assert counts["marts.orders"] == raw["shop_db"]["orders"].num_rows
    assert counts["marts.customers"] == raw["shop_db"]["customers"].num_rows
    assert counts["marts.products"] == 10 and counts["marts.stores"] == 6
    assert counts["staging.stg_dlt__order_items"] == raw["shop_db"]["order_items"].num_rows
    assert counts["reporting.rpt_daily_revenue"] > 365
    assert 0 < counts["reporting.rpt_customer_lifetime"] <= counts["marts.customers"]
    assert inconsistent == 0
    assert mart_total * 100 == raw_total
    assert revenue == store_revenue > 0
    assert schemas == {"shop_db", "staging", "marts", "reporting"}

    from stackyard.config.model import DuckDBTarget
    from stackyard.config.secrets import Secrets
    from stackyard.warehouse.duckdb import DuckDBWarehouse

    target = DuckDBTarget(type="duckdb", path=str(warehouse))
    _assert_the_sql_engine_agrees(
        build, project, tmp_path, DuckDBWarehouse("dev", target, tmp_path, Secrets(tmp_path))
    )


@pytest.mark.postgres
def test_dbt_builds_and_tests_the_example_on_postgres(
    shop: Path, tmp_path: Path, pg_database: dict[str, Any]
) -> None:
    import psycopg

    raw = _raw_tables(shop, csv_as_text=False)  # inferred CSV types this time, as DuckDB reads
    conninfo = " ".join(f"{k}={v}" for k, v in pg_database.items()).replace("database=", "dbname=")
    with psycopg.connect(conninfo, autocommit=True) as con:
        for schema, tables in raw.items():
            con.execute(f"CREATE SCHEMA {schema}")
            for name, table in tables.items():
                _copy_to_postgres(con, f"{schema}.{name}", table)
    project = _project(tmp_path)
    _profiles(
        tmp_path,
        {
            "type": "postgres",
            "host": pg_database["host"],
            "port": pg_database["port"],
            "user": pg_database["user"],
            "password": "",  # trust authentication on the local test server
            "dbname": pg_database["database"],
            "schema": "public",
        },
    )

    build = _dbt(["build"], project, tmp_path)
    freshness = _dbt(["source", "freshness"], project, tmp_path)

    _assert_all_passed(build)
    assert freshness.success and set(freshness.statuses.values()) == {"pass"}
    with psycopg.connect(conninfo) as con:
        orders, inconsistent = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE order_total <> subtotal + tax_paid)"
            " FROM marts.orders"
        ).fetchone()
        revenue_days = con.execute("SELECT count(*) FROM reporting.rpt_daily_revenue").fetchone()
    assert orders == raw["shop_db"]["orders"].num_rows
    assert inconsistent == 0
    assert revenue_days[0] > 365

    from stackyard.config.model import PostgresTarget
    from stackyard.config.secrets import Secrets
    from stackyard.warehouse.postgres import PostgresWarehouse

    target = PostgresTarget(type="postgres", **pg_database)  # type: ignore[arg-type]
    _assert_the_sql_engine_agrees(
        build, project, tmp_path, PostgresWarehouse("dev", target, tmp_path, Secrets(tmp_path))
    )


# --- helpers -------------------------------------------------------------------------------


def _assert_the_sql_engine_agrees(
    build: DbtRun, project: Path, profiles_dir: Path, warehouse: Any
) -> None:
    """`stackyard run --engine auto` over what dbt just built: every relation row for row,
    every node's status and failures as dbt's; the microbatch model by its batch SQL."""
    from stackyard.runner.sql_build import build as build_with
    from stackyard.transform.dbt import Dbt

    def relations() -> dict[tuple[str, str, str], list[tuple[Any, ...]]]:
        found = warehouse.query(
            "SELECT table_schema, table_name, table_type FROM information_schema.tables "
            "WHERE table_schema IN ('staging', 'marts', 'reporting') ORDER BY 1, 2"
        ).rows
        out = {}
        for schema, name, kind in found:
            rows = warehouse.query(f"SELECT * FROM {warehouse.quote(schema, name)}").rows
            out[(schema, name, kind)] = sorted(rows, key=repr)
        return out

    by_dbt = relations()
    warehouse.close()
    dbt = Dbt(project, "dev", {}, profiles_dir=profiles_dir)
    results = build_with("auto", dbt, warehouse, (), (), False, warehouse.close)
    assert relations() == by_dbt
    warehouse.close()
    assert {r.unique_id: r.status for r in results} == build.statuses
    assert {r.unique_id: r.failures for r in results} == build.failures
    assert {r.name for r in results if r.engine == "dbt"} == set()  # microbatch too: as SQL
    assert len(by_dbt) == 13


def _raw_tables(project: Path, *, csv_as_text: bool) -> dict[str, dict[str, Any]]:
    """The generated data as Arrow tables shaped like stackyard's raw schemas.

    SQLite ``DATETIME`` columns become naive timestamps (as dlt's sql_database source loads
    them); CSV columns are text or DuckDB's inferred types; every table gets ``_loaded_at``
    (timestamp with time zone) and ``_dlt_load_id`` (text).
    """
    import duckdb
    import pyarrow as pa
    import pyarrow.compute as pc

    loaded_at = datetime.now(UTC)
    load_id = f"{loaded_at.timestamp():.6f}"

    def stamp(table: pa.Table) -> pa.Table:
        n = table.num_rows
        table = table.append_column(
            "_loaded_at", pa.repeat(pa.scalar(loaded_at, type=pa.timestamp("us", tz="UTC")), n)
        )
        return table.append_column("_dlt_load_id", pa.repeat(pa.scalar(load_id), n))

    app: dict[str, Any] = {}
    with sqlite3.connect(project / DATABASE) as con:
        for name in APP_TABLES:
            info = con.execute(f"PRAGMA table_info({name})").fetchall()
            rows = con.execute(f"SELECT * FROM {name} ORDER BY id").fetchall()
            columns = {}
            for index, (_, column, declared, *_rest) in enumerate(info):
                values = pa.array([r[index] for r in rows])
                if declared == "DATETIME":
                    values = pc.strptime(values, format="%Y-%m-%d %H:%M:%S", unit="us")
                columns[column] = values
            app[name] = stamp(pa.table(columns))

    files: dict[str, Any] = {}
    with duckdb.connect() as con:
        for name in FILE_TABLES:
            path = project / FILES / (f"{name}.parquet" if name == "supplies" else f"{name}.csv")
            if path.suffix == ".csv":
                options = ", all_varchar = true" if csv_as_text else ""
                query = f"SELECT * FROM read_csv('{path}', header = true{options})"
            else:
                query = f"SELECT * FROM read_parquet('{path}')"
            files[name] = stamp(con.sql(query).to_arrow_table())
    return {"shop_db": app, "shop_files": files}


def _copy_to_postgres(con: Any, table_name: str, table: Any) -> None:
    import pyarrow as pa

    def pg_type(t: pa.DataType) -> str:
        if pa.types.is_timestamp(t):
            return "timestamptz" if t.tz else "timestamp"
        if pa.types.is_integer(t):
            return "bigint"
        if pa.types.is_floating(t):
            return "double precision"
        if pa.types.is_boolean(t):
            return "boolean"
        if pa.types.is_decimal(t):
            return "numeric"
        return "text"

    columns = ", ".join(f"{f.name} {pg_type(f.type)}" for f in table.schema)
    con.execute(f"CREATE TABLE {table_name} ({columns})")
    with con.cursor().copy(f"COPY {table_name} FROM STDIN") as copy:
        for row in zip(*(c.to_pylist() for c in table.columns), strict=True):
            copy.write_row(row)


def _project(tmp_path: Path) -> Path:
    """The dbt template copied as ``stackyard init`` copies it, so dbt writes nothing in src."""
    template = resources.files("stackyard.examples.jaffle_shop") / "transform"
    with resources.as_file(template) as source:
        return Path(shutil.copytree(source, tmp_path / "transform"))


def _profiles(folder: Path, output: Mapping[str, Any]) -> None:
    import yaml

    profiles = {"stackyard": {"target": "dev", "outputs": {"dev": {**output, "threads": 4}}}}
    (folder / "profiles.yml").write_text(yaml.safe_dump(profiles), encoding="utf-8")


def _dbt(args: list[str], project: Path, profiles_dir: Path) -> DbtRun:
    from dbt.cli.main import dbtRunner

    warnings: list[str] = []

    def collect(event: Any) -> None:
        if event.info.level == "warn":
            warnings.append(f"{event.info.name}: {event.info.msg}")

    result = dbtRunner(callbacks=[collect]).invoke(
        [
            *args,
            "--project-dir",
            str(project),
            "--profiles-dir",
            str(profiles_dir),
            "--no-use-colors",
            "--quiet",
        ]
    )
    statuses = {r.node.unique_id: str(r.status) for r in (result.result or [])}
    failures = {r.node.unique_id: r.failures for r in (result.result or [])}
    if result.exception is not None:
        raise result.exception
    return DbtRun(result.success, statuses, failures, warnings)


def _assert_all_passed(run: DbtRun) -> None:
    failed = {
        node: status for node, status in run.statuses.items() if status not in ("success", "pass")
    }
    assert run.success and not failed, failed
    models = [n for n in run.statuses if n.startswith("model.")]
    tests = [n for n in run.statuses if n.startswith("test.")]
    # Ephemeral models are inlined, not built: 6 staging + 5 marts (fct_daily_orders is the
    # microbatch one) + 2 reporting.
    assert len(models) == 13, sorted(models)
    assert len(tests) >= 50, len(tests)
