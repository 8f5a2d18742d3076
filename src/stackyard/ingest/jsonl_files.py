"""Reading a JSONL file into a DuckDB table, keeping the lines that do not fit.

DuckDB reads the file (:mod:`stackyard.ingest.json_text`). Lines it would read wrongly or not
at all are set aside first, as rejected rows with their line numbers, and the rest read:

- a number no column holds as written (:func:`stackyard.ingest.json_numbers.unfit_lines`);
- an object giving a name twice (``{"a": 1, "a": 2}``), at any depth, as a stream's event
  is (:func:`stackyard.ingest.json_numbers.each_name_once`), or two names differing only in
  case (:mod:`stackyard.ingest.json_names`). DuckDB stopped the whole file over one where it
  reads an object into columns, and kept a nested object's JSON text as written (Postgres's
  jsonb then keeps one of the values): so a file whose read fails, one with nested values
  read as JSON, and one DuckDB read with a name in two cases, is checked line by line.

A top-level field spelled in different cases in different lines is read under its column's
name (``NAME`` as ``name``): one column, whatever the lines' order.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from typing import IO, Any

from stackyard.files import temporary_copy
from stackyard.ingest.json_names import field_names, renamed_in_other_case, with_fields_renamed
from stackyard.ingest.json_numbers import (
    not_object_lines,
    original_line,
    unfit_lines,
    without_lines,
)
from stackyard.ingest.json_text import column_name, jsonl_query
from stackyard.ingest.json_tokens import numbers_as_written
from stackyard.results import RejectedRow


def stage_jsonl(
    con: Any,
    name: str,
    path: str,
    table: str,
    display_name: str,
    column_types: Mapping[str, str] | None,
    nested: set[str] | None,
) -> list[RejectedRow]:
    """:func:`stackyard.ingest.files.stage_file` for a JSONL file: a line that is not JSON
    is rejected with its line number, as the lines that do not fit are; what the reader
    raises otherwise is raised."""
    found: set[str] = set()
    with _without_bom(path) as plain:
        names = None
        try:
            rejected = _stage(con, name, plain, table, display_name, column_types, found)
        except Exception:
            # DuckDB stops the file at a line it cannot read, one that is not JSON too (its
            # message counts lines its own way): such lines are set aside, numbered as an
            # editor numbers them, and the rest read.
            names = field_names(plain, table, display_name)
            if not names.rejected and not names.renamed:
                raise
        else:
            if found or renamed_in_other_case(_columns(con, name)):
                names = field_names(plain, table, display_name)
        if names is not None and (names.rejected or names.renamed):
            numbers = [r.line for r in names.rejected if r.line is not None]
            con.execute(f"DROP TABLE IF EXISTS {name}")
            found.clear()
            with (
                without_lines(plain, set(numbers)) as rest,
                with_fields_renamed(rest, names.renamed) as readable,
            ):
                rejected = _stage(con, name, readable, table, display_name, column_types, found)
            rejected = [replace(r, line=original_line(r.line, numbers)) for r in rejected]
            rejected = sorted(
                [*rejected, *names.rejected], key=lambda r: (r.line is None, r.line or 0)
            )
    found = in_column_case(con, name, found)
    if nested is not None:
        nested.update(found)
    return rejected


def _columns(con: Any, name: str) -> list[str]:
    return [str(row[0]) for row in con.execute(f"DESCRIBE {name}").fetchall()]


def column_case(field: str) -> str:
    """The name :func:`in_column_case` gives a field: dlt's, where it differs in case only.

    >>> column_case("ID"), column_case("Order ID"), column_case("id")
    ('id', 'Order ID', 'id')
    """
    from stackyard.ingest.json_text import column_name

    target = column_name(field)
    return target if target != field and target.lower() == field.lower() else field


def in_column_case(con: Any, name: str, found: set[str]) -> set[str]:
    """Rename the columns of ``name`` whose column name dlt writes in another case only
    (``NAME`` is ``name``), so that files spelling a field (or a CSV header) in different
    cases fill one column (dlt stopped the load on the two); return ``found`` (JSON columns)
    as renamed. A name another column of the file already has is left as it is."""
    renamed = {}
    columns = _columns(con, name)
    for column in columns:
        target = column_case(column)
        if target != column and target not in columns:
            quoted = '"' + column.replace('"', '""') + '"'
            con.execute(f'ALTER TABLE {name} RENAME COLUMN {quoted} TO "{target}"')
            renamed[column] = target
    return {renamed.get(c, c) for c in found}


def _stage(
    con: Any,
    name: str,
    path: str,
    table: str,
    display_name: str,
    column_types: Mapping[str, str] | None,
    found: set[str],
) -> list[RejectedRow]:
    """Read the file at ``path`` (no byte-order mark) into ``name``; raise what DuckDB raises."""
    # DuckDB reads a JSON number into a double or a 64-bit integer, rounding one that
    # neither holds without a word: those lines are rejected, and the rest read.
    unfit = unfit_lines(con, path, table, display_name, column_types)
    unfit = sorted(
        [*unfit, *not_object_lines(con, path, table, display_name)], key=lambda r: r.line or 0
    )
    with without_lines(path, {r.line for r in unfit}) as readable:
        read = jsonl_query(con, readable, column_types)
        if read.numbers_in_text:
            # Read from a copy holding those numbers as written (DuckDB writes 5.10 as 5.1).
            texts = {column_name(c): "VARCHAR" for c in read.numbers_in_text}
            with numbers_as_written(readable, read.numbers_in_text) as written:
                read = jsonl_query(con, written, {**(column_types or {}), **texts})
                con.execute(f"CREATE TABLE {name} AS {read.query}")
        else:
            con.execute(f"CREATE TABLE {name} AS {read.query}")
        found.update(read.as_json)
    if column_types:
        unfit += _whole_numbers_as_doubles(con, name, column_types, table, display_name)
    return unfit


@contextmanager
def _without_bom(path: str) -> Iterator[str]:
    """``path``, or a temporary copy without the byte-order mark it starts with (Windows tools
    write one; DuckDB's JSON reader refuses it)."""
    with open(path, "rb") as source:
        marked = source.read(3) == b"\xef\xbb\xbf"
    if not marked:
        yield path
        return

    def unmarked(tmp: IO[bytes]) -> None:
        with open(path, "rb") as source:
            source.seek(3)
            shutil.copyfileobj(source, tmp)

    with temporary_copy(os.path.splitext(path)[1], unmarked) as name:
        yield name


def _whole_numbers_as_doubles(
    con: Any, name: str, column_types: Mapping[str, str], table: str, display_name: str
) -> list[RejectedRow]:
    """Cast a JSONL file's integer columns to double where the table's column is one (a file
    whose values are all whole would otherwise change the column's type and stop the load),
    rejecting the rows whose integer a double does not hold."""
    described = con.execute(f"DESCRIBE {name}").fetchall()
    columns = [
        str(row[0])
        for row in described
        if str(row[1]) in _INTEGER_TYPES and column_types.get(column_name(str(row[0]))) == "DOUBLE"
    ]
    if not columns:
        return []
    quoted = ['"' + c.replace('"', '""') + '"' for c in columns]
    # 2**53: every integer up to it is a double exactly.
    wide = " OR ".join(f"abs({q}::HUGEINT) > 9007199254740992" for q in quoted)
    rejected = [
        RejectedRow(
            table,
            display_name,
            None,
            next(
                c for c, v in zip(columns, values, strict=True) if v is not None and abs(v) > 2**53
            ),
            "a whole number past 2**53 in a column of doubles, which would load rounded; write "
            "it as a JSON string to keep it exact",
            raw,
        )
        for raw, *values in con.execute(
            f"SELECT to_json(t)::VARCHAR, {', '.join(quoted)} FROM {name} t WHERE {wide} "
            "ORDER BY rowid"
        ).fetchall()
    ]
    casts = ", ".join(f"CAST({q} AS DOUBLE) AS {q}" for q in quoted)
    con.execute(
        f"CREATE OR REPLACE TABLE {name} AS SELECT * REPLACE ({casts}) FROM {name} "
        f"WHERE NOT ({wide}) ORDER BY rowid"
    )
    return rejected


_INTEGER_TYPES = {
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
}
