"""The filesystem reader as it was before files were streamed in batches: each file read whole
into one Arrow table, the files concatenated, keys collapsed to their last row. Kept only to
check that the batched reader gives the same rows, of the same types."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from stackyard.ingest.files import stage_file
from stackyard.results import RejectedRow


def read_file(
    path: str,
    *,
    file_format: str,
    table: str,
    display_name: str,
    column_types: Mapping[str, str] | None = None,
    delimiter: str = ",",
) -> tuple[Any, list[RejectedRow]]:
    """Read one file into an Arrow table.

    Args:
        path: local file path.
        file_format: ``csv``, ``jsonl`` or ``parquet``.
        table: the table the rows are for (named in rejected rows).
        display_name: the file as the user knows it (relative path or URL), for messages.
        column_types: DuckDB types for columns the table already has; a CSV value that does
            not cast is rejected with its line rather than changing the column's type.
        delimiter: CSV field separator.

    Returns:
        The rows that fit, and the rows that did not with the reason for each.
    """
    import duckdb

    con = duckdb.connect()
    try:
        literal = "'" + path.replace("'", "''") + "'"
        if file_format == "parquet":
            return con.sql(f"SELECT * FROM read_parquet({literal})").to_arrow_table(), []
        # One file's staging is the batched reader's own: what is compared is the batching.
        rejected = stage_file(
            con,
            "whole",
            path,
            file_format=file_format,
            table=table,
            display_name=display_name,
            column_types=column_types,
            delimiter=delimiter,
        )
        return con.sql("SELECT * FROM whole ORDER BY rowid").to_arrow_table(), rejected
    finally:
        con.close()


def combine(batches: Sequence[Any]) -> Any:
    """The files' rows as one Arrow table, each column of the type that fits every file
    (an integer column with a decimal in another file becomes a double, never rounded).

    >>> import pyarrow as pa
    >>> combine([pa.table({"a": [1]}), pa.table({"a": [1.5]})]).schema.field("a").type
    DataType(double)
    """
    import pyarrow as pa

    if len(batches) == 1:
        return batches[0]
    return pa.concat_tables(batches, promote_options="permissive")


def keep_last(rows: Any, key: Sequence[str]) -> tuple[Any, int]:
    """The rows with each key once, the last occurrence kept (files in name order, lines in
    file order); and how many rows were collapsed.

    >>> import pyarrow as pa
    >>> table, collapsed = keep_last(pa.table({"id": [1, 2, 1], "v": ["a", "b", "c"]}), ["id"])
    >>> table.to_pydict(), collapsed
    ({'id': [2, 1], 'v': ['b', 'c']}, 1)
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    missing = [k for k in key if k not in rows.column_names]
    if missing or rows.num_rows < 2:
        return rows, 0
    index = "__stackyard_row"
    numbered = rows.append_column(index, pa.array(range(rows.num_rows), type=pa.int64()))
    last = numbered.group_by(list(key), use_threads=False).aggregate([(index, "max")])
    keep = pc.sort_indices(last[f"{index}_max"])
    chosen = pc.take(last[f"{index}_max"], keep)
    collapsed = rows.num_rows - len(chosen)
    if not collapsed:
        return rows, 0
    return rows.take(chosen), collapsed


def read_whole(
    paths: Sequence[str],
    *,
    file_format: str,
    column_types: Mapping[str, str] | None = None,
    key: Sequence[str] = (),
    delimiter: str = ",",
) -> tuple[Any, list[RejectedRow], int]:
    """The files' rows as one table, the rows rejected, and the rows collapsed on the key."""
    batches, rejected = [], []
    for path in sorted(paths):
        rows, bad = read_file(
            path,
            file_format=file_format,
            table="t",
            display_name=os.path.basename(path),
            column_types=column_types,
            delimiter=delimiter,
        )
        rejected += bad
        if rows.num_rows:
            batches.append(rows)
    if not batches:
        return None, rejected, 0
    rows, collapsed = keep_last(combine(batches), key) if key else (combine(batches), 0)
    return rows, rejected, collapsed
