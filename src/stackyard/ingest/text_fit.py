"""Rows whose text a target's text columns cannot hold, kept out of the load with the reason.

Postgres's text types cannot hold the character NUL (``\\x00``): its COPY refuses the batch
("invalid byte sequence for encoding UTF8: 0x00"), which failed the table's whole load on
every run until the source changed. A row holding one goes to ``_rejected_rows`` instead,
and the table's other rows load. Other targets keep NUL as it is.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from stackyard.results import RejectedRow

NUL = "\x00"
_REASON = (
    "{column} holds the character NUL (\\x00), which a Postgres text column cannot hold; "
    "remove it at the source (or load this table into a DuckDB target)"
)


def without_nul(item: Any, table: str) -> tuple[Any, list[RejectedRow]]:
    """``item`` (an Arrow table or batch, a row dict or a list of them) without its rows that
    hold NUL in a text value, and those rows as rejected rows."""
    import pyarrow as pa

    if isinstance(item, pa.Table | pa.RecordBatch):
        return _arrow_without_nul(item, table)
    return set_aside_dicts(item, _nul_column, lambda column, row: _rejected(table, column, row))


def set_aside_dicts(
    item: Any,
    column_of: Callable[[dict[str, Any]], str | None],
    rejected_row: Callable[[str, dict[str, Any]], RejectedRow],
) -> tuple[Any, list[RejectedRow]]:
    """``item`` (a row dict or a list of them; anything else passes) without the rows
    ``column_of`` names a column for, and those rows as ``rejected_row(column, row)``.

    >>> set_aside_dicts([{"a": 1}, {"a": None}], lambda r: None if r["a"] else "a",
    ...                 lambda c, r: c)
    ([{'a': 1}], ['a'])
    """
    if isinstance(item, dict):
        column = column_of(item)
        return (item, []) if column is None else ([], [rejected_row(column, item)])
    if isinstance(item, list):
        kept, rejected = [], []
        for row in item:
            column = column_of(row) if isinstance(row, dict) else None
            if column is None:
                kept.append(row)
            else:
                rejected.append(rejected_row(column, row))
        return (item if not rejected else kept), rejected
    return item, []


def _arrow_without_nul(item: Any, table: str) -> tuple[Any, list[RejectedRow]]:
    import pyarrow as pa
    import pyarrow.compute as pc

    masks = {}
    for name, column in zip(item.column_names, item.columns, strict=True):
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            masks[name] = pc.fill_null(pc.match_substring(column, NUL), False)
    return set_aside(item, masks, lambda column, row: _rejected(table, column, row))


def set_aside(
    rows: Any, masks: dict[str, Any], rejected_row: Callable[[str, dict[str, Any]], RejectedRow]
) -> tuple[Any, list[RejectedRow]]:
    """``rows`` (Arrow) without those any of ``masks`` (per column, True where the row does
    not fit) marks, and those rows as ``rejected_row(first column marking it, row)``."""
    import pyarrow.compute as pc

    found: Any = None
    first: dict[int, str] = {}
    for name, mask in masks.items():
        if not pc.any(mask).as_py():
            continue
        for index in pc.indices_nonzero(mask).to_pylist():
            first.setdefault(index, name)
        found = mask if found is None else pc.or_(found, mask)
    if found is None:
        return rows, []
    marked = rows.filter(found).to_pylist()
    rejected = [
        rejected_row(first[index], row) for index, row in zip(sorted(first), marked, strict=True)
    ]
    return rows.filter(pc.invert(found)), rejected


def _nul_column(row: dict[str, Any], prefix: str = "") -> str | None:
    """The first column (``parent__child`` for a nested one) whose text holds NUL."""
    for name, value in row.items():
        column = f"{prefix}{name}"
        if isinstance(value, str) and NUL in value:
            return column
        inside = value if isinstance(value, list) else [value] if isinstance(value, dict) else []
        for part in inside:
            found = (
                _nul_column(part, f"{column}__")
                if isinstance(part, dict)
                else column
                if isinstance(part, str) and NUL in part
                else None
            )
            if found is not None:
                return found
    return None


def _rejected(table: str, column: str, row: dict[str, Any]) -> RejectedRow:
    # JSON writes NUL as \u0000: the raw row fits a text column wherever it is kept.
    raw = json.dumps(row, default=str, ensure_ascii=False)
    return RejectedRow(table, "", None, column, _REASON.format(column=column), raw)
