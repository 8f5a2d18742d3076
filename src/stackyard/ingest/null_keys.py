"""Rows with no value for their table's primary key, kept out of the load with the reason.

A merge places a row by its key, and a row without one has no place: a NULL key was merged in
as a row of its own and never replaced once the key was fixed upstream (a SQL table), or dlt
refused the whole package in normalize, which every later run replayed first without reading
the source again (a Python or REST source). Such a row goes to ``_rejected_rows`` instead, as
a file's row without a key does (:mod:`stackyard.ingest.file_stream`), and the others load;
once the key is given upstream (and the cursor moves past the last load) it loads as any row.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any

from stackyard.results import RejectedRow

_REASON = "no value for the key column {column}"


def declared_key(resource: Any) -> tuple[str, ...]:
    """The primary key columns a dlt resource declares (empty: none, or one computed per
    item, which is left to dlt)."""
    key = resource._hints.get("primary_key")
    if isinstance(key, str):
        return (key,) if key else ()
    if isinstance(key, list | tuple) and all(isinstance(k, str) for k in key):
        return tuple(key)
    return ()


def without_null_key(item: Any, table: str, key: Sequence[str]) -> tuple[Any, list[RejectedRow]]:
    """``item`` (an Arrow table or batch, a row dict or a list of them) without its rows that
    have no value (NULL or absent) in a column of ``key``, and those rows as rejected rows.

    >>> rows, rejected = without_null_key([{"id": 1}, {"id": None}], "t", ("id",))
    >>> rows, [r.reason for r in rejected]
    ([{'id': 1}], ['no value for the key column id'])
    """
    import pyarrow as pa

    if not key:
        return item, []
    if isinstance(item, pa.Table | pa.RecordBatch):
        return _arrow_without_null_key(item, table, key)
    from stackyard.ingest.text_fit import set_aside_dicts

    return set_aside_dicts(
        item, lambda row: _missing(row, key), lambda column, row: _rejected(table, column, row)
    )


def _arrow_without_null_key(
    item: Any, table: str, key: Sequence[str]
) -> tuple[Any, list[RejectedRow]]:
    import pyarrow.compute as pc

    from stackyard.ingest.text_fit import set_aside

    # Under the key's own names only, as for files: a column dlt renames later is left to it.
    masks = {k: pc.is_null(item.column(k)) for k in key if k in item.column_names}
    return set_aside(item, masks, lambda column, row: _rejected(table, column, row))


def _missing(row: dict[str, Any], key: Sequence[str]) -> str | None:
    """The first key column ``row`` has no value for. A field under another spelling that
    dlt names as the key (``Order ID`` for ``order_id``) counts as the key's."""
    for k in key:
        if k in row:
            if row[k] is None:
                return k
        elif all(row.get(f) is None for f in row if _normalised(f) == _normalised(k)):
            return k
    return None


@functools.lru_cache(maxsize=4096)
def _normalised(name: str) -> str:
    """``name`` as dlt's default naming convention writes it as a column."""
    from dlt.common.normalizers.naming.snake_case import NamingConvention

    return str(NamingConvention().normalize_identifier(name))


def _rejected(table: str, column: str, row: dict[str, Any]) -> RejectedRow:
    raw = json.dumps(row, default=str, ensure_ascii=False)
    return RejectedRow(table, "", None, column, _REASON.format(column=column), raw)
