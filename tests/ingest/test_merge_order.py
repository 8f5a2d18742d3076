"""Two versions of one key in one load: the one with the later cursor is kept."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from stackyard import Context
from stackyard.project import init_project


def test_the_later_version_of_a_key_wins_within_a_load(tmp_path: Path) -> None:
    source = tmp_path / "app.sqlite"
    db = sqlite3.connect(source)
    # No unique key in the database: a change log, or a table whose key is only declared.
    db.execute("CREATE TABLE prices (sku INTEGER, price TEXT, updated_at TEXT)")
    db.execute("INSERT INTO prices VALUES (1, 'old', '2024-01-01 00:00:00')")
    db.commit()
    root = tmp_path / "p"
    init_project(root)
    ctx = Context(root)
    added = ctx.source_add(
        "shop",
        "sql_database",
        {
            "connection": f"sqlite:///{source}",
            "tables": {"prices": {"primary_key": "sku", "cursor": "updated_at"}},
        },
    )
    assert added.ok, added
    # Updated twice between runs: both versions are read, the older one first.
    db.execute(
        "INSERT INTO prices VALUES (1, 'newer', '2024-01-03 00:00:00'), "
        "(1, 'newest', '2024-01-05 00:00:00'), (2, 'b', '2024-01-02 00:00:00')"
    )
    db.commit()
    db.close()
    result = ctx.run()
    assert result.ok, result.to_dict()
    assert ctx.sql("select sku, price from shop.prices order by sku").rows == (
        (1, "newest"),
        (2, "b"),
    )
    (load,) = result.loads
    assert {t.table: t.duplicates for t in load.tables} == {"prices": 1}
