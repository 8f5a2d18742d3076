"""Reading CSV, JSONL and Parquet files into DuckDB tables, keeping rows that do not fit.

DuckDB reads the files: its CSV reader is among the fastest there is, and with
``store_rejects`` it reports every row it could not read (wrong number of fields, a value that
does not cast to the column's type) with the line number, instead of failing the file or
dropping the row silently (https://duckdb.org/docs/data/csv/reading_faulty_csv_files).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from typing import IO, Any

from stackyard.files import temporary_copy
from stackyard.ingest.csv_dates import DateFormats, refuse_guessed
from stackyard.ingest.csv_numbers import sniffed_types, unheld_decimals, unheld_doubles
from stackyard.ingest.csv_quoting import (
    UNCLOSED_REASON,
    quotes_only_when_needed,
    refuse_other_delimiter,
    unclosed_quotes,
)
from stackyard.ingest.json_numbers import original_line, without_lines
from stackyard.ingest.json_text import WHOLE_FILE
from stackyard.ingest.jsonl_files import in_column_case, stage_jsonl
from stackyard.results import RejectedRow

# dlt data types → the DuckDB type a CSV column must cast to, so that a file whose values no
# longer fit the table is caught row by row rather than silently widening the column.
_DUCKDB_TYPES = {
    "bigint": "BIGINT",
    "double": "DOUBLE",
    "bool": "BOOLEAN",
    "text": "VARCHAR",
    "timestamp": "TIMESTAMPTZ",
    "date": "DATE",
    "time": "TIME",
    "decimal": "DECIMAL(38,9)",
    "json": "JSON",
}


def duckdb_type(dlt_type: str | None) -> str | None:
    """The DuckDB type a column of a dlt data type is read as, if stackyard constrains it.

    >>> duckdb_type("bigint"), duckdb_type("json"), duckdb_type("decimal(38,0)")
    ('BIGINT', 'JSON', 'DECIMAL(38,0)')
    """
    kind = dlt_type or ""
    if kind.startswith("decimal("):
        return kind.upper()
    return _DUCKDB_TYPES.get(kind)


@contextmanager
def local_copy(file_item: Mapping[str, Any]) -> Iterator[str]:
    """A local path for a dlt ``FileItem``: the file itself when local, else a temp copy."""
    url = str(file_item["file_url"])
    if url.startswith("file://"):
        yield _local_path(url)
        return

    def download(tmp: IO[bytes]) -> None:
        with file_item.open(mode="rb") as remote:  # type: ignore[attr-defined]
            shutil.copyfileobj(remote, tmp)

    with temporary_copy(os.path.splitext(str(file_item["file_name"]))[1], download) as name:
        yield name


def _local_path(url: str) -> str:
    from urllib.parse import unquote, urlparse

    return unquote(urlparse(url).path)


def stage_file(
    con: Any,
    name: str,
    path: str,
    *,
    file_format: str,
    table: str,
    display_name: str,
    column_types: Mapping[str, str] | None = None,
    delimiter: str = ",",
    nested: set[str] | None = None,
    dates: DateFormats | None = None,
) -> list[RejectedRow]:
    """Read one file into the table ``name`` of a DuckDB connection, in file order.

    The rows stay in DuckDB (on disk when the connection is a database file), so a file of
    any size is read without holding it in Python memory; the caller streams them out in
    batches.

    Args:
        con: the DuckDB connection the table is created in.
        name: the table to create (a plain identifier).
        path: local file path.
        file_format: ``csv``, ``jsonl`` or ``parquet``.
        table: the table the rows are for (named in rejected rows).
        display_name: the file as the user knows it (relative path or URL), for messages.
        column_types: DuckDB types for columns the table already has; a CSV value that does
            not cast is rejected with its line rather than changing the column's type, and a
            JSONL field of a ``JSON`` column is read as JSON whatever its lines hold.
        delimiter: CSV field separator.
        nested: receives a JSONL file's columns of JSON values (objects, arrays, or those
            beside plain values), read as their JSON text (:mod:`stackyard.ingest.json_text`).
        dates: a CSV table's date and timestamp formats; without one, a file whose dates
            put day and month in an order only its values suggest is refused
            (:mod:`stackyard.ingest.csv_dates`).

    Returns:
        The rows that did not fit, with the reason for each.
    """
    literal = "'" + path.replace("'", "''") + "'"
    if file_format == "parquet":
        con.execute(f"CREATE TABLE {name} AS {source_query(path, file_format)}")
        return []
    if file_format == "jsonl":
        return stage_jsonl(con, name, path, table, display_name, column_types, nested)
    refuse_other_delimiter(con, literal, path, delimiter, table, display_name)
    # A line opening a quote that never closes is set aside first: with it, DuckDB read the
    # whole file as unquoted (see csv_quoting.unclosed_quotes).
    unclosed = unclosed_quotes(con, literal, path, delimiter)
    with without_lines(path, {number for number, _ in unclosed}) as readable:
        rejected = _stage_csv(
            con, name, readable, table, display_name, column_types, delimiter, dates
        )
    # Files spelling a header in different cases (`Name`, `name`) fill one column.
    in_column_case(con, name, set())
    if not unclosed:
        return rejected
    return sorted(
        [replace(r, line=original_line(r.line, [n for n, _ in unclosed])) for r in rejected]
        + [
            RejectedRow(table, display_name, number, None, UNCLOSED_REASON, text)
            for number, text in unclosed
        ],
        key=lambda r: r.line or 0,
    )


def _stage_csv(
    con: Any,
    name: str,
    path: str,
    table: str,
    display_name: str,
    column_types: Mapping[str, str] | None,
    delimiter: str,
    dates: DateFormats | None,
) -> list[RejectedRow]:
    """:func:`stage_file` for a CSV file."""
    dates = dates or DateFormats()
    literal = "'" + path.replace("'", "''") + "'"
    rejects = f"{name}_rejects"
    options = [
        "header=true",
        "store_rejects=true",
        f"rejects_table='{rejects}'",
        f"rejects_scan='{name}_scans'",
        f"delim='{_sql_char(delimiter)}'",
    ]
    # A writer that quotes only when needed tells a missing value (an empty field) from an
    # empty string (""): then "" is read as the empty string it is.
    quoting = ["allow_quoted_nulls=false"] if quotes_only_when_needed(path, delimiter) else []
    reading = [*quoting, *dates.options()]  # every read of the file reads it alike
    options += reading
    whole: list[str] = []
    known: dict[str, str] = {}
    if column_types:
        header = _csv_header(path, delimiter)
        known = {
            c: column_types[_normalise(c)]
            for c in header
            if column_types.get(_normalise(c), "JSON") != "JSON"
        }
        # DuckDB casts '10.6' to BIGINT as 11: integer columns are read as text and
        # checked, so a value that is not a whole number is rejected, never rounded.
        whole = [c for c, t in known.items() if t == "BIGINT"]
    # And it casts any number of digits to a double: double columns too (the table's, and
    # those the sniffer would pick for a new one) are read as text and checked.
    sniffing = [
        "header=true",
        "ignore_errors=true",
        f"delim='{_sql_char(delimiter)}'",
        *reading,
    ]
    # Before anything is read: dates whose order of day and month DuckDB would guess.
    refuse_guessed(con, literal, sniffing, dates, known, table, display_name)
    doubles = [c for c, t in known.items() if t == "DOUBLE"]
    sniffed = {c: t for c, t in sniffed_types(con, literal, sniffing).items() if c not in known}
    doubles += [c for c, t in sniffed.items() if t in ("DOUBLE", "FLOAT")]
    # And rounds a decimal to the column's scale: decimal columns too.
    decimals = {c: t for c, t in known.items() if t.startswith("DECIMAL")}
    # The sniffer reads `02` as text but `-05` as -5: a new column of whole numbers is read
    # as text too, and stays text when a value has a leading zero (as `02` makes it).
    integers = [c for c, t in sniffed.items() if t == "BIGINT"]
    known |= {c: "VARCHAR" for c in [*whole, *doubles, *decimals, *integers]}
    if known:
        pairs = ", ".join(f"'{_sql_char(c)}': '{t}'" for c, t in known.items())
        options.append(f"types={{{pairs}}}")
    con.execute(f"CREATE TABLE _rows AS SELECT * FROM read_csv({literal}, {', '.join(options)})")
    whole += _unpadded(con, integers)
    bad = _not_whole_numbers(con, whole, table, display_name, delimiter)
    bad = unheld_doubles(con, doubles, table, display_name, delimiter) | bad
    bad = unheld_decimals(con, decimals, table, display_name, delimiter) | bad
    if bad:
        con.execute("CREATE TABLE _bad AS SELECT unnest($ids::BIGINT[]) AS id", {"ids": list(bad)})
    con.execute(f"CREATE TABLE {name} AS {_kept_select(whole, doubles, decimals, bool(bad))}")
    con.execute("DROP TABLE _rows")
    con.execute("DROP TABLE IF EXISTS _bad")
    found = con.sql(
        "SELECT line, string_agg(column_name, ', ' ORDER BY column_idx), "
        "string_agg(DISTINCT error_type::VARCHAR, ', '), "
        "string_agg(DISTINCT error_message, '; '), any_value(csv_line), "
        f"min(line_byte_position) FROM {rejects} GROUP BY line ORDER BY line"
    ).fetchall()
    # DuckDB counts records, not lines, and rebuilds the record it quotes: the line an
    # editor shows and the record as the file holds it are read from the file itself.
    records = _records_at(path, delimiter, [int(r[5]) for r in found if r[5] is not None])
    rejected = [
        RejectedRow(
            table=table,
            file=display_name,
            line=records[start][0] if start in records else int(line),
            column=column,
            reason=f"{error_type}: {message}",
            raw=records[start][1] if start in records else raw,
        )
        # One row per rejected line: DuckDB lists an error per bad column, and a line
        # with two bad values is still one row not loaded.
        for line, column, error_type, message, raw, start in found
    ]
    con.execute(f"DROP TABLE {rejects}")
    con.execute(f"DROP TABLE {name}_scans")
    if bad:
        records = _rows_in_file(path, delimiter, {r.line for r in rejected}, set(bad))
        for rowid, row in bad.items():
            line, raw = records.get(rowid, (None, row.raw))
            rejected.append(replace(row, line=line, raw=raw))
        rejected.sort(key=lambda r: r.line or 0)
    return rejected


def source_query(path: str, file_format: str) -> str:
    """The query reading a Parquet or JSONL file as it is.

    >>> source_query("/d/a.parquet", "parquet")
    "SELECT * FROM read_parquet('/d/a.parquet')"
    """
    literal = "'" + path.replace("'", "''") + "'"
    if file_format == "parquet":
        return f"SELECT * FROM read_parquet({literal})"
    return f"SELECT * FROM read_json({literal}, {WHOLE_FILE})"


_WHOLE = "'^\\s*[+-]?[0-9]+\\s*$'"
# A whole number written with a leading zero (``02``, ``007``): an integer column would hold
# another text (``2``), so an identifier ``02`` would merge onto the key ``2``. A first load
# keeps such a column as text; a later file's value is rejected, as one that does not cast.
_PADDED = "'^\\s*[+-]?0[0-9]'"


def _records_at(path: str, delimiter: str, starts: list[int]) -> dict[int, tuple[int, str]]:
    """For each byte offset where a record starts, its line as an editor numbers it and the
    record's text as the file holds it (all its lines, for a quoted field over several)."""
    import csv
    import io

    out: dict[int, tuple[int, str]] = {}
    if not starts:
        return out
    with open(path, "rb") as handle:
        data = handle.read()
    line, counted = 1, 0
    for given in sorted(set(starts)):
        # DuckDB's offset is the record's first byte or the one after it, depending on the
        # line ends: the record starts after the last line end before it.
        start = data.rfind(b"\n", 0, min(given, len(data))) + 1
        line += data.count(b"\n", counted, start)
        counted = start
        text = data[start:].decode("utf-8", errors="replace")
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        next(reader, None)
        span = max(reader.line_num, 1)
        out[given] = (line, "\n".join(text.split("\n", span)[:span]).rstrip("\r"))
    return out


def _rows_in_file(
    path: str, delimiter: str, rejected_lines: set[int | None], rowids: set[int]
) -> dict[int, tuple[int, str]]:
    """The file line of each row of ``_rows`` (the n-th record the reader kept, not the
    header, not a blank line, not a line it rejected, is row n) and its record as the file
    holds it: rebuilt from its values, a quoted field lost its quotes and read back as CSV
    the record had a field more."""
    import csv

    spans: dict[int, tuple[int, int]] = {}
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        next(reader, None)
        row = 0
        start = reader.line_num + 1
        for record in reader:
            line, start = start, reader.line_num + 1
            if not record or line in rejected_lines:
                continue
            if row in rowids:
                spans[row] = (line, reader.line_num)
            row += 1
    wanted = {n for first, last in spans.values() for n in range(first, last + 1)}
    texts: dict[int, str] = {}
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        for number, text in enumerate(handle, start=1):
            if number in wanted:
                texts[number] = text
    return {
        row: (first, "".join(texts.get(n, "") for n in range(first, last + 1)).rstrip("\r\n"))
        for row, (first, last) in spans.items()
    }


def _unpadded(con: Any, columns: list[str]) -> list[str]:
    """Of ``_rows``' columns (whole numbers read as text), those with no leading zero."""
    if not columns:
        return []
    quoted = ['"' + c.replace('"', '""') + '"' for c in columns]
    padded = ", ".join(f"bool_or(regexp_matches({q}, {_PADDED}))" for q in quoted)
    found = con.execute(f"SELECT {padded} FROM _rows").fetchall()[0]
    return [c for c, has in zip(columns, found, strict=True) if not has]


def _not_whole_numbers(
    con: Any, columns: list[str], table: str, display_name: str, delimiter: str
) -> dict[int, RejectedRow]:
    """Rows of ``_rows`` whose integer columns hold something else (e.g. ``10.6``), by row
    number (their line is found afterwards)."""
    out: dict[int, RejectedRow] = {}
    seen: set[int] = set()
    for column in columns:
        quoted = '"' + column.replace('"', '""') + '"'
        found = con.execute(
            f"SELECT rowid, {quoted}, TRY_CAST(trim({quoted}) AS BIGINT) IS NOT NULL, "
            f"concat_ws('{_sql_char(delimiter)}', *COLUMNS(*)) FROM _rows "
            f"WHERE {quoted} IS NOT NULL AND (NOT regexp_matches({quoted}, {_WHOLE}) "
            f"OR TRY_CAST(trim({quoted}) AS BIGINT) IS NULL "
            f"OR regexp_matches({quoted}, {_PADDED}))"
        ).fetchall()
        for rowid, value, fits, raw in found:
            if rowid in seen:
                continue
            seen.add(rowid)
            out[int(rowid)] = RejectedRow(
                table=table,
                file=display_name,
                line=None,
                column=column,
                reason=_not_whole_reason(value, column, fits),
                raw=raw,
            )
    return out


def _not_whole_reason(value: str, column: str, fits: bool) -> str:
    """Why ``value`` (a field of an integer column; ``fits``: it casts to a BIGINT) does not
    load as written.

    >>> print(_not_whole_reason("007", "sku", True))  # doctest: +ELLIPSIS
    CAST ERROR: '007' has a leading zero, which column sku (BIGINT) does not keep: ...
    >>> print(_not_whole_reason("10.6", "qty", False))  # doctest: +ELLIPSIS
    CAST ERROR: '10.6' is not a whole number (column qty is BIGINT); rounding it ...
    """
    text = value.strip()
    if re.fullmatch(r"[+-]?[0-9]+", text) is None:
        return (
            f"CAST ERROR: '{value}' is not a whole number (column {column} is BIGINT); "
            "rounding it would change the value"
        )
    if not fits:
        return (
            f"CAST ERROR: '{text}' is wider than a 64-bit integer column holds "
            f"(column {column} is BIGINT)"
        )
    reason = (
        f"CAST ERROR: '{text}' has a leading zero, which column {column} (BIGINT) does not "
        f"keep: it would load as {int(text)}, another value"
    )
    # Read together with the others, files with such values make the column text.
    return reason + "; `stackyard reload` reads the column's type again from every file"


def _kept_select(
    whole: list[str], doubles: list[str], decimals: Mapping[str, str], bad: bool
) -> str:
    """The rows of ``_rows`` not in ``_bad``, integer, double and decimal columns cast back."""
    quote = '"{}"'.format
    casts = [f"CAST(trim({quote(c)}) AS BIGINT) AS {quote(c)}" for c in whole]
    casts += [f"CAST(trim({quote(c)}) AS DOUBLE) AS {quote(c)}" for c in doubles]
    casts += [f"CAST(trim({quote(c)}) AS {t}) AS {quote(c)}" for c, t in decimals.items()]
    replace = f" REPLACE ({', '.join(casts)})" if casts else ""
    where = " WHERE rowid NOT IN (SELECT id FROM _bad)" if bad else ""
    return f"SELECT *{replace} FROM _rows{where} ORDER BY rowid"


def _csv_header(path: str, delimiter: str) -> list[str]:
    import csv

    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        return next(csv.reader(handle, delimiter=delimiter), [])


def _sql_char(text: str) -> str:
    return text.replace("'", "''")


def _normalise(column: str) -> str:
    # dlt's snake_case naming: "Order ID" arrives as order_id.
    from dlt.common.normalizers.naming.snake_case import NamingConvention

    return NamingConvention().normalize_identifier(column)
