"""Parquet timestamps finer than a microsecond, refused by name.

Every target keeps timestamps to the microsecond, and dlt casts a nanosecond column to
microseconds safely: a value with nanoseconds failed the load with Arrow's "Casting from
timestamp[ns] to timestamp[us] would lose data", naming neither the file nor the column.
Whole microseconds (what most writers produce, even in a nanosecond column) load as they are.
"""

from __future__ import annotations

from typing import Any

from stackyard.errors import LoadError


def refuse_nanoseconds(con: Any, query: str, display_name: str) -> None:
    """Raise a :class:`LoadError` naming the file, column and value when a nanosecond
    timestamp column of the rows ``query`` reads holds a value a microsecond cannot."""
    for column, kind, *_ in con.execute(f"DESCRIBE {query}").fetchall():
        if not str(kind).startswith("TIMESTAMP") or not str(kind).endswith("_NS"):
            continue
        quoted = '"' + str(column).replace('"', '""') + '"'
        found = con.execute(
            f"SELECT {quoted}::VARCHAR FROM ({query}) WHERE epoch_ns({quoted}) % 1000 <> 0 LIMIT 1"
        ).fetchone()
        if found is not None:
            raise LoadError(
                f"file {display_name}, column '{column}': the timestamp {found[0]} has "
                "nanoseconds, and the warehouse keeps timestamps to the microsecond; it is "
                "never rounded",
                hint="write the file with microsecond timestamps (pandas: "
                f"`df['{column}'] = df['{column}'].dt.floor('us')`; Arrow: cast to "
                "timestamp('us')), or the value as text; this load wrote nothing",
            )
