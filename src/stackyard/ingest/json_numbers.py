"""JSON numbers no warehouse column holds as written, found before they load changed.

JSON allows any number; a warehouse column does not. An integer wider than 64 bits, a decimal
with more digits than a double keeps, or a number that is not finite (NaN, Infinity, 1e400)
used to load rounded, as NULL, or to fail every later run. A stream's events and a JSONL
file's lines that hold one go to ``_rejected_rows`` instead, saying which value and why.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import IO, Any

from stackyard.files import temporary_copy
from stackyard.ingest.json_text import WHOLE_FILE
from stackyard.results import RejectedRow

# The widest integer a warehouse column holds (BIGINT). JSON allows any: a wider one made the
# load fail on every run after, the message never acknowledged and the stream stuck behind it.
_INT64 = (-(2**63), 2**63 - 1)


# Any decimal of at most this many significant digits comes back from a double unchanged
# (DBL_DIG); a longer one does only when it is how a double prints itself.
_DOUBLE_DIGITS = 15

# A number that may be one of those has more than _DOUBLE_DIGITS digits (with its point),
# an exponent of three digits (a double ends near 1e308), or is a word JSON's parsers accept
# for a non-finite number. DuckDB finds them (a scan in Python read a file full of doubles
# printed in full at a fifth of the speed DuckDB loads it) and passes over the ones that are
# a 64-bit integer or how a double prints itself; the lines left are parsed here.
SUSPECT = r"[0-9][0-9.]{15,}(?:[eE][+-]?[0-9]+)?|[0-9][0-9.]{0,14}[eE][+-]?[0-9]{3,}|NaN|Infinity"


class _Unheld(str):
    """A JSON number a double cannot hold without rounding, kept as its text to be rejected."""


def float_or_unheld(token: str) -> float | str:
    """A JSON decimal as a float, or as its text (an ``_Unheld``) when a float would round
    it: a double keeps 15 to 17 significant digits, and an amount written with more (or an
    integer part past 2**53) was loaded rounded without a word. For ``json.loads``'s
    ``parse_float``.

    Seventeen-digit text a double printed (``0.30000000000000004``, or C's ``%.17g`` of 0.1)
    is that double exactly, and is kept.

    >>> float_or_unheld("0.1"), float_or_unheld("0.10000000000000001")
    (0.1, 0.1)
    >>> float_or_unheld("12345678901234567890.12"), float_or_unheld("1e-400")
    ('12345678901234567890.12', '1e-400')
    """
    number = float(token)
    plain = "e" not in token and "E" not in token
    if (plain and len(token) <= _DOUBLE_DIGITS) or not math.isfinite(number):
        return number
    from decimal import Decimal

    exact = Decimal(token)
    # With an exponent, a short number may still be out of range (1e-400 reads as 0.0).
    if plain and len(exact.normalize().as_tuple().digits) <= _DOUBLE_DIGITS:
        return number
    if exact in (Decimal(repr(number)), Decimal(format(number, ".17g"))):
        return number
    return _Unheld(token)


def unfit_value(
    payload: dict[str, Any],
    prefix: str = "",
    advice: str = "send it as a JSON string",
    doubles: Collection[str] = (),
) -> tuple[str, str] | None:
    """The first value no warehouse column can hold as it is, and why: an integer wider than
    64 bits, a decimal with more digits than a double keeps (:func:`float_or_unheld`), or a
    number that is not finite (JSON's NaN and Infinity, or 1e400), which would otherwise be
    loaded as NULL without a word. ``payload`` is parsed with ``parse_float=float_or_unheld``.
    An integer in a column of ``doubles`` is judged by what a double keeps.

    >>> unfit_value({"id": 1, "big": 12345678901234567890})
    ('big', 'big is 12345678901234567890, wider than a 64-bit integer column holds')
    >>> unfit_value({"id": 1, "amount": {"net": float("nan")}})
    ('amount__net', 'amount__net is nan, not a finite number')
    >>> unfit_value({"amt": 12345678901234567890}, doubles={"amt"})[1][:66]
    'amt is 12345678901234567890, more digits than a double-precision c'
    """
    for name, value in payload.items():
        column = f"{prefix}{name}"
        # A list is a child table: its objects' values are columns there, its scalars `value`.
        inside = value if isinstance(value, list) else [value] if isinstance(value, dict) else []
        for item in inside:
            wrapped = item if isinstance(item, dict) else {"value": item}
            found = unfit_value(wrapped, f"{column}__", advice, doubles)
            if found is not None:
                return found
        if isinstance(value, bool):
            continue
        elif isinstance(value, int) and not _INT64[0] <= value <= _INT64[1]:
            if column in doubles:
                return column, _more_digits(column, value, advice)
            return column, f"{column} is {value}, wider than a 64-bit integer column holds"
        elif isinstance(value, float) and not math.isfinite(value):
            return column, f"{column} is {value}, not a finite number"
        elif isinstance(value, _Unheld):
            return column, _more_digits(column, value, advice)
    return None


def _more_digits(column: str, value: str | int, advice: str) -> str:
    return (
        f"{column} is {value}, more digits than a double-precision column keeps (it "
        f"would load as {float(value)!r}); {advice} to keep it exact"
    )


def unfit_lines(
    con: Any,
    path: str,
    table: str,
    display_name: str,
    column_types: Mapping[str, str] | None = None,
) -> list[RejectedRow]:
    """The lines of a JSONL file that hold a number no column keeps as written
    (:func:`unfit_value`), one rejected row each with its line number.

    Args:
        con: a DuckDB connection to search the file with.
        path: the local file.
        table: the table its rows are for.
        display_name: the file as the user knows it.
        column_types: DuckDB types of the table's columns (by dlt's names): a field of a
            ``DOUBLE`` column is judged by what a double keeps, whatever the file holds.
    """
    literal = _literal(path)
    table_doubles = {c for c, t in (column_types or {}).items() if t == "DOUBLE"}
    doubles, mixed = _double_paths(con, literal, table_doubles)
    # A 64-bit integer is held as written, unless it lands where the reader keeps doubles
    # (a field with fractions elsewhere in the file) and a double cannot hold it.
    held_integer = "regexp_full_match(token, '[0-9]+') AND TRY_CAST(token AS BIGINT) IS NOT NULL"
    if doubles or mixed:
        held_integer += " AND TRY_CAST(TRY_CAST(token AS DOUBLE) AS HUGEINT)::VARCHAR = token"
    suspects = [
        text
        for (text,) in con.execute(
            "SELECT DISTINCT line FROM (SELECT json::VARCHAR AS line, "
            f"unnest(regexp_extract_all(json::VARCHAR, '{SUSPECT}')) AS token "
            f"FROM read_json_objects({literal}, format='newline_delimited', "
            "ignore_errors=true)) "
            f"WHERE NOT coalesce({held_integer}, false) "
            "AND TRY_CAST(token AS DOUBLE)::VARCHAR IS DISTINCT FROM token"
        ).fetchall()
    ]
    rejected: list[RejectedRow] = []
    # The reader types the file without the rejected lines, and a field may then hold
    # doubles or not (a rejected line was its only fraction): judged again on those types.
    for _ in range(3):
        unfit = {}
        for text in suspects:
            found = _unfit_line(text, doubles)
            if found is not None:
                unfit[_plain(text)] = found
        rejected = _numbered(path, unfit, doubles, table, display_name)
        if not rejected:
            return []
        with without_lines(path, {r.line for r in rejected}) as rest:
            now, _ = _double_paths(con, _literal(rest), table_doubles)
        if now == doubles:
            break
        doubles = now
    return rejected


def _numbered(
    path: str,
    unfit: dict[str, tuple[str, str]],
    doubles: frozenset[tuple[str, ...]],
    table: str,
    display_name: str,
) -> list[RejectedRow]:
    """The rejected rows of the lines ``unfit`` names (by text), with their line numbers."""
    if not unfit:
        return []
    # Rare: find the lines' numbers by reading the file once. Each line is matched by its
    # text; a line the reader's text did not match (it may tidy a line) is found by parsing
    # every line, so that no such number ever loads rounded.
    rejected = []
    matched = set()
    for number, text in _lines(path):
        if text in unfit:
            matched.add(text)
            column, reason = unfit[text]
            rejected.append(RejectedRow(table, display_name, number, column, reason, text))
    if len(matched) < len(unfit):
        rejected = []
        for number, text in _lines(path):
            found = _unfit_line(text, doubles) if text else None
            if found is not None:
                rejected.append(RejectedRow(table, display_name, number, *found, text))
    return rejected


@contextmanager
def without_lines(path: str, numbers: set[int | None]) -> Iterator[str]:
    """``path``, or a temporary copy of it without the lines ``numbers`` (1-based)."""
    if not numbers:
        yield path
        return

    def kept(tmp: IO[bytes]) -> None:
        with open(path, "rb") as source:
            tmp.writelines(
                line for number, line in enumerate(source, start=1) if number not in numbers
            )

    with temporary_copy(os.path.splitext(path)[1], kept) as name:
        yield name


def original_line(line: int | None, removed: Sequence[int]) -> int | None:
    """A line of a copy without the lines ``removed`` (ascending) as the file numbers it.

    >>> original_line(3, [1, 4]), original_line(None, [1])
    (5, None)
    """
    if line is None:
        return None
    for number in removed:
        if number <= line:
            line += 1
    return line


def _literal(path: str) -> str:
    return "'" + path.replace("'", "''") + "'"


def _lines(path: str) -> Iterator[tuple[int, str]]:
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            yield number, _plain(raw.decode("utf-8", errors="replace"))


def _plain(text: str) -> str:
    """A line without its end, surrounding blanks and a byte-order mark."""
    return text.strip().lstrip("\ufeff").strip()


class NamedTwice(ValueError):
    """A JSON object that gives one name twice (``{"a": 1, "a": 2}``)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name
        self.reason = f"the field {name} appears twice in one object: one value would be lost"


def each_name_once(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # JSON allows a name twice and Python keeps the last value: the other was lost unseen.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise NamedTwice(name)
            seen.add(name)
    return obj


# What a JSON line that is not an object is, in a rejected row's reason.
_KINDS = {list: "an array", str: "a string", bool: "true or false", type(None): "null"}
NOT_AN_OBJECT = (
    "the line is JSON but not an object (a row is an object of fields: {{...}}); it is {kind}"
)


def not_object_lines(con: Any, path: str, table: str, display_name: str) -> list[RejectedRow]:
    """The lines of a JSONL file that are JSON but not an object (``[1, 2]``, ``"text"``,
    ``3``), one rejected row each with its line number. DuckDB's reader, given one such line,
    reads the whole file into a single ``json`` column and every field's column is gone.
    A line that is not JSON is left to the reader, which names it.

    Args:
        con: a DuckDB connection to search the file with.
        path: the local file (without a byte-order mark).
        table: the table its rows are for.
        display_name: the file as the user knows it.
    """
    (found,) = con.execute(
        f"SELECT count(*) FROM read_json_objects({_literal(path)}, "
        "format='newline_delimited', ignore_errors=true) WHERE json_type(json) <> 'OBJECT'"
    ).fetchone()
    if not found:
        return []  # the usual file pays one pass at DuckDB's speed
    rejected = []
    for number, text in _lines(path):
        if not text or text.startswith("{"):
            continue
        try:
            value = json.loads(text)
        except ValueError:
            continue
        reason = NOT_AN_OBJECT.format(kind=_KINDS.get(type(value), "a number"))
        rejected.append(RejectedRow(table, display_name, number, None, reason, text))
    return rejected


def _unfit_line(line: str, doubles: frozenset[tuple[str, ...]]) -> tuple[str, str] | None:
    try:
        payload = json.loads(line, parse_float=float_or_unheld)
    except ValueError:
        return None
    if not isinstance(payload, dict):
        return None
    columns = {"__".join(p for p in path if p != "[]") for path in doubles}
    found = unfit_value(payload, advice="write it as a JSON string", doubles=columns)
    return found if found is not None or not doubles else _rounded_integer(payload, doubles)


def _double_paths(
    con: Any, literal: str, table_doubles: Collection[str] = ()
) -> tuple[frozenset[tuple[str, ...]], bool]:
    """Where the reader puts doubles: each path of field names (``"[]"`` for a list's items)
    whose type it reads as DOUBLE, or whose column the table holds as doubles
    (``table_doubles``, by dlt's names: a file's whole numbers there are cast to doubles);
    and whether some field is read as JSON (mixed types, which may read as doubles once a
    line is left out). Nothing when the file cannot be read (its load says why)."""
    from stackyard.ingest.json_text import column_name

    try:
        relation = con.sql(f"SELECT * FROM read_json({literal}, {WHOLE_FILE})")
        columns = list(zip(relation.columns, relation.types, strict=True))
    except Exception:
        # Typed past the lines it cannot type (a nested name in two cases), or nothing: the
        # load reports the file's own error.
        try:
            relation = con.sql(
                f"SELECT * FROM read_json({literal}, {WHOLE_FILE}, ignore_errors=true)"
            )
            columns = list(zip(relation.columns, relation.types, strict=True))
        except Exception:
            return frozenset(), False
    found: set[tuple[str, ...]] = set()
    mixed = False

    def walk(kind: Any, path: tuple[str, ...]) -> None:
        nonlocal mixed
        if kind.id in ("double", "float"):
            found.add(path)
        elif kind.id == "struct":
            for name, child in kind.children:
                walk(child, (*path, name))
        elif kind.id == "list":
            walk(kind.children[0][1], (*path, "[]"))
        elif str(kind) == "JSON":
            mixed = True

    for name, kind in columns:
        walk(kind, (name,))
        if column_name(name) in table_doubles:
            found.add((name,))
    return frozenset(found), mixed


def _rounded_integer(
    value: Any, doubles: frozenset[tuple[str, ...]], path: tuple[str, ...] = ()
) -> tuple[str, str] | None:
    """The first integer that lands in a double (a path of ``doubles``) and that a double
    does not hold, and why."""
    if isinstance(value, dict):
        for name, item in value.items():
            found = _rounded_integer(item, doubles, (*path, name))
            if found is not None:
                return found
    elif isinstance(value, list):
        for item in value:
            found = _rounded_integer(item, doubles, (*path, "[]"))
            if found is not None:
                return found
    elif (
        isinstance(value, int)
        and not isinstance(value, bool)
        and path in doubles
        and int(float(value)) != value
    ):
        column = "__".join(p for p in path if p != "[]")
        return column, (
            f"{column} is {value}, more digits than a double-precision column keeps (the "
            f"field is read as a double, as the table's column or fractions elsewhere in the "
            f"file make it, and would load as {float(value)!r}); write it as a JSON string "
            "to keep it exact"
        )
    return None
