"""The jaffle_shop example's generator: the files, tables and columns it writes, rows that add
up, the same bytes from the same seed, scale, and a day of business appended."""

from __future__ import annotations

import csv
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from stackyard.errors import UsageError
from stackyard.examples.jaffle_shop.generator import DATABASE, FILES, add_day, generate
from tests.examples.conftest import APP_TABLES, END


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


# --- helpers -------------------------------------------------------------------------------


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
