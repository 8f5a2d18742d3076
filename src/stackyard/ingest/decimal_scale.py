"""Python numbers their column would not keep: a ``Decimal`` with more decimal places than
its column's scale, an integer wider than a 64-bit integer column.

dlt loads a ``Decimal`` into ``DECIMAL(38, 9)`` unless the resource declares the column's
precision and scale, and every target rounds a value with more places to nine without a
word (``0.1234567890123`` loaded as ``0.123456789``). A record holding one goes to
``_rejected_rows`` with the column, the value and how to keep it whole; the others load.
An integer past the signed 64-bit range failed the whole source, naming nothing (dlt's
"Integer exceeds 64-bit range" at extract, or the target's conversion error at load).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from stackyard.results import RejectedRow

#: The scale dlt gives a decimal column whose resource does not declare one.
DEFAULT_SCALE = 9
#: What a BIGINT column holds, every target's type for a Python int.
_INT64 = range(-(2**63), 2**63)


def declared_scales(resource: Any) -> dict[str, int]:
    """The scale of each decimal column the resource declares (``columns=`` hints)."""
    columns = resource._hints.get("columns") or {}
    if not isinstance(columns, Mapping):
        return {}
    return {
        str(name): int(hint["scale"])
        for name, hint in columns.items()
        if isinstance(hint, Mapping) and hint.get("scale") is not None
    }


def past_scale(
    table: str, row: dict[str, Any], scales: Mapping[str, int]
) -> tuple[str, str] | None:
    """The column of ``row`` whose value it would not keep (a ``Decimal`` with more places, an
    integer past 64 bits), and why; None when every value fits (another column, nested ones
    included, is read as dlt reads it).

    >>> past_scale("t", {"id": 1, "p": Decimal("0.1234567890123")}, {})[0]
    'p'
    >>> past_scale("t", {"p": Decimal("0.1234567890123")}, {"p": 18}) is None
    True
    >>> past_scale("t", {"p": Decimal("1.50"), "q": Decimal("1E+3")}, {}) is None
    True
    >>> past_scale("t", {"n": 2**63}, {})[0], past_scale("t", {"n": 2**63 - 1}, {})
    ('n', None)
    """
    from stackyard.ingest.stream_types import loaded_values

    for (in_table, column), value in loaded_values(table, row):
        if isinstance(value, int) and not isinstance(value, bool) and value not in _INT64:
            return column, (
                f"{column} is {value}, wider than a 64-bit integer column holds: yield it as "
                f"a Decimal (columns={{'{column}': {{'data_type': 'decimal', 'precision': 38, "
                f"'scale': 0}}}}) or as text"
            )
        if not isinstance(value, Decimal) or not value.is_finite():
            continue
        exponent = value.as_tuple().exponent
        places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
        scale = scales.get(column, DEFAULT_SCALE) if in_table == table else DEFAULT_SCALE
        if places > scale and value != round(value, scale):
            return column, (
                f"{value} has {places} decimal places and the column {column} keeps {scale} "
                f"(DECIMAL(38, {scale})): it would be rounded; declare the column's precision "
                f"and scale in the resource (columns={{'{column}': {{'data_type': 'decimal', "
                f"'precision': 38, 'scale': {places}}}}}) or yield it as text"
            )
    return None


def without_rounded(
    item: Any, table: str, scales: Mapping[str, int]
) -> tuple[Any, list[RejectedRow]]:
    """``item`` (a row or a list of rows) without the rows :func:`past_scale` finds, and
    those as rejected rows (the record as JSON, each Decimal written out)."""
    from stackyard.ingest.text_fit import set_aside_dicts

    why: dict[int, str] = {}

    def column_of(row: dict[str, Any]) -> str | None:
        found = past_scale(table, row, scales)
        if found is None:
            return None
        why[id(row)] = found[1]
        return found[0]

    def rejected(column: str, row: dict[str, Any]) -> RejectedRow:
        raw = json.dumps(row, default=str, ensure_ascii=False)
        return RejectedRow(table, "", None, column, why[id(row)], raw)

    return set_aside_dicts(item, column_of, rejected)
