"""``--cascade`` from a source table: which windows of a microbatch model downstream to rebuild.

A source table is cut on its cursor (when a row last changed, e.g. ``updated_at``); a
microbatch model downstream is cut on its own ``event_time`` (e.g. ``order_date``). An order
placed on the 21st and changed on the 24th is re-loaded by a backfill of the 24th, but it
counts in the model's window of the 21st: rebuilding only the backfill's own windows would
leave that window stale. dbt hands a microbatch model its inputs filtered on
each input's own ``event_time`` (``stg_dlt__orders`` on ``ordered_at``), so the first of the
model's and its upstream models' event-time columns that the source table has is read, and the
model's range is widened to cover it over every row the backfill touched: the rows now in the
table with a cursor in the range, and the rows it replaced or removed (the backfill's
pre-image). With none of those columns in the source table, the range stays the backfill's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from stackyard.runbooks.backfill.job import BackfillOptions, BackfillResult
from stackyard.runbooks.backfill.partitions import Grain, parse_bound, time_zone
from stackyard.runbooks.backfill.source_table import SourceTableTarget
from stackyard.runbooks.backfill.targets import PREIMAGE_SCHEMA
from stackyard.runbooks.backfill.windows import naive_utc
from stackyard.warehouse.base import Warehouse


def model_range(
    warehouse: Warehouse,
    source: SourceTableTarget,
    result: BackfillResult,
    options: BackfillOptions,
    event_times: Sequence[str],
) -> tuple[BackfillOptions, str | None]:
    """The options to backfill a microbatch model downstream of ``source`` with, and a note
    when its range was widened beyond the source's (``None`` when it was not).

    Args:
        event_times: the model's event-time column, then its upstream models'.
    """
    zone = time_zone(options.tz)
    start, end = parse_bound(options.start, zone), parse_bound(options.end, zone)
    found = _event_times(warehouse, source, result, event_times, start, end)
    if found is None:
        return options, None
    event_time, found = found
    earliest, latest = (_floor(_instant(v, zone), options.grain) for v in found)
    latest = _step(latest, options.grain)
    if earliest >= start and latest <= end:
        return options, None
    wide_start, wide_end = min(start, earliest), max(end, latest)
    note = (
        f"rows the backfill re-loaded have {event_time} from {_day(found[0])} to "
        f"{_day(found[1])}: the model's windows from {_day(wide_start)} to {_day(wide_end)} "
        "are rebuilt, not only the backfill's"
    )
    return replace(options, start=wide_start.isoformat(), end=wide_end.isoformat()), note


def _event_times(
    warehouse: Warehouse,
    source: SourceTableTarget,
    result: BackfillResult,
    columns: Sequence[str],
    start: datetime,
    end: datetime,
) -> tuple[str, tuple[Any, Any]] | None:
    """The first of ``columns`` the source table has, with its earliest and latest value over
    the rows the backfill touched; ``None`` when it has none of them (or no such rows)."""
    p = warehouse.param()
    listed = warehouse.query(
        "SELECT column_name FROM information_schema.columns "
        f"WHERE table_schema = {p} AND table_name = {p}",
        (source.schema, source.table),
    ).rows
    names = {str(c).lower(): str(c) for (c,) in listed}
    column = next((names[c.lower()] for c in columns if c.lower() in names), None)
    if column is None:
        return None
    col = warehouse.quote(column)
    cursor = warehouse.quote(source.time_column)
    parts = [
        f"SELECT {col} AS t FROM {warehouse.quote(source.schema, source.table)} "
        f"WHERE {cursor} >= {p} AND {cursor} < {p}"
    ]
    params: list[Any] = [naive_utc(start), naive_utc(end)]
    preimage = result.record.preimage_table
    if preimage and preimage in warehouse.tables_in(PREIMAGE_SCHEMA):
        parts.append(f"SELECT {col} FROM {warehouse.quote(PREIMAGE_SCHEMA, preimage)}")
    row = warehouse.query(
        f"SELECT min(t), max(t) FROM ({' UNION ALL '.join(parts)}) AS touched", tuple(params)
    ).rows[0]
    if row[0] is None or row[1] is None:
        return None
    return column, (row[0], row[1])


def _instant(value: Any, zone: tzinfo) -> datetime:
    """An event time as the local time of ``zone`` (naive values and dates are UTC, as dbt
    compares them with the windows' bounds)."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day, tzinfo=UTC)
    else:
        moment = datetime.fromisoformat(str(value))
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(zone)


def _floor(moment: datetime, grain: Grain) -> datetime:
    """The start of the ``grain`` that holds ``moment``, on its zone's calendar.

    >>> _floor(datetime(2024, 3, 9, 17, 5, tzinfo=UTC), "day").isoformat()
    '2024-03-09T00:00:00+00:00'
    >>> _floor(datetime(2024, 3, 9, 17, 5, tzinfo=UTC), "month").day
    1
    """
    if grain == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    day = 1 if grain == "month" else moment.day
    return datetime(moment.year, moment.month, day, tzinfo=moment.tzinfo)


def _step(moment: datetime, grain: Grain) -> datetime:
    """The start of the next ``grain`` after the one starting at ``moment``."""
    if grain == "hour":
        return moment + timedelta(hours=1)
    if grain == "day":
        following = moment.date() + timedelta(days=1)
    else:
        following = date(moment.year + moment.month // 12, moment.month % 12 + 1, 1)
    return datetime(following.year, following.month, following.day, tzinfo=moment.tzinfo)


def _day(value: Any) -> str:
    return value.date().isoformat() if isinstance(value, datetime) else str(value)[:10]
