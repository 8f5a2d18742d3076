"""SQLite keeps timestamps as text: rows written after a load with the same second as its last
cursor value, in whatever text form the application uses, are read by the next load, once."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from stackyard import Context
from tests.runner.conftest import make_project


def add_orders(project: Path, rows: list[tuple[int, str]]) -> None:
    db = sqlite3.connect(project / "sources" / "app.sqlite")
    db.executemany("INSERT INTO orders VALUES (?, 1, 500, 'placed', ?)", rows)
    db.commit()
    db.close()


def loaded(ctx: Context) -> tuple[int, int]:
    ((rows, keys),) = ctx.sql("SELECT count(*), count(DISTINCT id) FROM app.orders").rows
    return int(rows), int(keys)


def test_rows_at_the_last_cursor_second_are_not_lost(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", orders=200)  # every order at 2026-01-02 10:00:00
    ctx = Context(project)
    assert ctx.run().ok
    assert loaded(ctx) == (200, 200)

    # Written after the load, stamped with the same second, in the forms SQLite apps write.
    add_orders(
        project,
        [
            (201, "2026-01-02 10:00:00"),  # SQLite's CURRENT_TIMESTAMP form
            (202, "2026-01-02T10:00:00"),  # ISO 8601
            (203, "2026-01-02 10:00:00.000"),
            (204, "2026-01-02 10:00:00.250"),  # later within the second
        ],
    )
    result = ctx.run()
    assert result.ok
    assert loaded(ctx) == (204, 204)  # all four read, none of the 200 twice
    app = next(load for load in result.loads if load.source == "app")
    assert {t.table: t.rows for t in app.tables}["orders"] == 4  # the count shown is the truth

    add_orders(project, [(205, "2026-01-02 10:00:00.250"), (206, "2026-01-03 00:00:00")])
    assert ctx.run().ok
    assert loaded(ctx) == (206, 206)
    assert ctx.run().ok  # nothing new: nothing read again
    assert loaded(ctx) == (206, 206)
