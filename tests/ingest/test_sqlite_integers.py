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


@pytest.mark.parametrize("backend", ["auto", "connectorx"])
def test_numeric_values_load_exactly(tmp_path: Path, backend: str) -> None:
    project = make_project(tmp_path / "p", orders=5)
    db = sqlite3.connect(project / "sources" / "app.sqlite")
    db.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance NUMERIC)")
    db.execute(
        "INSERT INTO accounts VALUES (1, 10.1), (2, 0.1), (3, 123456789012345678), (4, NULL)"
    )
    db.commit()
    db.close()
    config = project / "stackyard.yml"
    text = config.read_text().replace(
        "kind: sql_database", f"kind: sql_database\n    backend: {backend}"
    )
    table = "      customers: {primary_key: id, cursor: updated_at}\n"
    config.write_text(text.replace(table, table + "      accounts: {primary_key: id}\n"))
    result = Context(project).run(select=["app"])
    assert result.ok, result.to_dict()
    rows = Context(project).sql("SELECT id, balance FROM app.accounts ORDER BY id").rows
    # Before: 123456789012345678 loaded as 123456789012345678.152597504 (read through a float).
    assert [(i, str(b.normalize()) if b is not None else None) for i, b in rows] == [
        (1, "10.1"),
        (2, "0.1"),
        (3, "123456789012345678"),
        (4, None),
    ]
