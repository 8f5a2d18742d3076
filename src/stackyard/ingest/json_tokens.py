"""JSONL numbers that load into a text column, kept as the line writes them.

A field holding numbers in some lines (or files) and strings in others loads as text. DuckDB
reads a JSON number into a double before it becomes text, so ``5.10`` loaded as ``5.1``,
``1e3`` as ``1000.0`` and ``1.10`` (a version) as ``1.1``: another value. Such a file is read
from a copy in which those fields' numbers are JSON strings of their own text; every other
byte of a line that needs no change, and the number of lines, are as the file has them, so
the line numbers of rejected rows stay the file's.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import IO, Any

from stackyard.files import temporary_copy


class _Token(str):
    """A JSON number's text, as written."""


class _Pairs(list[tuple[str, Any]]):
    """A JSON object's names and values in the order written (a name given twice kept)."""


@contextmanager
def numbers_as_written(path: str, fields: Collection[str]) -> Iterator[str]:
    """A temporary copy of the JSONL file at ``path`` whose top-level ``fields`` hold each
    number as a JSON string of its text.

    >>> _line('{"v": 5.10, "w": 1e3, "n": {"x": 1.50}}', {"v", "w"})
    '{"v": "5.10", "w": "1e3", "n": {"x": 1.50}}'
    """
    wanted = set(fields)

    def copy(tmp: IO[bytes]) -> None:
        with open(path, "rb") as source:
            for raw in source:
                try:
                    changed = _line(raw.decode("utf-8"), wanted)
                except ValueError:  # not UTF-8, not JSON: left for the reader to name
                    changed = None
                if changed is None:
                    tmp.write(raw)
                else:
                    tmp.write(changed.encode("utf-8") + (b"\n" if raw.endswith(b"\n") else b""))

    with temporary_copy(os.path.splitext(path)[1], copy) as name:
        yield name


def _line(text: str, fields: set[str]) -> str | None:
    """The line with its numbers in ``fields`` as strings; None when it needs no change."""
    if not text.strip():
        return None
    value = json.loads(
        text, object_pairs_hook=_Pairs, parse_int=_Token, parse_float=_Token, parse_constant=_Token
    )
    if not isinstance(value, _Pairs) or not any(
        k in fields and isinstance(v, _Token) for k, v in value
    ):
        return None
    parts = (
        f"{_text(k)}: {json.dumps(str(v)) if k in fields and isinstance(v, _Token) else _text(v)}"
        for k, v in value
    )
    return "{" + ", ".join(parts) + "}"


def _text(value: Any) -> str:
    """``value`` (as :func:`_line` reads it) as JSON text, numbers as written."""
    if isinstance(value, _Token):
        return str(value)
    if isinstance(value, _Pairs):
        return "{" + ", ".join(f"{_text(k)}: {_text(v)}" for k, v in value) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)
