"""Reading what a source offers before it is configured (``source add`` without tables)."""

from __future__ import annotations

from typing import Any

from stackyard.errors import ConfigError, UsageError


def discover_sql_tables(url: str, schema: str | None) -> dict[str, dict[str, Any]]:
    """Every table of a SQL database with its primary key, for ``source add`` without
    ``--table``.

    Raises:
        UsageError: the database cannot be reached or has no tables.
        ReservedColumnError: a table has a column dlt would overwrite.
    """
    import sqlalchemy

    from stackyard.ingest.reserved_columns import refuse_reserved
    from stackyard.ingest.sql_backend import with_connect_timeout

    try:
        engine = sqlalchemy.create_engine(with_connect_timeout(url))
        with engine.connect() as conn:
            inspector = sqlalchemy.inspect(conn)
            names = inspector.get_table_names(schema=schema)
            tables: dict[str, dict[str, Any]] = {}
            for table in names:
                refuse_reserved(table, [c["name"] for c in inspector.get_columns(table, schema)])
                pk = (
                    inspector.get_pk_constraint(table, schema=schema).get("constrained_columns")
                    or []
                )
                spec: dict[str, Any] = {}
                if len(pk) == 1:
                    spec["primary_key"] = pk[0]
                elif pk:
                    spec["primary_key"] = list(pk)
                tables[table] = spec
        engine.dispose()
    except sqlalchemy.exc.SQLAlchemyError as exc:
        raise UsageError(
            f"cannot read the tables of the database: {str(exc).splitlines()[0]}",
            hint="check the connection URL and credentials, or name tables with --table",
        ) from None
    if not tables:
        raise UsageError(
            f"the database has no tables{f' in schema {schema}' if schema else ''}",
            hint="check --source-schema, or name tables with --table",
        )
    return tables


def check_driver(name: str, url: str) -> None:
    """Refuse a URL whose driver is not installed (``mysql://`` means MySQLdb), before
    anything is attempted, instead of an import error from deep in SQLAlchemy."""
    import sqlalchemy

    try:
        sqlalchemy.engine.make_url(url).get_dialect().import_dbapi()
    except sqlalchemy.exc.ArgumentError:
        return  # a dialect SQLAlchemy does not know (or a bad URL): the load says so
    except ImportError as exc:
        scheme = url.split("://", 1)[0]
        raise ConfigError(
            f"sources.{name}.connection: no driver for '{scheme}://' ({exc})",
            hint="name an installed driver in the URL, e.g. mysql+pymysql://, "
            "postgresql+psycopg://, or install the driver",
        ) from None
