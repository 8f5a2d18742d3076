"""Parquet values no warehouse holds as written, refused by name before anything loads.

- **Timestamps finer than a microsecond.** Every target keeps timestamps to the
  microsecond, and dlt casts a nanosecond column to microseconds safely: a value with
  nanoseconds failed the load with Arrow's "Casting from timestamp[ns] to timestamp[us]
  would lose data", naming neither the file nor the column. Whole microseconds (what most
  writers produce, even in a nanosecond column) load as they are.
- **Unsigned 64-bit integers past the largest signed one.** Every target stores whole
  numbers as signed 64-bit integers (``BIGINT``), which is what dlt makes of an unsigned
  64-bit column: a value above 2**63 - 1 failed the load step with DuckDB's "Type UINT64
  with value … can't be cast", after dlt had printed its tracebacks. Values that fit load.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from stackyard.errors import LoadError

#: The largest value of a signed 64-bit integer.
BIGINT_MAX = 2**63 - 1


def refuse_unheld(con: Any, query: str, display_name: str) -> None:
    """Raise a :class:`LoadError` naming the file, column and value when a column of the rows
    ``query`` reads holds a value the warehouse would not keep as written."""
    nanoseconds = _first(
        con, query, lambda k: k.startswith("TIMESTAMP") and k.endswith("_NS"),
        lambda c: f"epoch_ns({c}) % 1000 <> 0", lambda c: f"{c}::VARCHAR",
    )  # fmt: skip
    for column, value in nanoseconds:
        raise LoadError(
            f"file {display_name}, column '{column}': the timestamp {value} has "
            "nanoseconds, and the warehouse keeps timestamps to the microsecond; it is "
            "never rounded",
            hint="write the file with microsecond timestamps (pandas: "
            f"`df['{column}'] = df['{column}'].dt.floor('us')`; Arrow: cast to "
            "timestamp('us')), or the value as text; this load wrote nothing",
        )
    wide = _first(con, query, lambda k: k == "UBIGINT", lambda c: f"{c} > {BIGINT_MAX}")
    for column, value in wide:
        raise LoadError(
            f"file {display_name}, column '{column}': {value} is beyond the largest 64-bit "
            f"signed integer ({BIGINT_MAX}), the type every warehouse keeps whole numbers "
            "in; it is never wrapped or rounded",
            hint="write the column as a decimal (Arrow: decimal128(20, 0)) or as text; "
            "this load wrote nothing",
        )


def _first(
    con: Any,
    query: str,
    kind: Callable[[str], bool],
    unheld: Callable[[str], str],
    shown: Callable[[str], str] = lambda c: c,
) -> Iterator[tuple[str, Any]]:
    """Per column of a ``kind`` of type, its first value meeting the ``unheld`` condition."""
    for column, column_type, *_ in con.execute(f"DESCRIBE {query}").fetchall():
        if not kind(str(column_type)):
            continue
        quoted = '"' + str(column).replace('"', '""') + '"'
        found = con.execute(
            f"SELECT {shown(quoted)} FROM ({query}) WHERE {unheld(quoted)} LIMIT 1"
        ).fetchone()
        if found is not None:
            yield str(column), found[0]
