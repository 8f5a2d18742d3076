"""Rows whose cursor moved upstream out of a backfill's range: found by key, re-loaded.

A backfill of ``[start, end)`` deletes the table's rows in that range and inserts what the
source holds there now. A row whose cursor moved upstream to before the range (a corrected
``created_at``) is in neither: deleted with its window and not extracted again, and no
incremental run reads it back either, since its new cursor value is behind the table's
state. So the keys that left the range are looked up in the source by key: those still there
are extracted (into the worker's staging table, with their own load id) and inserted beside
their partition's rows, at their new cursor value; those not there were deleted upstream.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any

from stackyard.runbooks.backfill.connection import Connection
from stackyard.runbooks.backfill.partitions import Window
from stackyard.runbooks.backfill.windows import bucket, naive_utc, span_filter

#: Keys per look-up query: well under every driver's limit on bound parameters.
CHUNK = 500


def keys_that_left(
    s: Connection,
    relation: str,
    staged: str | None,
    keys: Sequence[str],
    time_column: str,
    windows: Sequence[Window],
    seqs: Sequence[int],
    load_id: str,
) -> dict[int, list[tuple[Any, ...]]]:
    """Per partition, the keys of the table's rows in the windows that the extraction did not
    bring back (``staged`` is None when it extracted nothing)."""
    p = s.param()
    quoted = [s.quote(k) for k in keys]
    col = s.quote(time_column)
    target_bucket, tb_params = bucket(f"t.{col}", windows, seqs, p)
    inside, in_params = span_filter(f"t.{col}", windows, p)
    params: list[Any] = [*tb_params, *in_params]
    sql = (
        f"SELECT {target_bucket} AS seq, {', '.join(f't.{k}' for k in quoted)} "
        f"FROM {relation} AS t WHERE {inside}"
    )
    if staged is not None:
        on = " AND ".join(f"st.{k} = t.{k}" for k in quoted)
        sql += (
            f" AND NOT EXISTS (SELECT 1 FROM {staged} AS st WHERE st._dlt_load_id = {p} AND {on})"
        )
        params.append(load_id)
    out: dict[int, list[tuple[Any, ...]]] = {}
    for row in s.query(sql, params).rows:
        out.setdefault(int(row[0]), []).append(tuple(row[1:]))
    return out


def by_key(keys: Sequence[str], values: Sequence[tuple[Any, ...]]) -> Callable[..., Any]:
    """dlt's ``query_adapter_callback`` selecting the source's rows with these key values."""

    def adapt(query: Any, table: Any, *_: Any, **__: Any) -> Any:
        import sqlalchemy as sa

        columns = [table.c[k] for k in keys]
        if len(columns) == 1:
            return table.select().where(columns[0].in_([v[0] for v in values]))
        # One AND per key rather than a tuple IN: every dialect reads it.
        return table.select().where(
            sa.or_(*(sa.and_(*(c == x for c, x in zip(columns, v, strict=True))) for v in values))
        )

    return adapt


def chunks(values: Sequence[tuple[Any, ...]]) -> list[Sequence[tuple[Any, ...]]]:
    """``values`` in runs of :data:`CHUNK`.

    >>> [len(c) for c in chunks([(i,) for i in range(1201)])]
    [500, 500, 201]
    """
    return [values[i : i + CHUNK] for i in range(0, len(values), CHUNK)]


def key_condition(s: Connection, keys: Sequence[str], values: Sequence[tuple[Any, ...]]) -> str:
    """``(k1, k2) IN (VALUES (…), …)`` with one parameter per value, for :meth:`s.execute`."""
    p = s.param()
    one = "(" + ", ".join([p] * len(keys)) + ")"
    return f"({', '.join(s.quote(k) for k in keys)}) IN (VALUES {', '.join([one] * len(values))})"


def in_any(value: Any, windows: Sequence[Window]) -> bool:
    """Whether a cursor value falls in one of ``windows`` (then that window's partition,
    maybe another worker's, loads the row: inserting it here too would make it twice).

    >>> from datetime import timedelta
    >>> w = [Window(datetime(2024, 1, 2, tzinfo=UTC), datetime(2024, 1, 3, tzinfo=UTC))]
    >>> in_any(datetime(2024, 1, 2, 5), w), in_any(date(2024, 1, 1), w), in_any(None, w)
    (True, False, False)
    """
    if isinstance(value, datetime):
        moment = value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    elif isinstance(value, date):
        moment = datetime.combine(value, datetime.min.time())
    else:
        return False
    return any(naive_utc(w.start) <= moment < naive_utc(w.end) for w in windows)
