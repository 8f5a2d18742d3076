"""The batches dbt runs for an existing microbatch model in a build without
``--event-time-*``: what the SQL build deletes and inserts for it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stackyard.runbooks.backfill.partitions import Window


def dbt_window(config: Mapping[str, Any], now: datetime) -> Window:
    """The batches dbt runs for an existing microbatch model at ``now`` without
    ``--event-time-*`` (``dbt.task.run.MicrobatchModelRunner.get_batches``): from ``lookback``
    batches before the current one to the end of the current one.

    >>> from datetime import UTC, datetime
    >>> w = dbt_window({"batch_size": "day", "lookback": 1},
    ...                datetime(2026, 3, 5, 14, 30, tzinfo=UTC))
    >>> w.start.isoformat(), w.end.isoformat()
    ('2026-03-04T00:00:00+00:00', '2026-03-06T00:00:00+00:00')
    """
    from stackyard.runbooks.backfill.model_sql import _next_batch, _truncate
    from stackyard.runbooks.backfill.partitions import Window

    size = str(config["batch_size"])
    end = _truncate(now, size)
    if end != now:
        end = _next_batch(end, size)
    start = end
    for _ in range(int(config.get("lookback") or 0) + 1):
        start = _previous_batch(start, size)
    return Window(start, end)


def _previous_batch(moment: datetime, size: str) -> datetime:
    from datetime import timedelta

    if size == "hour":
        return moment - timedelta(hours=1)
    if size == "day":
        return moment - timedelta(days=1)
    if size == "month":
        return moment.replace(
            year=moment.year - (moment.month == 1), month=(moment.month - 2) % 12 + 1
        )
    return moment.replace(year=moment.year - 1)
