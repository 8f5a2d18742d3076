"""Small pure helpers shared by the detector's models: dates, medians, number formatting."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any


def as_date(value: Any) -> date:
    """Reduce a ``datetime`` to its date; leave a ``date`` alone; read an ISO date string or
    a NumPy ``datetime64`` (what a date column of an array or a data frame holds).

    Args:
        value: a date, datetime, ``"YYYY-MM-DD"`` text or ``numpy.datetime64``.

    Returns:
        The calendar date.

    Raises:
        ValueError: ``value`` is none of those, or not a valid date.

    >>> as_date(datetime(2024, 3, 5, 17, 30)), as_date("2024-03-05")
    (datetime.date(2024, 3, 5), datetime.date(2024, 3, 5))
    """
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value).date()
        except ValueError:
            raise ValueError(f"expected an ISO date such as 2024-03-05, got {value!r}") from None
    # numpy.datetime64 without importing NumPy: any unit, read as whole days.
    if type(value).__name__ == "datetime64" and hasattr(value, "astype"):
        day = value.astype("datetime64[D]").item()
        if isinstance(day, date):
            return day
        raise ValueError(f"expected a date, got {value!r} (not a time)")
    raise ValueError(f"expected a date or datetime, got {value!r} ({type(value).__name__})")


def median(values: Sequence[float]) -> float:
    """The median of a non-empty sequence (the mean of the two middle values when even).

    Faster than :func:`statistics.median` on the short lists the detector uses.

    Args:
        values: at least one number.

    Returns:
        The median.

    >>> median([3.0, 1.0, 2.0]), median([4.0, 1.0, 2.0, 3.0])
    (2.0, 2.5)
    """
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return float(ordered[mid])
    return (ordered[mid - 1] + ordered[mid]) / 2.0


def quantile(ordered: Sequence[float], q: float) -> float:
    """The ``q`` quantile of a non-empty sorted sequence, between order statistics.

    Read at Blom's position, ``q (n + 1/4) + 3/8`` (1-based), and interpolated: close to
    unbiased for normal samples at every size. Reading the order statistic at ``int(q n)``
    instead flips between neighbours as ``n`` grows by one (at fifty errors the 98th
    percentile is the largest, at fifty-one the second largest), and the detector's tail
    readings jumped by a fifth with it from one day to the next.

    Args:
        ordered: the values, sorted ascending.
        q: the quantile, between 0 and 1.

    Returns:
        The interpolated quantile.

    >>> quantile([1.0, 2.0, 3.0, 4.0], 0.5), quantile([5.0], 0.98)
    (2.5, 5.0)
    """
    n = len(ordered)
    position = min(max(q * (n + 0.25) + 0.375 - 1.0, 0.0), n - 1.0)
    low = int(position)
    high = min(low + 1, n - 1)
    share = position - low
    # As a step up from the lower neighbour, never past the upper one: a weighted sum of the
    # two could round a hair above the upper, out of order with a higher q's reading.
    below, above = ordered[low], ordered[high]
    return min(below + (above - below) * share, above)


def window_bounds(index: int, size: int, width: int) -> tuple[int, int]:
    """The slice of ``width`` points centred on ``index``, slid inward at the edges.

    Sliding (rather than clipping) keeps every window the same width, so near the ends of the
    series a local median still covers each weekday once.

    Args:
        index: position of the point.
        size: length of the series.
        width: points per window.

    Returns:
        ``(start, stop)`` for slicing.

    >>> window_bounds(0, 10, 7), window_bounds(5, 10, 7), window_bounds(9, 10, 7)
    ((0, 7), (2, 9), (3, 10))
    """
    start = min(max(index - width // 2, 0), max(size - width, 0))
    return start, min(start + width, size)


def format_value(value: float) -> str:
    """Format a volume for a sentence: thousands separators, decimals only for small values.

    Args:
        value: the number.

    Returns:
        A short human-readable string.

    >>> format_value(1234.6), format_value(0), format_value(2.345)
    ('1,235', '0', '2.35')
    """
    if abs(value) >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:,.3g}"


def whole_rows_band(lower: float, upper: float) -> str:
    """A band of row counts in whole rows, as the detector judges it: widened outward to
    whole rows (a lower edge below one row admits an empty day).

    >>> whole_rows_band(0.252, 82.773), whole_rows_band(949.5, 1120.2)
    ('0–83', '949–1,121')
    """
    return f"{math.floor(lower):,}–{math.ceil(upper):,}"


def validated(dates: Iterable[Any], values: Iterable[Any]) -> tuple[list[date], list[float]]:
    """Check a daily series and return it as dates and floats.

    Raises:
        ValueError: the lengths differ, the series is empty, the dates are not strictly
            ascending, or a value is negative or not finite.
    """
    # Any iterable will do (arrays, data frame columns, generators): read each once.
    given_dates: Sequence[Any] = dates if isinstance(dates, list | tuple) else list(dates)
    given: Sequence[Any] = values if isinstance(values, list | tuple) else list(values)
    if len(given_dates) != len(given):
        raise ValueError(
            f"dates and values must have the same length, got {len(given_dates)} dates and "
            f"{len(given)} values"
        )
    if len(given_dates) == 0:
        raise ValueError("the series is empty: give at least the day to judge")
    days = [as_date(d) for d in given_dates]
    for i in range(1, len(days)):
        if days[i] <= days[i - 1]:
            raise ValueError(
                f"dates must be strictly ascending (one value per day): {days[i]} at position "
                f"{i} follows {days[i - 1]}; sort the series and sum rows of the same day"
            )
    vals: list[float] = []
    for d, v in zip(days, given, strict=True):
        try:
            number = float(v)
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number) or number < 0:
            raise ValueError(
                f"the value for {d} is {v!r}; volumes must be finite, non-negative numbers"
            )
        vals.append(number)
    return days, vals
