"""Values a SQL source's reader changed without a word, or refused naming nothing: Postgres
``infinity`` timestamps, the offset of a ``timetz``, MySQL/MariaDB ``TIME`` values beyond a day,
zero dates, and decimals wider than every target holds."""

from __future__ import annotations

from datetime import time
from decimal import Decimal
from pathlib import Path

import pytest

from stackyard import Context
from stackyard.project import init_project
from tests.ingest.file_projects import on_postgres


def project(root: Path, tables: str, backend: str = "auto") -> Path:
    init_project(root)
    config = root / "stackyard.yml"
    config.write_text(
        config.read_text().replace(
            "sources: {}\n",
            f"sources:\n  app:\n    kind: sql_database\n    backend: {backend}\n"
            f"    connection: {{secret: DB}}\n    tables: {{{tables}}}\n",
        )
    )
    return root


def postgres_url(db: dict[str, object], driver: str = "+psycopg") -> str:
    return f"postgresql{driver}://{db['user']}@{db['host']}:{db['port']}/{db['database']}"


def postgres_source(db: dict[str, object], *statements: str) -> None:
    import psycopg

    with psycopg.connect(postgres_url(db, ""), autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def postgres_project(
    root: Path,
    db: dict[str, object],
    table: str,
    *statements: str,
    backend: str = "auto",
    driver: str = "+psycopg",
) -> Context:
    """A project loading ``table`` (key ``id``) from the Postgres database the statements
    fill, read with ``backend`` through ``driver``."""
    postgres_source(db, *statements)
    root = project(root, f"{table}: {{primary_key: id}}", backend)
    return Context(root, environ={"DB": postgres_url(db, driver)})


def failed_load(ctx: Context, table: str) -> str:
    """Run once; the one load failed and loaded nothing of ``table``: its error."""
    (load,) = ctx.run().loads
    assert load.status == "failed"
    assert table not in loaded_tables(ctx)
    return str(load.error)


def loaded_tables(ctx: Context) -> set[str]:
    rows = ctx.sql("select table_name from information_schema.tables where table_schema = 'app'")
    return {str(row[0]) for row in rows.rows}


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("backend", "driver"),
    [("auto", "+psycopg"), ("connectorx", "+psycopg"), ("pyarrow", "+psycopg"), ("pyarrow", "")],
)
def test_an_infinite_timestamp_fails_the_table_naming_the_column(
    tmp_path: Path, pg_database: dict[str, object], backend: str, driver: str
) -> None:
    ctx = postgres_project(
        tmp_path / "p",
        pg_database,
        "contracts",
        "CREATE TABLE contracts (id int PRIMARY KEY, valid_from timestamptz, valid_to timestamp)",
        "INSERT INTO contracts VALUES (1, '-infinity', '2026-01-01'), (2, '2026-01-01', "
        "'infinity'), (3, '2026-01-01', '2026-02-01')",
        backend=backend,
        driver=driver,
    )
    # Before: ConnectorX loaded 'infinity' as 262142-12-31 and psycopg2 as 9999-12-31.
    error = failed_load(ctx, "contracts")
    assert "contracts" in error and "infinity" in error
    assert "valid_from" in error or "valid_to" in error
    assert "view" in error  # what to do


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["auto", "connectorx", "pyarrow"])
def test_finite_timestamps_still_load(
    tmp_path: Path, pg_database: dict[str, object], backend: str
) -> None:
    ctx = postgres_project(
        tmp_path / "p",
        pg_database,
        "contracts",
        "CREATE TABLE contracts (id int PRIMARY KEY, valid_from timestamptz, valid_to timestamp)",
        "INSERT INTO contracts VALUES (1, '2026-01-01 10:00+02', '9999-12-31 23:59:59'), "
        "(2, NULL, NULL)",
        backend=backend,
    )
    assert ctx.run().ok
    rows = ctx.sql(
        "select cast(valid_from as varchar), cast(valid_to as varchar) from app.contracts "
        "order by id"
    ).rows
    assert rows == (("2026-01-01 08:00:00+00", "9999-12-31 23:59:59"), (None, None))


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["auto", "connectorx", "pyarrow"])
def test_a_time_with_time_zone_loads_as_its_utc_time(
    tmp_path: Path, pg_database: dict[str, object], backend: str
) -> None:
    ctx = postgres_project(
        tmp_path / "p",
        pg_database,
        "shifts",
        "CREATE TABLE shifts (id int PRIMARY KEY, starts timetz, local_start time)",
        "INSERT INTO shifts VALUES (1, '10:00:00+02', '10:00'), (2, '23:30:00.25-05:30', "
        "'23:30'), (3, NULL, NULL)",
        backend=backend,
    )
    result = ctx.run()
    assert result.ok, result.to_dict()
    # Before: '10:00:00+02' loaded as 10:00 (the offset dropped), and ConnectorX could not
    # read the column at all.
    assert ctx.sql("select starts, local_start from app.shifts order by id").rows == (
        (time(8, 0), time(10, 0)),
        (time(5, 0, 0, 250000), time(23, 30)),
        (None, None),
    )
    assert not [n for load in result.loads for n in load.notes if "ConnectorX" in n]


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("backend", "driver"),
    [("auto", "+psycopg"), ("connectorx", "+psycopg"), ("pyarrow", "+psycopg"), ("pyarrow", "")],
)
def test_the_end_of_the_day_fails_the_table_naming_the_column(
    tmp_path: Path, pg_database: dict[str, object], backend: str, driver: str
) -> None:
    ctx = postgres_project(
        tmp_path / "p",
        pg_database,
        "shops",
        "CREATE TABLE shops (id int PRIMARY KEY, opens time, closes time)",
        "INSERT INTO shops VALUES (1, '08:00', '17:00'), (2, '00:00', '24:00:00')",
        backend=backend,
        driver=driver,
    )
    # Before: ConnectorX and psycopg2 loaded 24:00:00 as 00:00:00, the start of the day, and
    # psycopg failed naming no column.
    error = failed_load(ctx, "shops")
    assert "'shops'" in error and "'closes'" in error and "24:00:00" in error, error
    assert "view" in error


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["auto", "connectorx", "pyarrow"])
def test_times_of_day_load_unchanged(
    tmp_path: Path, pg_database: dict[str, object], backend: str
) -> None:
    ctx = postgres_project(
        tmp_path / "p",
        pg_database,
        "shops",
        "CREATE TABLE shops (id int PRIMARY KEY, opens time, closes time(3))",
        "INSERT INTO shops VALUES (1, '00:00', '23:59:59.999'), (2, '10:30:00.5', NULL)",
        backend=backend,
    )
    assert ctx.run().ok
    assert ctx.sql("select opens, closes from app.shops order by id").rows == (
        (time(0, 0), time(23, 59, 59, 999000)),
        (time(10, 30, 0, 500000), None),
    )


def mariadb_source(url: str, *statements: str) -> None:
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(sqlalchemy.text(statement))
    engine.dispose()


def mariadb_project(root: Path, url: str, table: str, *statements: str) -> Context:
    """A project loading ``table`` (key ``id``) from the MariaDB database the statements fill."""
    mariadb_source(url, *statements)
    return Context(project(root, f"{table}: {{primary_key: id}}"), environ={"DB": url})


@pytest.mark.mariadb
@pytest.mark.parametrize("value", ["838:59:59", "25:00:00", "-01:00:00", "24:00:00"])
def test_a_time_beyond_a_day_fails_the_table_naming_the_column(
    tmp_path: Path, mariadb_database: str, value: str
) -> None:
    ctx = mariadb_project(
        tmp_path / "p",
        mariadb_database,
        "jobs",
        "CREATE TABLE jobs (id INT PRIMARY KEY, took TIME(6))",
        f"INSERT INTO jobs VALUES (1, '10:00:00'), (2, '{value}'), (3, NULL)",
    )
    # Before: '838:59:59' loaded as 22:59:59 and '-01:00:00' as 23:00.
    error = failed_load(ctx, "jobs")
    assert "'jobs'" in error and "'took'" in error and value.lstrip("-") in error
    assert "view" in error


@pytest.mark.mariadb
def test_a_time_of_day_loads_unchanged(tmp_path: Path, mariadb_database: str) -> None:
    ctx = mariadb_project(
        tmp_path / "p",
        mariadb_database,
        "jobs",
        "CREATE TABLE jobs (id INT PRIMARY KEY, starts TIME, ends TIME(6))",
        "INSERT INTO jobs VALUES (1, '00:00:00', '23:59:59.999999'), (2, '10:30:00', NULL)",
    )
    assert ctx.run().ok
    assert ctx.sql("select starts, ends from app.jobs order by id").rows == (
        (time(0, 0), time(23, 59, 59, 999999)),
        (time(10, 30), None),
    )


@pytest.mark.mariadb
def test_an_unsigned_bigint_beyond_a_bigint_fails_the_table_naming_the_column(
    tmp_path: Path, mariadb_database: str
) -> None:
    ctx = mariadb_project(
        tmp_path / "p",
        mariadb_database,
        "counters",
        "CREATE TABLE counters (id INT PRIMARY KEY, hits BIGINT UNSIGNED)",
        "INSERT INTO counters VALUES (1, 5), (2, 18446744073709551615), (3, NULL)",
    )
    # Before: "OverflowError: Python int too large to convert to C long", naming no column.
    error = failed_load(ctx, "counters")
    assert "'counters'" in error and "'hits'" in error and "18446744073709551615" in error
    assert "DECIMAL(20,0)" in error


@pytest.mark.mariadb
def test_unsigned_bigints_within_a_bigint_load_unchanged(
    tmp_path: Path, mariadb_database: str
) -> None:
    ctx = mariadb_project(
        tmp_path / "p",
        mariadb_database,
        "counters",
        "CREATE TABLE counters (id INT PRIMARY KEY, hits BIGINT UNSIGNED, n INT UNSIGNED)",
        "INSERT INTO counters VALUES (1, 9223372036854775807, 4294967295), (2, NULL, NULL)",
    )
    assert ctx.run().ok
    assert ctx.sql("select hits, n from app.counters order by id").rows == (
        (9223372036854775807, 4294967295),
        (None, None),
    )


JSON_VALUES = (
    "1.10",
    "null",
    '{"a": 1.50, "b": null}',
    '"text"',
    "[1, 2.0]",
    "12345678901234567890123",
)


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("backend", "driver", "target"),
    [
        ("auto", "+psycopg", "duckdb"),
        ("connectorx", "+psycopg", "duckdb"),
        ("pyarrow", "+psycopg", "duckdb"),
        ("pyarrow", "", "duckdb"),
        ("auto", "+psycopg", "postgres"),
        ("pyarrow", "+psycopg", "postgres"),
    ],
)
def test_json_values_load_as_the_source_prints_them(
    tmp_path: Path, pg_database: dict[str, object], backend: str, driver: str, target: str
) -> None:
    rows = ", ".join(f"({i}, '{v}', '{v}')" for i, v in enumerate(JSON_VALUES, 1))
    postgres_source(
        pg_database,
        "CREATE TABLE docs (id int PRIMARY KEY, body jsonb, raw json)",
        f"INSERT INTO docs VALUES {rows}, ({len(JSON_VALUES) + 1}, NULL, NULL)",
    )
    root = project(tmp_path / "p", "docs: {primary_key: id}", backend)
    if target == "postgres":
        on_postgres(root, pg_database)
    ctx = Context(root, environ={"DB": postgres_url(pg_database, driver)})
    # Before: ConnectorX and SQLAlchemy parsed the values: 1.10 loaded as 1.1 and the integer
    # as 1.2345678901234568e22; the pyarrow reader failed on a column of numbers and objects.
    assert ctx.run().ok
    loaded = ctx.sql("select cast(body as varchar), cast(raw as varchar) from app.docs order by id")
    bodies, raws = zip(*loaded.rows, strict=True)
    assert bodies[-1] is None and raws[-1] is None  # SQL NULL stays NULL, JSON null stays 'null'
    assert [json_tokens(v) for v in bodies[:-1]] == [json_tokens(v) for v in JSON_VALUES]
    assert [json_tokens(v) for v in raws[:-1]] == [json_tokens(v) for v in JSON_VALUES]


def json_tokens(text: str) -> str:
    """JSON text without its spaces: the warehouse may space it differently, never change a
    number's digits."""
    return "".join(text.split())


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["auto", "pyarrow"])
def test_rows_without_a_cursor_value_load_and_follow_their_changes(
    tmp_path: Path, pg_database: dict[str, object], backend: str
) -> None:
    postgres_source(
        pg_database,
        "CREATE TABLE orders (id int PRIMARY KEY, note text, updated_at timestamp)",
        "INSERT INTO orders VALUES (1, 'a', '2026-11-01'), (3, 'undated', NULL)",
    )
    root = project(tmp_path / "p", "orders: {primary_key: id, cursor: updated_at}", backend)
    ctx = Context(root, environ={"DB": postgres_url(pg_database)})
    # Before: the first load failed ("IncrementalCursorPathHasValueNone"), and rows added
    # later with no cursor value were skipped by every run, which still succeeded.
    assert ctx.run().ok
    postgres_source(
        pg_database,
        "INSERT INTO orders VALUES (2, 'new', '2026-11-02'), (4, 'undated too', NULL)",
        "UPDATE orders SET note = 'changed' WHERE id = 3",
    )
    assert ctx.run().ok
    assert ctx.run().ok
    assert ctx.sql("select id, note from app.orders order by id").rows == (
        (1, "a"),
        (2, "new"),
        (3, "changed"),
        (4, "undated too"),
    )


@pytest.mark.mariadb
@pytest.mark.parametrize("column", ["DATE", "DATETIME"])
def test_a_zero_date_fails_the_table_naming_the_column(
    tmp_path: Path, mariadb_database: str, column: str
) -> None:
    zero = "0000-00-00" if column == "DATE" else "0000-00-00 00:00:00"
    ctx = mariadb_project(
        tmp_path / "p",
        mariadb_database,
        "orders",
        "SET SESSION sql_mode = ''",
        f"CREATE TABLE orders (id INT PRIMARY KEY, shipped {column})",
        f"INSERT INTO orders VALUES (1, '2024-01-02'), (2, '{zero}'), (3, NULL)",
    )
    # Before: "ArrowTypeError: object of type <class 'str'> cannot be converted to int".
    error = failed_load(ctx, "orders")
    assert "'orders'" in error and "'shipped'" in error and f"'{zero}'" in error
    assert "NULLIF(shipped, '0000-00-00')" in error


@pytest.mark.mariadb
def test_a_decimal_wider_than_every_target_fails_by_name_or_loads_exactly(
    tmp_path: Path, mariadb_database: str
) -> None:
    ctx = mariadb_project(
        tmp_path / "p",
        mariadb_database,
        "ledger",
        "CREATE TABLE ledger (id INT PRIMARY KEY, amount DECIMAL(65,30))",
        "INSERT INTO ledger VALUES (1, 12345678901234567890.123456789012345678), (2, NULL)",
    )
    (load,) = ctx.run().loads
    assert ctx.sql("select amount from app.ledger order by id").rows[0][0] == Decimal(
        "12345678901234567890.123456789012345678"
    )
    # 21 digits before the point, or a 19th place: DECIMAL(38,18) cannot hold it. Before:
    # "ArrowInvalid: Rescaling Decimal value would cause data loss", naming no column.
    for value in ("123456789012345678901", "0.0000000000000000001"):
        mariadb_source(mariadb_database, f"INSERT INTO ledger VALUES ({len(value)}, {value})")
        (load,) = ctx.run().loads
        assert load.status == "failed"
        error = str(load.error)
        assert "'ledger'" in error and "'amount'" in error and "DECIMAL(38,18)" in error, error
        assert f"value {value}" in error
        mariadb_source(mariadb_database, f"DELETE FROM ledger WHERE id = {len(value)}")
    assert ctx.sql("select count(*) from app.ledger").rows == ((2,),)


@pytest.mark.postgres
def test_a_bc_date_into_a_postgres_target_says_how_to_load_it(
    tmp_path: Path, pg_database: dict[str, object]
) -> None:
    postgres_source(
        pg_database,
        "CREATE TABLE eras (id int PRIMARY KEY, t timestamp, d date)",
        "INSERT INTO eras VALUES (1, '0044-03-15 12:00 BC', '0044-03-15 BC'), "
        "(2, '2020-01-01 10:00', '2020-01-01')",
    )
    root = on_postgres(project(tmp_path / "p", "eras: {primary_key: id}"), pg_database)
    ctx = Context(root, environ={"DB": postgres_url(pg_database)})
    # Before: only Postgres's "time zone displacement out of range", on every run.
    (load,) = ctx.run().loads
    assert load.status == "failed" and not load.rows
    assert "before year 1 (BC)" in str(load.error), load.error
    assert "`source_table:`" in str(load.error)

    # The advice, followed as written: a view casting the column to text loads every row.
    postgres_source(
        pg_database,
        "CREATE VIEW eras_text AS SELECT id, t::text AS t, d::text AS d FROM eras",
    )
    config = root / "stackyard.yml"
    config.write_text(
        config.read_text().replace(
            "eras: {primary_key: id}", "eras: {primary_key: id, source_table: eras_text}"
        )
    )
    ctx = Context(root, environ={"DB": postgres_url(pg_database)})
    again = ctx.reload(ctx.reload_plan("app.eras"))
    assert again.ok, [(x.source, x.error) for x in again.loads]
    assert ctx.sql("select id, t::text, d::text from app.eras order by id").rows == (
        (1, "0044-03-15 12:00:00 BC", "0044-03-15 BC"),
        (2, "2020-01-01 10:00:00", "2020-01-01"),
    )


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["auto", "connectorx", "pyarrow"])
def test_an_interval_loads_as_the_text_postgres_prints(
    tmp_path: Path, pg_database: dict[str, object], backend: str
) -> None:
    ctx = postgres_project(
        tmp_path / "p",
        pg_database,
        "jobs",
        "CREATE TABLE jobs (id int PRIMARY KEY, took interval)",
        "INSERT INTO jobs VALUES (1, '1 day 02:00:00'), (2, '1 mon'), (3, '-00:00:01.5'), "
        "(4, NULL)",
        backend=backend,
    )
    result = ctx.run()
    # Before: "UnsupportedArrowTypeException: Arrow type `duration[us]` … is unsupported".
    assert result.ok, result.to_dict()
    assert ctx.sql("select took from app.jobs order by id").rows == (
        ("1 day 02:00:00",),
        ("1 mon",),
        ("-00:00:01.5",),
        (None,),
    )
