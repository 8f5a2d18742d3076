"""The rows of a filesystem table's files, streamed to dlt in batches of bounded size.

Each file is read by DuckDB into a table of a scratch in-memory database (its buffer pool
capped by ``MEMORY_LIMIT``, beyond which it spills to a temporary folder), then handed out
``BATCH_ROWS`` rows at a time: a file of any size is never one Arrow table in memory. What the
rows are does not change with the batch size:

- every column is of the type that fits every file (an integer column with a decimal in
  another file becomes a double, never rounded): the files' schemas are unified first, and
  each batch is promoted to that schema as ``pyarrow.concat_tables`` promotes. A column with
  no value in a file (read as text there) has no say in its type, as a file with no rows has
  none: its NULLs take the type the other files give it. A JSONL field holding objects or
  arrays in one file is read as JSON in every file (a file with only numbers there too);
- with a key, each key is kept once, its last occurrence (files in name order, lines in file
  order), across files and batches: the winners are found in DuckDB before any row is handed
  out, and the collapsed rows are counted.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from stackyard.ingest.csv_dates import DateFormats
from stackyard.results import RejectedRow

# Rows per batch handed to dlt, and the cap on the scratch database's memory (it spills to
# disk beyond it). Together they bound a file load's memory, whatever the file's size.
BATCH_ROWS = 100_000
MEMORY_LIMIT = "256MB"
_ROW = "__stackyard_row"


@dataclass
class _File:
    query: str  # the rows, in file order
    table: str | None  # the scratch table holding them (None: read from the file itself)
    schema: Any
    rows: int
    name: str = ""  # as the user knows it
    empty: set[str] = field(default_factory=set)  # columns with no value in this file


def read_batches(
    items: Sequence[Mapping[str, Any]],
    *,
    file_format: str,
    table: str,
    column_types: Mapping[str, str],
    delimiter: str,
    key: Sequence[str],
    local_copy: Callable[[Mapping[str, Any]], Any],
    reject: Callable[[list[RejectedRow]], None],
    collapsed: Callable[[int], None],
    batch_rows: int | None = None,
    dates: DateFormats | None = None,
) -> Iterator[Any]:
    """Arrow tables of at most ``batch_rows`` rows: the files' rows in name and file order.

    Args:
        items: dlt ``FileItem`` s of one table.
        file_format: ``csv``, ``jsonl`` or ``parquet``.
        table: the table the rows are for.
        column_types: DuckDB types of the columns the table already has (see
            :func:`stackyard.ingest.files.stage_file`).
        delimiter: CSV field separator.
        key: the primary key's columns; empty for none.
        local_copy: a context manager giving a local path for an item.
        reject: receives the rows a file could not give.
        collapsed: receives how many rows were dropped for a later row with the same key.
        batch_rows: rows per batch (default ``BATCH_ROWS``).
        dates: a CSV table's date and timestamp formats (see
            :func:`stackyard.ingest.files.stage_file`).
    """
    import duckdb

    from stackyard.ingest.files import source_query, stage_file
    from stackyard.ingest.jsonl_files import column_case
    from stackyard.ingest.parquet_values import refuse_unheld

    size = batch_rows or BATCH_ROWS
    if file_format != "parquet":
        # CSV headers and JSONL fields are staged under dlt's spelling where it differs in
        # case only (`ID` as `id`, jsonl_files.in_column_case): so is the key.
        key = [column_case(k) for k in key]
    with ExitStack() as stack:
        folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="stackyard-files-"))
        # In memory, spilling to the folder beyond MEMORY_LIMIT: the rows are read back once,
        # so a database file (written, then checkpointed) was a copy paid for nothing.
        con = duckdb.connect(":memory:")
        stack.callback(con.close)
        con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
        con.execute(f"SET temp_directory = '{_sql(os.path.join(folder, 'spill'))}'")
        nested: set[str] = set()  # columns of JSON values (objects or arrays), read as text

        def stage(index: int, item: Mapping[str, Any], types: Mapping[str, str]) -> _Staged:
            name, shown = f"file_{index}", str(item["relative_path"])
            rejected: list[RejectedRow] = []
            before = set(nested)
            if file_format == "parquet" and not key:
                # Read straight from the file when streaming (a key needs row positions).
                path = stack.enter_context(local_copy(item))
                query, scratch = source_query(path, file_format), None
            else:
                con.execute(f"DROP TABLE IF EXISTS {name}")
                with local_copy(item) as path:
                    rejected += stage_file(
                        con,
                        name,
                        path,
                        file_format=file_format,
                        table=table,
                        display_name=shown,
                        column_types=types,
                        delimiter=delimiter,
                        nested=nested,
                        dates=dates,
                    )
                    if key:
                        at = (path, file_format, delimiter)
                        rejected += _without_key(con, name, key, table, shown, at, rejected)
                query, scratch = f"SELECT * FROM {name}", name
            if file_format == "parquet":
                refuse_unheld(con, query, shown)
            count = int(con.execute(f"SELECT count(*) FROM ({query})").fetchall()[0][0])
            file = None
            if count:
                # A file with no rows has no say in the columns' types (as it had none before).
                schema = con.sql(f"SELECT * FROM ({query}) LIMIT 0").to_arrow_table().schema
                file = _File(query, scratch, schema, count, shown)
            return _Staged(index, item, file, rejected, before | nested)

        staged = []
        for index, item in enumerate(sorted(items, key=lambda i: str(i["relative_path"]))):
            staged.append(stage(index, item, _with_json(column_types, nested)))
        # A field a later file holds objects or arrays in is JSON in every file of the load:
        # a file read before that with only numbers or strings there is read again as JSON,
        # so the load's column is json (an int64 beside JSON text stopped the load).
        for position, done in enumerate(staged):
            if done.file is not None and (nested - done.json) & set(done.file.schema.names):
                staged[position] = stage(done.index, done.item, _with_json(column_types, nested))
        files = [done.file for done in staged if done.file is not None]
        texted = _texted(con, files) if file_format != "parquet" else {}
        if texted:
            # A field one file holds text in (`02`, `n/a`) and another only numbers (or dates,
            # or booleans): every file reads it as text, as one file holding all of their rows
            # would be read (an int64 or a date beside text stopped the load, and the reload
            # the message advised too).
            for position, done in enumerate(staged):
                if done.file is not None and set(texted) & _typed(done.file):
                    types = {**_with_json(column_types, nested), **texted}
                    staged[position] = stage(done.index, done.item, types)
            files = [done.file for done in staged if done.file is not None]
        unified = _unified(con, files) if len(files) > 1 else None
        if unified is not None and file_format != "parquet":
            # An integer field another file makes a double: the file is read again with the
            # field as doubles, so that a whole number a double does not hold is rejected
            # with its line and text as the file holds them (found while streaming, neither
            # was known).
            again = False
            for position, done in enumerate(staged):
                widened = _widened(done.file, unified)
                if widened:
                    types = {**_with_json(column_types, nested), **widened}
                    staged[position] = stage(done.index, done.item, types)
                    again = True
            if again:
                files = [done.file for done in staged if done.file is not None]
                unified = _unified(con, files) if len(files) > 1 else None
        for done in staged:
            reject(done.rejected)
        if not files:
            return
        if unified is None:
            unified = files[0].schema
        keep = _winners(con, files, key, unified.names)
        if keep is not None:
            total = sum(f.rows for f in files)
            kept = sum(int(mask.sum()) for mask in keep)
            if total - kept:
                collapsed(total - kept)
            else:
                keep = None
        marked = _as_json(nested)
        for index, file in enumerate(files):
            mask = None if keep is None else keep[index]
            for rows in _stream(con, file, mask, size, unified, table, reject):
                yield marked(rows)


@dataclass(frozen=True)
class _Staged:
    """A file read into the scratch database: its rows (None: it has none), the rows it could
    not give, and the columns it was read with as JSON (its own and the files' before it)."""

    index: int
    item: Mapping[str, Any]
    file: _File | None
    rejected: list[RejectedRow]
    json: set[str]


def _with_json(column_types: Mapping[str, str], columns: set[str]) -> dict[str, str]:
    """``column_types`` with ``columns`` (JSON fields, as a file names them) read as JSON."""
    from stackyard.ingest.json_text import column_name

    return {**column_types, **{column_name(c): "JSON" for c in columns}}


def _texted(con: Any, files: list[_File]) -> dict[str, str]:
    """Columns (as ``VARCHAR`` column types by dlt's names) that one file read as text from
    values it holds and another as numbers, dates or booleans."""
    import pyarrow as pa

    from stackyard.ingest.json_text import column_name

    if len(files) < 2:
        return {}
    text: set[str] = set()
    typed: set[str] = set()
    for file in files:
        _mark_empty(con, file)
        for f in file.schema:
            if f.name in file.empty:
                continue
            if pa.types.is_string(f.type) or pa.types.is_large_string(f.type):
                text.add(f.name)
            elif f.name in _typed(file):
                typed.add(f.name)
    return {column_name(name): "VARCHAR" for name in sorted(text & typed)}


def _typed(file: _File) -> set[str]:
    """The columns ``file`` read as numbers, dates, times or booleans."""
    import pyarrow as pa

    return {
        f.name
        for f in file.schema
        if pa.types.is_integer(f.type)
        or pa.types.is_floating(f.type)
        or pa.types.is_decimal(f.type)
        or pa.types.is_temporal(f.type)
        or pa.types.is_boolean(f.type)
    }


def _mark_empty(con: Any, file: _File) -> None:
    """Note in ``file.empty`` the columns with no value in the file."""
    counts = ", ".join(f"count({_quote(n)})" for n in file.schema.names)
    filled = con.execute(f"SELECT {counts} FROM ({file.query})").fetchall()[0]
    file.empty = {n for n, c in zip(file.schema.names, filled, strict=True) if not c}


def _widened(file: _File | None, unified: Any) -> dict[str, str]:
    """The integer columns of ``file`` that ``unified`` makes doubles, as ``DOUBLE`` column
    types by dlt's names."""
    import pyarrow as pa

    from stackyard.ingest.json_text import column_name

    if file is None:
        return {}
    return {
        column_name(f.name): "DOUBLE"
        for f in file.schema
        if f.name not in file.empty
        and pa.types.is_integer(f.type)
        and pa.types.is_floating(unified.field(f.name).type)
    }


def _as_json(columns: set[str]) -> Callable[[Any], Any]:
    """What marks a batch's ``columns`` (JSON text) as the warehouse's json type, as the
    nested columns they were read as before were typed."""
    if not columns:
        return lambda rows: rows
    import dlt

    hints = dlt.mark.make_hints(columns={c: {"data_type": "json"} for c in sorted(columns)})
    return lambda rows: dlt.mark.with_hints(rows, hints)


def _unified(con: Any, files: list[_File]) -> Any:
    """The schema that fits every file. A column with no value in a file is typed there as
    the reader guessed from nothing (text, for an empty CSV column): it takes the type the
    other files give it, or keeps its own when no file has a value."""
    import pyarrow as pa

    schemas = []
    for file in files:
        _mark_empty(con, file)
        schemas.append(
            pa.schema([f.with_type(pa.null()) if f.name in file.empty else f for f in file.schema])
        )
    unified = pa.unify_schemas(schemas, promote_options="permissive")
    own = {f.name: f for file in reversed(files) for f in file.schema}
    return pa.schema([own[f.name] if pa.types.is_null(f.type) else f for f in unified])


def _without_key(
    con: Any,
    name: str,
    key: Sequence[str],
    table: str,
    display_name: str,
    file: tuple[str, str, str],
    set_aside: Sequence[RejectedRow],
) -> list[RejectedRow]:
    """Take the rows with no value for a key column out of the scratch table ``name`` (a merge
    cannot place them; dlt refused the whole load over one), as rejected rows with their
    line and text as the file (``file``: path, format, delimiter) holds them."""
    from stackyard.ingest.record_lines import rows_in_file

    present = {str(row[0]) for row in con.execute(f"DESCRIBE {name}").fetchall()}
    # Under the key's own names only: a header dlt renames later ("Order ID") is left to it.
    columns = [k for k in key if k in present]
    if not columns:
        return []
    # A quoted empty CSV field ("") or a JSONL "" is text, not NULL: as a key it merged
    # every such row into one, so blank text counts as no value too.
    missing = [f"coalesce(trim(CAST({_quote(k)} AS VARCHAR)), '') = ''" for k in columns]
    empty = " OR ".join(missing)
    found = con.execute(
        f"SELECT rowid, to_json(t)::VARCHAR, {', '.join(missing)} FROM {name} t "
        f"WHERE {empty} ORDER BY rowid"
    ).fetchall()
    if not found:
        return []
    rows = int(con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0])
    from stackyard.ingest.csv_quoting import UNCLOSED_REASON

    lines = [r.line for r in set_aside]
    unclosed = [r.line for r in set_aside if r.reason == UNCLOSED_REASON and r.line]
    at = rows_in_file(*file, lines, rows, {int(row[0]) for row in found}, unclosed)
    # Rebuilt rather than deleted from: the key's winners are found by dense row numbers.
    con.execute(
        f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM {name} WHERE NOT ({empty}) ORDER BY rowid"
    )
    rejected = []
    for rowid, raw, *gone in found:
        column = next(k for k, empty_here in zip(columns, gone, strict=True) if empty_here)
        reason = f"no value for the key column {column}"
        line, text = at.get(int(rowid), (None, raw))
        rejected.append(RejectedRow(table, display_name, line, column, reason, text))
    return rejected


def _winners(con: Any, files: list[_File], key: Sequence[str], names: list[str]) -> Any:
    """For each file, a boolean mask over its rows: True where the row is its key's last
    occurrence in the load; None when there is nothing to collapse (no key, a key column in
    no file, fewer than two rows)."""
    import numpy as np

    if not key or any(k not in names for k in key) or sum(f.rows for f in files) < 2:
        return None
    parts = []
    for index, file in enumerate(files):
        columns = ", ".join(
            _quote(k) if k in file.schema.names else f"NULL AS {_quote(k)}" for k in key
        )
        parts.append(f"SELECT {index} AS f, rowid AS n, {columns} FROM {file.table}")
    partition = ", ".join(_quote(k) for k in key)
    con.execute(
        f"CREATE TABLE winners AS SELECT f, n FROM ({' UNION ALL '.join(parts)}) "
        f"QUALIFY row_number() OVER (PARTITION BY {partition} ORDER BY f DESC, n DESC) = 1"
    )
    masks = [np.zeros(file.rows, dtype=bool) for file in files]
    for batch in con.sql("SELECT f, n FROM winners").to_arrow_reader(BATCH_ROWS):
        f = batch.column(0).to_numpy()
        n = batch.column(1).to_numpy()
        for index in np.unique(f):
            masks[int(index)][n[f == index]] = True
    return masks


def _stream(
    con: Any,
    file: _File,
    keep: Any,
    size: int,
    unified: Any,
    table: str,
    reject: Callable[[list[RejectedRow]], None],
) -> Iterator[Any]:
    import pyarrow as pa

    query = file.query if keep is None else f"SELECT rowid AS {_ROW}, * FROM {file.table}"
    promote = file.schema != unified
    for batch in con.sql(query).to_arrow_reader(size):
        rows = pa.Table.from_batches([batch])
        if keep is not None:
            rows = rows.filter(pa.array(keep[rows.column(_ROW).to_numpy()])).drop_columns(_ROW)
        if promote:
            for name in file.empty:  # no value here: its NULLs take the load's type
                index = rows.schema.get_field_index(name)
                empty = pa.nulls(rows.num_rows, unified.field(name).type)
                rows = rows.set_column(index, unified.field(name), empty)
            rows, rejected = _past_doubles(rows, unified, table, file.name)
            reject(rejected)
            rows = pa.concat_tables([unified.empty_table(), rows], promote_options="permissive")
        if rows.num_rows:
            yield rows


def _past_doubles(rows: Any, unified: Any, table: str, file: str) -> tuple[Any, list[RejectedRow]]:
    """Rows whose integer another file makes a double and a double does not hold (past
    2**53), out of ``rows`` and as rejected rows (pyarrow refused the whole load over one)."""
    import json

    import pyarrow as pa
    import pyarrow.compute as pc

    from stackyard.ingest.text_fit import set_aside

    masks = {}
    for name in rows.column_names:
        if pa.types.is_integer(rows.schema.field(name).type) and pa.types.is_floating(
            unified.field(name).type
        ):
            column = rows.column(name)
            past = pc.or_(pc.greater(column, 2**53), pc.less(column, -(2**53)))
            masks[name] = pc.fill_null(past, False)
    reason = (
        "{} is a whole number past 2**53 where another file of the load holds fractions, so it "
        "would load as a rounded double; write it as a string to keep it exact"
    )
    return set_aside(
        rows,
        masks,
        lambda column, row: RejectedRow(
            table, file, None, column, reason.format(column), json.dumps(row, default=str)
        ),
    )


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql(text: str) -> str:
    return text.replace("'", "''")
