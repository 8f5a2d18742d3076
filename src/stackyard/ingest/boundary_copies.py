"""Rows at the last cursor value of a table without a key, each copy loaded once.

An appending table without a key (``sql_database`` with ``append: true``, a ``rest_api``
endpoint with a cursor and no key, a ``python`` resource with dlt's incremental and no key) is
read from its last cursor value on (inclusive: rows written later with that value must be
read), so the rows at that value come again on every load. dlt skips those whose content it
has seen by a *set* of row hashes: a row alike in every column to one already loaded, written
to the source later (a second identical sales line with the same time), was taken for the
first and never loaded, without a word.

Here dlt's own check is turned off (``primary_key=()`` on the incremental: an empty key
disables it, ``IncrementalTransform.compute_deduplication_disabled`` in dlt 1.31) and
this step, placed right behind dlt's incremental step, keeps per table and cursor the
*count* of each content at the highest cursor value loaded, in the resource's dlt state (kept
with the load, as the cursor is: a load that fails keeps neither, one left pending is finished
with both). At that value a load skips only as many copies of a content as were loaded
before; every further copy is new.

A table last loaded before these counts were kept has only dlt's set of hashes: its first load
skips every copy of a content in that set (as before), and keeps the counts from then on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from stackyard.ingest.stamping import LOADED_AT

# {cursor: {"value": digest of the cursor value, "counts": {row digest: copies loaded}}}
STATE_KEY = "copies_at_last_value"
# Behind dlt's incremental step (1), before dlt's add_limit (1.1).
AFTER_INCREMENTAL = 1.05


def columns_but_stamp(item: Any) -> list[str]:
    """The columns a row's content is hashed over: every column the source sent, without
    stackyard's ``_loaded_at`` (it differs on every load, and would make each row look new).

    >>> columns_but_stamp({"sku": "A", "_loaded_at": 1, "qty": 2})
    ['sku', 'qty']
    """
    names = item.schema.names if hasattr(item, "schema") else list(item)
    return [c for c in names if c != LOADED_AT]


def row_digest(row: dict[str, Any], legacy: bool = False) -> str:
    """The digest of a row's content, as dlt computes it with :func:`columns_but_stamp` as
    the incremental's key (so hashes dlt kept before still match)."""
    from dlt.extract.utils import digest_dedup_value

    return str(digest_dedup_value([row[c] for c in columns_but_stamp(row)], legacy))


def value_digest(value: Any) -> str:
    """A cursor value's digest: one instant written in another zone, or naive (UTC), is the
    same value, as dlt compares them."""
    from dlt.extract.utils import digest_dedup_value

    return str(digest_dedup_value(value))


class Copies:
    """The copies at the last cursor value of one table, for one load.

    Args:
        kept: the state dict of the table (the resource's dlt state); its :data:`STATE_KEY`
            entry is read on creation and written as rows pass.
        cursor: the cursor column (or JSON path).
        last_value_func: how dlt picks the latest of cursor values (``max`` by default).
    """

    def __init__(
        self,
        kept: dict[str, Any],
        cursor: str,
        last_value_func: Callable[[Sequence[Any]], Any] = max,
    ) -> None:
        self.kept = kept
        self.cursor = cursor
        self.latest = last_value_func
        entry = kept.get(STATE_KEY, {}).get(cursor) or _from_dlt_hashes(kept, cursor)
        self.start: str | None = entry["value"] if entry else None
        self.loaded: dict[str, int] = dict(entry.get("counts", {})) if entry else {}
        self.legacy: set[str] = set(entry.get("hashes", [])) if entry else set()
        self.legacy_format = False
        if entry and self.legacy:
            from dlt.extract.utils import has_legacy_dedup_hashes

            self.legacy_format = has_legacy_dedup_hashes(self.legacy)
            # Kept here until a load counts the rows at the last value: dlt empties its own
            # set on the next batch it reads, even one it lets no row of through.
            kept.setdefault(STATE_KEY, {})[cursor] = entry
        self.seen: dict[str, int] = {}  # copies of each content at the start value, this load
        self.top: Any = None  # the highest cursor value of this load
        self.top_counts: dict[str, int] = {}

    def is_loaded(self, row: dict[str, Any], digest: str) -> bool:
        """Whether ``row`` at the start value is a copy an earlier load already has."""
        if self.legacy:
            return row_digest(row, self.legacy_format) in self.legacy
        self.seen[digest] = self.seen.get(digest, 0) + 1
        return self.seen[digest] <= self.loaded.get(digest, 0)

    def reaches_top(self, value: Any) -> bool:
        """Whether ``value`` is at or above the highest cursor value of this load so far."""
        return self.top is None or value == self.top or self.latest((value, self.top)) == value

    def count_top(self, value: Any, digests: list[str]) -> None:
        """Count rows (loaded now or before) at ``value``, the highest of their batch."""
        if not self.reaches_top(value):
            return
        if self.top is None or value != self.top:
            self.top, self.top_counts = value, {}
        for digest in digests:
            self.top_counts[digest] = self.top_counts.get(digest, 0) + 1
        self.kept.setdefault(STATE_KEY, {})[self.cursor] = {
            "value": value_digest(self.top),
            "counts": dict(self.top_counts),
        }

    def filter(self, item: Any) -> Any:
        """The item without the copies already loaded (``None`` when nothing is left)."""
        if isinstance(item, list):
            if not item:
                return item  # dlt's marker of an empty table (its type says so): passed on
            if all(isinstance(row, dict) for row in item):
                return self._rows(item) or None
            batches = [b for b in (self.filter(batch) for batch in item) if b is not None]
            return batches or None
        if isinstance(item, dict):
            kept = self._rows([item])
            return kept[0] if kept else None
        if hasattr(item, "schema") and hasattr(item, "num_rows"):
            return self._arrow(item)
        return item

    def _rows(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        value_of = _cursor_reader(self.cursor)
        values = [value_of(row) for row in rows]
        present = [v for v in values if v is not None]
        if not present:
            return rows
        top = present[0]
        for value in present[1:]:
            if value != top and self.latest((value, top)) == value:
                top = value
        kept, at_top = [], []
        for row, value in zip(rows, values, strict=True):
            at_start = (
                self.start is not None and value is not None and value_digest(value) == self.start
            )
            digest = row_digest(row) if at_start or value == top else ""
            if value is not None and value == top:
                at_top.append(digest)
            if not at_start or not self.is_loaded(row, digest):
                kept.append(row)
        self.count_top(top, at_top)
        return kept

    def _arrow(self, table: Any) -> Any:
        import pyarrow as pa
        import pyarrow.compute as pc

        column = table[self.cursor]
        lowest, highest = pc.min(column), pc.max(column)
        if self.latest is min:  # a cursor that counts down: the latest value is the lowest
            lowest, highest = highest, lowest
        if not highest.is_valid:
            return table
        drop: list[int] = []
        digests: dict[int, str] = {}
        # dlt's incremental step let only rows at or past the start value through.
        if value_digest(lowest.as_py()) == self.start:
            at_start = pc.indices_nonzero(pc.equal(column, lowest)).to_pylist()
            rows = table.take(at_start).select(columns_but_stamp(table)).to_pylist()
            for index, row in zip(at_start, rows, strict=True):
                digests[index] = row_digest(row)
                if self.is_loaded(row, digests[index]):
                    drop.append(index)
        if self.reaches_top(highest.as_py()):
            at_top = pc.indices_nonzero(pc.equal(column, highest)).to_pylist()
            if at_top[0] not in digests:
                rows = table.take(at_top).select(columns_but_stamp(table)).to_pylist()
                digests.update(zip(at_top, map(row_digest, rows), strict=True))
            self.count_top(highest.as_py(), [digests[i] for i in at_top])
        if not drop:
            return table
        keep = [True] * table.num_rows
        for index in drop:
            keep[index] = False
        left = table.filter(pa.array(keep))
        return left if left.num_rows else None


def _from_dlt_hashes(kept: dict[str, Any], cursor: str) -> dict[str, Any] | None:
    """The rows at the last value as dlt kept them (a set of hashes), for a table last loaded
    before the counts were kept; ``None`` when there are none."""
    dlt_state = kept.get("incremental", {}).get(cursor) or {}
    if dlt_state.get("last_value") is None or not dlt_state.get("unique_hashes"):
        return None
    return {
        "value": value_digest(dlt_state["last_value"]),
        "hashes": sorted(dlt_state["unique_hashes"]),
    }


def _cursor_reader(cursor: str) -> Callable[[dict[str, Any]], Any]:
    """How dlt reads the cursor value of a row: a column name, or a JSON path."""
    from dlt.common.jsonpath import compile_path, extract_simple_field_name, find_values

    compiled = compile_path(cursor)
    simple = extract_simple_field_name(compiled)
    if simple:
        return lambda row: row.get(simple)
    return lambda row: next(iter(find_values(compiled, row)), None)


def copies_step(
    cursor: str | None = None, last_value_func: Callable[[Sequence[Any]], Any] | None = None
) -> Any:
    """The pipe step that loads each copy at the last cursor value once (see the module
    docstring); dlt places it right behind the resource's incremental step.

    Args:
        cursor: the incremental's cursor column (or JSON path); by default the one of the
            incremental the resource holds when it runs (a user's own resource).
        last_value_func: the incremental's ``last_value_func`` (``max`` when the cursor is
            given, else the incremental's own).
    """
    import dlt
    from dlt.extract.incremental import Incremental, IncrementalResourceWrapper
    from dlt.extract.items_transform import BaseItemTransform, ItemTransform

    class CopiesAtLastValue(ItemTransform[Any, dict[str, Any]]):
        placement_affinity = AFTER_INCREMENTAL

        def __init__(self) -> None:
            BaseItemTransform.__init__(self)
            self.copies: Copies | None = None

        def bind(self, pipe: Any) -> CopiesAtLastValue:
            # Called before every extraction: the state is read afresh (a retried load too).
            self.copies = None
            path, latest = cursor, last_value_func or max
            if path is None:
                found = _incremental_of(pipe.steps, Incremental, IncrementalResourceWrapper)
                if found is None:
                    return self  # the resource runs without an incremental: nothing to count
                path, latest = found.cursor_path, last_value_func or found.last_value_func
            state = dlt.current.resource_state(pipe.name)
            self.copies = Copies(state, path, latest)
            return self

        def __call__(self, item: Any, meta: Any = None) -> Any:
            if item is None or self.copies is None:
                return item
            return self.copies.filter(item)

    return CopiesAtLastValue()


def _incremental_of(steps: Sequence[Any], incremental: Any, wrapper: Any) -> Any:
    """The incremental among a pipe's steps (inside dlt's wrapper when it is one), if any."""
    for step in steps:
        if isinstance(step, wrapper) and step.incremental is not None:
            return step.incremental
        if isinstance(step, incremental):
            return step
    return None
