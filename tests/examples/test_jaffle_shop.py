"""The jaffle_shop example: its generator's data, and its dbt project run for real on DuckDB and
Postgres over that data, loaded the way stackyard lays it out (raw schemas ``shop_db`` and
``shop_files``, each row stamped with ``_loaded_at`` and ``_dlt_load_id``)."""

from __future__ import annotations

import csv
import shutil
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from stackyard.errors import UsageError
from stackyard.examples.jaffle_shop.generator import DATABASE, FILES, add_day, generate

END = date(2025, 6, 30)
APP_TABLES = ("customers", "orders", "order_items")
FILE_TABLES = ("products", "stores", "supplies")


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One generated example at scale 1, shared by the read-only tests."""
    project = tmp_path_factory.mktemp("shop")
    generate(project, scale=1, seed=42, end=END)
    return project


# --- the generator -------------------------------------------------------------------------


def test_writes_the_documented_files_tables_and_columns(shop: Path) -> None:
    with sqlite3.connect(shop / DATABASE) as con:
        declared = {
            table: [(r[1], r[2], r[5]) for r in con.execute(f"PRAGMA table_info({table})")]
            for table in APP_TABLES
        }
    assert declared == {
        "customers": [
            ("id", "INTEGER", 1),
            ("name", "TEXT", 0),
            ("email", "TEXT", 0),
            ("created_at", "DATETIME", 0),
            ("updated_at", "DATETIME", 0),
        ],
        "orders": [
            ("id", "INTEGER", 1),
            ("customer_id", "INTEGER", 0),
            ("store_id", "INTEGER", 0),
            ("ordered_at", "DATETIME", 0),
            ("status", "TEXT", 0),
            ("subtotal", "INTEGER", 0),
            ("tax_paid", "INTEGER", 0),
            ("order_total", "INTEGER", 0),
            ("updated_at", "DATETIME", 0),
        ],
        "order_items": [
            ("id", "INTEGER", 1),
            ("order_id", "INTEGER", 0),
            ("sku", "TEXT", 0),
            ("quantity", "INTEGER", 0),
            ("updated_at", "DATETIME", 0),
        ],
    }
    files = shop / FILES
    assert _header(files / "products.csv") == ["sku", "name", "type", "price", "description"]
    assert _header(files / "stores.csv") == ["id", "name", "opened_at", "tax_rate"]

    import pyarrow as pa
    import pyarrow.parquet as pq

    supplies = pq.read_table(files / "supplies.parquet")
    assert [(f.name, f.type) for f in supplies.schema] == [
        ("id", pa.int32()),
        ("name", pa.string()),
        ("cost", pa.int32()),
        ("perishable", pa.bool_()),
        ("sku", pa.string()),
    ]
    assert len(set(supplies["id"].to_pylist())) == supplies.num_rows
    per_sku = supplies.group_by("sku").aggregate([("id", "count")])
    assert min(per_sku["id_count"].to_pylist()) >= 1
    assert sorted(per_sku["sku"].to_pylist()) == sorted(_csv(files / "products.csv", "sku"))


def test_scale_one_is_a_year_of_a_small_shop(shop: Path) -> None:
    with sqlite3.connect(shop / DATABASE) as con:
        customers, orders, items = (
            con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in APP_TABLES
        )
        first, last = con.execute("SELECT min(ordered_at), max(ordered_at) FROM orders").fetchone()
        by_weekday = dict(
            con.execute("SELECT strftime('%w', ordered_at), count(*) FROM orders GROUP BY 1")
        )
        first_month, last_month = (
            con.execute(
                "SELECT count(*) FROM orders WHERE ordered_at >= ? AND ordered_at < ?",
                (lo.isoformat(), hi.isoformat()),
            ).fetchone()[0]
            for lo, hi in (
                (END - timedelta(days=364), END - timedelta(days=334)),
                (END - timedelta(days=29), END + timedelta(days=1)),
            )
        )
    assert 1_000 <= customers <= 2_000
    assert 25_000 <= orders <= 40_000
    assert 1.8 <= items / orders <= 2.3
    assert first[:10] == (END - timedelta(days=364)).isoformat()
    assert last[:10] == END.isoformat()
    weekend = (by_weekday["0"] + by_weekday["6"]) / 2
    weekday = sum(by_weekday[d] for d in "12345") / 5
    assert weekend > 1.2 * weekday, by_weekday
    assert last_month > 1.5 * first_month, "the shop grows over the year"


def test_rows_are_consistent(shop: Path) -> None:
    """Totals add up, tax follows the store's rate, and every reference exists."""
    with sqlite3.connect(shop / DATABASE) as con:
        _attach_files(con, shop)
        problems = {
            "total is not subtotal + tax": "SELECT count(*) FROM orders"
            " WHERE order_total <> subtotal + tax_paid",
            "subtotal is not the items' price × quantity": """
                SELECT count(*) FROM orders o JOIN (
                    SELECT i.order_id, sum(p.price * i.quantity) AS s
                    FROM order_items i JOIN products p USING (sku) GROUP BY 1
                ) x ON x.order_id = o.id WHERE x.s <> o.subtotal""",
            "tax is not the store's rate": "SELECT count(*) FROM orders o"
            " JOIN stores s ON s.id = o.store_id"
            " WHERE o.tax_paid <> (o.subtotal * cast(round(s.tax_rate * 10000) AS INTEGER) + 5000)"
            " / 10000",  # rounded half up to the cent, in integers
            "order without items": "SELECT count(*) FROM orders"
            " WHERE id NOT IN (SELECT order_id FROM order_items)",
            "unknown customer": "SELECT count(*) FROM orders"
            " WHERE customer_id NOT IN (SELECT id FROM customers)",
            "customer signed up after ordering": "SELECT count(*) FROM orders o"
            " JOIN customers c ON c.id = o.customer_id WHERE c.created_at > o.ordered_at",
            "unknown store": "SELECT count(*) FROM orders"
            " WHERE store_id NOT IN (SELECT id FROM stores)",
            "order before the store opened": "SELECT count(*) FROM orders o"
            " JOIN stores s ON s.id = o.store_id WHERE o.ordered_at <= s.opened_at",
            "unknown sku": "SELECT count(*) FROM order_items"
            " WHERE sku NOT IN (SELECT sku FROM products)",
            "updated before created": "SELECT count(*) FROM orders WHERE updated_at < ordered_at",
            "unknown status": "SELECT count(*) FROM orders"
            " WHERE status NOT IN ('placed', 'shipped', 'completed', 'returned')",
            "timestamp not YYYY-MM-DD HH:MM:SS": "SELECT count(*) FROM orders"
            " WHERE ordered_at NOT GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]"
            " [0-9][0-9]:[0-9][0-9]:[0-9][0-9]'",
        }
        found = {what: con.execute(sql).fetchone()[0] for what, sql in problems.items()}
        statuses = {s for (s,) in con.execute("SELECT DISTINCT status FROM orders")}
    assert found == dict.fromkeys(problems, 0)
    assert statuses == {"placed", "shipped", "completed", "returned"}


def test_same_seed_and_end_give_the_same_bytes(tmp_path: Path) -> None:
    first, second, other = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate(first, seed=7, end=END)
    generate(second, seed=7, end=END)
    generate(other, seed=8, end=END)
    for name in ("products.csv", "stores.csv", "supplies.parquet"):
        assert (first / FILES / name).read_bytes() == (second / FILES / name).read_bytes(), name
    assert _dump(first) == _dump(second)
    assert (first / DATABASE).read_bytes() == (second / DATABASE).read_bytes()
    assert _dump(first)["orders"] != _dump(other)["orders"]


def test_generating_again_replaces_the_data(tmp_path: Path) -> None:
    generate(tmp_path, seed=1, end=END)
    generate(tmp_path, seed=2, end=END)
    fresh = tmp_path / "fresh"
    generate(fresh, seed=2, end=END)
    assert _dump(tmp_path) == _dump(fresh)


def test_scale_multiplies_customers_and_orders(shop: Path, tmp_path: Path) -> None:
    result = generate(tmp_path, scale=2, end=END)
    with sqlite3.connect(shop / DATABASE) as con:
        base_customers = con.execute("SELECT count(*) FROM customers").fetchone()[0]
        base_orders = con.execute("SELECT count(*) FROM orders").fetchone()[0]
    assert result.tables["customers"] == 2 * base_customers
    assert 1.9 <= result.tables["orders"] / base_orders <= 2.1
    assert result.tables["products"] == 10 and result.tables["stores"] == 6


def test_add_day_appends_orders_and_moves_earlier_ones_on(tmp_path: Path) -> None:
    generate(tmp_path, end=END)
    before = _dump(tmp_path)
    day = END + timedelta(days=1)

    result = add_day(tmp_path, day=day)

    after = _dump(tmp_path)
    old_ids = {row[0] for row in before["orders"]}
    new = [row for row in after["orders"] if row[0] not in old_ids]
    unchanged = set(before["orders"])
    changed = [row for row in after["orders"] if row[0] in old_ids and row not in unchanged]
    assert new and changed
    assert all(row[3].startswith(day.isoformat()) and row[4] == "placed" for row in new)
    assert all(row[8].startswith(day.isoformat()) for row in changed)  # updated_at bumped
    assert all(row[7] == row[5] + row[6] for row in after["orders"])
    assert result.tables["orders"] == len(new) + len(changed)
    assert after["customers"][: len(before["customers"])] == before["customers"]
    with pytest.raises(UsageError, match="already has rows updated"):
        add_day(tmp_path, day=day)


# --- the dbt project -----------------------------------------------------------------------


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


def _header(path: Path) -> list[str]:
    with path.open(encoding="utf-8", newline="") as f:
        return next(csv.reader(f))


def _csv(path: Path, column: str) -> list[str]:
    with path.open(encoding="utf-8", newline="") as f:
        return [row[column] for row in csv.DictReader(f)]


def _attach_files(con: sqlite3.Connection, project: Path) -> None:
    """The CSV files as temp tables next to the app database, for cross-checks."""
    for name, columns in (
        ("products", "sku, price INTEGER"),
        ("stores", "id, opened_at, tax_rate"),
    ):
        con.execute(f"CREATE TEMP TABLE {name} ({columns})")
        with (project / FILES / f"{name}.csv").open(encoding="utf-8", newline="") as f:
            rows = [{k: v for k, v in row.items() if k in columns} for row in csv.DictReader(f)]
        keys = [c.split()[0] for c in columns.split(", ")]
        con.executemany(
            f"INSERT INTO {name} VALUES ({', '.join('?' * len(keys))})",
            [tuple(row[k] for k in keys) for row in rows],
        )


def _dump(project: Path) -> dict[str, list[tuple[Any, ...]]]:
    with sqlite3.connect(project / DATABASE) as con:
        return {t: con.execute(f"SELECT * FROM {t} ORDER BY id").fetchall() for t in APP_TABLES}


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
