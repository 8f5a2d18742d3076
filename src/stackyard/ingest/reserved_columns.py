"""Source columns named as a column dlt writes itself: refused, never overwritten.

dlt gives every row of a table ``_dlt_load_id``, the id of the load that wrote it, and
stackyard counts a load's rows, finds the rows of a load left half done and checks restores
by it. A source column of that name (or one dlt's naming turns into it, such as
``_DLT_LOAD_ID``) had its values replaced by dlt's without a word. ``source add`` refuses a
database table holding one before it changes anything (exit 2); rows of any other source that
carry one fail the source's load, naming the table and the column, before anything is loaded.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from stackyard.errors import ReservedColumnError

# Columns dlt fills on every row itself, whatever the source sent under that name.
RESERVED = ("_dlt_load_id",)
# Also written on every row of a table loaded from JSON rows (a stream's): dlt's row id and
# stackyard's load time, which freshness reads. A stream's event with a field of one of these
# names goes to _rejected_rows (a stream never stops on one event); so does one with a field
# named as a column the stream adds itself (``_sequence``, ``_subject`` …).
WRITTEN = (*RESERVED, "_dlt_id", "_loaded_at")
# … and on every row of a child table (a list's objects): its ids and place in the list.
WRITTEN_IN_CHILD = (*RESERVED, "_dlt_id", "_dlt_parent_id", "_dlt_root_id", "_dlt_list_idx")


def reserved_column(columns: Iterable[str]) -> str | None:
    """The first of ``columns`` that dlt would load as one of its own columns.

    >>> reserved_column(["id", "_DLT_Load_Id"])
    '_DLT_Load_Id'
    >>> reserved_column(["id", "dlt_load_id", "load_id"]) is None
    True
    """
    return written_column(columns, RESERVED)


def written_column(columns: Iterable[str], written: Iterable[str] = WRITTEN) -> str | None:
    """The first of ``columns`` loaded as one of the ``written`` columns, which dlt or
    stackyard fill themselves.

    >>> written_column(["id", "_Loaded_At"]), written_column(["id", "_seq"], ["_sequence"])
    ('_Loaded_At', None)
    """
    names = set(written)
    for column in columns:
        # A blank name has no column (the stream rejects it for that).
        if str(column).strip() and loaded_name(str(column)) in names:
            return str(column)
    return None


def own_column_reason(field: str, column: str) -> str:
    """Why an event with ``field``, loaded as ``column``, is rejected (see ``WRITTEN``)."""
    return (
        f"the field {field!r} loads as the column {column}, which is written on every row "
        "(by dlt, or by stackyard for the stream), and its value would be replaced; rename "
        "the field"
    )


def refuse_reserved(table: str, columns: Iterable[str]) -> None:
    """Refuse a table one of whose ``columns`` dlt would overwrite (see the module).

    Args:
        table: the table as the source names it.
        columns: its columns, as the source names them.

    Raises:
        ReservedColumnError: naming the table, the column and how to load it.
    """
    found = reserved_column(columns)
    if found is None:
        return
    raise ReservedColumnError(
        f"table '{table}' has a column '{found}', the name of the column dlt writes on every "
        "row it loads (the id of the load): its values would be replaced by dlt's",
        hint=f"rename it at the source: for a database table, load a view that selects it "
        f"under another name (CREATE VIEW {table}_v AS SELECT …, {found} AS "
        f"source_load_id FROM {table}; then --table {table}={table}_v); for files, events "
        "or an API, rename the field; or leave the table out",
    )


def refuse_reserved_in(table: str, item: Any) -> None:
    """:func:`refuse_reserved` for a page of rows a source yields (an Arrow table or
    batch, a row, or a list of rows); anything else is left to dlt.

    Raises:
        ReservedColumnError: a row has such a column.
    """
    if hasattr(item, "column_names"):
        refuse_reserved(table, item.column_names)
    elif isinstance(item, dict):
        refuse_reserved(table, item)
    elif isinstance(item, list):
        refuse_reserved(table, {key for row in item if isinstance(row, dict) for key in row})


@lru_cache(maxsize=4096)
def loaded_name(column: str) -> str:
    """The column's name as dlt loads it.

    >>> loaded_name("_Loaded_At")
    '_loaded_at'
    """
    from dlt.common.normalizers.naming.snake_case import NamingConvention

    return NamingConvention().normalize_identifier(column).lower()
