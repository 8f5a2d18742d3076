"""How a CSV file quotes: whether its ``""`` is an empty string or a missing value, and
which of its lines open a quoted field that never closes; and a file whose fields another
character separates than the table's ``delimiter``.

A writer that quotes only when it must (Python's and pandas' default, Excel, most databases'
exports) writes a missing value as an empty field and an empty string as ``""``: the two
differ, and reading ``""`` as NULL (DuckDB's default) turned every empty string into NULL. A
writer that quotes every field, or every text field (``QUOTE_ALL``, ``QUOTE_NONNUMERIC``),
writes both as ``""``; there ``""`` stays NULL, as it always read.
"""

from __future__ import annotations

import csv
import itertools
import sys
from collections.abc import Iterator
from typing import Any

from stackyard.errors import LoadError

# Python's reader refuses a field over 128 KiB ('field larger than field limit'), which DuckDB
# reads: a file with one such text field failed its load wherever this module read it.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))

SAMPLE_BYTES = 1 << 16  # a few hundred records say how the writer quotes
# Past this many, a file is not a few typos but quoted some other way: it is left as read.
MOST_UNCLOSED = 100
UNCLOSED_REASON = (
    "the quote opening a field on this line is never closed (its field would run on into the "
    "lines after it); fix the line and load the file again"
)


def unclosed_quotes(con: Any, literal: str, path: str, delimiter: str) -> list[tuple[int, str]]:
    """The lines (number and text) that open a quoted field which never closes where a field
    may end: its quote runs past the line's end into a record that cannot be parsed.

    One such line made DuckDB's sniffer read the whole file as unquoted: the line loaded
    with its stray quote, and every properly quoted field of the file with its quotes (or
    rejected, when it held the delimiter), without a word. Looked for only when the sniffer
    finds no quoting in a file that holds a quote, so an ordinary file costs no second read.

    Args:
        con: a DuckDB connection, for its sniffer.
        literal: the file as a SQL string literal.
        path: the local file.
        delimiter: its field delimiter (one character).
    """
    if not _holds_quote(path):
        return []
    delim = delimiter.replace("'", "''")
    try:
        quote = con.execute(f"SELECT Quote FROM sniff_csv({literal}, delim='{delim}')").fetchone()
    except Exception:  # duckdb.Error: no dialect fits, which such a line can cause too
        quote = None
    if quote is not None and quote[0] not in ("", "(empty)"):
        return []
    found: list[tuple[int, str]] = []
    start = 1
    while len(found) < MOST_UNCLOSED:
        bad = _first_unclosed(path, delimiter, start)
        if bad is None:
            break
        found.append(bad)
        start = bad[0] + 1
    return found


def _holds_quote(path: str) -> bool:
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            if b'"' in chunk:
                return True
    return False


def _first_unclosed(path: str, delimiter: str, start: int) -> tuple[int, str] | None:
    """The first line from ``start`` on whose quoted field runs past its end and breaks."""
    with open(path, encoding="utf-8", errors="replace", newline="") as handle:
        lines = itertools.islice(enumerate(handle, start=1), start - 1, None)
        opened: dict[str, Any] = {}

        def feed() -> Iterator[str]:
            for number, line in lines:
                opened.setdefault("line", (number, line))
                yield line

        reader = csv.reader(feed(), delimiter=delimiter, strict=True)
        while True:
            opened.clear()
            try:
                next(reader)
            except StopIteration:
                return None
            except csv.Error as exc:
                number, line = opened["line"]
                # A record broken on its own line (``"a"b``) is DuckDB's to reject; one whose
                # quote is still open at the file's end is not.
                ran_on = reader.line_num > number - start + 1
                if ran_on or "unexpected end of data" in str(exc):
                    return number, line.rstrip("\r\n")
                return None


def quotes_only_when_needed(path: str, delimiter: str, sample_bytes: int = SAMPLE_BYTES) -> bool:
    """Whether the file's writer left a field unquoted that a quote-everything writer would
    have quoted (an empty field, or text that is not a number), in the records after the
    header within the first ``sample_bytes``.

    Args:
        path: a local CSV file.
        delimiter: its field delimiter (one character).
        sample_bytes: how much of the file to look at.

    Returns:
        ``True`` when ``""`` in this file is an empty string.
    """
    with open(path, "rb") as handle:
        data = handle.read(sample_bytes + 1)
    whole = len(data) <= sample_bytes
    text = data[:sample_bytes].decode("utf-8", errors="replace")
    records = _records(text, delimiter, whole)
    next(records, None)  # the header: quoted by some writers that quote nothing else
    for record in records:
        for value, quoted in record:
            if not quoted and (value.strip() == "" or not _is_number(value)):
                return True
    return False


def _records(text: str, delimiter: str, whole: bool) -> Iterator[list[tuple[str, bool]]]:
    """Records as ``(value, was quoted)`` fields; a record cut by the sample's end (``whole``
    false: the file goes on) is left out."""
    pos, size = 0, len(text)
    while pos < size:
        fields: list[tuple[str, bool]] = []
        while True:
            if pos < size and text[pos] == '"':
                end = pos + 1
                while True:
                    end = text.find('"', end)
                    if end == -1:
                        return  # the sample ends inside a quoted field
                    if end + 1 < size and text[end + 1] == '"':
                        end += 2
                        continue
                    break
                fields.append((text[pos + 1 : end].replace('""', '"'), True))
                pos = end + 1
            else:
                end = pos
                while end < size and text[end] not in (delimiter, "\n", "\r"):
                    end += 1
                if end == size and not whole:
                    return  # a record that may go on past the sample
                fields.append((text[pos:end], False))
                pos = end
            if pos < size and text[pos] == delimiter:
                pos += 1
                continue
            break
        while pos < size and text[pos] in "\r\n":
            pos += 1
        if fields != [("", False)]:  # a blank line is no record
            yield fields


def _is_number(value: str) -> bool:
    """
    >>> _is_number(" 12.5"), _is_number("1e3"), _is_number("abc")
    (True, True, False)
    """
    try:
        float(value)
    except ValueError:
        return False
    return True


def refuse_other_delimiter(
    con: Any, literal: str, path: str, delimiter: str, table: str, display_name: str
) -> None:
    """Raise a :class:`LoadError` when the file's header is one field with the table's
    delimiter and several with another: a semicolon-separated export read with commas had
    every line rejected as one field too many or too few, and the load said "no rows"."""
    with open(path, encoding="utf-8", errors="replace", newline="") as file:
        header = next(csv.reader(itertools.islice(file, 1), delimiter=delimiter), [])
    if len(header) != 1:
        return
    try:
        found = con.execute(f"SELECT Delimiter, Columns FROM sniff_csv({literal})").fetchone()
    except Exception:  # duckdb.Error: no dialect fits; the read says what it finds
        return
    if found is None or found[0] == delimiter or len(found[1] or []) < 2:
        return
    other = str(found[0])
    # YAML reads "\t" as a tab only in double quotes.
    shown, yaml, flag = ("a tab", '"\\t"', "$'\\t'") if other == "\t" else (f"'{other}'",) * 3
    raise LoadError(
        f"file {display_name} of table {table}: its fields are separated by {shown}, and "
        f"the table reads them separated by '{delimiter}' (every line would be one field)",
        hint=f"set `delimiter: {yaml}` on table {table} in stackyard.yml (with "
        f"`stackyard source add`: --delimiter {flag}); this load wrote nothing",
    )
