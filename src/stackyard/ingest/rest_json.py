"""A REST API's answer read as JSON, keeping apart the records that give a name twice, or
two names dlt loads into one column.

JSON allows an object to give a name twice (``{"amount": 1, "amount": 2}``), and Python's
reader keeps the last value: the first was lost without a word. Two names that differ only
in case (``name``, ``NAME``) load into one column, so one value would be lost too. The answer
is read with a hook that notes such objects; a record holding one, at any depth, is rejected
with the reason and the record as the API sent it, and the other records load, as a JSONL
line or a stream event is. So is a record with two fields dlt's naming loads into one
column (``userName`` and ``user_name``; an object ``a`` holding ``b`` and a field
``a__b``), where dlt kept the last. An answer whose own top-level object gives a name
twice (two ``data`` arrays) stops the load, naming it: which of its records were meant
cannot be told. A record with a number no column keeps as sent (a decimal a double would
round, an integer past 64 bits, NaN) is rejected too.
"""

from __future__ import annotations

import codecs
import json
from email.message import Message
from typing import Any

from stackyard.errors import LoadError
from stackyard.ingest.json_names import NamedInTwoCases, each_name_once_in_any_case
from stackyard.ingest.json_numbers import NamedTwice, _Unheld, float_or_unheld, unfit_value
from stackyard.results import RejectedRow


class _Flagged(dict[str, Any]):
    """An object that gives a name twice, or holds one that does: its values as Python reads
    them, the name and why."""

    name: str = ""
    reason: str = ""


class _Twice(_Flagged):
    """The object that gives the name twice, with its pairs as sent."""

    def __init__(self, pairs: list[tuple[str, Any]], name: str, reason: str) -> None:
        super().__init__(pairs)
        self.pairs, self.name, self.reason = pairs, name, reason


class _Holding(_Flagged):
    """An object with a :class:`_Twice` inside it."""


def read_answer(response: Any, **kwargs: Any) -> Any:
    """``response.json()``, objects giving a name twice flagged (see the module).

    Raises:
        LoadError: the answer's top-level object gives a name twice.
    """
    flagged: list[_Twice] = []

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        try:
            return each_name_once_in_any_case(pairs)
        except (NamedTwice, NamedInTwoCases) as exc:
            twice = _Twice(pairs, exc.name, exc.reason)
            flagged.append(twice)
            return twice

    # A number a double would round stays text here, to be rejected with its record.
    kwargs.setdefault("parse_float", float_or_unheld)
    value = json.loads(_answer_text(response), object_pairs_hook=hook, **kwargs)
    if not flagged:
        return value
    if isinstance(value, _Twice):
        raise LoadError(
            f"the answer of {getattr(response, 'url', 'the API')}: {value.reason}",
            hint="ask the API's owners to send each field once; nothing of it was loaded",
        )
    return _marked(value)


def _answer_text(response: Any) -> str | bytes:
    """The answer's body for the JSON reader: decoded by the charset its ``Content-Type``
    names, where that is not a Unicode one (an API answering in ISO-8859-1); otherwise the
    bytes as sent, which the reader takes as UTF-8, -16 or -32 (RFC 8259). A header without a
    charset does not make the body Latin-1, as it does for ``requests``' ``text``."""
    content = response.content
    headers = getattr(response, "headers", None) or {}
    message = Message()
    message["content-type"] = headers.get("content-type", "")
    charset = message.get_content_charset()
    if not charset or not isinstance(content, bytes):
        return content
    try:
        name = codecs.lookup(charset).name
    except LookupError:
        return content  # a charset Python does not know: read as RFC 8259 says
    return content if name.startswith("utf") else content.decode(name)


def _marked(value: Any) -> Any:
    """``value`` with every object that holds a :class:`_Twice` made a :class:`_Holding`."""
    if isinstance(value, list):
        return [_marked(v) for v in value]
    if not isinstance(value, dict):
        return value
    items = {k: _marked(v) for k, v in value.items()}
    if isinstance(value, _Twice):
        value.update(items)
        return value
    inner = _first_flagged(list(items.values()))
    if inner is None:
        return items
    holding = _Holding(items)
    holding.name, holding.reason = inner.name, inner.reason
    return holding


def _first_flagged(values: list[Any]) -> _Flagged | None:
    for v in values:
        if isinstance(v, _Flagged):
            return v
        if isinstance(v, list):
            found = _first_flagged(v)
            if found is not None:
                return found
    return None


def without_twice_named(item: Any, table: str) -> tuple[Any, list[RejectedRow]]:
    """``item`` (a record or a page of them) without the records that give a field twice
    (flagged by :func:`read_answer`) or two fields dlt loads into one column (``userName``
    and ``user_name``, an object ``a`` holding ``b`` and a field ``a__b``: dlt kept the
    last value), and those as rejected rows."""
    from stackyard.ingest.stream_types import field_clash

    if isinstance(item, dict):
        rows, single = [item], True
    elif isinstance(item, list):
        rows, single = item, False
    else:
        return item, []
    kept: list[Any] = []
    rejected: list[RejectedRow] = []
    for row in rows:
        found: tuple[str, str] | None = None
        if isinstance(row, _Flagged):
            found = (row.name, row.reason)
        elif isinstance(row, dict):
            found = field_clash(table, row)
        if found is None:
            kept.append(row)
        else:
            rejected.append(RejectedRow(table, "", None, found[0], found[1], as_sent(row)))
    if not rejected:
        return item, []
    return (kept[0] if kept else []) if single else kept, rejected


def without_unfit_numbers(item: Any, table: str) -> tuple[Any, list[RejectedRow]]:
    """``item`` (a record or a page of them) without the records holding a number no column
    keeps as sent (:func:`~stackyard.ingest.json_numbers.unfit_value`: an integer past 64
    bits, a decimal a double would round, NaN or Infinity), and those as rejected rows. Each
    had failed the whole source, or loaded rounded or as NULL, without a word."""
    from stackyard.ingest.text_fit import set_aside_dicts

    why: dict[int, str] = {}

    def column_of(row: dict[str, Any]) -> str | None:
        found = unfit_value(row, advice=_REST_ADVICE)
        if found is None:
            return None
        why[id(row)] = found[1]
        return found[0]

    def rejected(column: str, row: dict[str, Any]) -> RejectedRow:
        return RejectedRow(table, "", None, column, why[id(row)], as_sent(row))

    return set_aside_dicts(item, column_of, rejected)


_REST_ADVICE = "the API would need to send it as a JSON string"


def as_sent(value: Any) -> str:
    """``value`` as JSON text, a name given twice written twice, as the API sent it.

    >>> as_sent(_Twice([("a", 1), ("a", 2)], "a", ""))
    '{"a": 1, "a": 2}'
    """
    if isinstance(value, _Twice):
        pairs = value.pairs
    elif isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, list):
        return "[" + ", ".join(as_sent(v) for v in value) + "]"
    elif isinstance(value, _Unheld):
        return str(value)  # a number kept as its text
    else:
        return json.dumps(value, ensure_ascii=False, default=str)
    return (
        "{"
        + ", ".join(f"{json.dumps(k, ensure_ascii=False)}: {as_sent(v)}" for k, v in pairs)
        + "}"
    )
