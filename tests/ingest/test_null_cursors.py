"""Rows of an incremental SQL table with no cursor value: loaded once, then when they change."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackyard import Context
from tests.ingest.test_sql_value_fidelity import postgres_source, postgres_url, project


def loaded_rows(ctx: Context) -> dict[str, int]:
    result = ctx.run()
    assert result.ok, result.to_dict()
    (load,) = result.loads
    return {t.table: t.rows for t in load.tables}


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["auto", "pyarrow", "sqlalchemy"])
def test_rows_without_a_cursor_value_count_as_loaded_only_when_new_or_changed(
    tmp_path: Path, pg_database: dict[str, object], backend: str
) -> None:
    postgres_source(
        pg_database,
        "CREATE TABLE orders (id int PRIMARY KEY, note text, updated_at timestamp)",
        "INSERT INTO orders VALUES (1, 'a', '2026-11-01'), (2, 'undated', NULL), "
        "(3, 'undated too', NULL)",
    )
    root = project(tmp_path / "p", "orders: {primary_key: id, cursor: updated_at}", backend)
    ctx = Context(root, environ={"DB": postgres_url(pg_database)})
    assert loaded_rows(ctx) == {"orders": 3}
    first = ctx.sql("select _dlt_load_id from app.orders where id = 2").rows
    # Nothing changed upstream: both undated rows were merged again and each run said
    # "2 rows" loaded.
    assert loaded_rows(ctx) == {}
    assert ctx.sql("select _dlt_load_id from app.orders where id = 2").rows == first

    postgres_source(
        pg_database,
        "UPDATE orders SET note = 'changed' WHERE id = 2",
        "INSERT INTO orders VALUES (4, 'new, undated', NULL)",
    )
    assert loaded_rows(ctx) == {"orders": 2}
    assert loaded_rows(ctx) == {}
    # Given a cursor value, a row loads as any other row does.
    postgres_source(pg_database, "UPDATE orders SET updated_at = '2026-11-05' WHERE id = 3")
    assert loaded_rows(ctx) == {"orders": 1}
    assert ctx.sql("select id, note from app.orders order by id").rows == (
        (1, "a"),
        (2, "changed"),
        (3, "undated too"),
        (4, "new, undated"),
    )
