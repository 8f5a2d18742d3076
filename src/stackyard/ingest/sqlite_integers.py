"""Integer columns on SQLite, which may hold anything: a fraction is never rounded away.

SQLite is typeless: a column declared ``INTEGER`` keeps ``850.7`` as a REAL
(https://www.sqlite.org/datatype3.html, "Type Affinity"). dlt reflects the column as
``bigint`` and its SQLAlchemy → Arrow reader builds an ``int64`` array from the Python values,
which truncates ``850.7`` to ``850`` without a word (ConnectorX refuses the value instead, and
``backend: auto`` then reads the table through that same SQLAlchemy path).

The columns read here check each value as it is fetched: a whole number (``850`` or ``850.0``)
is kept as the integer it is; anything else fails the load, naming the table, the column and
the value, so the user can fix the data or declare the column as what it holds.
"""

from __future__ import annotations

from typing import Any

from stackyard.errors import LoadError
from stackyard.ingest.sql_values import within_decimal


def exact_sqlite_integers(table: Any) -> None:
    """dlt's ``table_adapter_callback`` for a SQLite source: every integer column of the
    reflected table checks that each value it returns is a whole number.

    Args:
        table: the reflected ``sqlalchemy.Table``; its columns' types are replaced in place.
    """
    import sqlalchemy as sa

    for column in table.columns:
        kind = type(column.type)
        if getattr(kind, "_exact", False):
            continue
        if isinstance(column.type, sa.Integer):
            column.type = _exact_type(kind, table.name, column.name)
        elif isinstance(column.type, sa.Numeric) and column.type.asdecimal:
            column.type = _exact_decimal(column.type, table.name, column.name)


def exact_decimal(table: str, column: str, value: Any) -> Any:
    """A ``NUMERIC``/``DECIMAL`` column's value, read as the text SQLite prints for it, as a
    Decimal; :class:`LoadError` for text that is no number.

    >>> exact_decimal("acc", "bal", "123456789012345678"), exact_decimal("acc", "bal", None)
    (Decimal('123456789012345678'), None)
    >>> exact_decimal("acc", "bal", "n/a")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    stackyard.errors.LoadError: table 'acc', column 'bal': the value 'n/a' is not a number, ...
    """
    from decimal import Decimal, InvalidOperation

    if value is None:
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        raise LoadError(
            f"table '{table}', column '{column}': the value {value!r} is not a number, but the "
            "column is declared NUMERIC in the SQLite database",
            hint="fix the value in the source, or read the table through a view that casts the "
            f"column to TEXT, named as the table's `source_table:` in stackyard.yml, then "
            f"`stackyard reload SOURCE.{table} --yes`; this load wrote nothing",
        )
    return number


def _exact_decimal(reflected: Any, table: str, column: str) -> Any:
    """The column's own numeric type (dlt reflects the same decimal), read as text: SQLite
    keeps a NUMERIC value as an integer or a float, and the readers turned
    123456789012345678 into 123456789012345678.152597504 (through a float)."""
    import sqlalchemy as sa

    kind = type(reflected)
    # A NUMERIC given the widest decimal (declared without precision, or wider) checks that
    # each value fits it (sql_columns.bounded_decimals); the check needs the Decimal read here.
    fits = (
        within_decimal(table, column, (reflected.precision, reflected.scale or 0), "TEXT")
        if getattr(kind, "_checks_values", False)
        else None
    )

    def column_expression(self: Any, col: Any) -> Any:
        # Typed as this column (not TEXT): a result is processed by its expression's type, and
        # a bare CAST left every value the text SQLite printed, never read by `read` below.
        return sa.type_coerce(sa.cast(col, sa.Text()), self)

    def read(value: Any) -> Any:
        number = exact_decimal(table, column, value)
        if fits is not None:
            fits(number)
        return number

    def result_processor(self: Any, dialect: Any, coltype: Any) -> Any:
        return read

    exact = type(
        f"Exact{kind.__name__}",
        (kind,),
        {
            "_exact": True,
            "column_expression": column_expression,
            "result_processor": result_processor,
            "cache_ok": True,
        },
    )
    return reflected.adapt(exact)


def whole_number(table: str, column: str, value: Any) -> Any:
    """``value`` as an integer, or :class:`LoadError` when it is not a whole number.

    >>> whole_number("payments", "amount", 850.0), whole_number("payments", "amount", None)
    (850, None)
    >>> whole_number("payments", "amount", 850.7)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    stackyard.errors.LoadError: table 'payments', column 'amount': the value 850.7 is not a ...
    """
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise LoadError(
        f"table '{table}', column '{column}': the value {value!r} is not a whole number, but "
        "the column is declared INTEGER in the SQLite database; loading it as an integer "
        "would round it",
        hint="fix the value in the source, or read the table through a view that casts the "
        "column to REAL or NUMERIC, named as the table's `source_table:` in stackyard.yml, then "
        f"`stackyard reload SOURCE.{table} --yes` (it loads the column with its new type); "
        "this load wrote nothing",
    )


def _exact_type(kind: type, table: str, column: str) -> Any:
    """An instance of a subclass of the column's own integer type (so dlt reflects the same
    ``bigint``) whose values pass through :func:`whole_number`."""

    def result_processor(self: Any, dialect: Any, coltype: Any) -> Any:
        return lambda value: whole_number(table, column, value)

    exact = type(
        f"Exact{kind.__name__}",
        (kind,),
        {"_exact": True, "result_processor": result_processor, "cache_ok": True},
    )
    return exact()
