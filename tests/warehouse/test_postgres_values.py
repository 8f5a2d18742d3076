"""What a query on a Postgres target says when Postgres answered and the driver cannot read a
value of the answer, against a query Postgres refused; and what ``stackyard sql`` shows of
such a value (PostgresWarehouse.show_query)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from stackyard.config.model import PostgresTarget
from stackyard.config.secrets import Secrets
from stackyard.errors import WarehouseError
from stackyard.warehouse.base import JsonText
from stackyard.warehouse.postgres import PostgresWarehouse

pytestmark = pytest.mark.postgres


def test_an_unreadable_value_is_not_blamed_on_postgres(
    tmp_path: Path, pg_database: dict[str, object]
) -> None:
    target = PostgresTarget(type="postgres", **pg_database)  # type: ignore[arg-type]
    warehouse = PostgresWarehouse("pg", target, tmp_path, Secrets(tmp_path, environ={}))
    try:
        with pytest.raises(WarehouseError) as unread:
            warehouse.query("select 'infinity'::timestamp as valid_to")
        # Before: "Postgres rejected the query: timestamp too large …": it had not.
        assert "Postgres rejected" not in unread.value.message
        assert "cannot be read" in unread.value.message and "::text" in str(unread.value.hint)
        assert warehouse.query("select 'infinity'::timestamp::text").rows == (("infinity",),)
        with pytest.raises(WarehouseError, match="Postgres rejected the query"):
            warehouse.query("select * from nowhere")
    finally:
        warehouse.close()


def test_several_statements_answer_with_the_last_ones_rows(
    tmp_path: Path, pg_database: dict[str, object]
) -> None:
    # Before: the first statement's rows, shown as "the rows are the last one's"; after a
    # statement with no rows, none at all.
    target = PostgresTarget(type="postgres", **pg_database)  # type: ignore[arg-type]
    warehouse = PostgresWarehouse("pg", target, tmp_path, Secrets(tmp_path, environ={}))
    try:
        answer = warehouse.query("select 1 as a; select 2 as b")
        assert (answer.columns, answer.rows) == (("b",), ((2,),))
        warehouse.execute("create table several (n int)")
        answer = warehouse.query(
            "insert into several values (1), (2); select count(*) as n from several"
        )
        assert (answer.columns, answer.rows) == (("n",), ((2,),))
        answer = warehouse.query("select 1 as a; update several set n = n where false")
        assert (answer.columns, answer.rows) == ((), ())
    finally:
        warehouse.close()


def test_sql_shows_dates_python_cannot_hold_as_postgres_prints_them(
    tmp_path: Path, pg_database: dict[str, object]
) -> None:
    # Before: the whole answer failed, "a value it returned cannot be read", exit 1.
    target = PostgresTarget(type="postgres", **pg_database)  # type: ignore[arg-type]
    warehouse = PostgresWarehouse("pg", target, tmp_path, Secrets(tmp_path, environ={}))
    try:
        answer = warehouse.show_query(
            "select 'infinity'::timestamp as a, '-infinity'::date as b, "
            "'0044-03-15 BC'::date as c, '10000-01-01'::date as d, "
            "'-infinity'::timestamptz as e, '24:00'::time as f, "
            "'2024-01-01'::date as g, null::date as h"
        )
        assert answer.rows == (
            (
                "infinity",
                "-infinity",
                "0044-03-15 BC",
                "10000-01-01",
                "-infinity",
                "24:00:00",
                date(2024, 1, 1),
                None,
            ),
        )
        # What other code reads stays as psycopg reads it.
        assert warehouse.query("select '2024-01-01'::date").rows == ((date(2024, 1, 1),),)
        with pytest.raises(WarehouseError, match="cannot be read"):
            warehouse.query("select 'infinity'::date")
    finally:
        warehouse.close()


def test_sql_shows_json_as_postgres_prints_it(
    tmp_path: Path, pg_database: dict[str, object]
) -> None:
    # Before: a dict, shown as Python's repr ({'a': 1}) and its numbers made floats.
    target = PostgresTarget(type="postgres", **pg_database)  # type: ignore[arg-type]
    warehouse = PostgresWarehouse("pg", target, tmp_path, Secrets(tmp_path, environ={}))
    try:
        answer = warehouse.show_query(
            """select '{"a":1, "b": 12345678901234567890.5}'::jsonb as j, '[1,2]'::json as k"""
        )
        assert answer.rows == (('{"a": 1, "b": 12345678901234567890.5}', "[1,2]"),)
        assert all(isinstance(v, JsonText) for v in answer.rows[0])
    finally:
        warehouse.close()


def test_sql_shows_an_interval_as_postgres_prints_it(
    tmp_path: Path, pg_database: dict[str, object]
) -> None:
    # Before: timedelta's "30 days, 0:00:00" for a month, "1 day, 2:00:00" for a day and 2 hours.
    target = PostgresTarget(type="postgres", **pg_database)  # type: ignore[arg-type]
    warehouse = PostgresWarehouse("pg", target, tmp_path, Secrets(tmp_path, environ={}))
    try:
        answer = warehouse.show_query(
            "select interval '1 month' as a, interval '1 day 2 hours' as b, null::interval as c"
        )
        assert answer.rows == (("1 mon", "1 day 02:00:00", None),)
    finally:
        warehouse.close()


def test_sql_shows_a_range_as_postgres_prints_it(
    tmp_path: Path, pg_database: dict[str, object]
) -> None:
    # Before: psycopg's Range(1, 10, '[)') and Range(datetime.date(2026, 1, 1), ...).
    target = PostgresTarget(type="postgres", **pg_database)  # type: ignore[arg-type]
    warehouse = PostgresWarehouse("pg", target, tmp_path, Secrets(tmp_path, environ={}))
    try:
        answer = warehouse.show_query(
            "select int4range(1, 10) as a, daterange('2026-01-01', '2026-02-01') as b, "
            "numrange(1.5, null) as c, 'empty'::int8range as d, null::tstzrange as e, "
            "int4multirange(int4range(1, 3), int4range(5, 7)) as f"
        )
        assert answer.rows == (
            ("[1,10)", "[2026-01-01,2026-02-01)", "[1.5,)", "empty", None, "{[1,3),[5,7)}"),
        )
        # What the rest of stackyard reads is unchanged: psycopg's ranges.
        assert type(warehouse.query("select int4range(1, 10)").rows[0][0]).__name__ == "Range"
    finally:
        warehouse.close()
