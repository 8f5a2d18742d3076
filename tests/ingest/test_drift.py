"""Schema drift upstream fails the source loudly instead of loading NULLs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from stackyard import Context
from tests.runner.conftest import make_project


def rebuild_orders(project: Path, columns: str, select: str) -> None:
    db = sqlite3.connect(project / "sources" / "app.sqlite")
    db.execute("ALTER TABLE orders RENAME TO old_orders")
    db.execute(f"CREATE TABLE orders ({columns})")
    db.execute(f"INSERT INTO orders SELECT {select} FROM old_orders")
    db.execute("DROP TABLE old_orders")
    db.execute("UPDATE orders SET updated_at = '2026-03-01 00:00:00' WHERE id <= 5")
    db.commit()
    db.close()


def test_renamed_column_fails_the_source_and_names_the_models(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    ctx = Context(project)
    assert ctx.run().ok
    rebuild_orders(
        project,
        "id INTEGER PRIMARY KEY, client_id INTEGER, amount INTEGER, status TEXT, "
        "updated_at DATETIME",
        "id, customer_id, amount, status, updated_at",
    )
    result = ctx.run()
    app = next(load for load in result.loads if load.source == "app")
    assert result.exit_code == 1 and app.status == "failed"
    assert "table 'orders': column customer_id is missing from the new data" in app.error
    assert "stg_dlt__orders selects it" in app.error
    assert "client_id" in app.error
    # nothing was loaded: no NULL customer ids, and the downstream models were not rebuilt
    assert ctx.sql("select count(*) from app.orders where customer_id is null").rows == ((0,),)
    assert "customer_orders" in {s.name for s in result.skipped}
    assert next(load for load in result.loads if load.source == "files").status == "loaded"
    # and again on the next run: the failed run's skipped model still names its columns
    again = ctx.run()
    assert next(load for load in again.loads if load.source == "app").status == "failed"
    assert ctx.sql("select count(*) from app.orders where customer_id is null").rows == ((0,),)
    # the rows are not lost: after the fix upstream, the next run loads them
    rebuild_orders(
        project,
        "id INTEGER PRIMARY KEY, customer_id INTEGER, amount INTEGER, status TEXT, "
        "updated_at DATETIME",
        "id, client_id, amount, status, updated_at",
    )
    fixed = ctx.run()
    assert fixed.ok
    assert {t.table: t.rows for load in fixed.loads for t in load.tables} == {"orders": 5}


def test_changed_type_fails_the_source(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    ctx = Context(project)
    assert ctx.run().ok
    rebuild_orders(
        project,
        "id INTEGER PRIMARY KEY, customer_id INTEGER, amount TEXT, status TEXT, "
        "updated_at DATETIME",
        "id, customer_id, 'n/a', status, updated_at",
    )
    result = ctx.run()
    app = next(load for load in result.loads if load.source == "app")
    assert app.status == "failed"
    assert "table 'orders'" in app.error and "amount" in app.error
    assert "changed type" in app.error or "data type" in app.error
    assert "`stackyard reload app.orders --yes` loads the table again" in app.error


def rebuild_customers(project: Path, columns: str, select: str, day: str) -> None:
    db = sqlite3.connect(project / "sources" / "app.sqlite")
    db.execute("ALTER TABLE customers RENAME TO old_customers")
    db.execute(f"CREATE TABLE customers ({columns})")
    db.execute(f"INSERT INTO customers SELECT {select} FROM old_customers")
    db.execute("DROP TABLE old_customers")
    db.execute(f"UPDATE customers SET updated_at = '{day} 00:00:00' WHERE id <= 5")
    db.commit()
    db.close()


def test_a_not_null_column_renamed_upstream_names_the_reload_after_the_model_is_fixed(
    tmp_path: Path,
) -> None:
    project = make_project(tmp_path / "p")
    rebuild_customers(
        project,
        "id INTEGER PRIMARY KEY, name TEXT NOT NULL, updated_at DATETIME",
        "*",
        "2026-02-01",
    )
    ctx = Context(project)
    assert ctx.run().ok
    rebuild_customers(
        project,
        "id INTEGER PRIMARY KEY, full_name TEXT NOT NULL, updated_at DATETIME",
        "*",
        "2026-03-01",
    )
    first = next(load for load in ctx.run().loads if load.source == "app")
    assert first.status == "failed" and "column name is missing" in str(first.error)
    # The staging model is pointed at the new name, as the message says; the load still fails.
    model = project / "transform" / "models" / "staging" / "dlt" / "stg_dlt__customers.sql"
    model.write_text(model.read_text().replace("name,", "full_name as name,"))
    app = next(load for load in ctx.run().loads if load.source == "app")
    # Before: "extract step: ArrowInvalid: Column 'name' is declared non-nullable but contains
    # nulls", on every run, with nothing saying a reload was the way out.
    assert app.status == "failed"
    assert "column 'name' is NOT NULL" in str(app.error)
    assert "stackyard reload app." in str(app.error)
    assert ctx.sql("select count(*) from app.customers where name is null").rows == ((0,),)
    assert ctx.reload(ctx.reload_plan("app.customers")).ok
    assert ctx.sql("select count(*), count(full_name) from app.customers").rows == ((50, 50),)
