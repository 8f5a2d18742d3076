"""Which reader a SQL source is read with (stackyard.ingest.sql_backend)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackyard import Context
from stackyard.config.model import SqlDatabaseSource
from stackyard.errors import ConfigError
from stackyard.ingest.sql_backend import sql_backend
from tests.ingest.test_sql_value_fidelity import mariadb_source, project


def config(backend: str) -> SqlDatabaseSource:
    return SqlDatabaseSource(kind="sql_database", connection="x", backend=backend, tables={"t": {}})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("backend", "url", "expected"),
    [
        ("auto", "postgresql+psycopg://u@db/x", "connectorx"),
        ("auto", "sqlite:////tmp/x.sqlite", "connectorx"),
        ("auto", "mysql+pymysql://u@db/x", "pyarrow"),
        ("auto", "mariadb+pymysql://u@db/x", "pyarrow"),
        ("pyarrow", "postgresql://u@db/x", "pyarrow"),
        ("connectorx", "postgresql://u@db/x", "connectorx"),
    ],
)
def test_the_reader_chosen(backend: str, url: str, expected: str) -> None:
    assert sql_backend(config(backend), url)[0] == expected


@pytest.mark.parametrize("url", ["mysql+pymysql://u@db/x", "mariadb+mariadbconnector://u@db/x"])
def test_connectorx_asked_for_on_mysql_is_refused_saying_what_to_set(url: str) -> None:
    with pytest.raises(ConfigError) as refused:
        sql_backend(config("connectorx"), url)
    assert "backend: auto" in str(refused.value.hint)


@pytest.mark.mariadb
def test_a_mysql_source_with_connectorx_fails_saying_what_to_set(
    tmp_path: Path, mariadb_database: str
) -> None:
    mariadb_source(
        mariadb_database,
        "CREATE TABLE prices (id INT PRIMARY KEY, amount DECIMAL(10,2))",
        "INSERT INTO prices VALUES (1, 1.50)",
    )
    root = project(tmp_path / "p", "prices: {primary_key: id}", "connectorx")
    ctx = Context(root, environ={"DB": mariadb_database})
    (load,) = ctx.run().loads
    # Before: "RuntimeError: Unknown URL parameter `connect_timeout'", and without that
    # parameter a first load that failed on frozen column types.
    assert load.status == "failed"
    assert "backend: connectorx cannot read a mysql source" in str(load.error)
    assert "backend: auto" in str(load.error)
