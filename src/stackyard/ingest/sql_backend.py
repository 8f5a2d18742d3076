"""Which reader a SQL source's tables are read with, and how it connects: ConnectorX where it
reads the engine's values as the table declares them, SQLAlchemy → Arrow elsewhere, and a
connect timeout on every server database."""

from __future__ import annotations

from typing import Any

from stackyard.config.sources import SqlDatabaseSource
from stackyard.errors import ConfigError

# Server engines whose drivers wait for a connection forever (libpq) or long unless told.
_CONNECT_TIMEOUT_SCHEMES = ("postgresql", "postgres", "mysql", "mariadb")
SOURCE_CONNECT_TIMEOUT = 10


def with_connect_timeout(url: str, seconds: int = SOURCE_CONNECT_TIMEOUT) -> str:
    """``url`` with a ``connect_timeout`` unless it names one, for server databases.

    libpq (Postgres) has no connect timeout by default, so a host that takes the TCP
    connection and never answers would block a load forever
    (https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNECT-CONNECT-TIMEOUT).

    >>> with_connect_timeout("postgresql://u@db/shop")
    'postgresql://u@db/shop?connect_timeout=10'
    >>> with_connect_timeout("mysql+pymysql://u@db/shop?charset=utf8mb4&connect_timeout=3")
    'mysql+pymysql://u@db/shop?charset=utf8mb4&connect_timeout=3'
    >>> with_connect_timeout("sqlite:///app.sqlite")
    'sqlite:///app.sqlite'
    """
    scheme = url.split(":", 1)[0].split("+", 1)[0].lower()
    if scheme not in _CONNECT_TIMEOUT_SCHEMES or "connect_timeout=" in url:
        return url
    return f"{url}{'&' if '?' in url else '?'}connect_timeout={seconds}"


# Where `auto` picks ConnectorX. It reads more engines, but on MySQL/MariaDB its Arrow
# types disagree with the types dlt reflects from the table (a first load then trips the
# frozen-types contract), so those stay on the SQLAlchemy → Arrow path.
_CONNECTORX_SCHEMES = ("sqlite", "postgresql", "postgres")
_CONNECTORX_CHANGES_TYPES = ("mysql", "mariadb")


def sql_backend(config: SqlDatabaseSource, url: str) -> tuple[str, dict[str, Any]]:
    """The dlt table backend for a source, and its arguments.

    ConnectorX reads straight into Arrow in Rust, several times faster than SQLAlchemy rows
    converted to Arrow (docs/performance.md); it streams batches, so memory stays bounded.

    >>> from stackyard.config.model import SqlDatabaseSource
    >>> cfg = SqlDatabaseSource(kind="sql_database", connection="x", tables={"t": {}})
    >>> sql_backend(cfg, "oracle://db/x")[0]
    'pyarrow'
    >>> sql_backend(cfg, "mysql+pymysql://root@db/x")[0]
    'pyarrow'
    """
    backend = config.backend
    scheme = url.split(":", 1)[0].split("+", 1)[0].lower()
    if backend == "auto":
        backend = "connectorx" if scheme in _CONNECTORX_SCHEMES else "pyarrow"
    if backend == "connectorx" and scheme in _CONNECTORX_CHANGES_TYPES:
        raise ConfigError(
            f"backend: connectorx cannot read a {scheme} source as its tables declare: it "
            "reads INT as a 32-bit integer and DECIMAL(10,2) as DECIMAL(38,10), so the first "
            "load fails on the frozen column types",
            hint="set `backend: auto` (or `pyarrow`) on the source in stackyard.yml; "
            "nothing was loaded",
        )
    if backend == "connectorx":
        kwargs: dict[str, Any] = {"return_type": "arrow_stream", "batch_size": config.chunk_size}
        if url.startswith("postgres"):
            # Measured on 2M rows (bench/sql_postgres.py): the server-side cursor protocol
            # reads in 1.6 s where dlt's default, binary COPY, takes 2.4 s.
            kwargs["protocol"] = "cursor"
        return backend, kwargs
    return backend, {}
