"""A JSONL file's nested values (objects and arrays) read as the JSON text the file holds.

DuckDB's reader types an object column as one STRUCT for the whole file, so every object got
every key any line had: ``{"a": 1}`` was stored as ``{"a": 1, "b": null}`` next to a line with
``{"b": 2}``, a key the source never sent. And a STRUCT or LIST reached a Postgres target as a
nested Arrow type its loader cannot write (the load failed). Read as JSON text instead, each
value is exactly what its line holds; the column is still typed ``json`` in the warehouse, as
a nested column was, so tables loaded before keep their type.

A field holding objects in some lines and arrays (or plain values) in others is JSON text too,
typed ``json`` from its first load: it was loaded as text, and every later file whose lines
held only objects there (typed ``json``) then stopped the source on a changed type.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

#: read_json's options for a JSONL file: its columns and their types from every line, not
#: DuckDB's default sample of the first 20,480 (a field first given after those failed the
#: whole file: 'has unknown key'). Costs a second pass over a large file.
WHOLE_FILE = "format='newline_delimited', sample_size=-1"
# The types DuckDB gives a field of JSON numbers.
_NUMBERS = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UBIGINT", "HUGEINT", "DOUBLE", "FLOAT"}


def _nested(kind: str) -> bool:
    """Whether a DuckDB type read from JSON is an object or an array.

    >>> [_nested(k) for k in ("STRUCT(a BIGINT)", "BIGINT[]", "MAP(VARCHAR, BIGINT)", "JSON")]
    [True, True, True, False]
    """
    return kind.startswith(("STRUCT", "MAP")) or kind.endswith("]")


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class JsonlRead(NamedTuple):
    """How to read a JSONL file: the query, its columns of JSON values, and its columns read
    as text in which some line may hold a number (DuckDB writes it as a double would:
    :mod:`stackyard.ingest.json_tokens` keeps it as written)."""

    query: str
    as_json: list[str]
    numbers_in_text: list[str]


def jsonl_query(con: Any, path: str, column_types: Mapping[str, str] | None = None) -> JsonlRead:
    """The query reading the JSONL file at ``path``, and its columns of JSON values (read as
    JSON text; the others typed as DuckDB detects them). Raises what DuckDB raises for a file
    it cannot read.

    A field is JSON when it holds an object or an array in some line, alone or beside values
    of other kinds (objects in some lines, arrays in others), or when the table already holds
    it as a ``json`` column (``column_types``, by dlt's column names): a later file whose lines
    hold only numbers or only strings there still loads into that column, each value the JSON
    its line holds. A field the table holds as text takes an object or array as its JSON text.
    """
    auto = f"read_json({_quoted(path)}, {WHOLE_FILE})"
    sniffed = auto
    try:
        rows = con.execute(f"DESCRIBE SELECT * FROM {auto}").fetchall()
    except Exception as exc:
        # Objects of one field whose names differ only in case from line to line ({"a": 1},
        # {"A": 2}) are refused as one STRUCT ("Duplicate name in struct"); such a field is
        # read as JSON text, each value as written, so only its type is sniffed past them
        # (the rows are read below without ignore_errors).
        if "in struct" not in str(exc):
            raise
        sniffed = f"read_json({_quoted(path)}, {WHOLE_FILE}, ignore_errors=true)"
        rows = con.execute(f"DESCRIBE SELECT * FROM {sniffed}").fetchall()
    described = [(str(r[0]), str(r[1])) for r in rows]
    held = {c: (column_types or {}).get(column_name(c)) for c, _ in described}
    mixed = [c for c, kind in described if kind == "JSON"]
    holding = _holding_nested(con, sniffed, mixed)
    as_json = [
        c
        for c, kind in described
        if held[c] == "JSON" or (held[c] != "VARCHAR" and (_nested(kind) or c in holding))
    ]
    # A field holding strings and numbers is JSON to DuckDB; its strings read as JSON text
    # kept their quotes ("A1" stored as "\"A1\""). As text, each value is what the line says.
    # So is a field the table holds as text (another file of the load held text there) that
    # this file holds numbers, dates or booleans in: `5` loads as the text 5, as written.
    text = [
        c
        for c, kind in described
        if c not in as_json
        and (kind == "JSON" or _nested(kind) or (held[c] == "VARCHAR" and kind != "VARCHAR"))
    ]
    if not as_json and not text:
        return JsonlRead(f"SELECT * FROM {auto}", [], [])
    kinds = dict(described)
    numbers = [c for c in text if kinds[c] == "JSON" or kinds[c] in _NUMBERS]
    types = ", ".join(
        f"{_quoted(c)}: {_quoted('JSON' if c in as_json or c in text else kind)}"
        for c, kind in described
    )
    replace = ", ".join(f"{_ident(c)} ->> '$' AS {_ident(c)}" for c in text)
    return JsonlRead(
        f"SELECT *{f' REPLACE ({replace})' if replace else ''} FROM read_json("
        f"{_quoted(path)}, format='newline_delimited', columns={{{types}}})",
        as_json,
        numbers,
    )


def _holding_nested(con: Any, source: str, columns: list[str]) -> set[str]:
    """Of the columns DuckDB reads as JSON (values of several types), those that hold an
    object or an array in some line (the others hold plain values of mixed types)."""
    if not columns:
        return set()
    checks = ", ".join(f"bool_or(json_type({_ident(c)}) IN ('OBJECT', 'ARRAY'))" for c in columns)
    found = con.execute(f"SELECT {checks} FROM {source}").fetchall()[0]
    return {c for c, has_nested in zip(columns, found, strict=True) if has_nested}


def column_name(field: str) -> str:
    """A JSON field's column name in the table (dlt's snake_case naming)."""
    from dlt.common.normalizers.naming.snake_case import NamingConvention

    return NamingConvention().normalize_identifier(field)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
