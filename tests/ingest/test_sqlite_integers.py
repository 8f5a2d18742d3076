"""SQLite is typeless: an INTEGER column holding a fraction fails the load, naming the table,
column and value, instead of loading it rounded (with every SQLAlchemy-reading backend, and
with auto after ConnectorX refuses the value)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from stackyard import Context
from tests.runner.conftest import make_project


@pytest.mark.parametrize("backend", ["auto", "pyarrow", "sqlalchemy"])
def test_a_fraction_in_an_integer_column_fails_the_load(tmp_path: Path, backend: str) -> None:
    project = make_project(tmp_path / "p", orders=5)
    db = sqlite3.connect(project / "sources" / "app.sqlite")
    db.execute("INSERT INTO orders VALUES (6, 1, 850.7, 'placed', '2026-01-02 10:00:00')")
    db.commit()
    db.close()
    config = project / "stackyard.yml"
    text = config.read_text()
    config.write_text(
        text.replace("kind: sql_database", f"kind: sql_database\n    backend: {backend}")
    )

    result = Context(project).run(select=["app"])

    app = next(load for load in result.loads if load.source == "app")
    assert app.status == "failed"
    assert "table 'orders', column 'amount': the value 850.7 is not a whole number" in (
        app.error or ""
    )
    tables = Context(project).sql(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'app'"
    )
    assert "orders" not in {r[0] for r in tables.rows}  # nothing rounded went in


def test_the_hint_loads_the_fraction_with_its_new_type(tmp_path: Path) -> None:
    """The failed load's advice, followed as written: a view that casts the column, named as
    the table's ``source_table:``, then a reload; every row comes back, the fraction whole."""
    project = make_project(tmp_path / "p", orders=5)
    assert Context(project).run(select=["app"]).ok
    db = sqlite3.connect(project / "sources" / "app.sqlite")
    db.execute("UPDATE orders SET amount = 850.7, updated_at = '2026-01-03 10:00:00' WHERE id = 1")
    db.commit()
    failed = next(
        load for load in Context(project).run(select=["app"]).loads if load.source == "app"
    )
    assert failed.status == "failed"
    assert "`source_table:`" in (failed.error or "")
    assert "`stackyard reload SOURCE.orders --yes`" in (failed.error or "")

    db.execute(
        "CREATE VIEW orders_real AS SELECT id, customer_id, CAST(amount AS REAL) AS amount, "
        "status, updated_at FROM orders"
    )
    db.commit()
    db.close()
    config = project / "stackyard.yml"
    config.write_text(
        config.read_text().replace(
            "orders: {primary_key: id, cursor: updated_at}",
            "orders: {primary_key: id, cursor: updated_at, source_table: orders_real}",
        )
    )
    context = Context(project)
    result = context.reload(context.reload_plan("app.orders"))
    assert next(load for load in result.loads if load.source == "app").status == "loaded"
    rows = (
        Context(project).sql("SELECT id, amount, typeof(amount) FROM app.orders ORDER BY id").rows
    )
    assert list(rows) == [(1, 850.7, "DOUBLE")] + [(i, 100.0 + i, "DOUBLE") for i in range(2, 6)]


def test_whole_numbers_still_load_as_integers(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", orders=5)
    config = project / "stackyard.yml"
    text = config.read_text()
    config.write_text(
        text.replace("kind: sql_database", "kind: sql_database\n    backend: pyarrow")
    )
    assert Context(project).run(select=["app"]).ok
    rows = Context(project).sql("SELECT amount, typeof(amount) FROM app.orders ORDER BY id").rows
    assert list(rows) == [(101 + i, "BIGINT") for i in range(5)]


def _accounts(tmp_path: Path, backend: str, *balances: object) -> Path:
    """A project whose source has an ``accounts`` table with a NUMERIC ``balance`` (ids from
    1) and an ``updated_at`` holding only a date, read with ``backend``."""
    project = make_project(tmp_path / "p", orders=5)
    db = sqlite3.connect(project / "sources" / "app.sqlite")
    db.execute(
        "CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance NUMERIC, updated_at DATETIME)"
    )
    db.executemany(
        "INSERT INTO accounts VALUES (?, ?, ?)",
        [(i, b, f"2026-01-0{i}") for i, b in enumerate(balances, 1)],
    )
    db.commit()
    db.close()
    config = project / "stackyard.yml"
    text = config.read_text().replace(
        "kind: sql_database", f"kind: sql_database\n    backend: {backend}"
    )
    table = "      customers: {primary_key: id, cursor: updated_at}\n"
    entry = "      accounts: {primary_key: id, cursor: updated_at}\n"
    config.write_text(text.replace(table, table + entry))
    return project


@pytest.mark.parametrize("backend", ["auto", "connectorx", "pyarrow", "sqlalchemy"])
def test_numeric_values_load_exactly(tmp_path: Path, backend: str) -> None:
    """Every backend loads a NUMERIC as DECIMAL(38,18), every digit kept. Before, the first
    load through SQLAlchemy (pyarrow, or auto after ConnectorX refused a date-only DATETIME)
    failed as 'changed type upstream', and 0.123456789012 loaded as 0.123456789."""
    balances = (10.1, 0.1, 123456789012345678, None, 0.123456789012, 9.5, 12)
    project = _accounts(tmp_path, backend, *balances)
    if backend == "connectorx":  # it cannot read a DATETIME holding only a date
        db = sqlite3.connect(project / "sources" / "app.sqlite")
        db.execute("UPDATE accounts SET updated_at = updated_at || ' 00:00:00'")
        db.commit()
        db.close()
    result = Context(project).run(select=["app"])
    assert result.ok, result.to_dict()
    rows = (
        Context(project)
        .sql("SELECT id, balance, typeof(balance) FROM app.accounts ORDER BY id")
        .rows
    )
    # Before: 123456789012345678 loaded as 123456789012345678.152597504 (read through a float).
    assert [(i, str(b.normalize()) if b is not None else None, t) for i, b, t in rows] == [
        (i, None if b is None else str(b), "DECIMAL(38,18)") for i, b in enumerate(balances, 1)
    ]


def test_a_numeric_too_wide_fails_the_load_naming_it(tmp_path: Path) -> None:
    project = _accounts(tmp_path, "pyarrow", 1.5, 1e25)
    app = next(load for load in Context(project).run(select=["app"]).loads if load.source == "app")
    assert app.status == "failed"
    assert (
        "table 'accounts', column 'balance': the value 10000000000000000000000000 does not fit "
        "DECIMAL(38,18)"
    ) in (app.error or "")
    assert "CAST(balance AS TEXT) AS balance" in (app.error or "")
