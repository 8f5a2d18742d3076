"""Which column a table's rows are counted per day by: found from the columns' names and
types, or configured (``time_column``) and then checked."""

from __future__ import annotations

import re
from collections.abc import Mapping

from stackyard.errors import did_you_mean

# Names that usually mean "when the event happened", in order of preference. ``updated_at``
# and friends are left out on purpose: rows move between days when they change.
_TIME_NAMES = (
    "created_at",
    "created",
    "inserted_at",
    "ordered_at",
    "order_date",
    "event_time",
    "event_date",
    "occurred_at",
    "timestamp",
    "date",
    "day",
)
_NOT_TIME = re.compile(r"(updated|modified|deleted|changed|synced|valid_to|valid_from)", re.I)


def is_temporal(data_type: str) -> bool:
    """Whether a warehouse type holds dates or timestamps.

    >>> is_temporal("TIMESTAMP WITH TIME ZONE"), is_temporal("date"), is_temporal("VARCHAR")
    (True, True, False)
    """
    upper = data_type.upper()
    return upper == "DATE" or upper.startswith("TIMESTAMP") or upper == "DATETIME"


def find_time_column(columns: Mapping[str, str]) -> str | None:
    """The column that most likely says when each row's event happened, or ``None``.

    Only date and timestamp columns qualify, never stackyard's own ``_loaded_at`` nor a
    column whose name says it changes (``updated_at``): rows would move between days.

    >>> find_time_column({"id": "BIGINT", "updated_at": "TIMESTAMP", "order_date": "DATE"})
    'order_date'
    >>> find_time_column({"id": "BIGINT", "updated_at": "TIMESTAMP"}) is None
    True
    """
    candidates = [
        c
        for c, t in columns.items()
        if is_temporal(t) and not c.startswith("_") and not _NOT_TIME.search(c)
    ]
    for name in _TIME_NAMES:
        for column in candidates:
            if column.lower() == name:
                return column
    for column in candidates:
        if column.lower().endswith(("_at", "_date", "_time", "_ts")):
            return column
    return None


def time_column_problem(
    relation: str, columns: Mapping[str, str], time_column: str | None
) -> str | None:
    """Why a configured ``time_column`` cannot count rows per day, or ``None`` when it can.

    >>> cols = {"status": "VARCHAR", "ordered_at": "DATE"}
    >>> time_column_problem("app.orders", cols, "status")
    "time_column 'status' is VARCHAR, not a date or timestamp (did you mean 'ordered_at'?)"
    >>> time_column_problem("app.orders", cols, "orderd_at")
    "time_column 'orderd_at' is not a column of app.orders (did you mean 'ordered_at'?)"
    """
    if time_column is None or (time_column in columns and is_temporal(columns[time_column])):
        return None
    dates = [c for c, t in columns.items() if is_temporal(t) and not c.startswith("_")]
    if time_column not in columns:
        return (
            f"time_column '{time_column}' is not a column of {relation}"
            f"{did_you_mean(time_column, dates or columns)}"
        )
    found = find_time_column(columns)
    return f"time_column '{time_column}' is {columns[time_column]}, not a date or timestamp" + (
        f" (did you mean '{found}'?)" if found else ""
    )
