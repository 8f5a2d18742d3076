"""Copies at the last cursor value, counted: the rows dlt's incremental step lets through
(every row at or above the last value) are filtered as a load of a table without a key
filters them, over the state dict dlt keeps for the table."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from stackyard.ingest.boundary_copies import STATE_KEY, Copies, row_digest


def line(sku: str, ts: int, qty: int = 1) -> dict[str, Any]:
    return {"sku": sku, "qty": qty, "ts": ts, "_loaded_at": f"load at {ts}"}


def test_each_copy_at_the_last_value_is_loaded_once() -> None:
    state: dict[str, Any] = {}
    first = [line("A", 7), line("B", 7), line("C", 5)]
    assert Copies(state, "ts").filter(first) == first
    # the same rows again, a second copy of A, and the load stamp differs
    again = [line("A", 7), {**line("A", 7), "_loaded_at": "later"}, line("B", 7)]
    assert Copies(state, "ts").filter(again) == [again[1]]
    assert Copies(state, "ts").filter(again) is None
    assert state[STATE_KEY]["ts"]["counts"] == {row_digest(line("A", 7)): 2,
                                                row_digest(line("B", 7)): 1}  # fmt: skip
    # a later value: the copies at 7 are no longer counted
    assert Copies(state, "ts").filter([*again, line("A", 8)]) == [line("A", 8)]
    assert Copies(state, "ts").filter([line("A", 8), line("A", 8)]) == [line("A", 8)]


def test_arrow_batches_are_filtered_as_rows_are() -> None:
    state: dict[str, Any] = {}
    table = pa.Table.from_pylist([line("A", 7), line("B", 6)])
    assert Copies(state, "ts").filter(table).num_rows == 2
    later = pa.Table.from_pylist([line("A", 7), line("A", 7), line("C", 9)])
    # one load in two batches: the copy of A in the first, the newer row in the second
    copies = Copies(state, "ts")
    assert copies.filter(later.slice(0, 2)).to_pylist() == [line("A", 7)]
    assert copies.filter(later.slice(2)).to_pylist() == [line("C", 9)]
    assert Copies(state, "ts").filter(later.slice(2)) is None


def test_a_table_dlt_kept_hashes_of_skips_every_copy_of_them_once() -> None:
    """Loaded before the counts were kept: dlt's set says which contents are in the warehouse
    (how many copies it does not say), so those are skipped as dlt skipped them, and the rows
    at the last value are counted from then on."""
    kept = {"last_value": 7, "unique_hashes": [row_digest(line("A", 7))]}
    state: dict[str, Any] = {"incremental": {"ts": kept}}
    rows = [line("A", 7), line("A", 7), line("B", 7)]
    assert Copies(state, "ts").filter(rows) == [line("B", 7)]
    assert Copies(state, "ts").filter(rows) is None
    assert Copies(state, "ts").filter([*rows, line("A", 7)]) == [line("A", 7)]


def test_a_cursor_that_counts_down_counts_the_copies_at_its_lowest_value() -> None:
    state: dict[str, Any] = {}
    first = pa.Table.from_pylist([line("A", 7), line("A", 5)])
    assert Copies(state, "ts", min).filter(first).num_rows == 2
    later = pa.Table.from_pylist([line("A", 5), line("A", 5), line("B", 3)])
    assert Copies(state, "ts", min).filter(later).to_pylist() == [line("A", 5), line("B", 3)]


def test_an_empty_batch_is_passed_on_as_it_is() -> None:
    empty: list[Any] = []
    assert Copies({}, "ts").filter(empty) is empty
