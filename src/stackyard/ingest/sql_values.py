"""Source values the readers would change without a word: each is read exactly, or fails its
table naming the column and what to do.

- A Postgres ``timestamp``/``timestamptz`` may hold ``infinity`` or ``-infinity``
  (https://www.postgresql.org/docs/current/datatype-datetime.html#DATATYPE-DATETIME-SPECIAL-VALUES).
  No reader carries them: ConnectorX turns them into the largest and smallest dates its Rust
  library holds (years 262142 and -262144), psycopg2 into Python's ``datetime.max`` and
  ``datetime.min`` (https://www.psycopg.org/docs/usage.html#infinite-dates-handling), and
  psycopg refuses them with a message naming no column. Only DuckDB and Postgres targets
  could hold them, and the cursor, the monitors and the staging models read timestamps as
  Python values, which cannot; so such a value fails the table, naming the table and the
  column, with either backend and either driver.
- A Postgres ``timetz`` keeps its UTC offset (``10:00:00+02``), which Arrow's time type has no
  place for: the reader dropped it (10:00), and ConnectorX could not read the column at all.
  It is read as the UTC time of day it names (``10:00:00+02`` as 08:00:00), the column stays a
  time, and ConnectorX reads it.
- A Postgres ``time`` may be ``24:00:00``, the end of a day (opening hours close at it), which
  no time-of-day type outside Postgres holds: ConnectorX and psycopg2 read it as 00:00:00,
  the start of the same day, and psycopg refused it naming no column. It fails the table,
  naming the column; a table with a ``time`` column is read through SQLAlchemy, whose driver
  can tell the value apart (:mod:`stackyard.ingest.sql_columns`).
- A MySQL/MariaDB ``TIME`` is a duration as well as a time of day: it runs from
  ``-838:59:59`` to ``838:59:59`` (https://mariadb.com/kb/en/time/), and SQLAlchemy kept only
  its part within a day (``838:59:59`` loaded as 22:59:59, ``-01:00:00`` as 23:00). A value
  outside ``[00:00:00, 24:00:00)`` fails the table, naming the column; the column stays a
  time, so the tables already loaded keep their type.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from stackyard.errors import LoadError

# What ConnectorX reads Postgres ±infinity as: chrono's NaiveDateTime::MAX and ::MIN, in
# microseconds since 1970. A value at the very microsecond is no value a source means.
_CONNECTORX_INFINITY = {8210266876799999999: "infinity", -8334601228800000000: "-infinity"}
# What Postgres sends for them in the binary protocol (src/include/datatype/timestamp.h).
_BINARY_INFINITY = {2**63 - 1: "infinity", -(2**63): "-infinity"}
_DAY = timedelta(days=1)


class Infinite(str):
    """A Postgres ``infinity``/``-infinity`` timestamp as the driver read it, to be refused
    by the column's own result processor, which knows the column's name."""


class EndOfDay(str):
    """A Postgres ``time`` of ``24:00:00`` as the driver read it, refused the same way."""


# A Postgres time of 24:00:00 in the binary protocol: microseconds since midnight.
_BINARY_END_OF_DAY = 86_400_000_000
# What a BIGINT column holds in the warehouse (DuckDB, Postgres, Arrow's int64).
_BIGINT_MAX = 2**63 - 1


def infinite_timestamp(table: str, column: str, value: str) -> LoadError:
    """The error for an infinite timestamp in ``table``.``column``.

    >>> print(infinite_timestamp("contracts", "valid_to", "infinity"))  # doctest: +ELLIPSIS
    table 'contracts', column 'valid_to': the source holds the timestamp 'infinity', ...
    """
    return LoadError(
        f"table '{table}', column '{column}': the source holds the timestamp '{value}', "
        "which the load cannot carry exactly (the readers turn it into a far-off date)",
        hint=f"read the table through a view that maps it (e.g. `CASE WHEN isfinite({column}) "
        f"THEN {column} END`, or `{column}::text` to keep the word) with `source_table:`, "
        "or leave the column out; this load wrote nothing",
    )


def end_of_day(table: str, column: str) -> LoadError:
    """The error for a Postgres ``time`` of ``24:00:00``.

    >>> print(end_of_day("shops", "closes"))  # doctest: +ELLIPSIS
    table 'shops', column 'closes': the source holds the time 24:00:00 (the end of the day), ...
    """
    return LoadError(
        f"table '{table}', column '{column}': the source holds the time 24:00:00 (the end of "
        "the day), which a time of day cannot carry (the readers turn it into 00:00:00, the "
        "start of the day)",
        hint=f"read the table through a view that maps it (e.g. `CASE WHEN {column} = "
        f"'24:00' THEN interval '24 hours' ELSE {column} - time '00:00' END` for an interval, "
        f"or `{column}::text`) with `source_table:`, or leave the column out; this load wrote "
        "nothing",
    )


def time_beyond_a_day(table: str, column: str, value: timedelta) -> LoadError:
    """The error for a MySQL/MariaDB ``TIME`` outside one day.

    >>> print(time_beyond_a_day("jobs", "took", timedelta(hours=-1)))  # doctest: +ELLIPSIS
    table 'jobs', column 'took': the value -01:00:00 is not a time of day ...
    """
    return LoadError(
        f"table '{table}', column '{column}': the value {mysql_time(value)} is not a time of "
        "day (it is negative or a day or more); loading it as a time would change it",
        hint=f"read the table through a view that casts the column (e.g. "
        f"`TIME_TO_SEC({column})` for seconds, or `CAST({column} AS CHAR)`) with "
        "`source_table:`; this load wrote nothing",
    )


def unsigned_beyond_bigint(table: str, column: str, value: int) -> LoadError:
    """The error for a MySQL/MariaDB ``BIGINT UNSIGNED`` value a 64-bit integer cannot hold.

    >>> print(unsigned_beyond_bigint("counters", "hits", 2**64 - 1))  # doctest: +ELLIPSIS
    table 'counters', column 'hits': the value 18446744073709551615 is beyond ...
    """
    return LoadError(
        f"table '{table}', column '{column}': the value {value} is beyond the largest signed "
        f"64-bit integer ({_BIGINT_MAX}), which the column loads as",
        hint=f"read the table through a view that casts the column (e.g. `CAST({column} AS "
        "DECIMAL(20,0))`) with `source_table:`; this load wrote nothing",
    )


def not_a_date(table: str, column: str, value: str) -> LoadError:
    """The error for a MySQL/MariaDB date the driver cannot read as one (the zero date
    ``0000-00-00``, or a date with a zero month or day, which a lenient ``sql_mode`` allows).

    >>> print(not_a_date("orders", "shipped", "0000-00-00"))  # doctest: +ELLIPSIS
    table 'orders', column 'shipped': the value '0000-00-00' is no calendar date ...
    """
    return LoadError(
        f"table '{table}', column '{column}': the value '{value}' is no calendar date (MySQL's "
        "zero date, or a zero month or day), so it cannot load as a date",
        hint=f"read the table through a view that says what it means (e.g. `NULLIF({column}, "
        f"'0000-00-00')`, or `CAST({column} AS CHAR)` to keep the text) with "
        "`source_table:`; this load wrote nothing",
    )


def decimal_beyond(
    table: str, column: str, value: Any, loads_as: tuple[int, int], text: str = "CHAR"
) -> LoadError:
    """The error for a decimal that the narrower decimal its column loads as cannot hold.

    Args:
        table: the source table.
        column: the column.
        value: the value that does not fit.
        loads_as: the precision and scale the column loads as.
        text: the source's type for a cast to text (``CHAR`` on MySQL; on Postgres ``CHAR``
            is one character, and ``TEXT`` keeps the whole number).

    >>> from decimal import Decimal
    >>> print(decimal_beyond("t", "big", Decimal("1e30"), (38, 18)))  # doctest: +ELLIPSIS
    table 't', column 'big': the value 1000000000000000000000000000000 does not fit ...
    """
    precision, scale = loads_as
    return LoadError(
        f"table '{table}', column '{column}': the value {value:f} does not fit "
        f"DECIMAL({precision},{scale}), which the column loads as (the widest decimal every "
        f"target holds: {precision - scale} digits before the point, {scale} after); it is "
        "never rounded",
        hint=f"load the table from a view in the source that casts the column, named as the "
        f"table's `source_table:` in stackyard.yml: `CAST({column} AS {text}) AS {column}` "
        f"loads its exact text, `CAST({column} AS DECIMAL({precision},S)) AS {column}` a "
        f"decimal with S places, when every value has at most S places and {precision} "
        "digits in all; this load wrote nothing",
    )


def within_decimal(
    table: str, column: str, loads_as: tuple[int, int], text: str = "CHAR"
) -> Callable[[Any], None]:
    """A check (for :func:`checked`) that a value fits DECIMAL(``loads_as``) exactly; ``text``
    as :func:`decimal_beyond` takes it."""
    import decimal

    precision, scale = loads_as
    limit = decimal.Decimal(10) ** (precision - scale)
    step = decimal.Decimal(1).scaleb(-scale)
    wide = decimal.Context(prec=200)

    def check(value: Any) -> None:
        if not isinstance(value, decimal.Decimal) or not value.is_finite():
            return
        if abs(value) >= limit or value.quantize(step, context=wide) != value:
            raise decimal_beyond(table, column, value, loads_as, text)

    return check


def mysql_time(value: timedelta) -> str:
    """``value`` as MySQL prints a ``TIME``.

    >>> mysql_time(timedelta(hours=838, minutes=59, seconds=59)), mysql_time(-timedelta(hours=1))
    ('838:59:59', '-01:00:00')
    >>> mysql_time(timedelta(hours=25, microseconds=500000))
    '25:00:00.500000'
    """
    sign, value = ("-", -value) if value < timedelta(0) else ("", value)
    whole = int(value.total_seconds())
    text = f"{sign}{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"
    return f"{text}.{value.microseconds:06d}" if value.microseconds else text


def postgres_values(table: Any) -> None:
    """Table adapter for a Postgres source: infinite timestamps refused by name, ``timetz``
    read as its UTC time, ``interval`` as its text (all in place)."""
    import sqlalchemy as sa
    from sqlalchemy.dialects.postgresql import INTERVAL

    from stackyard.ingest.sql_text import interval_as_text, json_as_text

    refuse_infinite, utc_time, refuse_end_of_day = _decorators()
    for column in table.columns:
        if isinstance(column.type, sa.JSON):
            column.type = json_as_text(column.type)
        elif isinstance(column.type, sa.Interval | INTERVAL):  # Postgres' own is no sa.Interval
            column.type = interval_as_text()
        elif isinstance(column.type, sa.DateTime):
            column.type = _decorated(column.type, refuse_infinite, table.name, column.name)
        elif isinstance(column.type, sa.Time) and column.type.timezone:
            column.type = _decorated(column.type, utc_time, table.name, column.name)
        elif isinstance(column.type, sa.Time):
            column.type = _decorated(column.type, refuse_end_of_day, table.name, column.name)


def reflected_type(kind: Any) -> Any:
    """dlt's ``type_adapter_callback``: a column this module wraps reflects as the type the
    source declares (dlt maps SQLAlchemy's own types, not decorators)."""
    import sqlalchemy as sa

    if isinstance(kind, sa.types.TypeDecorator):
        return getattr(kind, "declared", None) or kind.impl_instance
    return kind


def _decorated(reflected: Any, decorator: Any, table: str, column: str) -> Any:
    # A TypeDecorator, not a subclass of the reflected type: the dialect swaps a plain type
    # for its own (psycopg's _PGTimeStamp), and a subclass's methods would be lost with it.
    found = decorator()
    found.impl = reflected
    found.names = (table, column)
    return found


@functools.cache
def _decorators() -> tuple[type, type, type]:
    import sqlalchemy as sa

    class RefuseInfinite(sa.types.TypeDecorator[Any]):
        impl = sa.DateTime
        cache_ok = False  # carries the table's and column's names
        names = ("", "")

        def process_result_value(self, value: Any, dialect: Any) -> Any:
            if isinstance(value, Infinite):
                raise infinite_timestamp(*self.names, str(value))
            return value

    class UtcTime(sa.types.TypeDecorator[Any]):
        impl = sa.Time
        cache_ok = False
        names = ("", "")

        def column_expression(self, column: Any) -> Any:
            # Postgres turns the time to UTC by its own offset; the cast then drops the
            # offset, which Arrow's time type has no place for.
            return sa.cast(sa.func.timezone("UTC", column), sa.Time())

    class RefuseEndOfDay(sa.types.TypeDecorator[Any]):
        impl = sa.Time
        cache_ok = False
        names = ("", "")

        def process_result_value(self, value: Any, dialect: Any) -> Any:
            if isinstance(value, EndOfDay):
                raise end_of_day(*self.names)
            return value

    return RefuseInfinite, UtcTime, RefuseEndOfDay


def mysql_values(table: Any) -> None:
    """Table adapter for a MySQL/MariaDB source: every ``TIME`` outside one day, every
    ``BIGINT UNSIGNED`` beyond a signed 64-bit integer and every date that is no calendar date
    (``0000-00-00``) is refused by name (in place)."""
    import sqlalchemy as sa

    for column in table.columns:
        if isinstance(column.type, sa.Date | sa.DateTime):
            column.type = checked(column.type, _a_date(table.name, column.name))
        elif isinstance(column.type, sa.Time):
            column.type = checked(column.type, _within_a_day(table.name, column.name))
        elif isinstance(column.type, sa.BigInteger) and getattr(column.type, "unsigned", False):
            column.type = checked(column.type, _within_bigint(table.name, column.name))


def _within_a_day(table: str, column: str) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if isinstance(value, timedelta) and not timedelta(0) <= value < _DAY:
            raise time_beyond_a_day(table, column, value)

    return check


def _a_date(table: str, column: str) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        # PyMySQL hands back as text what it cannot read as a date (a zero date).
        if isinstance(value, str | bytes):
            raise not_a_date(table, column, value.decode() if isinstance(value, bytes) else value)

    return check


def _within_bigint(table: str, column: str) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if isinstance(value, int) and value > _BIGINT_MAX:
            raise unsigned_beyond_bigint(table, column, value)

    return check


def checked(reflected: Any, check: Callable[[Any], None]) -> Any:
    """A subclass of the column's own type that checks each value the driver returns before
    the type's own processor reads it.

    A dialect may swap the type for its own when it reads a result (psycopg's ``_PGNumeric``
    for ``NUMERIC``, through :meth:`~sqlalchemy.types.TypeEngine.adapt`): the check was lost
    with the subclass, and a Postgres ``NUMERIC`` too wide for its decimal loaded as another
    number, or failed naming no column. The dialect's type is made a checking subclass too.
    """

    def with_check(kind: type) -> type:
        def result_processor(self: Any, dialect: Any, coltype: Any) -> Any:
            own = kind.result_processor(self, dialect, coltype)  # type: ignore[attr-defined]

            def process(value: Any) -> Any:
                check(value)
                return own(value) if own else value

            return process

        def adapt(self: Any, cls: type, **kw: Any) -> Any:
            if not getattr(cls, "_checks_values", False):
                cls = with_check(cls)
            return kind.adapt(self, cls, **kw)  # type: ignore[attr-defined]

        members = {"result_processor": result_processor, "adapt": adapt, "_checks_values": True}
        return type(f"Checked{kind.__name__}", (kind,), members)

    return reflected.adapt(with_check(type(reflected)))


def mark_infinite_timestamps(engine: Any) -> Any:
    """dlt's ``engine_adapter_callback`` for a Postgres source: each connection's driver reads
    ``±infinity`` as :class:`Infinite` instead of a far-off date or an error naming no column,
    and a ``time`` of ``24:00:00`` as :class:`EndOfDay` instead of midnight or such an error.

    Returns:
        ``engine``, with a listener on its new connections.
    """
    import sqlalchemy as sa

    sa.event.listen(engine, "connect", _on_connect)
    return engine


def _on_connect(dbapi_connection: Any, record: Any) -> None:
    adapters = getattr(dbapi_connection, "adapters", None)
    if adapters is not None:  # psycopg 3
        from psycopg.types import datetime as pgdt

        for name, text, binary in (
            ("timestamp", pgdt.TimestampLoader, pgdt.TimestampBinaryLoader),
            ("timestamptz", pgdt.TimestamptzLoader, pgdt.TimestamptzBinaryLoader),
        ):
            adapters.register_loader(name, _text_loader(text))
            adapters.register_loader(name, _binary_loader(binary))
        adapters.register_loader("time", _end_of_day_text_loader(pgdt.TimeLoader))
        adapters.register_loader("time", _end_of_day_binary_loader(pgdt.TimeBinaryLoader))
        return
    try:
        import psycopg2.extensions as pg2
    except ImportError:  # another driver: it meets the values on its own terms
        return
    if isinstance(dbapi_connection, pg2.connection):
        for oid, name, cast in ((1114, "TIMESTAMP", pg2.PYDATETIME), (1184, "TIMESTAMPTZ", None)):
            cast = cast or pg2.PYDATETIMETZ
            pg2.register_type(pg2.new_type((oid,), name, _psycopg2_cast(cast)), dbapi_connection)
        end_of_day = pg2.new_type((1083,), "TIME", _psycopg2_time_cast(pg2.PYTIME))
        pg2.register_type(end_of_day, dbapi_connection)


def _text_loader(base: Any) -> type:
    def load(self: Any, data: Any) -> Any:
        if bytes(data) in (b"infinity", b"-infinity"):
            return Infinite(bytes(data).decode())
        return base.load(self, data)

    return type(f"Marking{base.__name__}", (base,), {"load": load})


def _binary_loader(base: Any) -> type:
    def load(self: Any, data: Any) -> Any:
        raw = int.from_bytes(bytes(data), "big", signed=True)
        if raw in _BINARY_INFINITY:
            return Infinite(_BINARY_INFINITY[raw])
        return base.load(self, data)

    return type(f"Marking{base.__name__}", (base,), {"load": load})


def _end_of_day_text_loader(base: Any) -> type:
    def load(self: Any, data: Any) -> Any:
        if bytes(data).startswith(b"24:"):  # Postgres holds no later time than 24:00:00
            return EndOfDay(bytes(data).decode())
        return base.load(self, data)

    return type(f"Marking{base.__name__}", (base,), {"load": load})


def _end_of_day_binary_loader(base: Any) -> type:
    def load(self: Any, data: Any) -> Any:
        if int.from_bytes(bytes(data), "big", signed=True) == _BINARY_END_OF_DAY:
            return EndOfDay("24:00:00")
        return base.load(self, data)

    return type(f"Marking{base.__name__}", (base,), {"load": load})


def _psycopg2_time_cast(cast: Any) -> Callable[[Any, Any], Any]:
    def read(value: Any, cursor: Any) -> Any:
        if value is not None and value.startswith("24:"):
            return EndOfDay(value)
        return cast(value, cursor)

    return read


def _psycopg2_cast(cast: Any) -> Callable[[Any, Any], Any]:
    def read(value: Any, cursor: Any) -> Any:
        if value in ("infinity", "-infinity"):
            return Infinite(value)
        return cast(value, cursor)

    return read


def refuse_connectorx_infinity(table: str) -> Callable[[Any], Any]:
    """A map step for a SQL table's Arrow batches: a timestamp at ConnectorX's stand-in for
    ``±infinity`` fails the table, naming the column (other items pass unchanged)."""

    def check(item: Any) -> Any:
        import pyarrow as pa
        import pyarrow.compute as pc

        if not isinstance(item, pa.Table | pa.RecordBatch):
            return item
        for field, values in zip(item.schema, item.columns, strict=True):
            if pa.types.is_timestamp(field.type) and field.type.unit == "us":
                raw = pc.cast(values, pa.int64())
                found = pc.is_in(raw, pa.array(list(_CONNECTORX_INFINITY), pa.int64()))
                if pc.any(found).as_py():
                    first = raw.filter(found)[0].as_py()
                    raise infinite_timestamp(table, field.name, _CONNECTORX_INFINITY[first])
        return item

    return check
