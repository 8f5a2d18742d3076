"""What ``stackyard sql`` shows of DuckDB values its Python conversion hands over as others: a
date or timestamp that is infinite as ``infinity`` and ``-infinity``, told apart from the real
values they come over as, and a ``timestamp_ns`` with all nine digits
(DuckDBWarehouse.show_query)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stackyard.config.model import DuckDBTarget
from stackyard.config.secrets import Secrets
from stackyard.errors import WarehouseError
from stackyard.warehouse.base import JsonText
from stackyard.warehouse.duckdb import DuckDBWarehouse


@pytest.fixture
def warehouse(tmp_path: Path) -> Iterator[DuckDBWarehouse]:
    target = DuckDBTarget(type="duckdb", path="w.duckdb")
    w = DuckDBWarehouse("dev", target, tmp_path, Secrets(tmp_path, environ={}))
    try:
        yield w
    finally:
        w.close()


def test_infinite_dates_and_timestamps_show_as_infinity(warehouse: DuckDBWarehouse) -> None:
    answer = warehouse.show_query(
        "select 'infinity'::timestamp as a, '-infinity'::timestamp as b, "
        "'infinity'::date as c, '-infinity'::date as d, 'infinity'::timestamptz as e, "
        "'-infinity'::timestamp_ns as f, null::date as g"
    )
    # Before: 9999-12-31 23:59:59.999999 and 0001-01-01, which real values may be.
    assert answer.columns == ("a", "b", "c", "d", "e", "f", "g")
    assert answer.rows == (
        ("infinity", "-infinity", "infinity", "-infinity", "infinity", "-infinity", None),
    )


def test_the_largest_real_values_stay_values(warehouse: DuckDBWarehouse) -> None:
    warehouse.execute("create table t (n int, ends timestamp, day date, name text)")
    warehouse.execute(
        "insert into t values (1, '9999-12-31 23:59:59.999999', '9999-12-31', 'x'), "
        "(2, 'infinity', '-infinity', 'y'), (3, '0001-01-01', '0001-01-01', 'z')"
    )
    answer = warehouse.show_query("select n, ends, day, name, n from t order by n; -- all\n")
    assert answer.columns == ("n", "ends", "day", "name", "n")
    rows = answer.rows
    assert [tuple(str(v) for v in r) for r in rows] == [
        ("1", "9999-12-31 23:59:59.999999", "9999-12-31", "x", "1"),
        ("2", "infinity", "-infinity", "y", "2"),
        ("3", "0001-01-01 00:00:00", "0001-01-01", "z", "3"),
    ]


def test_other_statements_run_once_as_they_are(warehouse: DuckDBWarehouse) -> None:
    warehouse.execute("create table t (n int)")
    answer = warehouse.show_query("insert into t values (1); select count(*) as n from t")
    assert answer.rows == ((1,),)
    assert warehouse.show_query("select n from t").rows == ((1,),)
    with pytest.raises(WarehouseError, match="DuckDB rejected the query"):
        warehouse.show_query("select at from nowhere")


def test_a_nanosecond_timestamp_keeps_all_nine_digits(warehouse: DuckDBWarehouse) -> None:
    answer = warehouse.show_query(
        "select '2024-01-01 12:00:00.123456789'::timestamp_ns as a, "
        "'2024-01-01 12:00:00'::timestamp_ns as b, null::timestamp_ns as c, "
        "'infinity'::timestamp_ns as d"
    )
    # Before: 2024-01-01 12:00:00.123456, the last three digits dropped without a word.
    assert [str(v) if v is not None else None for v in answer.rows[0]] == [
        "2024-01-01 12:00:00.123456789",
        "2024-01-01 12:00:00",
        None,
        "infinity",
    ]


def test_a_json_value_is_marked_as_json(warehouse: DuckDBWarehouse) -> None:
    answer = warehouse.show_query("""select '{"a": 1}'::json as j, '{"a": 1}' as t""")
    assert answer.rows == (('{"a": 1}', '{"a": 1}'),)
    # Before: both plain text, so --json wrote the JSON column as a string to parse again.
    assert [isinstance(v, JsonText) for v in answer.rows[0]] == [True, False]


def test_an_interval_shows_as_duckdb_prints_it(warehouse: DuckDBWarehouse) -> None:
    answer = warehouse.show_query(
        "select interval '1 month' as a, interval '1 day 2 hours' as b, null::interval as c"
    )
    # Before: timedelta's "30 days, 0:00:00" for a month, "1 day, 2:00:00" for the other.
    assert answer.rows == (("1 month", "1 day 02:00:00", None),)


def test_dates_inside_a_list_or_struct_show_as_duckdb_holds_them(
    warehouse: DuckDBWarehouse,
) -> None:
    answer = warehouse.show_query(
        "select ['2024-01-01 12:00:00.123456789'::timestamp_ns] as a, "
        "{'ends': 'infinity'::date, 'every': interval '1 month'} as b, [1, 2] as c"
    )
    # Before: [datetime(… 123456)], {'ends': date(9999, 12, 31), 'every': timedelta(days=30)}
    assert answer.rows == (
        (
            '["2024-01-01 12:00:00.123456789"]',
            '{"ends":"infinity","every":"1 month"}',
            [1, 2],
        ),
    )
    assert isinstance(answer.rows[0][0], JsonText)
