"""Parquet unsigned 64-bit integers past the largest signed one, refused by name.

Every target stores whole numbers as signed 64-bit integers (``BIGINT``), which is what dlt
makes of an unsigned 64-bit column: a value above 2**63 - 1 failed the load step with
DuckDB's "Type UINT64 with value … can't be cast", after dlt had printed its tracebacks.
Values that fit load as they are.
"""

from __future__ import annotations

from typing import Any

from stackyard.errors import LoadError

#: The largest value of a signed 64-bit integer.
BIGINT_MAX = 2**63 - 1


def refuse_wide_unsigned(con: Any, query: str, display_name: str) -> None:
    """Raise a :class:`LoadError` naming the file, column and value when an unsigned 64-bit
    column of the rows ``query`` reads holds a value a signed 64-bit integer cannot."""
    for column, kind, *_ in con.execute(f"DESCRIBE {query}").fetchall():
        if str(kind) != "UBIGINT":
            continue
        quoted = '"' + str(column).replace('"', '""') + '"'
        found = con.execute(
            f"SELECT {quoted} FROM ({query}) WHERE {quoted} > {BIGINT_MAX} LIMIT 1"
        ).fetchone()
        if found is not None:
            raise LoadError(
                f"file {display_name}, column '{column}': {found[0]} is beyond the largest "
                f"64-bit signed integer ({BIGINT_MAX}), the type every warehouse keeps whole "
                "numbers in; it is never wrapped or rounded",
                hint="write the column as a decimal (Arrow: decimal128(20, 0)) or as text; "
                "this load wrote nothing",
            )
