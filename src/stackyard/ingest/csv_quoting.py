"""Whether a CSV file's ``""`` is an empty string or a missing value.

A writer that quotes only when it must (Python's and pandas' default, Excel, most databases'
exports) writes a missing value as an empty field and an empty string as ``""``: the two
differ, and reading ``""`` as NULL (DuckDB's default) turned every empty string into NULL. A
writer that quotes every field, or every text field (``QUOTE_ALL``, ``QUOTE_NONNUMERIC``),
writes both as ``""``; there ``""`` stays NULL, as it always read.
"""

from __future__ import annotations

from collections.abc import Iterator

SAMPLE_BYTES = 1 << 16  # a few hundred records say how the writer quotes


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
