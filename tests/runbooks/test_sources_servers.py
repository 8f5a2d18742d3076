"""sql_database sources on the local Postgres and MariaDB servers, incremental and merged."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from stackyard import Context
from stackyard.cli.main import app
from stackyard.project import init_project

runner = CliRunner()


def add(project: Path, url_secret: str, env: dict[str, str]) -> str:
    result = runner.invoke(
        app,
        [
            "source",
            "add",
            "app",
            "--kind",
            "sql_database",
            "--connection-secret",
            url_secret,
            "--table",
            "orders",
            "--primary-key",
            "orders=id",
            "--cursor",
            "orders=updated_at",
            "-p",
            str(project),
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.postgres
def test_postgres_source_incremental_merge(tmp_path: Path, pg_database: dict[str, object]) -> None:
    import psycopg

    conninfo = dict(
        host=pg_database["host"],
        port=pg_database["port"],
        user=pg_database["user"],
        dbname=pg_database["database"],
    )
    with psycopg.connect(**conninfo, autocommit=True) as conn:  # type: ignore[arg-type]
        conn.execute(
            "CREATE TABLE orders (id int PRIMARY KEY, amount numeric(10,2), "
            "status text, updated_at timestamptz, rate numeric(20,12), note text, "
            "total numeric)"
        )
        conn.execute(
            "INSERT INTO orders SELECT g, g * 1.5, 'placed', '2026-01-01'::timestamptz, "
            "1234.123456789123, '', 123456789.123456789012 FROM generate_series(1, 500) g"
        )
    url = (
        f"postgresql+psycopg://{pg_database['user']}@{pg_database['host']}:"
        f"{pg_database['port']}/{pg_database['database']}"
    )
    project = tmp_path / "p"
    init_project(project)
    output = add(project, "APP_DB_URL", {"APP_DB_URL": url})
    assert "loaded orders: 500 rows" in output
    assert url not in (project / "stackyard.yml").read_text()
    with psycopg.connect(**conninfo, autocommit=True) as conn:  # type: ignore[arg-type]
        conn.execute(
            "UPDATE orders SET status = 'shipped', updated_at = '2026-02-01' WHERE id <= 20"
        )
        conn.execute("INSERT INTO orders VALUES (501, 1, 'placed', '2026-02-01')")
    ctx = Context(project, environ={"APP_DB_URL": url})
    result = ctx.run()
    assert result.ok, result.to_dict()
    assert {t.table: t.rows for load in result.loads for t in load.tables} == {"orders": 21}
    assert ctx.sql(
        "select count(*), count(distinct id), sum(case when status = 'shipped' "
        "then 1 else 0 end) from app.orders"
    ).rows == ((501, 501, 20),)
    assert ctx.sql("select count(*) from staging.stg_dlt__orders").rows == ((501,),)
    # twelve decimal places, not ConnectorX's ten; an empty string, not NULL
    assert ctx.sql("select cast(rate as varchar), note from app.orders where id = 1").rows == (
        ("1234.123456789123", ""),
    )
    # a NUMERIC without precision: every place kept (it failed the table at nine)
    assert ctx.sql("select cast(total as varchar) from app.orders where id = 1").rows == (
        ("123456789.123456789012000000",),
    )


@pytest.mark.mariadb
def test_mariadb_source(tmp_path: Path, mariadb_database: str) -> None:
    import sqlalchemy

    engine = sqlalchemy.create_engine(mariadb_database)
    with engine.begin() as conn:
        conn.execute(
            sqlalchemy.text(
                "CREATE TABLE orders (id INT PRIMARY KEY, amount DECIMAL(10,2), "
                "status VARCHAR(20), updated_at DATETIME, rate DOUBLE)"
            )
        )
        conn.execute(
            sqlalchemy.text(
                "INSERT INTO orders VALUES (1, 9.99, 'placed', '2026-01-01 00:00:00', 1e-12), "
                "(2, 19.99, 'shipped', '2026-01-02 00:00:00', 3.141592653589793)"
            )
        )
    engine.dispose()
    project = tmp_path / "p"
    init_project(project)
    output = add(project, "SHOP_DB_URL", {"SHOP_DB_URL": mariadb_database})
    assert "loaded orders: 2 rows" in output
    sql = (project / "transform/models/staging/dlt/stg_dlt__orders.sql").read_text()
    assert "id as order_id" in sql and "cast(updated_at as timestamp)" in sql
    # a DOUBLE is a double: it loaded as a decimal of ten places (1e-12 as 0)
    rates = Context(project, environ={"SHOP_DB_URL": mariadb_database}).sql(
        "select rate from app.orders order by id"
    )
    assert rates.rows == ((1e-12,), (3.141592653589793,))


def test_wrong_credentials_are_a_clear_failure(tmp_path: Path) -> None:
    project = tmp_path / "p"
    init_project(project)
    result = runner.invoke(
        app,
        [
            "source",
            "add",
            "app",
            "--kind",
            "sql_database",
            "--connection-secret",
            "U",
            "--table",
            "orders",
            "-p",
            str(project),
        ],
        env={"U": "postgresql+psycopg://nobody:wrongpw@127.0.0.1:1/none"},
    )
    assert result.exit_code == 1
    assert "first load" in result.output and "wrongpw" not in result.output


def test_a_cursor_whose_key_cannot_be_read_says_the_database_did_not_answer(
    tmp_path: Path,
) -> None:
    project = tmp_path / "p"
    init_project(project)
    before = (project / "stackyard.yml").read_text()
    args = ["source", "add", "app", "--kind", "sql_database", "--connection-secret", "U"]
    result = runner.invoke(
        app,
        [*args, "--table", "orders", "--cursor", "orders=updated_at", "-p", str(project)],
        env={"U": "postgresql+psycopg://nobody:wrongpw@127.0.0.1:1/none"},
    )
    said = " ".join(result.output.split())
    # Before: "cursor 'updated_at' without a primary_key would append every changed row
    # again", exit 2, about a table that has one: the database was never asked.
    assert result.exit_code == 1, said
    assert "could not read the primary key of orders" in said, said
    assert "the source database did not answer" in said and "--primary-key orders=" in said
    assert "wrongpw" not in said
    assert (project / "stackyard.yml").read_text() == before


@pytest.mark.mariadb
def test_a_load_left_failing_says_how_to_start_over(
    tmp_path: Path, mariadb_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlalchemy

    from stackyard.ingest import sql_columns

    # A column wider than 38 digits is now read as 38: declared as it is, as before, it
    # makes dlt's load step fail, which is what this test needs.
    monkeypatch.setattr(sql_columns, "bounded_decimals", lambda table, **_: None)
    engine = sqlalchemy.create_engine(mariadb_database)
    with engine.begin() as conn:
        # 65 digits: more than a DuckDB decimal holds; dlt's load step fails on it.
        conn.execute(sqlalchemy.text("CREATE TABLE wide (id INT PRIMARY KEY, x DECIMAL(65,30))"))
        conn.execute(sqlalchemy.text("INSERT INTO wide VALUES (1, 1.5)"))
    project = tmp_path / "p"
    init_project(project)
    config = project / "stackyard.yml"
    config.write_text(
        config.read_text().replace(
            "sources: {}\n",
            "sources:\n  app:\n    kind: sql_database\n    connection: {secret: DB}\n"
            "    tables: {wide: {primary_key: id}}\n",
        )
    )
    ctx = Context(project, environ={"DB": mariadb_database})
    assert not ctx.run().ok
    with engine.begin() as conn:  # fixed at the source
        conn.execute(sqlalchemy.text("ALTER TABLE wide MODIFY x DECIMAL(30,10)"))
    engine.dispose()
    (load,) = ctx.run().loads
    assert load.status == "failed"
    assert "a load an earlier run left could not be finished" in str(load.error)
    assert "stackyard reload app" in str(load.error)
    assert ctx.reload(ctx.reload_plan("app")).ok
    assert ctx.sql("select id, x from app.wide").rows[0][0] == 1


def _empty_table_source(project: Path, url: str) -> tuple[int, str]:
    init_project(project)
    args = "source add app --kind sql_database --connection-secret DB --table orders "
    args += "--table refunds -p"
    result = runner.invoke(app, [*args.split(), str(project)], env={"DB": url})
    return result.exit_code, result.output


@pytest.mark.parametrize(
    "server",
    [
        pytest.param("mariadb", marks=pytest.mark.mariadb),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ],
)
def test_an_empty_source_table_is_added_and_runs_keep_passing(
    tmp_path: Path, server: str, request: pytest.FixtureRequest
) -> None:
    import sqlalchemy

    if server == "mariadb":
        url = request.getfixturevalue("mariadb_database")
    else:
        db = request.getfixturevalue("pg_database")
        url = f"postgresql+psycopg://{db['user']}@{db['host']}:{db['port']}/{db['database']}"
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("CREATE TABLE orders (id INT PRIMARY KEY, total INT)"))
        conn.execute(sqlalchemy.text("INSERT INTO orders VALUES (1, 10)"))
        conn.execute(sqlalchemy.text("CREATE TABLE refunds (id INT PRIMARY KEY, amount INT)"))
    # Before: MariaDB's empty table was never created ("app.refunds does not exist: nothing
    # was loaded", its staging model failed on every run); on Postgres it was, but "0 rows"
    # failed `source add` and its freshness ("the table has no rows") failed every run.
    code, output = _empty_table_source(tmp_path / "p", url)
    assert code == 0, output
    assert "0 rows in app.refunds: the source sent none" in output
    ctx = Context(tmp_path / "p", environ={"DB": url})
    first = ctx.run()
    assert first.ok, first.to_dict()
    assert [(f.table, f.status) for f in first.freshness if f.table == "refunds"] == [
        ("refunds", "warn")
    ]
    assert ctx.sql("select count(*) from app.refunds").rows == ((0,),)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("INSERT INTO refunds VALUES (1, 5)"))
    engine.dispose()
    assert ctx.run().ok
    assert ctx.sql("select id, amount from app.refunds").rows == ((1, 5),)


@pytest.mark.mariadb
def test_a_view_is_added_as_a_source_table(tmp_path: Path, mariadb_database: str) -> None:
    import sqlalchemy

    engine = sqlalchemy.create_engine(mariadb_database)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("CREATE TABLE hits (id INT PRIMARY KEY, n BIGINT UNSIGNED)"))
        conn.execute(sqlalchemy.text("INSERT INTO hits VALUES (1, 18446744073709551615)"))
        # What stackyard says to do with a value the reader cannot hold: a view that casts it.
        conn.execute(
            sqlalchemy.text("CREATE VIEW hits_v AS SELECT id, CAST(n AS CHAR) AS n FROM hits")
        )
    engine.dispose()
    project = tmp_path / "p"
    init_project(project)
    args = "source add app --kind sql_database --connection-secret DB --table hits=hits_v "
    args += "--primary-key hits=id -p"
    result = runner.invoke(app, [*args.split(), str(project)], env={"DB": mariadb_database})
    # Before: "the database has no table 'hits_v' (did you mean 'hits'?)", exit 2.
    assert result.exit_code == 0, result.output
    assert (
        "hits: {source_table: hits_v, primary_key: id}" in (project / "stackyard.yml").read_text()
    )
    ctx = Context(project, environ={"DB": mariadb_database})
    assert ctx.sql("select id, n from app.hits").rows == ((1, "18446744073709551615"),)
