"""How a SQL source's columns are read (stackyard.ingest.sql_columns), on real servers."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackyard import Context
from tests.ingest.test_sql_value_fidelity import (
    loaded_tables,
    mariadb_source,
    postgres_source,
    postgres_url,
    project,
)

TABLE = "notes: {primary_key: id, cursor: updated_at}"


def _widened(ctx: Context, widen: object) -> None:
    assert ctx.run().ok
    widen()  # type: ignore[operator]
    result = ctx.run()
    # Before: "column 'v' changed type upstream and the contract freezes data types", on
    # every run until a reload.
    assert result.ok, result.to_dict()
    rows = ctx.sql("select id, length(v) from app.notes order by id").rows
    assert rows == ((1, 3), (2, 40))


@pytest.mark.postgres
def test_a_text_column_widened_upstream_keeps_loading_from_postgres(
    tmp_path: Path, pg_database: dict[str, object]
) -> None:
    postgres_source(
        pg_database,
        "CREATE TABLE notes (id int PRIMARY KEY, v varchar(5), updated_at timestamp)",
        "INSERT INTO notes VALUES (1, 'abc', '2026-01-01')",
    )
    ctx = Context(project(tmp_path / "p", TABLE), environ={"DB": postgres_url(pg_database)})
    _widened(
        ctx,
        lambda: postgres_source(
            pg_database,
            "ALTER TABLE notes ALTER COLUMN v TYPE varchar(50)",
            "INSERT INTO notes VALUES (2, repeat('q', 40), '2026-02-01')",
        ),
    )


@pytest.mark.mariadb
def test_a_text_column_widened_upstream_keeps_loading_from_mariadb(
    tmp_path: Path, mariadb_database: str
) -> None:
    mariadb_source(
        mariadb_database,
        "CREATE TABLE notes (id INT PRIMARY KEY, v VARCHAR(5), updated_at DATETIME)",
        "INSERT INTO notes VALUES (1, 'abc', '2026-01-01')",
    )
    ctx = Context(project(tmp_path / "p", TABLE), environ={"DB": mariadb_database})
    _widened(
        ctx,
        lambda: mariadb_source(
            mariadb_database,
            "ALTER TABLE notes MODIFY v VARCHAR(50)",
            "INSERT INTO notes VALUES (2, REPEAT('q', 40), '2026-02-01')",
        ),
    )


@pytest.mark.postgres
def test_a_numeric_wider_than_38_digits_loads_its_values_exactly_from_postgres(
    tmp_path: Path, pg_database: dict[str, object]
) -> None:
    postgres_source(
        pg_database,
        "CREATE TABLE amounts (id int PRIMARY KEY, a numeric(50,10))",
        "INSERT INTO amounts VALUES (1, 1.5), (2, 123456789012345678.0123456789), (3, NULL)",
    )
    ctx = Context(
        project(tmp_path / "p", "amounts: {primary_key: id}"),
        environ={"DB": postgres_url(pg_database)},
    )
    result = ctx.run()
    # Before: "DECIMAL type width must be between 1 and 38", whatever the values.
    assert result.ok, result.to_dict()
    assert ctx.sql("select cast(a as varchar) from app.amounts order by id").rows == (
        ("1.5000000000",),
        ("123456789012345678.0123456789",),
        (None,),
    )
    # A value the warehouse's 38 digits cannot hold fails the load; it is never rounded.
    postgres_source(
        pg_database, "INSERT INTO amounts VALUES (4, 1234567890123456789012345678901.5)"
    )
    (load,) = ctx.run().loads
    assert load.status == "failed"
    assert ctx.sql("select count(*) from app.amounts").rows == ((3,),)


@pytest.mark.mariadb
def test_mariadbs_widest_decimal_loads_its_values_exactly(
    tmp_path: Path, mariadb_database: str
) -> None:
    mariadb_source(
        mariadb_database,
        "CREATE TABLE amounts (id INT PRIMARY KEY, a DECIMAL(65,30))",
        "INSERT INTO amounts VALUES (1, 1.5), (2, 12345678901234567890.000000000000000001)",
    )
    ctx = Context(
        project(tmp_path / "p", "amounts: {primary_key: id}"), environ={"DB": mariadb_database}
    )
    assert ctx.run().ok
    assert ctx.sql("select cast(a as varchar) from app.amounts order by id").rows == (
        ("1.500000000000000000",),
        ("12345678901234567890.000000000000000001",),
    )


@pytest.mark.postgres
@pytest.mark.parametrize("driver", ["+psycopg", ""])
@pytest.mark.parametrize("value", ["0.1234567890123456789012345", "123456789012345678901234567890"])
def test_a_postgres_numeric_its_decimal_cannot_hold_fails_naming_the_column(
    tmp_path: Path, pg_database: dict[str, object], driver: str, value: str
) -> None:
    postgres_source(
        pg_database,
        "CREATE TABLE prices (id int PRIMARY KEY, amount numeric, fixed numeric(10,2))",
        f"INSERT INTO prices VALUES (1, 1.5, 2.25), (2, {value}, 1.00)",
    )
    ctx = Context(
        project(tmp_path / "p", "prices: {primary_key: id}"),
        environ={"DB": postgres_url(pg_database, driver)},
    )
    (load,) = ctx.run().loads
    # Before: "ArrowInvalid: Rescaling Decimal value would cause data loss", naming no
    # column; and 30 digits before the point loaded as another number, without a word.
    assert load.status == "failed", ctx.sql("select * from app.prices").rows
    error = str(load.error)
    assert "table 'prices', column 'amount'" in error and f"value {value}" in error, error
    assert "DECIMAL(38,18)" in error and "never rounded" in error
    # Postgres's CHAR is one character: the advice casts to TEXT.
    assert "CAST(amount AS TEXT) AS amount" in error and "source_table:" in error
    assert "prices" not in loaded_tables(ctx)  # nothing of it was loaded

    # As advised: a view that casts the column to text loads every digit.
    postgres_source(
        pg_database,
        "CREATE VIEW prices_text AS SELECT id, CAST(amount AS TEXT) AS amount, fixed FROM prices",
    )
    config = ctx.project_dir / "stackyard.yml"
    config.write_text(
        config.read_text().replace(
            "prices: {primary_key: id}", "prices: {primary_key: id, source_table: prices_text}"
        )
    )
    ctx = Context(ctx.project_dir, environ={"DB": postgres_url(pg_database, driver)})
    assert ctx.run().ok
    assert ctx.sql("select id, amount from app.prices order by id").rows == (
        (1, "1.5"),
        (2, value),
    )
