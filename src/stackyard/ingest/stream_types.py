"""The column types a stream's events must keep, so that one event of another type is set
aside instead of stopping the stream.

dlt gives a value its column's type cannot hold (``"ten"`` in a ``bigint`` column) a variant
column (``amount__v_text``), which the frozen-types contract refuses: the whole batch failed,
nothing was acknowledged, and every later run read the same event and failed again. Its
message suggested ``reload``, which a stream cannot do. Such an event now goes to
``_rejected_rows`` with its place in the stream, and the rest load.

A column's type is the one in the warehouse, else the one the first event of the run to
carry it gave it; values are tried with dlt's own coercion, so what dlt would have loaded
(``"12"`` into a ``bigint``, ``3`` into a ``double``) still loads. One exception: a column
the run typed ``bigint`` that a later event of the run gives a fraction becomes ``double``
(dlt is told with a hint, so the run's earlier integers load as doubles): a price of ``10``
before one of ``9.5`` set the fraction aside. An integer a double does not hold exactly (past
2**53) is never put in a double column, where it would load rounded: it is rejected, or, when
the run held it before the fraction came, the fraction is. Text dlt converts for a number
column is held to the same: text a double would round, or not finite (``"NaN"``), and text of
an integer past 64 bits for a bigint column, are rejected, not loaded changed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

from stackyard.ingest.reserved_columns import WRITTEN_IN_CHILD, own_column_reason

# dlt's default schema detects ISO timestamps in text (its ``detections`` setting).
_DETECTIONS: Any = ("iso_timestamp",)


class ColumnTypes:
    """The types of one stream's tables over one run: the warehouse's, then the run's own.

    >>> types = ColumnTypes({"orders": {"amount": "bigint"}})
    >>> types.misfit("orders", {"amount": "12", "note": "gift"}) is None
    True
    >>> types.misfit("orders", {"amount": "ten"})
    ... # doctest: +ELLIPSIS
    ('amount', "amount holds the text 'ten', which its bigint column cannot hold; send ...")
    >>> types.misfit("orders", {"note": 5}) is None  # a number fits a text column as text
    True
    >>> types.misfit("orders", {"items": [{"qty": 1}, {"qty": "two"}]})
    ... # doctest: +ELLIPSIS
    ('items__qty', "items__qty holds the text 'two', which its bigint column cannot hold; ...")
    """

    def __init__(self, known: Mapping[str, Mapping[str, str]]) -> None:
        from dlt.common.normalizers.naming.snake_case import NamingConvention

        self._naming = NamingConvention()
        self._types: dict[tuple[str, str], str] = {
            # dlt's coercion knows "decimal", not its precision.
            (table, column): kind.partition("(")[0]
            for table, columns in known.items()
            for column, kind in columns.items()
            if kind and kind != "None"
        }
        # Types the run's own events gave columns the warehouse does not have yet.
        self._run: dict[tuple[str, str], str] = {}
        # Run columns holding an integer a double would round: a fraction cannot widen them.
        self._exact: set[tuple[str, str]] = set()
        # Run columns widened from bigint to double, which dlt must be told about.
        self._widened: set[tuple[str, str]] = set()

    def misfit(self, table: str, payload: dict[str, Any]) -> tuple[str, str] | None:
        """The first column (``parent__child`` for a nested one) whose value its type cannot
        hold, and why; None if every value fits, whose new columns' types are then kept.

        >>> types = ColumnTypes({})
        >>> types.misfit("orders", {"price": 10}), types.misfit("orders", {"price": 9.5})
        (None, None)
        >>> types.misfit("orders", {"tags": [1, 2.5]}), types.widened("orders")
        (None, {(): {'price': 'double'}, ('tags',): {'value': 'double'}})
        >>> types.misfit("orders", {"price": 2**60 + 1})  # doctest: +ELLIPSIS
        ('price', 'price holds 1152921504606846977, an integer a double-precision column ...')
        """
        from dlt.common.data_types.type_helpers import coerce_value, py_type_to_sc_type
        from dlt.common.schema.utils import autodetect_sc_type

        new: dict[tuple[str, str], str] = {}
        exact: set[tuple[str, str]] = set()
        widened: set[tuple[str, str]] = set()
        try:
            values = list(self._values(table, payload, ""))
        except _FieldClash as exc:
            return exc.column, exc.reason()
        except _UnnamedField as exc:
            owner, prefix = exc.where
            inside = table[len(table) + 2 :] if owner == table else owner[len(table) + 2 :]
            inside = "__".join(p for p in (inside, prefix) if p)
            return inside or "", (
                f"a field {f'inside {inside}' if inside else 'of the event'} has "
                f"{'a blank' if exc.name else 'an empty'} name ({exc.name!r}), which no "
                "column can have; give it a name"
            )
        for where, value in values:
            rounded = _integer(value) and float(value) != value
            held = self._types.get(where)
            of_run = held is None
            if of_run:
                held = new.get(where) or self._run.get(where)
            if held is None:
                new[where] = autodetect_sc_type(_DETECTIONS, type(value), value) or (
                    py_type_to_sc_type(type(value))
                )
                if rounded:
                    exact.add(where)
                continue
            if of_run and held == "bigint" and type(value) is float:
                if where in self._exact or where in exact:
                    column = _shown(table, *where)
                    return column, (
                        f"{column} holds the fraction {value!r}, but an earlier event of the "
                        "run holds an integer past 2**53 there, which a double-precision "
                        "column would round; send every value of the field as a JSON string "
                        "(a text column) to keep both"
                    )
                held = new[where] = "double"
                widened.add(where)
            if rounded:
                if held == "double":
                    column = _shown(table, *where)
                    return column, (
                        f"{column} holds {value}, an integer a double-precision column would "
                        f"round (to {float(value)!r}); {TEXT_ADVICE} to keep it exact"
                    )
                exact.add(where)
            try:
                coerced = coerce_value(held, py_type_to_sc_type(type(value)), value)  # type: ignore[arg-type]
            except (ValueError, SyntaxError, TypeError):
                coerced = _NOT_HELD
            # dlt hands back a callable for a value it keeps in a variant column.
            if coerced is _NOT_HELD or callable(coerced):
                column = _shown(table, *where)
                kind = py_type_to_sc_type(type(value))
                return column, (
                    f"{column} holds the {_word(kind)} {value!r}, which its {held} column "
                    "cannot hold; send the event again with a value of that type"
                )
            # Text dlt turns into a number Python holds and the warehouse does not: the
            # load failed ("out of range for INT64") and, never acknowledged, on every run.
            if held == "bigint" and _integer(coerced) and not _INT64[0] <= coerced <= _INT64[1]:
                column = _shown(table, *where)
                return column, (
                    f"{column} holds {value!r}, wider than its bigint column (a 64-bit "
                    f"integer) holds; {TEXT_ADVICE} to keep it"
                )
            if isinstance(value, str) and isinstance(coerced, float | int):
                lost = _text_lost(held, value, coerced)
                if lost:
                    column = _shown(table, *where)
                    return column, f"{column} holds the text {value!r}, {lost}"
                if of_run and held == "bigint" and float(coerced) != coerced:
                    exact.add(where)  # a fraction may not widen it to double
        self._run.update(new)
        self._widened |= widened
        self._exact |= {where for where in exact if self._types.get(where) is None}
        return None

    def widened(self, table: str) -> dict[tuple[str, ...], dict[str, str]]:
        """The run's columns widened from bigint to double, by table: its path from the root
        (``()`` for the root, ``("items",)`` for ``orders__items``), then column → type."""
        found: dict[tuple[str, ...], dict[str, str]] = {}
        for owner, column in sorted(self._widened):
            path = tuple(owner[len(table) + 2 :].split("__")) if owner != table else ()
            found.setdefault(path, {})[column] = "double"
        return found

    def _values(
        self,
        table: str,
        row: dict[str, Any],
        prefix: str,
        seen: dict[str, str] | None = None,
        path: str = "",
    ) -> Iterator[tuple[tuple[str, str], Any]]:
        """``((table, column), value)`` for each value dlt would load, as dlt flattens a row:
        nested objects into ``parent__child`` columns, lists into child tables.

        Raises:
            _UnnamedField: a field has no name dlt can give a column.
            _FieldClash: two fields of one row land in one column (``A`` and ``a``, ``Ä``
                and ``x``): dlt kept the last one's value and dropped the other.
        """
        seen = {} if seen is None else seen
        for key, value in row.items():
            if not str(key).strip():  # dlt's naming has no name for it: the load failed
                raise _UnnamedField(str(key), (table, prefix))
            name = self._naming.normalize_path(str(key))  # as dlt: a__b stays a__b
            column = f"{prefix}__{name}" if prefix else name
            field = f"{path}.{key}" if path else str(key)
            if column in seen:
                raise _FieldClash(_shown_column(table, column), seen[column], field)
            if not prefix and "__" in table and column in WRITTEN_IN_CHILD:
                raise _FieldClash(_shown_column(table, column), "", field)
            seen[column] = field
            if value is None:
                continue
            if isinstance(value, dict):
                yield from self._values(table, value, column, seen, field)
            elif isinstance(value, list):
                child = f"{table}__{column}"
                for item in value:
                    if isinstance(item, dict):
                        yield from self._values(child, item, "")
                    elif item is not None:
                        yield (child, "value"), item
            else:
                yield (table, column), value


_NOT_HELD = object()
# What keeps a number exact that a column's type would round: text, which a JSON string in a
# field whose values are all strings loads as (a string into a number column is converted).
TEXT_ADVICE = "send it as a JSON string in a field whose values are all strings (a text column)"


def _text_lost(held: str, text: str, number: float) -> str | None:
    """Why text dlt converts to ``number`` for a ``held`` column loads changed, or None.

    >>> _text_lost("double", "0.5", 0.5) is None
    True
    >>> _text_lost("double", "0.1234567890123456789", 0.12345678901234568)  # doctest: +ELLIPSIS
    'more digits than its double-precision column keeps (it would load as 0.12345678901234568); ...'
    """
    from stackyard.ingest.json_numbers import float_or_unheld

    if held != "double" or not isinstance(number, float):
        return None
    if not math.isfinite(number):
        return "not a finite number"
    if isinstance(float_or_unheld(text.strip()), str):
        return (
            f"more digits than its double-precision column keeps (it would load as "
            f"{number!r}); {TEXT_ADVICE} to keep it exact"
        )
    return None


# The widest integer a bigint column holds.
_INT64 = (-(2**63), 2**63 - 1)


class _FieldClash(Exception):
    """Two fields of one row (``first``, ``second``) that land in one ``column``."""

    def __init__(self, column: str, first: str, second: str) -> None:
        super().__init__(column)
        self.column, self.first, self.second = column, first, second

    def reason(self) -> str:
        if not self.first:
            return own_column_reason(self.second, self.column)
        return (
            f"the fields {self.first!r} and {self.second!r} both load into the column "
            f"{self.column} (dlt's column names: lower case, other characters replaced), "
            "and one value would be lost; rename one of them"
        )


def field_clash(table: str, row: dict[str, Any]) -> tuple[str, str] | None:
    """The column two fields of ``row`` load into, and why that loses a value; None when
    every field has a column of its own (a field with no name is left to dlt).

    >>> field_clash("t", {"userName": 1, "user_name": 2})[0]
    'user_name'
    >>> field_clash("t", {"a": {"b": 1}, "c": 2}) is None
    True
    """
    global _WALKER
    if _WALKER is None:
        _WALKER = ColumnTypes({})
    try:
        for _ in _WALKER._values(table, row, ""):
            pass
    except _FieldClash as exc:
        return exc.column, exc.reason()
    except _UnnamedField:
        return None
    return None


def loaded_values(table: str, row: dict[str, Any]) -> Iterator[tuple[tuple[str, str], Any]]:
    """``((table, column), value)`` for each value of ``row`` as dlt loads it (nested
    objects flattened, lists as child tables); none past a field dlt cannot name, or two
    that land in one column (:func:`field_clash` says which)."""
    global _WALKER
    if _WALKER is None:
        _WALKER = ColumnTypes({})
    try:
        yield from _WALKER._values(table, row, "")
    except (_FieldClash, _UnnamedField):
        return


_WALKER: ColumnTypes | None = None


class _UnnamedField(Exception):
    """A field whose name is empty or blank, in the object at ``where`` (table, prefix)."""

    def __init__(self, name: str, where: tuple[str, str]) -> None:
        super().__init__(name)
        self.name, self.where = name, where


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _shown(root: str, table: str, column: str) -> str:
    """The field as the event names it: ``items__qty`` for ``qty`` of child table
    ``orders__items``, ``tags`` for the values of a list of scalars."""
    if table == root:
        return column
    field = table[len(root) + 2 :]
    return field if column == "value" else f"{field}__{column}"


def _shown_column(table: str, column: str) -> str:
    """A column as the message names it: with its child table for a list's objects."""
    return column if "__" not in table else f"{table.split('__', 1)[1]}__{column}"


def _word(kind: str) -> str:
    return {"text": "text", "bigint": "integer", "double": "number", "bool": "boolean"}.get(
        kind, kind
    )
