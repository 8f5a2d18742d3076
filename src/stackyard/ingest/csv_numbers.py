"""CSV columns of doubles, read as text and checked, so that no value loads rounded.

DuckDB casts a CSV field to a double however many digits it has: ``12345678901234567890.12``
loaded as ``1.2345678901234567e+19`` and ``1e-400`` as ``0.0``, without a word. Columns that
are (or would be sniffed as) doubles are read as text instead; a value that is not a number,
or one a double does not hold as written, rejects its row with the reason, and the rest are
cast (:mod:`stackyard.ingest.json_numbers` decides what a double holds).
"""

from __future__ import annotations

import math
from typing import Any

from stackyard.ingest.json_numbers import SUSPECT, float_or_unheld
from stackyard.results import RejectedRow


def sniffed_doubles(con: Any, literal: str, options: list[str]) -> list[str]:
    """The columns DuckDB's sniffer would read from the file as doubles."""
    described = con.execute(f"DESCRIBE SELECT * FROM read_csv({literal}, {', '.join(options)})")
    return [str(row[0]) for row in described.fetchall() if str(row[1]) in ("DOUBLE", "FLOAT")]


def unheld_doubles(
    con: Any, columns: list[str], table: str, display_name: str, delimiter: str
) -> dict[int, RejectedRow]:
    """Rows of ``_rows`` whose double columns (read as text) hold something else, or a number
    a double does not hold as written, by row number (their line is found afterwards)."""
    out: dict[int, RejectedRow] = {}
    for column in columns:
        quoted = '"' + column.replace('"', '""') + '"'
        text = f"trim({quoted})"
        found = con.execute(
            f"SELECT rowid, {quoted}, TRY_CAST({text} AS DOUBLE) IS NULL, "
            f"concat_ws('{_sql(delimiter)}', *COLUMNS(*)) FROM _rows "
            f"WHERE {quoted} IS NOT NULL AND (TRY_CAST({text} AS DOUBLE) IS NULL OR "
            f"(regexp_matches({text}, '{SUSPECT}') "
            f"AND TRY_CAST({text} AS DOUBLE)::VARCHAR <> {text}))"
        ).fetchall()
        for rowid, value, not_a_number, raw in found:
            if int(rowid) in out:
                continue
            if not_a_number:
                reason = f"CAST ERROR: '{value}' is not a number (column {column} holds doubles)"
            elif _overflows(value):
                reason = (
                    f"{column} is {value.strip()}, beyond the largest double (it would load as "
                    "infinity); quote it and load the column as text to keep it"
                )
            elif isinstance(float_or_unheld(value.strip()), float):
                continue  # how a double prints itself, in other words
            else:
                reason = (
                    f"{column} is {value.strip()}, more digits than a double-precision column "
                    f"keeps (it would load as {float(value)!r}); quote it and load the column "
                    "as text to keep it exact"
                )
            out[int(rowid)] = RejectedRow(table, display_name, None, column, reason, raw)
    return out


def _overflows(value: str) -> bool:
    """A number written out (not the word inf or infinity) that a double reads as infinite."""
    text = value.strip().lower().lstrip("+-")
    return text not in ("inf", "infinity") and math.isinf(float(value))


def _sql(text: str) -> str:
    return text.replace("'", "''")
