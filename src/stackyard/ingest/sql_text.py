"""Postgres columns read as the text Postgres prints for them, where a driver's Python value
would change the value or could not be loaded (:func:`stackyard.ingest.sql_values.
postgres_values` puts them on a source's reflected columns)."""

from __future__ import annotations

from typing import Any


def json_as_text(reflected: Any) -> Any:
    """A ``json``/``jsonb`` column read as the text Postgres prints for it. Parsed by the
    driver, ``1.10`` came back as ``1.1`` and an integer beyond 2^53 as a rounded float
    (ConnectorX and SQLAlchemy both), and a column holding both numbers and objects could not
    be made one Arrow column (the pyarrow reader failed). The text is stored as the
    warehouse's json type, which the column still reflects as."""
    import sqlalchemy as sa

    class JsonText(sa.types.TypeDecorator[Any]):
        impl = sa.Text
        cache_ok = True

        def column_expression(self, column: Any) -> Any:
            return sa.cast(column, sa.Text())

    found = JsonText()
    found.declared = reflected  # type: ignore[attr-defined]
    return found


def interval_as_text() -> Any:
    """An ``interval`` column read as the text Postgres prints for it (``1 mon 2 days
    03:00:00``), into a text column: read as a duration, the first load failed (dlt takes no
    Arrow duration), and a month is no fixed number of seconds to turn it into."""
    import sqlalchemy as sa

    class IntervalText(sa.types.TypeDecorator[Any]):
        impl = sa.Text
        cache_ok = True

        def column_expression(self, column: Any) -> Any:
            return sa.cast(column, sa.Text())

    found = IntervalText()
    found.declared = sa.Text()  # type: ignore[attr-defined]
    return found
