"""A JSONL file's nested values (objects and arrays) read as the JSON text the file holds.

DuckDB's reader types an object column as one STRUCT for the whole file, so every object got
every key any line had: ``{"a": 1}`` was stored as ``{"a": 1, "b": null}`` next to a line with
``{"b": 2}``, a key the source never sent. And a STRUCT or LIST reached a Postgres target as a
nested Arrow type its loader cannot write (the load failed). Read as JSON text instead, each
value is exactly what its line holds; the column is still typed ``json`` in the warehouse, as
a nested column was, so tables loaded before keep their type.
"""

from __future__ import annotations

from typing import Any


def _nested(kind: str) -> bool:
    """Whether a DuckDB type read from JSON is an object or an array.

    >>> [_nested(k) for k in ("STRUCT(a BIGINT)", "BIGINT[]", "MAP(VARCHAR, BIGINT)", "JSON")]
    [True, True, True, False]
    """
    return kind.startswith(("STRUCT", "MAP")) or kind.endswith("]")


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def jsonl_query(con: Any, path: str) -> tuple[str, list[str]]:
    """The query reading the JSONL file at ``path``, and its nested columns (read as JSON
    text; the others typed as DuckDB detects them). Raises what DuckDB raises for a file it
    cannot read."""
    auto = f"read_json({_quoted(path)}, format='newline_delimited')"
    described = con.execute(f"DESCRIBE SELECT * FROM {auto}").fetchall()
    nested = [str(row[0]) for row in described if _nested(str(row[1]))]
    scalars = _mixed_scalars(con, auto, [str(row[0]) for row in described if row[1] == "JSON"])
    if not nested and not scalars:
        return f"SELECT * FROM {auto}", []
    types = ", ".join(
        f"{_quoted(str(row[0]))}: "
        f"{_quoted('JSON' if str(row[0]) in nested or row[1] == 'JSON' else str(row[1]))}"
        for row in described
    )
    # A field holding strings and numbers is JSON to DuckDB; its strings read as JSON text
    # kept their quotes ("A1" stored as "\"A1\""). As text, each value is what the line says.
    replace = ", ".join(f"{_ident(c)} ->> '$' AS {_ident(c)}" for c in scalars)
    return (
        f"SELECT *{f' REPLACE ({replace})' if replace else ''} FROM read_json("
        f"{_quoted(path)}, format='newline_delimited', columns={{{types}}})",
        nested,
    )


def _mixed_scalars(con: Any, source: str, columns: list[str]) -> list[str]:
    """Of the columns DuckDB reads as JSON (values of several types), those that hold no
    object or array: plain values of mixed types, loaded as text."""
    if not columns:
        return []
    checks = ", ".join(f"bool_or(json_type({_ident(c)}) IN ('OBJECT', 'ARRAY'))" for c in columns)
    found = con.execute(f"SELECT {checks} FROM {source}").fetchall()[0]
    return [c for c, has_nested in zip(columns, found, strict=True) if not has_nested]


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
