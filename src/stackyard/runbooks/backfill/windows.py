"""SQL over many partition windows at once: which window a row falls in, rows per window.

A backfill of a year has 365 windows. Counting or copying them one statement per window scans
the table 365 times; these helpers do it in one pass, with a balanced ``CASE`` that finds a
row's window in about log2(n) comparisons, on any engine (no engine-specific bucket function).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from stackyard.runbooks.backfill.partitions import Window


def naive_utc(moment: datetime) -> datetime:
    """A window bound as the warehouses compare it: UTC, without a zone.

    >>> naive_utc(datetime(2024, 1, 1, 1, tzinfo=UTC)).isoformat()
    '2024-01-01T01:00:00'
    """
    return moment.astimezone(UTC).replace(tzinfo=None)


def contiguous(windows: Sequence[Window]) -> bool:
    """Whether each window starts where the previous one ended.

    >>> a = Window(datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC))
    >>> b = Window(datetime(2024, 1, 2, tzinfo=UTC), datetime(2024, 1, 3, tzinfo=UTC))
    >>> contiguous([a, b]), contiguous([a, a])
    (True, False)
    """
    return all(a.end == b.start for a, b in itertools.pairwise(windows))


def runs(seqs: Sequence[int]) -> list[list[int]]:
    """Consecutive runs of sorted partition numbers.

    >>> runs([0, 1, 2, 5, 6, 9])
    [[0, 1, 2], [5, 6], [9]]
    """
    out: list[list[int]] = []
    for seq in seqs:
        if out and out[-1][-1] == seq - 1:
            out[-1].append(seq)
        else:
            out.append([seq])
    return out


def bucket(column: str, windows: Sequence[Window], labels: Sequence[int], param: str) -> Any:
    """A SQL expression giving the label of the window ``column`` falls in, and its parameters.

    Only meaningful for rows already filtered to ``[windows[0].start, windows[-1].end)``
    (see :func:`span_filter`); the windows must be contiguous.

    Returns:
        ``(sql, params)``, parameters in the order they appear in the text.

    >>> w = [Window(datetime(2024, 1, d, tzinfo=UTC), datetime(2024, 1, d + 1, tzinfo=UTC))
    ...      for d in (1, 2, 3)]
    >>> sql, params = bucket("t.x", w, [7, 8, 9], "?")
    >>> sql
    'CASE WHEN t.x < ? THEN 7 ELSE CASE WHEN t.x < ? THEN 8 ELSE 9 END END'
    >>> [p.day for p in params]
    [2, 3]
    """
    if not contiguous(windows) or len(windows) != len(labels) or not windows:
        raise ValueError("bucket() needs contiguous windows, one label each")

    def tree(lo: int, hi: int) -> tuple[str, list[Any]]:
        if hi - lo == 1:
            return str(int(labels[lo])), []
        mid = (lo + hi) // 2
        left, left_params = tree(lo, mid)
        right, right_params = tree(mid, hi)
        sql = f"CASE WHEN {column} < {param} THEN {left} ELSE {right} END"
        return sql, [naive_utc(windows[mid].start), *left_params, *right_params]

    return tree(0, len(windows))


def span_filter(column: str, windows: Sequence[Window], param: str) -> tuple[str, list[Any]]:
    """``column >= ? AND column < ?`` over the whole span of ``windows``.

    >>> w = [Window(datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC))]
    >>> span_filter("x", w, "%s")[0]
    'x >= %s AND x < %s'
    """
    return (
        f"{column} >= {param} AND {column} < {param}",
        [naive_utc(windows[0].start), naive_utc(windows[-1].end)],
    )


# Partitions one dbt invocation or dlt pipeline run covers at most, by default: big enough
# that the per-invocation cost is spread thin, small enough that a killed run redoes little.
RUN_SIZE = 31


def run_size(pending: int, workers: int, limit: int | None = None) -> int:
    """How many consecutive partitions a worker takes at once: the pending ones spread evenly
    over the workers, at most ``limit`` (:data:`RUN_SIZE` by default).

    >>> run_size(20, 1), run_size(20, 4), run_size(365, 4), run_size(3, 8), run_size(9, 1, 2)
    (20, 5, 31, 1, 2)
    """
    cap = max(1, limit or RUN_SIZE)
    return max(1, min(cap, -(-pending // max(workers, 1))))
