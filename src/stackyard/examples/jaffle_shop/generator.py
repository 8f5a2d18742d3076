"""Deterministic sample data for the Jaffle Shop example.

The shop's calendar ends on the day passed in (today by default) and spans the year before it;
everything else follows from the seed, so the same seed and end date give the same bytes. The
data is written where a real shop's would live:

* ``sources/jaffle_app.sqlite`` — the application database: ``customers``, ``orders`` and
  ``order_items``, each with ``id INTEGER PRIMARY KEY`` and an ``updated_at`` cursor, which
  stackyard's ``sql_database`` source reads incrementally;
* ``sources/files/products.csv`` and ``sources/files/stores.csv`` — back-office exports;
* ``sources/files/supplies.parquet`` — the supplies each product uses, with their cost.

Money is in integer cents. Timestamps are ``YYYY-MM-DD HH:MM:SS`` strings in the shop's local
time, the form SQLite's ``DATETIME`` affinity and SQLAlchemy's reflection agree on.

Volumes: scale 1 is about 1,500 customers and 30,000 orders with about two items each; ``scale``
multiplies customers and orders. Orders grow over the year and as stores open, and weekends are
busier. Rows are generated with NumPy arrays and inserted with ``executemany`` in one
transaction, so scale 50 takes seconds rather than minutes.

Randomness comes from NumPy's ``default_rng``; NumPy keeps its bit streams stable, but may
change how a distribution draws from them between releases, so "same bytes" holds for the same
NumPy version.
"""

from __future__ import annotations

import csv
import io
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

# Only `stackyard init` and `add_day` callers import this module, and they do so lazily, so
# NumPy at module level costs `stackyard --help` nothing.
import numpy as np  # noqa: TID253

from stackyard.errors import UsageError

DATABASE = Path("sources") / "jaffle_app.sqlite"
FILES = Path("sources") / "files"

DAYS = 365
CUSTOMERS_PER_SCALE = 1_500
ORDERS_PER_SCALE = 30_000

# Declared types are the ones SQLAlchemy reflects faithfully on SQLite (INTEGER, TEXT,
# DATETIME), so dlt's sql_database source gives the warehouse bigint, text and timestamp.
_SCHEMA = (
    """CREATE TABLE customers (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        email TEXT NOT NULL,
        created_at DATETIME NOT NULL,
        updated_at DATETIME NOT NULL
    )""",
    """CREATE TABLE orders (
        id INTEGER PRIMARY KEY,
        customer_id INTEGER NOT NULL,
        store_id INTEGER NOT NULL,
        ordered_at DATETIME NOT NULL,
        status TEXT NOT NULL,
        subtotal INTEGER NOT NULL,
        tax_paid INTEGER NOT NULL,
        order_total INTEGER NOT NULL,
        updated_at DATETIME NOT NULL
    )""",
    """CREATE TABLE order_items (
        id INTEGER PRIMARY KEY,
        order_id INTEGER NOT NULL,
        sku TEXT NOT NULL,
        quantity INTEGER NOT NULL,
        updated_at DATETIME NOT NULL
    )""",
)
# Created after the bulk insert (cheaper than maintaining them row by row). The updated_at
# indexes serve the incremental loader's `WHERE updated_at >= :last_value`.
_INDEXES = (
    "CREATE INDEX customers_updated_at ON customers (updated_at)",
    "CREATE INDEX orders_updated_at ON orders (updated_at)",
    "CREATE INDEX orders_customer_id ON orders (customer_id)",
    "CREATE INDEX order_items_updated_at ON order_items (updated_at)",
    "CREATE INDEX order_items_order_id ON order_items (order_id)",
)


class Product(NamedTuple):
    """One line of products.csv."""

    sku: str
    name: str
    type: str  # jaffle | beverage
    price: int  # cents
    description: str
    popularity: float


class Store(NamedTuple):
    """One line of stores.csv; ``opens_on_day`` is relative to the calendar's first day."""

    id: int
    name: str
    opens_on_day: int
    tax_rate_bp: int  # basis points of a percent: 625 = 0.0625
    popularity: float


PRODUCTS = (
    Product("JAF-001", "The Classic", "jaffle", 1100, "Ham, cheddar and mustard.", 1.6),
    Product("JAF-002", "Tomato Basil", "jaffle", 1000, "Tomato, basil and mozzarella.", 1.1),
    Product("JAF-003", "Smoked Salmon", "jaffle", 1400, "Salmon, cream cheese, dill.", 0.7),
    Product("JAF-004", "Mushroom Melt", "jaffle", 1200, "Mushrooms, gruyère, thyme.", 0.9),
    Product("JAF-005", "Choc Hazelnut", "jaffle", 900, "Chocolate hazelnut spread, banana.", 0.8),
    Product("BEV-001", "Flat White", "beverage", 450, "Double ristretto, steamed milk.", 1.8),
    Product("BEV-002", "Iced Tea", "beverage", 400, "Black tea, lemon, served cold.", 0.9),
    Product("BEV-003", "Orange Juice", "beverage", 550, "Freshly squeezed, 300 ml.", 0.8),
    Product("BEV-004", "Hot Chocolate", "beverage", 500, "Dark chocolate and milk.", 0.7),
    Product("BEV-005", "Sparkling Water", "beverage", 300, "Chilled, 330 ml bottle.", 0.5),
)

# (name, cost in cents, perishable) per sku: several supplies each, some shared by name.
_SUPPLIES: Mapping[str, Sequence[tuple[str, int, bool]]] = {
    "JAF-001": [("sourdough bread", 40, True), ("ham", 90, True), ("cheddar", 45, True)],
    "JAF-002": [("sourdough bread", 40, True), ("tomato", 25, True), ("mozzarella", 50, True)],
    "JAF-003": [("rye bread", 45, True), ("smoked salmon", 160, True), ("cream cheese", 35, True)],
    "JAF-004": [("sourdough bread", 40, True), ("mushrooms", 55, True), ("gruyère", 70, True)],
    "JAF-005": [("brioche", 50, True), ("hazelnut spread", 45, False), ("banana", 15, True)],
    "BEV-001": [("espresso beans", 30, False), ("milk", 20, True), ("hot cup", 8, False)],
    "BEV-002": [("black tea", 10, False), ("lemon", 12, True), ("cold cup", 9, False)],
    "BEV-003": [("oranges", 90, True), ("cold cup", 9, False), ("straw", 2, False)],
    "BEV-004": [("cocoa", 35, False), ("milk", 20, True), ("hot cup", 8, False)],
    "BEV-005": [("sparkling water bottle", 60, False)],
}
_PACKAGING = {"jaffle": [("paper bag", 6, False), ("napkin", 1, False)], "beverage": []}

STORES = (
    Store(1, "Philadelphia", -1_100, 600, 1.0),
    Store(2, "Brooklyn", -420, 888, 1.3),
    Store(3, "Chicago", -35, 1025, 0.9),
    Store(4, "San Francisco", 110, 863, 1.1),
    Store(5, "New Orleans", 215, 945, 0.7),
    Store(6, "Los Angeles", 290, 950, 1.0),
)
_STORE_OPENS_AT = timedelta(hours=7)

# Monday first: weekends are the busiest days, early week the quietest.
_WEEKDAY_FACTOR = (0.85, 0.85, 0.9, 0.95, 1.1, 1.35, 1.3)
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

_FIRST_NAMES_TEXT = """Ada Alex Amara Ana Ben Bianca Carlos Chen Chloe Dana David Diego Elena Emma Farah Felix
    Grace Hana Hugo Ines Isaac Ivy Jamal Jane Jonas Kai Keiko Lara Leo Lina Luca Maya Mei
    Mohammed Nadia Noah Nora Omar Olivia Pablo Priya Quinn Rafael Rosa Sam Sara Tariq Tess
    Uma Victor Wen Xavier Yara Yusuf Zoe"""
_LAST_NAMES_TEXT = """Adams Ahmed Alvarez Baker Brown Chen Clarke Costa Davis Diaz Evans Fischer Garcia Gupta
    Hall Hernandez Ito Jackson Jones Kim Kowalski Lee Lopez Martin Meyer Miller Moreau
    Nguyen Novak Okafor Olsen Park Patel Perez Quinn Rossi Santos Schmidt Silva Singh Smith
    Tanaka Taylor Thomas Walker Wang Weber Williams Wilson Wright Young Zhang"""
_FIRST_NAMES = tuple(_FIRST_NAMES_TEXT.split())
_LAST_NAMES = tuple(_LAST_NAMES_TEXT.split())


@dataclass(frozen=True)
class GeneratedData:
    """What the generator wrote.

    Attributes:
        tables: rows written per table, by table name (``customers``, ``orders``, …).
    """

    tables: Mapping[str, int]


def generate(
    project_dir: Path, *, scale: int = 1, seed: int = 42, end: date | None = None
) -> GeneratedData:
    """Write a year of Jaffle Shop data into ``project_dir/sources``, replacing any there.

    Args:
        project_dir: the project folder; ``sources/`` and ``sources/files/`` are created.
        scale: multiplies the number of customers and orders (1 ≈ 1,500 and 30,000).
        seed: the random seed; the same seed and ``end`` give the same files.
        end: the calendar's last day; default today.

    Returns:
        The rows written per table.

    Raises:
        UsageError: ``scale`` is below 1.
    """
    if scale < 1:
        raise UsageError(f"scale must be 1 or more, got {scale}")
    end = end or date.today()
    start = end - timedelta(days=DAYS - 1)
    rng = np.random.default_rng([seed, scale])

    files = project_dir / FILES
    files.mkdir(parents=True, exist_ok=True)
    counts = {
        "products": _write_products(files / "products.csv"),
        "stores": _write_stores(files / "stores.csv", start),
        "supplies": _write_supplies(files / "supplies.parquet"),
    }

    day_weights = _daily_weights()
    customers = _customers(rng, scale * CUSTOMERS_PER_SCALE, start, end, day_weights)
    orders, items = _orders(rng, scale * ORDERS_PER_SCALE, start, end, day_weights, customers)

    database = project_dir / DATABASE
    database.unlink(missing_ok=True)
    with _connect(database, bulk=True) as con:
        for ddl in _SCHEMA:
            con.execute(ddl)
        con.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?)", customers.rows())
        con.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", orders)
        con.executemany("INSERT INTO order_items VALUES (?, ?, ?, ?, ?)", items)
        for ddl in _INDEXES:
            con.execute(ddl)
    counts.update(customers=len(customers.ids), orders=len(orders), order_items=len(items))
    return GeneratedData(tables=counts)


def add_day(project_dir: Path, *, day: date, seed: int = 42) -> GeneratedData:
    """Append one more day of business to the application database, to demo incremental loads.

    New customers sign up, new orders and their items are placed, and orders placed earlier
    move on (placed → shipped → completed, a few completed ones are returned), each change
    bumping the row's ``updated_at`` to a time on ``day``. The CSV and Parquet files are left
    alone.

    Args:
        project_dir: a project folder :func:`generate` wrote into.
        day: the new day; it must be after every timestamp already in the database.
        seed: the random seed; the same database, day and seed give the same rows.

    Returns:
        Rows written per table: inserted plus updated.

    Raises:
        UsageError: the database is missing, or ``day`` is not after its last timestamp.
    """
    database = project_dir / DATABASE
    if not database.is_file():
        raise UsageError(
            f"no application database at {database}",
            hint="create the example first: stackyard init DIR --example jaffle_shop",
        )
    stores = _read_stores(project_dir / FILES / "stores.csv")
    rng = np.random.default_rng([seed, day.toordinal()])
    day_start = datetime.combine(day, datetime.min.time())
    with _connect(database) as con:
        last = con.execute(
            "SELECT max(t) FROM (SELECT max(updated_at) AS t FROM orders "
            "UNION ALL SELECT max(updated_at) FROM customers "
            "UNION ALL SELECT max(updated_at) FROM order_items)"
        ).fetchone()[0]
        if last is not None and last >= day_start.strftime("%Y-%m-%d %H:%M:%S"):
            raise UsageError(
                f"{database} already has rows updated on or after {day.isoformat()} (last {last})",
                hint=f"pass a day after {last[:10]}",
            )
        # Orders placed before today move on first, so today's new orders stay "placed".
        updated = _advance_statuses(rng, con, day, day_start)
        # The shop keeps its recent pace: the last four weeks' daily averages, adjusted for
        # the weekday.
        since = (day - timedelta(days=28)).isoformat()
        recent_orders, recent_customers = con.execute(
            "SELECT (SELECT count(*) FROM orders WHERE ordered_at >= ?),"
            " (SELECT count(*) FROM customers WHERE created_at >= ?)",
            (since, since),
        ).fetchone()
        weekday = _WEEKDAY_FACTOR[day.weekday()] / (sum(_WEEKDAY_FACTOR) / 7)
        n_orders = int(rng.poisson(max(recent_orders, 28) / 28 * weekday))
        n_new = int(rng.poisson(max(recent_customers, 28) / 28 * weekday))

        next_customer = con.execute("SELECT coalesce(max(id), 0) + 1 FROM customers").fetchone()[0]
        new_ids = np.arange(next_customer, next_customer + n_new, dtype=np.int64)
        new_created = np.sort(_seconds_of_day(rng, n_new)) + _epoch(day_start)
        new_customers = _Customers(new_ids, new_created, new_created.copy(), _names(rng, new_ids))
        con.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?)", new_customers.rows())

        # Regular customers order more often: weight each by its past orders.
        existing = np.array(
            con.execute(
                "SELECT c.id, count(o.id) + 1 FROM customers AS c"
                " LEFT JOIN orders AS o ON o.customer_id = c.id"
                " WHERE c.id < ? GROUP BY c.id ORDER BY c.id",
                (next_customer,),
            ).fetchall(),
            dtype=np.int64,
        ).reshape(-1, 2)
        ordered_at = np.sort(_seconds_of_day(rng, n_orders, hours=True)) + _epoch(day_start)
        customer_ids = _pick_customers_for_day(rng, existing, new_customers, ordered_at)
        open_stores = [s for s in stores if s.opened_at < day_start]
        store_weights = np.array([s.popularity for s in open_stores])
        store_ids = np.array([s.id for s in open_stores], dtype=np.int64)[
            rng.choice(len(open_stores), size=n_orders, p=store_weights / store_weights.sum())
        ]
        next_order = con.execute("SELECT coalesce(max(id), 0) + 1 FROM orders").fetchone()[0]
        next_item = con.execute("SELECT coalesce(max(id), 0) + 1 FROM order_items").fetchone()[0]
        rates = {s.id: s.tax_rate_bp for s in stores}
        orders, items = _basket(
            rng,
            order_ids=np.arange(next_order, next_order + n_orders, dtype=np.int64),
            customer_ids=customer_ids,
            store_ids=store_ids,
            ordered_at=ordered_at,
            statuses=np.full(n_orders, "placed", dtype=object),
            updated_at=ordered_at,
            tax_bp=np.array([rates[int(s)] for s in store_ids], dtype=np.int64),
            first_item_id=next_item,
        )
        con.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", orders)
        con.executemany("INSERT INTO order_items VALUES (?, ?, ?, ?, ?)", items)
    return GeneratedData(
        tables={
            "customers": n_new,
            "orders": len(orders) + updated,
            "order_items": len(items),
        }
    )


# --- files ---------------------------------------------------------------------------------


def _write_products(path: Path) -> int:
    rows = [(p.sku, p.name, p.type, p.price, p.description) for p in PRODUCTS]
    _write_csv(path, ("sku", "name", "type", "price", "description"), rows)
    return len(rows)


def _write_stores(path: Path, start: date) -> int:
    first = datetime.combine(start, datetime.min.time()) + _STORE_OPENS_AT
    rows = [
        (
            s.id,
            s.name,
            (first + timedelta(days=s.opens_on_day)).strftime("%Y-%m-%d %H:%M:%S"),
            f"{s.tax_rate_bp / 10_000:.4f}",
        )
        for s in STORES
    ]
    _write_csv(path, ("id", "name", "opened_at", "tax_rate"), rows)
    return len(rows)


def _write_supplies(path: Path) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [
        (name, cost, perishable, p.sku)
        for p in PRODUCTS
        for name, cost, perishable in [*_SUPPLIES[p.sku], *_PACKAGING[p.type]]
    ]
    table = pa.table(
        {
            "id": pa.array(range(1, len(rows) + 1), type=pa.int32()),
            "name": pa.array([r[0] for r in rows], type=pa.string()),
            "cost": pa.array([r[1] for r in rows], type=pa.int32()),
            "perishable": pa.array([r[2] for r in rows], type=pa.bool_()),
            "sku": pa.array([r[3] for r in rows], type=pa.string()),
        }
    )
    pq.write_table(table, path)
    return len(rows)


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    buffer = io.StringIO()
    # "\n" line endings on every platform, so the bytes do not depend on the OS.
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8", newline="")


class _StoreRow(NamedTuple):
    id: int
    opened_at: datetime
    tax_rate_bp: int
    popularity: float


def _read_stores(path: Path) -> list[_StoreRow]:
    popularity = {s.id: s.popularity for s in STORES}
    with path.open(encoding="utf-8", newline="") as f:
        return [
            _StoreRow(
                id=int(row["id"]),
                opened_at=datetime.strptime(row["opened_at"], "%Y-%m-%d %H:%M:%S"),
                tax_rate_bp=round(float(row["tax_rate"]) * 10_000),
                popularity=popularity.get(int(row["id"]), 1.0),
            )
            for row in csv.DictReader(f)
        ]


# --- rows ----------------------------------------------------------------------------------


class _Customers:
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


def _customers(
    rng: np.random.Generator,
    count: int,
    start: date,
    end: date,
    day_weights: np.ndarray,
) -> _Customers:
    """About a third signed up in the two years before the calendar, the rest during it, at
    the pace orders grow."""
    start_s = _epoch(datetime.combine(start, datetime.min.time()))
    before = int(count * 0.35)
    early = start_s - rng.integers(1, 2 * 365 * 86_400, size=before)
    days = rng.choice(DAYS, size=count - before, p=day_weights / day_weights.sum())
    during = start_s + days * 86_400 + _seconds_of_day(rng, count - before)
    created = np.sort(np.concatenate([early, during]))
    # One in ten customers changed their details later (a new email, say).
    end_s = _epoch(datetime.combine(end, datetime.max.time().replace(microsecond=0)))
    changed = rng.random(count) < 0.1
    later = created + (rng.random(count) * (end_s - created)).astype(np.int64)
    updated = np.where(changed, later, created)
    ids = np.arange(1, count + 1, dtype=np.int64)
    return _Customers(ids, created, updated, _names(rng, ids))


def _names(rng: np.random.Generator, ids: np.ndarray) -> list[str]:
    first = np.array(_FIRST_NAMES, dtype=object)[rng.integers(0, len(_FIRST_NAMES), len(ids))]
    last = np.array(_LAST_NAMES, dtype=object)[rng.integers(0, len(_LAST_NAMES), len(ids))]
    return [f"{f} {la}" for f, la in zip(first.tolist(), last.tolist(), strict=True)]


def _daily_weights() -> np.ndarray:
    """Relative order volume of each calendar day: growth, open stores, weekday.

    The weekday factor applies to the calendar's own weekdays in ``_orders``; here day ``d``
    only carries growth and the stores open on it.
    """
    d = np.arange(DAYS)
    growth = 0.75 + 0.5 * d / (DAYS - 1)
    capacity = np.zeros(DAYS)
    for s in STORES:
        capacity += np.where(d > s.opens_on_day, s.popularity, 0.0)
    result: np.ndarray = growth * capacity
    return result


def _orders(
    rng: np.random.Generator,
    count: int,
    start: date,
    end: date,
    day_weights: np.ndarray,
    customers: _Customers,
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    weekday = np.array(
        [_WEEKDAY_FACTOR[(start + timedelta(days=int(d))).weekday()] for d in range(DAYS)]
    )
    expected = day_weights * weekday
    per_day = rng.poisson(expected / expected.sum() * count)
    day_of_order = np.repeat(np.arange(DAYS), per_day)
    n = len(day_of_order)
    start_s = _epoch(datetime.combine(start, datetime.min.time()))
    # Sorting makes order ids ascend with ordered_at, as an application database's would.
    ordered_at = np.sort(start_s + day_of_order * 86_400 + _seconds_of_day(rng, n, hours=True))
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
    return _basket(
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
    end_s = _epoch(datetime.combine(end, datetime.max.time().replace(microsecond=0)))
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


def _basket(
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


def _pick_customers_for_day(
    rng: np.random.Generator, existing: np.ndarray, new: _Customers, ordered_at: np.ndarray
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


def _advance_statuses(
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
    when = _timestamps(_epoch(day_start) + np.sort(_seconds_of_day(rng, len(rows), hours=True)))
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


def _epoch(moment: datetime) -> int:
    """Seconds since 1970-01-01 of a naive local time, as if it were UTC.

    >>> _epoch(datetime(1970, 1, 2))
    86400
    """
    return int((moment - datetime(1970, 1, 1)).total_seconds())


def _seconds_of_day(rng: np.random.Generator, n: int, *, hours: bool = False) -> np.ndarray:
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


@contextmanager
def _connect(path: Path, *, bulk: bool = False) -> Iterator[sqlite3.Connection]:
    """A SQLite connection holding one transaction, committed when the block succeeds.

    With ``bulk``, for a file being created from scratch: it needs no crash safety while it is
    written, and skipping the journal and its syncs makes bulk inserts several times faster.
    Neither setting persists in the file.
    """
    con = sqlite3.connect(path)
    try:
        if bulk:
            con.execute("PRAGMA synchronous = OFF")
            con.execute("PRAGMA journal_mode = MEMORY")
        yield con
        con.commit()
    except BaseException:
        con.rollback()
        raise
    finally:
        con.close()
