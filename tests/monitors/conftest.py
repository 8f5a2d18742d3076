"""Real receivers for alerts (an HTTP webhook, an SMTP server) and a project that can be broken
on purpose, for the monitor tests."""

from __future__ import annotations

import http.server
import json
import random
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from stackyard.config.model import DuckDBTarget
from stackyard.config.secrets import Secrets
from stackyard.warehouse.base import Warehouse
from stackyard.warehouse.duckdb import DuckDBWarehouse
from tests.conftest import write
from tests.runner.conftest import make_project


@dataclass
class Webhook:
    """A local webhook receiver: answers ``status`` after ``delay`` seconds, keeps every body."""

    url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    delay: float = 0.0

    def texts(self) -> list[str]:
        return [r["text"] for r in self.received]


@pytest.fixture()
def webhook() -> Iterator[Webhook]:
    hook = Webhook(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            hook.received.append(json.loads(body))
            if hook.delay:
                time.sleep(hook.delay)
            try:
                self.send_response(hook.status)
                self.end_headers()
                self.wfile.write(b"ok" if hook.status == 200 else b"broken")
            except OSError:  # the client gave up waiting (the timeout test)
                pass

        def log_message(self, *args: object) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Mailbox:
    """Messages a local SMTP server received."""

    port: int
    messages: list[Any] = field(default_factory=list)


@pytest.fixture()
def smtp_server() -> Iterator[Mailbox]:
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    box = Mailbox(port=free_port())

    class Collect(Message):
        def handle_message(self, message: Any) -> None:
            box.messages.append(message)

    controller = Controller(Collect(), hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def duckdb_warehouse(folder: Path) -> Warehouse:
    """A DuckDB warehouse in a folder, outside any project."""
    target = DuckDBTarget(type="duckdb", path=str(folder / "w.duckdb"))
    return DuckDBWarehouse("dev", target, folder, Secrets(folder, environ={}))


# --------------------------------------------------------------------------- the shop


def today_utc() -> date:
    return datetime.now(UTC).date()


def make_shop(root: Path, *, hook_url: str, days: int = 35) -> Path:
    """The runner tests' project with orders that carry an ``ordered_at`` over ``days`` days
    (about 40 a weekday, 20 a weekend day) and are replaced on every load, so that breaking
    the source (deleting a day, renaming a column, duplicating a day) reaches the warehouse.
    Alerts go to ``hook_url``."""
    make_project(root)
    rng = random.Random(5)
    today = today_utc()
    rows = []
    for back in range(days, -1, -1):
        day = today - timedelta(days=back)
        n = (40 if day.weekday() < 5 else 20) + rng.randint(-2, 2)
        if back == 0:
            n = 7  # today is still arriving
        for _ in range(n):
            rows.append(
                (
                    len(rows) + 1,
                    1 + len(rows) % 50,
                    100 + len(rows) % 90,
                    "placed",
                    "web",
                    f"{day} 12:00:00",
                )
            )
    db = sqlite3.connect(root / "sources" / "app.sqlite")
    db.execute("DROP TABLE orders")
    # No primary key: a day exported twice really lands twice.
    db.execute(
        "CREATE TABLE orders (id INTEGER, customer_id INTEGER, amount INTEGER, status TEXT, "
        "channel TEXT, ordered_at DATETIME)"
    )
    db.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?)", rows)
    db.commit()
    db.close()
    write(
        root / "stackyard.yml",
        f"""
        name: mini
        targets:
          dev: {{type: duckdb}}
        sources:
          app:
            kind: sql_database
            connection: sqlite:///sources/app.sqlite
            owner: "@app-team"
            tables:
              customers: {{primary_key: id, cursor: updated_at}}
              orders: {{}}
          files:
            kind: filesystem
            url: sources/files
            tables:
              products: {{glob: "*.csv", primary_key: sku}}
        monitors:
          tables:
            app.orders: {{key: id}}
          alerts:
            retries: 1
            backoff_seconds: 0.01
            owners:
              stg_dlt__orders: [analytics@example.com]
            channels:
              team: {{type: webhook, url: "{hook_url}", timeout_seconds: 2}}
        """,
    )
    return root


def break_orders(root: Path, *, drop: date, duplicate: date, rename: str = "channel") -> None:
    """Break the shop's source on purpose: a day's rows gone, a column renamed, a day twice.

    ``channel`` is read by no model, so dlt lets the renamed column in and the old one goes
    NULL on every row (the post-mortem's silent failure); a column a model selects makes the
    loader refuse the source instead."""
    db = sqlite3.connect(root / "sources" / "app.sqlite")
    db.execute("DELETE FROM orders WHERE date(ordered_at) = ?", (drop.isoformat(),))
    db.execute(f"ALTER TABLE orders RENAME COLUMN {rename} TO {rename}_v2")
    db.execute(
        "INSERT INTO orders SELECT * FROM orders WHERE date(ordered_at) = ?",
        (duplicate.isoformat(),),
    )
    db.commit()
    db.close()


def seed_volume_history(
    warehouse: Warehouse, days: int = 30, *, skip: tuple[str, ...] = ()
) -> None:
    """Copy each table's latest stored volume to the ``days`` days before it, with a little
    noise, as if monitors had run daily for a month."""
    rows = warehouse.query(
        "SELECT table_name, day, value FROM stackyard.monitor_metrics WHERE metric = 'volume'"
    ).rows
    latest: dict[str, tuple[date, float]] = {}
    for table, day, value in rows:
        if table not in skip:
            latest[table] = (day, value)
    seeded = []
    for table, (day, value) in latest.items():
        for back in range(1, days + 1):
            wobble = 1 + 0.03 * ((back * 7) % 5 - 2) / 2
            seeded.append(
                (
                    "seed",
                    datetime.now(UTC) - timedelta(days=back),
                    table,
                    "volume",
                    None,
                    day - timedelta(days=back),
                    round(value * wobble),
                )
            )
    warehouse.execute_many(
        "INSERT INTO stackyard.monitor_metrics VALUES (?, ?, ?, ?, ?, ?, ?)", seeded
    )
    warehouse.close()
