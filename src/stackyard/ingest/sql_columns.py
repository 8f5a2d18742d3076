"""How a SQL source's columns are read, where a reader's defaults would change the values.

- A binary float column (MySQL/MariaDB ``DOUBLE``, ``FLOAT``, ``REAL``) is one SQLAlchemy
  reads as a decimal unless told otherwise (its MySQL types default to ``asdecimal``), and dlt
  then made it a decimal of ten places: ``1e-12`` loaded as 0, ``3.141592653589793`` as
  ``3.1415926536``. It is read as the double it is.
- A Postgres ``NUMERIC`` with more than ten decimal places (or with none declared) comes out
  of ConnectorX rounded to ten, and a ``time`` of ``24:00:00`` as midnight: a table with such
  a column is read through SQLAlchemy instead, which keeps every digit and tells the end of
  the day apart (to refuse it by name).
- A Postgres ``NUMERIC`` declared without precision holds any number; dlt gave it nine
  places and every value with more failed the table. It loads as ``DECIMAL(38,18)``: a
  value that does not fit (more places, or more than 20 digits before the point) still fails
  the load, loudly, never rounded.
- A text column's declared length (``VARCHAR(5)``) is not kept: widened upstream
  (``VARCHAR(50)``), dlt saw a changed type and the frozen contract failed every load until a
  reload, although the warehouse's text holds any length. Text columns load as unbounded text.
- A SQLite ``NUMERIC`` declared without precision loads as ``DECIMAL(38,18)`` too: read
  through SQLAlchemy it was a decimal of no precision beside Arrow's ``DECIMAL(38,9)``, and the
  frozen contract failed the very first load as a changed type.
- On SQLite, integer columns check each value (:mod:`stackyard.ingest.sqlite_integers`).
- Postgres ``±infinity`` timestamps, ``timetz`` and ``interval``, and MySQL/MariaDB ``TIME``
  values beyond a day: :mod:`stackyard.ingest.sql_values`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from stackyard.ingest.sql_values import (
    checked,
    mark_infinite_timestamps,
    mysql_values,
    postgres_values,
    reflected_type,
    refuse_connectorx_infinity,
    within_decimal,
)
from stackyard.ingest.sqlite_integers import exact_sqlite_integers

# The decimal places ConnectorX keeps of a Postgres NUMERIC.
_CONNECTORX_SCALE = 10
# What a NUMERIC without precision loads as: the widest decimal every target holds, with
# places for an 18-place token amount and 20 digits before the point.
UNCONSTRAINED_DECIMAL = (38, 18)


def floats_as_doubles(table: Any) -> None:
    """Read every binary float column of the reflected ``table`` as a double (in place)."""
    import sqlalchemy as sa

    for column in table.columns:
        if isinstance(column.type, sa.Float) and column.type.asdecimal:
            column.type.asdecimal = False


def bounded_decimals(table: Any, unconstrained: bool = True, text: str = "CHAR") -> None:
    """Give every NUMERIC of the reflected ``table`` declared without precision the
    :data:`UNCONSTRAINED_DECIMAL` precision and scale (``unconstrained``), and one declared
    wider than every target holds (``NUMERIC(50,10)``, MariaDB's ``DECIMAL(65,30)``) 38 digits
    with its scale, at most :data:`UNCONSTRAINED_DECIMAL`'s (in place). The load failed on such
    a column with "DECIMAL type width must be between 1 and 38", naming no column, whatever
    its values; now a value that does not fit fails it, loudly, and is never rounded. ``text``:
    the source's type for a cast to text, named in the error's advice.

    >>> import sqlalchemy as sa
    >>> t = sa.Table("t", sa.MetaData(), sa.Column("a", sa.Numeric(50, 10)),
    ...              sa.Column("b", sa.Numeric(65, 30)), sa.Column("c", sa.Numeric(12, 2)))
    >>> bounded_decimals(t)
    >>> [(c.type.precision, c.type.scale) for c in t.columns]
    [(38, 10), (38, 18), (12, 2)]
    """
    import sqlalchemy as sa

    widest, places = UNCONSTRAINED_DECIMAL
    for column in table.columns:
        kind = column.type
        numeric = isinstance(kind, sa.Numeric) and not isinstance(kind, sa.Float)
        if not numeric or not kind.asdecimal:
            continue
        if kind.precision is None and unconstrained:
            kind.precision, kind.scale = UNCONSTRAINED_DECIMAL
        elif kind.precision is not None and kind.precision > widest:
            kind.precision, kind.scale = widest, min(kind.scale or 0, places)
        else:
            continue
        # Arrow refused a value that does not fit with "Rescaling Decimal value would cause
        # data loss", naming no column: each value is checked, and one that does not fit named.
        fits = within_decimal(table.name, column.name, (widest, kind.scale), text)
        column.type = checked(kind, fits)


def unbounded_text(table: Any) -> None:
    """Drop the declared length of every text column of the reflected ``table`` (in place).

    >>> import sqlalchemy as sa
    >>> t = sa.Table("t", sa.MetaData(), sa.Column("v", sa.String(5)))
    >>> unbounded_text(t)
    >>> t.c.v.type.length is None
    True
    """
    import sqlalchemy as sa

    for column in table.columns:
        if isinstance(column.type, sa.String) and not isinstance(column.type, sa.Enum):
            column.type.length = None


def table_adapter(url: str) -> Callable[[Any], None]:
    """dlt's ``table_adapter_callback`` for a source at ``url``.

    >>> import sqlalchemy as sa
    >>> from sqlalchemy.dialects import mysql
    >>> t = sa.Table("m", sa.MetaData(), sa.Column("x", mysql.DOUBLE()))
    >>> table_adapter("mysql+pymysql://root@db/shop")(t)
    >>> t.c.x.type.asdecimal
    False
    """
    scheme = _scheme(url)

    def adapt(table: Any) -> None:
        floats_as_doubles(table)
        unbounded_text(table)
        # A NUMERIC without precision holds any number on Postgres and SQLite (whose
        # readers typed it differently: the first load tripped the frozen types); MySQL's
        # DECIMAL always has one. Their CHAR is one character: TEXT keeps every digit.
        unconstrained = scheme in _POSTGRES or scheme == "sqlite"
        text = "TEXT" if unconstrained else "CHAR"
        bounded_decimals(table, unconstrained=unconstrained, text=text)
        if scheme in _POSTGRES:
            postgres_values(table)
        if scheme in _MYSQL:
            mysql_values(table)
        if scheme == "sqlite":
            exact_sqlite_integers(table)

    return adapt


_POSTGRES = ("postgresql", "postgres")
_MYSQL = ("mysql", "mariadb")


def _scheme(url: str) -> str:
    return url.split(":", 1)[0].split("+", 1)[0].lower()


def reader_hooks(url: str) -> dict[str, Any]:
    """The ``sql_table`` arguments that read a source at ``url`` exactly: the table adapter
    (:func:`table_adapter`) and, on Postgres, the engine adapter that has the driver mark
    infinite timestamps (:mod:`stackyard.ingest.sql_values`).

    >>> sorted(reader_hooks("mysql+pymysql://root@db/shop"))
    ['table_adapter_callback']
    """
    hooks: dict[str, Any] = {"table_adapter_callback": table_adapter(url)}
    if _scheme(url) in _POSTGRES:
        hooks["engine_adapter_callback"] = mark_infinite_timestamps
        hooks["type_adapter_callback"] = reflected_type
    return hooks


def exact_values(resource: Any, table: str) -> Any:
    """``resource`` (a ``sql_table``) with its batches checked for what ConnectorX reads
    infinite timestamps as, before any other step (the cursor's among them) reads them."""
    return resource.add_map(refuse_connectorx_infinity(table), insert_at=1)


def tables_connectorx_changes(
    backend: str, url: str, schema: str | None, tables: Iterable[str]
) -> set[str]:
    """Of ``tables`` (as the database names them), those with a column whose values
    ConnectorX would change, when ``backend`` is ConnectorX on Postgres: a NUMERIC it would
    round (more than ten decimal places, or none declared), a ``time`` (24:00:00 read as
    midnight) or an ``interval`` (read as a duration, which dlt does not load); read them
    with ``pyarrow`` instead, which reads an interval as its text."""
    import sqlalchemy as sa

    names = list(tables)
    if backend != "connectorx" or not url.startswith("postgres") or not names:
        return set()
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            found = conn.execute(
                sa.text(
                    "SELECT DISTINCT table_name FROM information_schema.columns "
                    "WHERE table_schema = coalesce(:schema, current_schema()) "
                    "AND table_name = ANY(:names) AND (data_type = 'time without time zone' "
                    "OR data_type = 'interval' "
                    "OR data_type = 'numeric' AND (numeric_scale IS NULL "
                    "OR numeric_scale > :scale))"
                ),
                {"schema": schema, "names": names, "scale": _CONNECTORX_SCALE},
            )
            return {str(row[0]) for row in found}
    except sa.exc.SQLAlchemyError:
        return set()  # the load itself meets the same server, and says what is wrong
    finally:
        engine.dispose()
