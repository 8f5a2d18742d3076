"""Where a staged file's rows stand in the file: the line an editor shows, and the record as
the file holds it.

A file is staged into a DuckDB table whose n-th row is the n-th record the reader kept: not
a CSV's header, not a blank line, not a line set aside as rejected. A row taken out after
staging (one with no key value, say) is reported with that line and text, as the reader's
own rejects are, rather than with no line and the row re-encoded as JSON.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Collection, Iterator

# Python's reader refuses a field over 128 KiB ('field larger than field limit'), which DuckDB
# reads: a file with one such text field failed its load wherever this module read it.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def rows_in_file(
    path: str,
    file_format: str,
    delimiter: str,
    set_aside: Collection[int | None],
    rows: int,
    wanted: Collection[int],
    removed: Collection[int] = (),
) -> dict[int, tuple[int, str]]:
    """The line and text of each row in ``wanted`` (0-based row numbers of the staged table).

    Args:
        path: the local file.
        file_format: ``csv`` or ``jsonl``.
        delimiter: a CSV's field separator.
        set_aside: the lines rejected from the file before staging.
        rows: how many rows the staged table had.
        wanted: the rows to place.
        removed: lines taken out of the file before it was read as CSV at all (a quote that
            never closes, which would run to the end of the file).

    Returns:
        Row number to ``(line, text)``; empty when the file's records do not count up to
        ``rows`` (or a rejected line is not known), so that no row is given another's line.
    """
    if file_format not in ("csv", "jsonl") or None in set_aside:
        return {}
    skipped = set(set_aside)
    found: dict[int, tuple[int, str]] = {}
    row = 0
    for line, text in _records(path, file_format, delimiter, set(removed)):
        if line in skipped:
            continue
        if row in wanted:
            found[row] = (line, text)
        row += 1
    return found if row == rows else {}


def _records(
    path: str, file_format: str, delimiter: str, removed: set[int]
) -> Iterator[tuple[int, str]]:
    """Each record a reader could keep as a row: its first line and its text (without the
    line end); lines in ``removed`` are not read."""
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as handle:
        if file_format == "jsonl":
            for number, text in enumerate(handle, start=1):
                if text.strip():
                    yield number, text.rstrip("\r\n")
            return
        taken = _Taken(handle, removed)
        reader = csv.reader(taken, delimiter=delimiter)
        next(reader, None)  # the header
        taken.lines.clear()
        for record in reader:
            line = taken.first
            text = "".join(taken.lines).rstrip("\r\n")
            taken.lines.clear()
            if record:
                yield line, text


class _Taken:
    """The lines a CSV reader takes for its current record (it reads no further ahead), the
    file's number of the first, and none of the lines ``removed``."""

    def __init__(self, handle: Iterator[str], removed: set[int]) -> None:
        self.handle = handle
        self.removed = removed
        self.lines: list[str] = []
        self.first = 0
        self.number = 0

    def __iter__(self) -> _Taken:
        return self

    def __next__(self) -> str:
        line = next(self.handle)
        self.number += 1
        while self.number in self.removed:
            line = next(self.handle)
            self.number += 1
        if not self.lines:
            self.first = self.number
        self.lines.append(line)
        return line
