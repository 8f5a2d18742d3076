"""Source columns named as a column dlt or stackyard writes itself: refused, never mixed up.

dlt gives every row of a table ``_dlt_load_id``, the id of the load that wrote it, and
stackyard counts a load's rows, finds the rows of a load left half done and checks restores
by it. A source column of that name (or one dlt's naming turns into it, such as
``_DLT_LOAD_ID``) had its values replaced by dlt's without a word. ``_dlt_id`` is taken by
dlt as the row's own id, which a nested list's rows point to: two records sharing one lost
one's nested rows while the load reported them loaded. ``_loaded_at`` is the time stackyard
loaded the row, which freshness and the monitors read: a source's own value of it was kept
(as text, the monitors could not measure the table). ``source add`` refuses a database table
holding one of them before it changes anything (exit 2); rows of any other source that carry
one fail the source's load, naming the table and the column, before anything is loaded.
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
    """The first of ``columns`` that would load as a column dlt or stackyard writes on every
    row of a table (``WRITTEN``).

    >>> reserved_column(["id", "_DLT_Load_Id"]), reserved_column(["id", "_DLT_ID"])
    ('_DLT_Load_Id', '_DLT_ID')
    >>> reserved_column(["id", "dlt_load_id", "load_id", "loaded_at", "dlt_id"]) is None
    True
    """
    return written_column(columns, WRITTEN)


# What each written column is, why a source's own would go wrong, and a name to load it as.
_WHY = {
    "_dlt_load_id": (
        "the column dlt writes on every row it loads (the id of the load): its values "
        "would be replaced by dlt's",
        "source_load_id",
    ),
    "_dlt_id": (
        "the column dlt takes as each row's own id, which the rows of its nested lists point "
        "to: rows sharing a value would lose their nested rows",
        "source_row_id",
    ),
    "_loaded_at": (
        "the column stackyard writes on every row it loads (the time it was loaded, which "
        "freshness and the monitors read): the two would be mixed up",
        "source_loaded_at",
    ),
}


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
    why, other_name = _WHY[loaded_name(found)]
    raise ReservedColumnError(
        f"table '{table}' has a column '{found}', the name of {why}",
        hint=f"rename it at the source: for a database table, load a view that selects it "
        f"under another name (CREATE VIEW {table}_v AS SELECT …, {found} AS "
        f"{other_name} FROM {table}; then --table {table}={table}_v); for files, events "
        "or an API, rename the field; or leave the table out",
    )


def refuse_reserved_in(table: str, item: Any, stamp: object = None) -> None:
    """:func:`refuse_reserved` for a page of rows a source yields (an Arrow table or
    batch, a row, or a list of rows); anything else is left to dlt.

    ``stamp`` is the ``_loaded_at`` this load writes: a row already holding it is one the
    source yielded again (the same dict in two pages or two tables), stamped the first time.

    >>> row = {"id": 1, "_loaded_at": "2026-12-07"}
    >>> refuse_reserved_in("t", [row], stamp="2026-12-07")
    >>> refuse_reserved_in("t", [row], stamp="2026-12-08")
    Traceback (most recent call last):
    ...
    stackyard.errors.ReservedColumnError: table 't' has a column '_loaded_at', ...

    Raises:
        ReservedColumnError: a row has such a column.
    """
    if hasattr(item, "column_names"):
        refuse_reserved(table, item.column_names)
    elif isinstance(item, dict):
        refuse_reserved(table, _own_keys(item, stamp))
    elif isinstance(item, list):
        rows = [row for row in item if isinstance(row, dict)]
        refuse_reserved(table, {key for row in rows for key in _own_keys(row, stamp)})


def _own_keys(row: dict[str, Any], stamp: object) -> list[str]:
    """The row's keys but a ``_loaded_at`` this load stamped on it already."""
    return [k for k in row if not (k == "_loaded_at" and stamp is not None and row[k] == stamp)]


@lru_cache(maxsize=4096)
def loaded_name(column: str) -> str:
    """The column's name as dlt loads it.

    >>> loaded_name("_Loaded_At")
    '_loaded_at'
    """
    from dlt.common.normalizers.naming.snake_case import NamingConvention

    return NamingConvention().normalize_identifier(column).lower()
