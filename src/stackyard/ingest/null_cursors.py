"""Rows of an incremental SQL table whose cursor is NULL: loaded when new or changed, not on
every run.

A row with no cursor value cannot be placed in time, so a keyed table's query reads every such
row on every load (dlt's ``on_cursor_value_missing="include"``: ``cursor > last OR cursor IS
NULL``), and a new or changed one is never missed. Merged on its key, an unchanged one left the
table as it was, but each run loaded it again under the run's load id and ``_loaded_at`` and
counted it as loaded: a table with two such rows said "2 rows" on every run while nothing
changed upstream.

Now the table's dlt state keeps a digest of each such row as last read (its values, with its
key), and a row whose digest is there is dropped before anything else sees it. The digests
are written after the whole table was read, so they are always those of the rows the source
holds now (a row deleted upstream and added again later loads again), and they are committed
with the load, as the cursor is. ``stackyard reload`` resets them with the cursor, and loads
every row again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

# Where the digests live in the table's dlt resource state.
STATE_KEY = "null_cursor_rows"


def reader_of_unchanged_null_cursors(base: type, table: str, cursor: str) -> type:
    """dlt's table loader ``base``, dropping rows with a NULL ``cursor`` that the table's
    previous read found the same (see the module).

    Args:
        base: the dlt table loader class the backend would use.
        table: the table's name in the warehouse (its dlt resource).
        cursor: the cursor column, as the source names it.
    """
    import dlt

    class UnchangedNullCursorsDropped(base):
        def load_rows(self, backend_kwargs: dict[str, Any] | None = None) -> Iterator[Any]:
            state = dlt.current.resource_state(table)
            before = set(state.get(STATE_KEY) or ())
            seen: set[str] = set()
            for item in super().load_rows(backend_kwargs):
                yield without_unchanged(item, cursor, before, seen)
            # Only after a complete read: the digests are then the rows the source holds.
            state[STATE_KEY] = sorted(seen)

    return UnchangedNullCursorsDropped


def without_unchanged(item: Any, cursor: str, before: set[str], seen: set[str]) -> Any:
    """``item`` (an Arrow table or a list of row dicts) without the rows whose ``cursor`` is
    NULL and whose digest is in ``before``; the digest of each such row is added to ``seen``.

    >>> seen = set()
    >>> rows = [{"id": 1, "at": None}, {"id": 2, "at": "2026-01-01"}]
    >>> [r["id"] for r in without_unchanged(rows, "at", set(), seen)]
    [1, 2]
    >>> [r["id"] for r in without_unchanged(rows, "at", seen, set())]
    [2]
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(item, pa.Table | pa.RecordBatch):
        if cursor not in item.column_names or not item.column(cursor).null_count:
            return item
        missing = pc.is_null(item.column(cursor))
        keep = []
        rows = iter(item.filter(missing).to_pylist())
        for is_null in missing.to_pylist():
            keep.append(not is_null or _new(next(rows), before, seen))
        return item.filter(pa.array(keep, type=pa.bool_()))
    if isinstance(item, list):
        return [
            row
            for row in item
            if not isinstance(row, dict) or row.get(cursor) is not None or _new(row, before, seen)
        ]
    return item


def _new(row: dict[str, Any], before: set[str], seen: set[str]) -> bool:
    """Whether the row differs from every one the previous read had; remembers it."""
    digest = row_digest(row)
    seen.add(digest)
    return digest not in before


def row_digest(row: dict[str, Any]) -> str:
    """A short digest of a row's values by column name (their Python ``repr``: a Decimal's
    scale and a timestamp's zone count).

    >>> row_digest({"id": 1, "amount": None}) == row_digest({"amount": None, "id": 1})
    True
    """
    text = repr(sorted(row.items(), key=lambda item: item[0]))
    return hashlib.blake2b(text.encode("utf-8"), digest_size=12).hexdigest()
