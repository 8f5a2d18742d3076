"""The field names of a JSONL file's lines: given twice, or in two cases.

A warehouse keeps column names without their case (DuckDB compares them so, and dlt's naming
writes ``NAME`` as ``name``), so fields whose names differ only in case are one column:

- in one object (``{"name": "a", "NAME": "b"}``, at any depth) one value would be lost, and
  DuckDB refused a nested one ("Duplicate name in struct"), failing the whole file: the line is
  rejected, as one giving a name twice is;
- in different lines (``name`` in some, ``NAME`` in others) they are one field: each top-level
  field is read under its column's name as dlt writes it, whatever the lines' order. DuckDB
  read them as two columns (``name`` and ``NAME_1``, named by which line came first) and, where
  the file has nested values, put the second spelling's values nowhere (NULL).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any

from stackyard.files import temporary_copy
from stackyard.ingest.json_numbers import NamedTwice, each_name_once
from stackyard.results import RejectedRow


class NamedInTwoCases(ValueError):
    """A JSON object with two names that differ only in case (``{"a": 1, "A": 2}``)."""

    def __init__(self, first: str, second: str) -> None:
        super().__init__(second)
        self.name = second
        self.reason = (
            f"the fields {first} and {second} of one object differ only in case, and a "
            "warehouse does not tell column names apart by case: one value would be lost"
        )


def each_name_once_in_any_case(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """:func:`stackyard.ingest.json_numbers.each_name_once`, names compared without case too.

    >>> each_name_once_in_any_case([("a", 1), ("b", 2)])
    {'a': 1, 'b': 2}
    >>> each_name_once_in_any_case([("name", 1), ("NAME", 2)])
    Traceback (most recent call last):
    ...
    stackyard.ingest.json_names.NamedInTwoCases: NAME
    """
    obj = each_name_once(pairs)
    if len(pairs) > 1 and len({name.lower() for name, _ in pairs}) < len(pairs):
        seen: dict[str, str] = {}
        for name, _ in pairs:
            first = seen.setdefault(name.lower(), name)
            if first != name:
                raise NamedInTwoCases(first, name)
    return obj


@dataclass(frozen=True)
class FieldNames:
    """What :func:`field_names` found: the lines to reject, and the top-level fields to read
    under their column's name (each spelling of a name another line spells in another case)."""

    rejected: list[RejectedRow] = field(default_factory=list)
    renamed: dict[str, str] = field(default_factory=dict)


def field_names(path: str, table: str, display_name: str) -> FieldNames:
    """Check every line's field names: a line whose object gives a name twice or in two cases,
    at any depth, is rejected with its line number, and so is a line that is not JSON; a
    top-level name other lines spell in another case is to be read under its column's name.

    Args:
        path: the local file (without a byte-order mark).
        table: the table its rows are for.
        display_name: the file as the user knows it.
    """
    from stackyard.ingest.json_text import column_name

    rejected = []
    known: set[str] = set()  # the top-level names of every line
    spellings: dict[str, set[str]] = {}
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8").strip().lstrip("\ufeff").strip()
            except UnicodeDecodeError as exc:
                # DuckDB refuses the file over it, naming a line its own way.
                reason = f"the line is not UTF-8 text (byte {exc.start + 1} of the line)"
                text = raw.decode("utf-8", errors="replace").strip()
                rejected.append(RejectedRow(table, display_name, number, None, reason, text))
                continue
            try:
                # strict=False: a control character inside a string, as DuckDB reads it.
                payload = json.loads(
                    text, object_pairs_hook=each_name_once_in_any_case, strict=False
                )
            except (NamedTwice, NamedInTwoCases) as exc:
                rejected.append(
                    RejectedRow(table, display_name, number, exc.name, exc.reason, text)
                )
                continue
            except ValueError as exc:
                if text:
                    rejected.append(
                        RejectedRow(table, display_name, number, None, _malformed(exc), text)
                    )
                continue
            if isinstance(payload, dict) and not known.issuperset(payload):
                known.update(payload)
    for name in known:
        spellings.setdefault(name.lower(), set()).add(name)
    renamed = {
        name: column_name(name)
        for names in spellings.values()
        if len(names) > 1
        for name in names
        if column_name(name) != name
    }
    return FieldNames(rejected, renamed)


def _malformed(exc: ValueError) -> str:
    """The reason a line that is not JSON is rejected.

    >>> _malformed(json.JSONDecodeError("Expecting value", '{"a": }', 6))
    'the line is not JSON: Expecting value at column 7'
    """
    why = f"{exc.msg} at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else exc
    return f"the line is not JSON: {why}"


def renamed_in_other_case(columns: list[str]) -> bool:
    """Whether DuckDB read a file's columns with a name in two cases: it keeps the first
    spelling and numbers the next (``name``, ``NAME_1``).

    >>> renamed_in_other_case(["id", "name", "NAME_1"]), renamed_in_other_case(["a", "b_1"])
    (True, False)
    """
    lowered = {c.lower() for c in columns}
    for column in columns:
        found = re.fullmatch(r"(.+)_[0-9]+", column)
        if found is not None and found.group(1).lower() in lowered:
            return True
    return False


# A JSON string, or a bracket that opens or closes an object or array.
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[{}\[\]]')
_COLON = re.compile(rb"\s*:")


def rename_fields(line: bytes, renamed: Mapping[str, str]) -> bytes:
    """A JSONL line with its top-level fields ``renamed``, every value as the line writes it
    (read and written again, a number could change).

    >>> rename_fields(b'{"NAME": "NAME", "m": {"NAME": 1}}', {"NAME": "name"})
    b'{"name": "NAME", "m": {"NAME": 1}}'
    """
    out = []
    depth = 0
    last = 0
    for token in _TOKENS.finditer(line):
        text = token.group()
        if text in (b"{", b"["):
            depth += 1
        elif text in (b"}", b"]"):
            depth -= 1
        elif depth == 1 and _COLON.match(line, token.end()):
            name = json.loads(text)
            if name in renamed:
                out += [line[last : token.start()], json.dumps(renamed[name]).encode()]
                last = token.end()
    out.append(line[last:])
    return b"".join(out)


@contextmanager
def with_fields_renamed(path: str, renamed: Mapping[str, str]) -> Iterator[str]:
    """``path``, or a temporary copy of it with each line's top-level fields ``renamed``."""
    if not renamed:
        yield path
        return

    def copy(tmp: IO[bytes]) -> None:
        with open(path, "rb") as source:
            tmp.writelines(rename_fields(line, renamed) for line in source)

    with temporary_copy(os.path.splitext(path)[1], copy) as name:
        yield name
