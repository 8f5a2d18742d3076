"""CSV columns of doubles, read as text and checked, so that no value loads rounded.

DuckDB casts a CSV field to a double however many digits it has: ``12345678901234567890.12``
loaded as ``1.2345678901234567e+19`` and ``1e-400`` as ``0.0``, without a word. Columns that
are (or would be sniffed as) doubles are read as text instead; a value that is not a number,
or one a double does not hold as written, rejects its row with the reason, and the rest are
cast (:mod:`stackyard.ingest.json_numbers` decides what a double holds).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from stackyard.ingest.json_numbers import SUSPECT, float_or_unheld
from stackyard.results import RejectedRow


def sniffed_types(con: Any, literal: str, options: list[str]) -> dict[str, str]:
    """The type DuckDB's sniffer would read each column of the file as."""
    described = con.execute(f"DESCRIBE SELECT * FROM read_csv({literal}, {', '.join(options)})")
    return {str(row[0]): str(row[1]) for row in described.fetchall()}


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


def unheld_decimals(
    con: Any, columns: dict[str, str], table: str, display_name: str, delimiter: str
) -> dict[int, RejectedRow]:
    """Rows of ``_rows`` whose decimal columns (``{column: "DECIMAL(p,s)"}``, read as text)
    hold something else, or a number the column holds only rounded: DuckDB casts ``2.5`` to
    ``DECIMAL(38,0)`` as 3 without a word. By row number (their line is found afterwards)."""
    out: dict[int, RejectedRow] = {}
    for column, kind in columns.items():
        precision, scale = (int(n) for n in re.findall(r"\d+", kind))
        quoted = '"' + column.replace('"', '""') + '"'
        text = f"trim({quoted})"
        # A cheap filter in the warehouse; the exact test on the few rows it lets through.
        found = con.execute(
            f"SELECT rowid, {quoted}, concat_ws('{_sql(delimiter)}', *COLUMNS(*)) FROM _rows "
            f"WHERE {quoted} IS NOT NULL AND (TRY_CAST({text} AS {kind}) IS NULL "
            f"OR regexp_matches({text}, '[eE]') "
            f"OR length(regexp_extract({text}, '\\.([0-9]*[1-9])0*$', 1)) > {scale})"
        ).fetchall()
        for rowid, value, raw in found:
            reason = decimal_misfit(value.strip(), column, precision, scale)
            if reason and int(rowid) not in out:
                out[int(rowid)] = RejectedRow(table, display_name, None, column, reason, raw)
    return out


def decimal_misfit(value: str, column: str, precision: int, scale: int) -> str | None:
    """Why ``value`` does not go into ``DECIMAL(precision, scale)`` unchanged, or None.

    >>> decimal_misfit("2.50", "qty", 38, 1) is None
    True
    >>> print(decimal_misfit("2.5", "qty", 38, 0))  # doctest: +ELLIPSIS
    qty is 2.5, more decimal places than its DECIMAL(38,0) column holds (it would load ...
    >>> print(decimal_misfit("ten", "qty", 38, 0))
    CAST ERROR: 'ten' is not a number (column qty is DECIMAL(38,0))
    """
    kind = f"DECIMAL({precision},{scale})"
    try:
        number = Decimal(value)
    except InvalidOperation:
        number = Decimal("NaN")
    if not number.is_finite():
        return f"CAST ERROR: '{value}' is not a number (column {column} is {kind})"
    exponent = int(number.normalize().as_tuple().exponent)
    if exponent < -scale:
        return (
            f"{column} is {value}, more decimal places than its {kind} column holds (it would "
            "load rounded); `stackyard reload` reads the column's type again from every file"
        )
    if abs(number) >= Decimal(10) ** (precision - scale):
        return (
            f"{column} is {value}, more digits than its {kind} column holds; `stackyard reload` "
            "reads the column's type again from every file"
        )
    return None


def _overflows(value: str) -> bool:
    """A number written out (not the word inf or infinity) that a double reads as infinite."""
    text = value.strip().lower().lstrip("+-")
    return text not in ("inf", "infinity") and math.isinf(float(value))


def _sql(text: str) -> str:
    return text.replace("'", "''")
