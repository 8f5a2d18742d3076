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

What the shop sells, where, and its tables' layout are in :mod:`.catalogue`; the customers,
orders and status changes are drawn in :mod:`.simulation`. This module writes them out.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

# Only `stackyard init` and `add_day` callers import this module, and they do so lazily, so
# NumPy at module level costs `stackyard --help` nothing.
import numpy as np  # noqa: TID253

from stackyard.errors import UsageError
from stackyard.examples.jaffle_shop.catalogue import (
    INDEXES,
    SCHEMA,
    read_stores,
    write_products,
    write_stores,
    write_supplies,
)
from stackyard.examples.jaffle_shop.simulation import (
    DAYS,
    WEEKDAY_FACTOR,
    Customers,
    advance_statuses,
    basket,
    customer_names,
    daily_weights,
    epoch,
    pick_customers_for_day,
    seconds_of_day,
    year_customers,
    year_orders,
)

DATABASE = Path("sources") / "jaffle_app.sqlite"
FILES = Path("sources") / "files"

CUSTOMERS_PER_SCALE = 1_500
ORDERS_PER_SCALE = 30_000


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
        "products": write_products(files / "products.csv"),
        "stores": write_stores(files / "stores.csv", start),
        "supplies": write_supplies(files / "supplies.parquet"),
    }

    day_weights = daily_weights()
    customers = year_customers(rng, scale * CUSTOMERS_PER_SCALE, start, end, day_weights)
    orders, items = year_orders(rng, scale * ORDERS_PER_SCALE, start, end, day_weights, customers)

    database = project_dir / DATABASE
    database.unlink(missing_ok=True)
    with _connect(database, bulk=True) as con:
        for ddl in SCHEMA:
            con.execute(ddl)
        con.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?)", customers.rows())
        con.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", orders)
        con.executemany("INSERT INTO order_items VALUES (?, ?, ?, ?, ?)", items)
        for ddl in INDEXES:
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
    stores = read_stores(project_dir / FILES / "stores.csv")
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
        updated = advance_statuses(rng, con, day, day_start)
        # The shop keeps its recent pace: the last four weeks' daily averages, adjusted for
        # the weekday.
        since = (day - timedelta(days=28)).isoformat()
        recent_orders, recent_customers = con.execute(
            "SELECT (SELECT count(*) FROM orders WHERE ordered_at >= ?),"
            " (SELECT count(*) FROM customers WHERE created_at >= ?)",
            (since, since),
        ).fetchone()
        weekday = WEEKDAY_FACTOR[day.weekday()] / (sum(WEEKDAY_FACTOR) / 7)
        n_orders = int(rng.poisson(max(recent_orders, 28) / 28 * weekday))
        n_new = int(rng.poisson(max(recent_customers, 28) / 28 * weekday))

        next_customer = con.execute("SELECT coalesce(max(id), 0) + 1 FROM customers").fetchone()[0]
        new_ids = np.arange(next_customer, next_customer + n_new, dtype=np.int64)
        new_created = np.sort(seconds_of_day(rng, n_new)) + epoch(day_start)
        new_customers = Customers(
            new_ids, new_created, new_created.copy(), customer_names(rng, new_ids)
        )
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
        ordered_at = np.sort(seconds_of_day(rng, n_orders, hours=True)) + epoch(day_start)
        customer_ids = pick_customers_for_day(rng, existing, new_customers, ordered_at)
        open_stores = [s for s in stores if s.opened_at < day_start]
        store_weights = np.array([s.popularity for s in open_stores])
        store_ids = np.array([s.id for s in open_stores], dtype=np.int64)[
            rng.choice(len(open_stores), size=n_orders, p=store_weights / store_weights.sum())
        ]
        next_order = con.execute("SELECT coalesce(max(id), 0) + 1 FROM orders").fetchone()[0]
        next_item = con.execute("SELECT coalesce(max(id), 0) + 1 FROM order_items").fetchone()[0]
        rates = {s.id: s.tax_rate_bp for s in stores}
        orders, items = basket(
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
