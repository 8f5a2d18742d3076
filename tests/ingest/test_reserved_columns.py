"""A source column named as dlt's own ``_dlt_load_id`` is refused, never overwritten."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stackyard import Context
from stackyard.project import init_project
from tests.ingest.file_projects import file_project
from tests.ingest.test_sql_value_fidelity import postgres_source, postgres_url, project

BIN = Path(sys.executable).parent


def stackyard(root: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "stackyard"), *args],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, "APP_DB_URL": url},
    )


@pytest.mark.postgres
def test_source_add_refuses_a_table_with_a_dlt_load_id_column_and_a_view_loads_it(
    tmp_path: Path, pg_database: dict[str, object]
) -> None:
    postgres_source(
        pg_database,
        "CREATE TABLE orders (id int PRIMARY KEY, _dlt_load_id text, updated_at timestamp)",
        "INSERT INTO orders VALUES (1, 'batch-7', '2026-11-01'), (2, 'batch-8', '2026-11-02')",
    )
    root = tmp_path / "p"
    init_project(root)
    before = (root / "stackyard.yml").read_text()
    url = postgres_url(pg_database)
    add = ("source", "add", "app", "--kind", "sql_database", "--connection-secret", "APP_DB_URL")
    for tables in (("--table", "orders", "--cursor", "orders=updated_at"), ()):
        # Loaded without a word, the column held dlt's load id instead of 'batch-7'.
        done = stackyard(root, url, *add, *tables)
        said = done.stdout + done.stderr
        assert done.returncode == 2, said
        assert "table 'orders' has a column '_dlt_load_id'" in said
        assert "CREATE VIEW orders_v" in said and "--table orders=orders_v" in said
        assert (root / "stackyard.yml").read_text() == before

    # What the message says to do loads the column under its new name.
    postgres_source(
        pg_database,
        "CREATE VIEW orders_v AS SELECT id, _dlt_load_id AS source_load_id, updated_at FROM orders",
    )
    view = ("--table", "orders=orders_v", "--primary-key", "orders=id")
    done = stackyard(root, url, *add, *view, "--cursor", "orders=updated_at")
    assert done.returncode == 0, done.stdout + done.stderr
    with Context(root) as ctx:
        kept = ctx.sql("select id, source_load_id from app.orders order by id").rows
    assert kept == ((1, "batch-7"), (2, "batch-8"))


@pytest.mark.postgres
def test_a_run_fails_the_load_naming_the_table_and_column_and_loads_nothing(
    tmp_path: Path, pg_database: dict[str, object]
) -> None:
    postgres_source(
        pg_database,
        "CREATE TABLE orders (id int PRIMARY KEY, _DLT_LOAD_ID text, updated_at timestamp)",
        "INSERT INTO orders VALUES (1, 'batch-7', '2026-11-01')",
    )
    # Written by hand, so no `source add` looked at the table first.
    root = project(tmp_path / "p", "orders: {primary_key: id, cursor: updated_at}")
    ctx = Context(root, environ={"DB": postgres_url(pg_database)})
    (load,) = ctx.run().loads
    assert load.status == "failed"
    assert "table 'orders' has a column '_dlt_load_id'" in str(load.error)
    assert not ctx.sql(
        "select table_name from information_schema.tables where table_schema = 'app' "
        "and table_name = 'orders'"
    ).rows


def test_a_file_field_named_dlt_load_id_fails_the_first_load(tmp_path: Path) -> None:
    root = file_project(
        tmp_path,
        "{things: {glob: '*.jsonl', primary_key: id}}",
        {"a.jsonl": '{"id": 1, "_DLT_LOAD_ID": "mine"}\n'},
    )
    (load,) = Context(root).run().loads
    assert load.status == "failed"
    # Named as its column would be (a field's spellings in other cases are one column).
    assert "table 'things' has a column '_dlt_load_id'" in str(load.error)


NESTED = """
import dlt


@dlt.source
def orders_source():
    rows = [{"id": 1, "items": [{"sku": "a"}, {"sku": "b"}]}, {"id": 2, "items": [{"sku": "c"}]}]

    @dlt.resource(primary_key="id")
    def orders():
        yield [dict(row, _dlt_id="same") for row in rows]

    @dlt.resource(primary_key="id")
    def copies():
        # The same dicts twice, and in two tables: stamped once, never taken for the source's.
        yield rows
        yield rows[0]

    return orders, copies
"""


def test_a_python_record_with_its_own_dlt_id_fails_its_load_instead_of_losing_nested_rows(
    tmp_path: Path,
) -> None:
    """dlt took the records' "same" as both rows' id: order 2's item was lost while the load
    reported three item rows loaded."""
    from tests.ingest.test_python_source import python_project

    root = python_project(tmp_path, "orders", NESTED, "orders_source")
    with Context(root) as ctx:
        (load,) = ctx.run().loads
        assert load.status == "failed"
        assert "table 'orders' has a column '_dlt_id'" in str(load.error), load.error
        assert "lose their nested rows" in str(load.error)
        assert "_dlt_id AS source_row_id" in str(load.error)
        (root / "sources" / "orders.py").write_text(NESTED.replace("_dlt_id=", "source_id="))
        (load,) = ctx.run().loads
        assert load.status == "loaded", load.error
        items = ctx.sql("select sku from orders.orders__items order by sku").rows
        assert items == (("a",), ("b",), ("c",))
        assert ctx.sql("select count(*) from orders.copies").rows == ((2,),)


def test_a_file_column_named_loaded_at_fails_the_load_instead_of_replacing_stackyards(
    tmp_path: Path,
) -> None:
    # Before: the file's text was kept as the column, and freshness read "yesterday".
    root = file_project(
        tmp_path,
        "{things: {glob: '*.csv', primary_key: id}}",
        {"a.csv": "id,_Loaded_At\n1,yesterday\n"},
    )
    (load,) = Context(root).run().loads
    assert load.status == "failed"
    assert "table 'things' has a column '_loaded_at'" in str(load.error), load.error
    assert "freshness and the monitors read" in str(load.error)
