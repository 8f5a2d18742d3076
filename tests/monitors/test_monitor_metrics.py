"""One batched query per table, run on real DuckDB (and Postgres when it is there)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from stackyard.monitors.metrics import (
    TableRef,
    find_time_column,
    metrics_query,
    parse_metrics,
    plan_metrics,
)
from stackyard.warehouse.base import Warehouse
from tests.monitors.conftest import duckdb_warehouse

TODAY = datetime(2026, 3, 10, tzinfo=UTC)


def measure(w: Warehouse, schema: str, table: str, **kw: Any) -> Any:
    columns = w.table_columns(schema, table)
    plan = plan_metrics(
        TableRef(schema, table, "source"),
        columns,
        time_column=kw.get("time_column"),
        key=kw.get("key", ()),
        today=TODAY,
    )
    return plan, parse_metrics(plan, w.query(metrics_query(plan, w.DIALECT)))


def fill_orders(w: Warehouse) -> None:
    w.execute("CREATE SCHEMA IF NOT EXISTS app")
    w.execute(
        'CREATE TABLE app."Order Lines" ("id" INTEGER, "we""ird" VARCHAR, "All Null" INTEGER, '
        "created_at TIMESTAMP, _loaded_at TIMESTAMPTZ, _dlt_load_id VARCHAR)"
    )
    rows = [
        (1, "a", None, "2026-03-08 10:00", "2026-03-10 01:00+00"),
        (2, None, None, "2026-03-08 11:00", "2026-03-10 01:00+00"),
        (2, "c", None, "2026-03-09 09:00", "2026-03-09 01:00+00"),
        (3, "d", None, None, "2026-03-09 01:00+00"),
    ]
    p = w.param()
    for row in rows:
        w.execute(
            f'INSERT INTO app."Order Lines" VALUES ({p}, {p}, {p}, CAST({p} AS TIMESTAMP), '
            f"CAST({p} AS TIMESTAMPTZ), 'x')",
            row,
        )


def check_orders(w: Warehouse) -> None:
    plan, m = measure(w, "app", "Order Lines", key=["id"])
    assert plan.time_column == "created_at"
    assert m.row_count == 4
    assert m.nulls == {"id": 0, 'we"ird': 1, "All Null": 4, "created_at": 1}
    assert m.null_rate("All Null") == 1.0
    assert m.duplicates == 1
    assert m.rows_today == 2
    assert m.last_loaded_at == datetime(2026, 3, 10, 1, tzinfo=UTC)
    assert m.days == {date(2026, 3, 8): 2, date(2026, 3, 9): 1}
    # a composite key: (2, NULL) and (2, 'c') differ; rows with a NULL part do not count
    _, composite = measure(w, "app", "Order Lines", key=["id", 'we"ird'])
    assert composite.duplicates == 0


def test_one_query_measures_a_table_with_awkward_names_on_duckdb(tmp_path: Path) -> None:
    w = duckdb_warehouse(tmp_path)
    fill_orders(w)
    check_orders(w)


@pytest.mark.postgres
def test_the_same_query_runs_on_postgres(pg_database: dict[str, Any], tmp_path: Path) -> None:
    from stackyard.config.model import PostgresTarget
    from stackyard.config.secrets import Secrets
    from stackyard.warehouse.postgres import PostgresWarehouse

    target = PostgresTarget(type="postgres", **pg_database)  # type: ignore[arg-type]
    w = PostgresWarehouse("pg", target, tmp_path, Secrets(tmp_path, environ={}))
    fill_orders(w)
    check_orders(w)
    check_profiles_and_dimensions(w)
    w.close()


def check_profiles_and_dimensions(w: Warehouse) -> None:
    # Dimensions ride in the same UNION ALL: their integer index once failed on Postgres
    # ("UNION types text and integer cannot be matched") and the table went unmeasured.
    columns = w.table_columns("app", "Order Lines")
    plan = plan_metrics(
        TableRef("app", "Order Lines", "source"),
        columns,
        time_column=None,
        key=["id"],
        today=TODAY,
        profile=["id", 'we"ird'],
        dimensions=['we"ird', "id"],
    )
    m = parse_metrics(plan, w.query(metrics_query(plan, w.DIALECT)))
    assert m.days == {date(2026, 3, 8): 2, date(2026, 3, 9): 1}
    assert m.dimensions[('we"ird', "a")] == {date(2026, 3, 8): 1}
    assert m.dimensions[('we"ird', "NULL")] == {date(2026, 3, 8): 1}
    assert m.dimensions[("id", "2")] == {date(2026, 3, 8): 1, date(2026, 3, 9): 1}
    assert m.profiles[('we"ird', "distinct")] == {date(2026, 3, 8): 1.0, date(2026, 3, 9): 1.0}


def test_profiles_and_dimensions_on_duckdb(tmp_path: Path) -> None:
    w = duckdb_warehouse(tmp_path)
    fill_orders(w)
    check_profiles_and_dimensions(w)


def test_a_null_and_the_text_null_are_two_values_of_a_dimension(tmp_path: Path) -> None:
    """A real NULL and the text 'NULL' were both counted as "NULL", and the second count
    overwrote the first: a value that stopped arriving went unseen."""
    w = duckdb_warehouse(tmp_path)
    w.execute("CREATE SCHEMA s")
    w.execute("CREATE TABLE s.events (id INTEGER, channel VARCHAR, created_at DATE)")
    w.execute(
        "INSERT INTO s.events VALUES (1, 'web', '2026-03-08'), (2, 'NULL', '2026-03-08'), "
        "(3, NULL, '2026-03-08'), (4, NULL, '2026-03-08'), (5, '', '2026-03-08'), "
        "(6, ' ', '2026-03-08'), (7, 'NULL', '2026-03-09')"
    )
    columns = w.table_columns("s", "events")
    plan = plan_metrics(
        TableRef("s", "events", "source"),
        columns,
        time_column="created_at",
        key=["id"],
        today=TODAY,
        dimensions=["channel"],
    )
    m = parse_metrics(plan, w.query(metrics_query(plan, w.DIALECT)))
    assert m.dimensions == {
        ("channel", "web"): {date(2026, 3, 8): 1},
        ("channel", "'NULL'"): {date(2026, 3, 8): 1, date(2026, 3, 9): 1},
        ("channel", "NULL"): {date(2026, 3, 8): 2},
        ("channel", "''"): {date(2026, 3, 8): 1},
        ("channel", "' '"): {date(2026, 3, 8): 1},
    }


def test_an_empty_table_and_a_table_without_time_or_load_columns(tmp_path: Path) -> None:
    w = duckdb_warehouse(tmp_path)
    w.execute("CREATE SCHEMA s")
    w.execute("CREATE TABLE s.empty (id INTEGER, created_at DATE)")
    w.execute("CREATE TABLE s.plain (id INTEGER, name VARCHAR)")
    w.execute("INSERT INTO s.plain VALUES (1, 'a'), (2, NULL)")
    _, empty = measure(w, "s", "empty", key=["id"])
    assert (empty.row_count, empty.duplicates, empty.days, empty.null_rate("id")) == (
        0,
        0,
        {},
        None,
    )
    plan, plain = measure(w, "s", "plain")
    assert plan.time_column is None and plan.loaded_column is None
    assert (plain.row_count, plain.rows_today, plain.last_loaded_at) == (2, None, None)


def test_settings_that_do_not_fit_the_table_are_dropped_with_a_note(tmp_path: Path) -> None:
    w = duckdb_warehouse(tmp_path)
    w.execute("CREATE SCHEMA s")
    w.execute("CREATE TABLE s.t (id INTEGER, day VARCHAR)")
    plan, _ = measure(w, "s", "t", time_column="day", key=["order_id"])
    assert plan.time_column is None and plan.key == ()
    assert any("'day' is VARCHAR, not a date" in n for n in plan.notes)
    assert any("order_id" in n for n in plan.notes)
    plan, _ = measure(w, "s", "t", time_column="nope")
    assert "not a column of s.t" in plan.notes[0]
    plan, _ = measure(w, "s", "t", key=["idd"])  # the typo is named with the column meant
    assert "key column(s) idd (did you mean 'id'?) not in s.t" in plan.notes[0], plan.notes


def test_time_columns_are_found_by_type_and_name() -> None:
    assert find_time_column({"updated_at": "TIMESTAMP", "created_at": "TIMESTAMP"}) == "created_at"
    assert find_time_column({"_loaded_at": "TIMESTAMP WITH TIME ZONE"}) is None
    assert find_time_column({"shipped_at": "timestamp without time zone"}) == "shipped_at"
    assert find_time_column({"created_at": "VARCHAR"}) is None
