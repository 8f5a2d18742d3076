"""Turning ``stackyard source add`` options into stackyard.yml keys: helpers the source kinds
share."""

from __future__ import annotations

from collections.abc import Mapping

from stackyard.errors import UsageError


def pairs(values: list[str] | None, option: str, *, bare: bool = False) -> dict[str, str]:
    """``TABLE=VALUE`` options as a mapping (with ``bare``, a lone ``VALUE`` is table ``""``).

    >>> pairs(["orders=id"], "--primary-key")
    {'orders': 'id'}
    >>> pairs(["event_id"], "--primary-key", bare=True)
    {'': 'event_id'}

    Raises:
        UsageError: a value is not ``TABLE=VALUE``.
    """
    found: dict[str, str] = {}
    for value in values or []:
        table, sep, rest = value.partition("=")
        if bare and not sep and table:
            found[""] = table
            continue
        if not sep or not table or not rest:
            raise UsageError(f"{option} takes TABLE=VALUE, got '{value}'")
        found[table] = rest
    return found


def _only_named_tables(
    tables: list[str], keys: Mapping[str, str], cursors: Mapping[str, str]
) -> None:
    """``--cursor``/``--primary-key`` for a table not given with ``--table`` is an error:
    without ``--table`` every table is loaded in full, and the option would be lost.

    Raises:
        UsageError: an option names a table that is not given with ``--table``.
    """
    for option, given in (("--cursor", cursors), ("--primary-key", keys)):
        for table, column in given.items():
            if table not in tables:
                raise UsageError(
                    f"{option} {table}={column} names a table that is not given with --table",
                    hint=f"add --table {table} (and --table for every other table to load); "
                    "without --table every table is loaded in full, with no cursor",
                )


def _keys(declared: Mapping[str, str | list[str] | None]) -> dict[str, tuple[str, ...]]:
    """Declared keys as tuples, tables without one left out.

    >>> _keys({"a": "id", "b": ["x", "y"], "c": None})
    {'a': ('id',), 'b': ('x', 'y')}
    """
    return {t: (k,) if isinstance(k, str) else tuple(k) for t, k in declared.items() if k}
