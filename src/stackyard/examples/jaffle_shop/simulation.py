"""The Jaffle Shop's business, drawn from the seed: customers signing up, orders and their
items, and orders moving from placed to shipped to completed (or returned).

Columns are NumPy arrays until they become rows for ``executemany``; times are seconds since
1970-01-01 of the shop's naive local time until they become ``YYYY-MM-DD HH:MM:SS`` text.
"""

from __future__ import annotations

import sqlite3
from datetime import date, datetime, timedelta
from typing import Any

# Only the generator imports this module, and it is itself imported lazily, so NumPy at module
# level costs `stackyard --help` nothing.
import numpy as np  # noqa: TID253

from stackyard.examples.jaffle_shop.catalogue import FIRST_NAMES, LAST_NAMES, PRODUCTS, STORES

# The calendar: the year up to and including its end day.
DAYS = 365

# Monday first: weekends are the busiest days, early week the quietest.
WEEKDAY_FACTOR = (0.85, 0.85, 0.9, 0.95, 1.1, 1.35, 1.3)
# Opening hours 07:00-21:00, with breakfast and lunch rushes.
_HOUR_WEIGHTS = {
    7: 4,
    8: 8,
    9: 7,
    10: 5,
    11: 8,
    12: 12,
    13: 10,
    14: 5,
    15: 4,
    16: 4,
    17: 5,
    18: 5,
    19: 4,
    20: 3,
}
_ITEMS_PER_ORDER = ((1, 0.35), (2, 0.35), (3, 0.2), (4, 0.1))
_QUANTITY = ((1, 0.86), (2, 0.11), (3, 0.03))


class Customers:
    """Customer columns as arrays; ids ascend with ``created_at``."""

    def __init__(
        self, ids: np.ndarray, created: np.ndarray, updated: np.ndarray, names: list[str]
    ) -> None:
        self.ids = ids
        self.created = created  # seconds since 1970-01-01, naive local time
        self.updated = updated
        self.names = names

    def rows(self) -> list[tuple[Any, ...]]:
        emails = [
            f"{name.lower().replace(' ', '.')}.{i}@example.com"
            for name, i in zip(self.names, self.ids.tolist(), strict=True)
        ]
        return list(
            zip(
                self.ids.tolist(),
                self.names,
                emails,
                _timestamps(self.created),
                _timestamps(self.updated),
                strict=True,
            )
        )


def year_customers(
    rng: np.random.Generator,
    count: int,
    start: date,
    end: date,
    day_weights: np.ndarray,
) -> Customers:
    """About a third signed up in the two years before the calendar, the rest during it, at
    the pace orders grow."""
    start_s = epoch(datetime.combine(start, datetime.min.time()))
    before = int(count * 0.35)
    early = start_s - rng.integers(1, 2 * 365 * 86_400, size=before)
    days = rng.choice(DAYS, size=count - before, p=day_weights / day_weights.sum())
    during = start_s + days * 86_400 + seconds_of_day(rng, count - before)
    created = np.sort(np.concatenate([early, during]))
    # One in ten customers changed their details later (a new email, say).
    end_s = epoch(datetime.combine(end, datetime.max.time().replace(microsecond=0)))
    changed = rng.random(count) < 0.1
    later = created + (rng.random(count) * (end_s - created)).astype(np.int64)
    updated = np.where(changed, later, created)
    ids = np.arange(1, count + 1, dtype=np.int64)
    return Customers(ids, created, updated, customer_names(rng, ids))


def customer_names(rng: np.random.Generator, ids: np.ndarray) -> list[str]:
    first = np.array(FIRST_NAMES, dtype=object)[rng.integers(0, len(FIRST_NAMES), len(ids))]
    last = np.array(LAST_NAMES, dtype=object)[rng.integers(0, len(LAST_NAMES), len(ids))]
    return [f"{f} {la}" for f, la in zip(first.tolist(), last.tolist(), strict=True)]


def daily_weights() -> np.ndarray:
    """Relative order volume of each calendar day: growth, open stores, weekday.

    The weekday factor applies to the calendar's own weekdays in ``year_orders``; here day ``d``
    only carries growth and the stores open on it.
    """
    d = np.arange(DAYS)
    growth = 0.75 + 0.5 * d / (DAYS - 1)
    capacity = np.zeros(DAYS)
    for s in STORES:
        capacity += np.where(d > s.opens_on_day, s.popularity, 0.0)
    result: np.ndarray = growth * capacity
    return result


def year_orders(
    rng: np.random.Generator,
    count: int,
    start: date,
    end: date,
    day_weights: np.ndarray,
    customers: Customers,
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    weekday = np.array(
        [WEEKDAY_FACTOR[(start + timedelta(days=int(d))).weekday()] for d in range(DAYS)]
    )
    expected = day_weights * weekday
    per_day = rng.poisson(expected / expected.sum() * count)
    day_of_order = np.repeat(np.arange(DAYS), per_day)
    n = len(day_of_order)
    start_s = epoch(datetime.combine(start, datetime.min.time()))
    # Sorting makes order ids ascend with ordered_at, as an application database's would.
    ordered_at = np.sort(start_s + day_of_order * 86_400 + seconds_of_day(rng, n, hours=True))
    day_of_order = (ordered_at - start_s) // 86_400

    # Stores: only those open on the order's day, weighted by popularity.
    store_ids = np.zeros(n, dtype=np.int64)
    popularity = np.array([s.popularity for s in STORES])
    opens = np.array([s.opens_on_day for s in STORES])
    for d in np.unique(np.concatenate([[0], np.clip(opens + 1, 0, DAYS - 1)])):
        segment = (day_of_order >= d) & (day_of_order < _next_opening(opens, d))
        weights = np.where(opens < d, popularity, 0.0)
        store_ids[segment] = np.array([s.id for s in STORES])[
            rng.choice(len(STORES), size=int(segment.sum()), p=weights / weights.sum())
        ]

    # Customers: among those signed up by then, weighted by how regular each one is. With
    # ids ascending by sign-up time, "signed up by then" is a prefix of the cumulative weights.
    regularity = np.cumsum(rng.lognormal(0.0, 0.8, len(customers.ids)))
    eligible = np.searchsorted(customers.created, ordered_at, side="right")
    pick = np.searchsorted(regularity, rng.random(n) * regularity[eligible - 1], side="right")
    customer_ids = customers.ids[np.minimum(pick, eligible - 1)]

    statuses, updated_at = _statuses(rng, ordered_at, end)
    tax_lookup = np.zeros(max(s.id for s in STORES) + 1, dtype=np.int64)
    for store in STORES:
        tax_lookup[store.id] = store.tax_rate_bp
    return basket(
        rng,
        order_ids=np.arange(1, n + 1, dtype=np.int64),
        customer_ids=customer_ids,
        store_ids=store_ids,
        ordered_at=ordered_at,
        statuses=statuses,
        updated_at=updated_at,
        tax_bp=tax_lookup[store_ids],
        first_item_id=1,
    )


def _next_opening(opens: np.ndarray, day: int) -> int:
    later = [int(o) + 1 for o in opens if int(o) + 1 > day]
    return min(later, default=DAYS)


def _statuses(rng: np.random.Generator, ordered_at: np.ndarray, end: date) -> tuple[Any, Any]:
    """Status by age: today's orders are mostly placed, last week's completed or returned."""
    end_s = epoch(datetime.combine(end, datetime.max.time().replace(microsecond=0)))
    age = (end_s - ordered_at) // 86_400
    u = rng.random(len(ordered_at))
    status = np.full(len(ordered_at), "completed", dtype=object)
    status[(age == 0) & (u < 0.7)] = "placed"
    status[(age == 0) & (u >= 0.7)] = "shipped"
    status[(age == 1) & (u < 0.1)] = "placed"
    status[(age == 1) & (u >= 0.1) & (u < 0.7)] = "shipped"
    status[(age >= 2) & (age <= 3) & (u < 0.2)] = "shipped"
    status[(age >= 4) & (u < 0.03)] = "returned"
    delay = rng.random(len(ordered_at))
    hours = np.select(
        [status == "placed", status == "shipped", status == "completed"],
        [0.0, 0.25 + delay * 20, 24 + delay * 48],
        default=72 + delay * 264,  # returned: three to fourteen days later
    )
    updated = np.minimum(ordered_at + (hours * 3600).astype(np.int64), end_s)
    return status, updated


def basket(
    rng: np.random.Generator,
    *,
    order_ids: np.ndarray,
    customer_ids: np.ndarray,
    store_ids: np.ndarray,
    ordered_at: np.ndarray,
    statuses: np.ndarray,
    updated_at: np.ndarray,
    tax_bp: np.ndarray,
    first_item_id: int,
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Items for each order, then each order's subtotal, tax and total from its items."""
    n = len(order_ids)
    sizes, size_p = zip(*_ITEMS_PER_ORDER, strict=True)
    per_order = rng.choice(np.array(sizes), size=n, p=np.array(size_p))
    item_order = np.repeat(np.arange(n), per_order)
    popularity = np.array([p.popularity for p in PRODUCTS])
    product = rng.choice(len(PRODUCTS), size=len(item_order), p=popularity / popularity.sum())
    quantities, quantity_p = zip(*_QUANTITY, strict=True)
    quantity = rng.choice(np.array(quantities), size=len(item_order), p=np.array(quantity_p))
    price = np.array([p.price for p in PRODUCTS], dtype=np.int64)[product]

    subtotal = np.zeros(n, dtype=np.int64)
    np.add.at(subtotal, item_order, price * quantity)
    # Integer rounding half up, so tax never depends on floating point.
    tax = (subtotal * tax_bp + 5_000) // 10_000
    ordered_text = _timestamps(ordered_at)
    orders = list(
        zip(
            order_ids.tolist(),
            customer_ids.tolist(),
            store_ids.tolist(),
            ordered_text,
            statuses.tolist(),
            subtotal.tolist(),
            tax.tolist(),
            (subtotal + tax).tolist(),
            _timestamps(updated_at),
            strict=True,
        )
    )
    skus = np.array([p.sku for p in PRODUCTS], dtype=object)[product]
    item_updated: list[str] = np.array(ordered_text, dtype=object)[item_order].tolist() if n else []
    items = list(
        zip(
            range(first_item_id, first_item_id + len(item_order)),
            order_ids[item_order].tolist(),
            skus.tolist(),
            quantity.tolist(),
            list(item_updated),
            strict=True,
        )
    )
    return orders, items


def pick_customers_for_day(
    rng: np.random.Generator, existing: np.ndarray, new: Customers, ordered_at: np.ndarray
) -> np.ndarray:
    """Each new customer places the day's first order after signing up; the rest come from
    existing customers, weighted by their past orders."""
    n = len(ordered_at)
    chosen = np.zeros(n, dtype=np.int64)
    taken = np.zeros(n, dtype=bool)
    for customer_id, created in zip(new.ids.tolist(), new.created.tolist(), strict=True):
        free = np.flatnonzero(~taken & (ordered_at >= created))
        if len(free):
            chosen[free[0]] = customer_id
            taken[free[0]] = True
    rest = np.flatnonzero(~taken)
    weights = existing[:, 1] / existing[:, 1].sum()
    chosen[rest] = existing[rng.choice(len(existing), size=len(rest), p=weights), 0]
    return chosen


def advance_statuses(
    rng: np.random.Generator, con: sqlite3.Connection, day: date, day_start: datetime
) -> int:
    """Move earlier orders along: most placed ones ship, shipped ones from before yesterday
    complete, and one in a hundred orders completed in the last two weeks comes back."""
    yesterday = (day - timedelta(days=1)).isoformat()
    fortnight = (day - timedelta(days=14)).isoformat()
    rows = con.execute(
        "SELECT id, status, ordered_at FROM orders"
        " WHERE status IN ('placed', 'shipped') OR (status = 'completed' AND ordered_at >= ?)"
        " ORDER BY id",
        (fortnight,),
    ).fetchall()
    u = rng.random(len(rows))
    when = _timestamps(epoch(day_start) + np.sort(seconds_of_day(rng, len(rows), hours=True)))
    changes = []
    for (order_id, status, ordered_at), chance, at in zip(rows, u, when, strict=True):
        if status == "placed" and chance < 0.9:
            changes.append(("shipped", at, order_id))
        elif status == "shipped" and ordered_at < yesterday:
            changes.append(("completed", at, order_id))
        elif status == "completed" and chance < 0.01:
            changes.append(("returned", at, order_id))
    con.executemany("UPDATE orders SET status = ?, updated_at = ? WHERE id = ?", changes)
    return len(changes)


# --- time ----------------------------------------------------------------------------------


def epoch(moment: datetime) -> int:
    """Seconds since 1970-01-01 of a naive local time, as if it were UTC.

    >>> epoch(datetime(1970, 1, 2))
    86400
    """
    return int((moment - datetime(1970, 1, 1)).total_seconds())


def seconds_of_day(rng: np.random.Generator, n: int, *, hours: bool = False) -> np.ndarray:
    """Random times of day in seconds: any time, or within opening hours by their weights."""
    if not hours:
        result: np.ndarray = rng.integers(0, 86_400, size=n)
        return result
    hour, weight = zip(*_HOUR_WEIGHTS.items(), strict=True)
    p = np.array(weight, dtype=float)
    chosen = rng.choice(np.array(hour), size=n, p=p / p.sum())
    result = chosen * 3_600 + rng.integers(0, 3_600, size=n)
    return result


def _timestamps(seconds: np.ndarray) -> list[str]:
    """``YYYY-MM-DD HH:MM:SS`` strings for epoch seconds."""
    if len(seconds) == 0:
        return []
    text = np.datetime_as_string(np.asarray(seconds, dtype="datetime64[s]"), unit="s")
    result: list[str] = np.char.replace(text, "T", " ").tolist()
    return result
