"""The Jaffle Shop's catalogue: what it sells, where, and how its data is laid out.

Products with their supplies, stores with their opening days and tax rates, the names its
customers are drawn from, the application database's tables and indexes, and the writers of the
back-office exports (``products.csv``, ``stores.csv``, ``supplies.parquet``). None of it
depends on the seed; :mod:`.simulation` draws the year's business from it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

# Declared types are the ones SQLAlchemy reflects faithfully on SQLite (INTEGER, TEXT,
# DATETIME), so dlt's sql_database source gives the warehouse bigint, text and timestamp.
SCHEMA = (
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
INDEXES = (
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

_FIRST_NAMES_TEXT = """Ada Alex Amara Ana Ben Bianca Carlos Chen Chloe Dana David Diego Elena Emma Farah Felix
    Grace Hana Hugo Ines Isaac Ivy Jamal Jane Jonas Kai Keiko Lara Leo Lina Luca Maya Mei
    Mohammed Nadia Noah Nora Omar Olivia Pablo Priya Quinn Rafael Rosa Sam Sara Tariq Tess
    Uma Victor Wen Xavier Yara Yusuf Zoe"""
_LAST_NAMES_TEXT = """Adams Ahmed Alvarez Baker Brown Chen Clarke Costa Davis Diaz Evans Fischer Garcia Gupta
    Hall Hernandez Ito Jackson Jones Kim Kowalski Lee Lopez Martin Meyer Miller Moreau
    Nguyen Novak Okafor Olsen Park Patel Perez Quinn Rossi Santos Schmidt Silva Singh Smith
    Tanaka Taylor Thomas Walker Wang Weber Williams Wilson Wright Young Zhang"""
FIRST_NAMES = tuple(_FIRST_NAMES_TEXT.split())
LAST_NAMES = tuple(_LAST_NAMES_TEXT.split())


# --- files ---------------------------------------------------------------------------------


def write_products(path: Path) -> int:
    rows = [(p.sku, p.name, p.type, p.price, p.description) for p in PRODUCTS]
    _write_csv(path, ("sku", "name", "type", "price", "description"), rows)
    return len(rows)


def write_stores(path: Path, start: date) -> int:
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


def write_supplies(path: Path) -> int:
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


class StoreRow(NamedTuple):
    id: int
    opened_at: datetime
    tax_rate_bp: int
    popularity: float


def read_stores(path: Path) -> list[StoreRow]:
    popularity = {s.id: s.popularity for s in STORES}
    with path.open(encoding="utf-8", newline="") as f:
        return [
            StoreRow(
                id=int(row["id"]),
                opened_at=datetime.strptime(row["opened_at"], "%Y-%m-%d %H:%M:%S"),
                tax_rate_bp=round(float(row["tax_rate"]) * 10_000),
                popularity=popularity.get(int(row["id"]), 1.0),
            )
            for row in csv.DictReader(f)
        ]
