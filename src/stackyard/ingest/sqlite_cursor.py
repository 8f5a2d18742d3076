"""Cursor bounds that hold on SQLite, where a timestamp is whatever text the application wrote.

SQLite has no timestamp type: ``DATETIME`` columns hold text such as ``2030-01-01 09:00:00``
(its own ``CURRENT_TIMESTAMP`` format) or ``2030-01-01T09:00:00Z``. dlt filters an incremental
table with ``cursor >= :last_value`` and SQLAlchemy renders the bound as
``'2030-01-01 09:00:00.000000'``, so the comparison is between strings: a row written later
with the same second as the last cursor value sorts *below* the bound and is never read —
rows silently lost at every boundary. The same happens to a backfill window's edges.

SQLite compares such text correctly only through its date functions (``julianday``), so the
filter here is: a text range on whole days around the bounds (which SQLite answers from an
index on the cursor), then ``julianday`` with a margin of a fraction of a second. The SQL filter
only has to be *wide enough*: dlt checks every row against the exact bounds in Python
afterwards and drops the rows at the boundary it already has (by key).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

# julianday is a double: about 50 microseconds of resolution in this century. Ten milliseconds
# of margin cannot miss a row; the rows it lets through are dropped by dlt's exact check.
MARGIN_DAYS = 0.01 / 86_400


def widen_sqlite_cursor(query: Any, table: Any, incremental: Any = None, engine: Any = None) -> Any:
    """dlt's ``query_adapter_callback``: on SQLite, replace the cursor filter of an incremental
    table by one that does not compare timestamps as strings; elsewhere the query is kept.

    >>> widen_sqlite_cursor("the query", None) == "the query"
    True
    """
    if engine is None or incremental is None or engine.dialect.name != "sqlite":
        return query
    start, end = incremental.last_value, incremental.end_value
    if not _is_time(start) and not _is_time(end):
        return query  # numbers and text compare as dlt wrote them
    import sqlalchemy as sa

    column = table.c[incremental.cursor_path]
    stamp = sa.func.julianday(column)
    conditions: list[Any] = []
    if _is_time(start):
        conditions += [
            column >= _day(start, -1),
            stamp >= sa.func.julianday(_text(start)) - MARGIN_DAYS,
        ]
    if _is_time(end):
        conditions += [
            column < _day(end, +2),
            stamp <= sa.func.julianday(_text(end)) + MARGIN_DAYS,
        ]
    return table.select().where(sa.and_(*conditions))


def time_range(column: Any, start: datetime, end: datetime, sqlite: bool) -> Any:
    """``start <= column < end`` as SQL that holds on SQLite's text timestamps too: a row
    stamped exactly at a window's start (``2030-01-02 00:00:00``) sorts below the bound
    SQLAlchemy renders (``2030-01-02 00:00:00.000000``) and was counted in the day before."""
    import sqlalchemy as sa

    if not sqlite:
        return sa.and_(column >= start, column < end)
    stamp = sa.func.julianday(column)
    return sa.and_(
        column >= _day(start, -1),
        column < _day(end, +2),
        stamp >= sa.func.julianday(_text(start)),
        stamp < sa.func.julianday(_text(end)),
    )


def _is_time(value: Any) -> bool:
    return isinstance(value, date)


def _text(value: date) -> str:
    """The value as SQLite's date functions read it (UTC when it carries a zone)."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.replace(tzinfo=None).isoformat(sep=" ")
    return value.isoformat()


def _day(value: date, shift: int) -> str:
    """A whole day, ``shift`` days from the value's: text every timestamp of the days between
    sorts after (a zone offset can move a row's text a day either way)."""
    day = value.date() if isinstance(value, datetime) else value
    return (day + timedelta(days=shift)).isoformat()
