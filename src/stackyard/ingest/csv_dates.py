"""CSV dates whose day and month order DuckDB would guess, file by file.

DuckDB's sniffer picks a date format for each file from the values that file holds:
``13/04/2026`` makes it day-first, ``12/25/2026`` month-first, and a file of only
``03/04/2026``-like values reads day-first. Two files of one table then load ``03/04/2026`` as
3 April in one and 4 March in the other, without a word; ``03-04-26`` read as 26 April 2003.
So a date or timestamp column in a format that does not start with a four-digit year loads
only with the table's format set in stackyard.yml (``date_format`` / ``timestamp_format``):
without it the load stops before writing anything and says what to set. With it, every file
is read in that format, and a value not in it is rejected with its line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stackyard.errors import LoadError


@dataclass(frozen=True)
class DateFormats:
    """A table's CSV date and timestamp formats (strftime, as DuckDB reads them); ``None``:
    ISO 8601, or any format the values leave no doubt about."""

    date: str | None = None
    timestamp: str | None = None

    def options(self) -> list[str]:
        """``read_csv`` options reading the files in these formats.

        >>> DateFormats("%d/%m/%Y").options()
        ["dateformat='%d/%m/%Y'"]
        """
        chosen = (("dateformat", self.date), ("timestampformat", self.timestamp))
        return [f"{option}='{_sql(value)}'" for option, value in chosen if value]


def refuse_guessed(
    con: Any,
    literal: str,
    sniffing: list[str],
    formats: DateFormats,
    known: dict[str, str],
    table: str,
    display_name: str,
) -> None:
    """Raise a :class:`LoadError` when the file's dates (or timestamps) would be read in a
    format the sniffer guessed from this file's values and the table sets none.

    Args:
        con: a DuckDB connection.
        literal: the file's path as a SQL string literal.
        sniffing: the ``read_csv`` options the file is sniffed with (delimiter, quoting).
        formats: the table's formats, from stackyard.yml.
        known: DuckDB types of columns the table already has (a column kept as text is not
            read as dates, whatever this file holds).
        table: the table the rows are for.
        display_name: the file as the user knows it.
    """
    found = con.execute(
        f"SELECT DateFormat, TimestampFormat, Columns FROM sniff_csv({literal}, "
        f"{', '.join(sniffing)})"
    ).fetchone()
    if not found:
        return
    date_format, timestamp_format, columns = found
    sniffed = {str(c["name"]): str(c["type"]) for c in columns or []}
    for kind, guessed, setting, key in (
        ("DATE", date_format, formats.date, "date_format"),
        ("TIMESTAMP", timestamp_format, formats.timestamp, "timestamp_format"),
    ):
        if setting or not guessed or str(guessed).startswith("%Y"):
            continue
        read = [
            c
            for c in dict.fromkeys([*sniffed, *known])
            if (known.get(c) or sniffed.get(c, "")).startswith(kind)
        ]
        if not read:
            continue
        column = read[0]
        quoted = '"' + column.replace('"', '""') + '"'
        example = con.execute(
            f"SELECT {quoted} FROM read_csv({literal}, {', '.join(sniffing)}, all_varchar=true) "
            f"WHERE {quoted} IS NOT NULL LIMIT 1"
        ).fetchone()
        shown = f" like '{example[0]}'" if example else ""
        other = _swapped(str(guessed))
        raise LoadError(
            f"file {display_name}, column '{column}' of table {table}: {kind.lower()}s{shown} "
            f"are in no fixed order of day and month, and each file's are read the way its "
            f"own values suggest (this one as {guessed}), so two files could load one value "
            "as two different days; nothing is loaded until the table says which",
            hint=f"set `{key}: '{guessed}'`"
            + (f" (or '{other}')" if other != guessed else "")
            + f" on table {table} in stackyard.yml (under the source's `tables`), then run "
            "again; this load wrote nothing",
        )


def _swapped(fmt: str) -> str:
    """The same format with day and month the other way round.

    >>> _swapped("%d/%m/%Y %H:%M:%S"), _swapped("%y-%m-%d")
    ('%m/%d/%Y %H:%M:%S', '%y-%d-%m')
    """
    return fmt.replace("%d", "\0").replace("%m", "%d").replace("\0", "%m")


def _sql(text: str) -> str:
    return text.replace("'", "''")
