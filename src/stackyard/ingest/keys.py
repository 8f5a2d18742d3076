"""Which columns identify a row: the keys a source declares, else one found in the data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from stackyard.config.sources import parse_source
from stackyard.transform.staging import Column, entity_name
from stackyard.warehouse.base import Warehouse

_KEY_NAMES = ("id", "key", "uuid", "code", "sku")


def detect_key(
    warehouse: Warehouse, schema: str, table: str, columns: Sequence[Column]
) -> tuple[str, ...]:
    """A column that is unique and never null in the loaded rows, preferring id-like names.

    Uniqueness in a few rows is weak evidence: every column of a one-row table is unique. So
    a column whose name does not say it is a key (``id``, ``sku``, ``<entity>_id``, ``…_id``)
    is taken only if it is a number and at least two rows were loaded; free text (a name, a
    comment) is never guessed as a key.
    """
    types = {c.name: c.data_type for c in columns}
    candidates = [
        c.name
        for c in columns
        if not c.name.startswith("_") and c.data_type in ("bigint", "text", "decimal")
    ]
    entity = entity_name(table)
    position = {c: i for i, c in enumerate(candidates)}

    def rank(column: str) -> tuple[int, int]:
        preferred = column in _KEY_NAMES or column in (f"{entity}_id", f"{table}_id")
        return (0 if preferred else 1 if column.endswith("_id") else 2, position[column])

    candidates = [c for c in candidates if rank(c)[0] < 2 or types[c] != "text"]
    candidates.sort(key=rank)
    w = warehouse
    relation = w.quote(schema, table)
    for column in candidates[:8]:
        quoted = w.quote(column)
        total, distinct, present = w.query(
            f"SELECT count(*), count(DISTINCT {quoted}), count({quoted}) FROM {relation}"
        ).rows[0]
        enough = rank(column)[0] < 2 or total >= 2
        if total and enough and total == distinct == present:
            return (column,)
    return ()


def declared_tables(entry: Mapping[str, Any]) -> list[str]:
    """The tables a stackyard.yml source entry names (empty: known after the first load)."""
    return list(parse_source(entry).declared_tables())


def declared_keys(entry: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """The primary key a stackyard.yml source entry declares for each table."""
    return parse_source(entry).primary_keys()
