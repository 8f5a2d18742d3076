"""A model of what docs/project.md promises each table keeps, for the differential harness.

Upstream is a SQLite database and a folder of CSV files, changed step by step; the model
keeps, next to upstream, what the warehouse must hold after each ``stackyard`` command and the
counts the command must print:

* ``app.accounts`` (key ``id``, cursor ``tick``): merge — every key ever loaded, at its latest
  loaded version; keys deleted upstream stay until a reload.
* ``app.events`` (cursor ``tick``, no key, ``append: true``): every upstream row exactly once,
  rows sharing the last cursor value included.
* ``app.plans`` (no cursor): replace — equal to upstream.
* ``files.products`` (``products_*.csv``, no key): replace — every file's rows; no file fails
  the source and leaves both its tables as they were.
* ``files.payments`` (``payments.csv``, key ``id``): merge of the file's rows when it changed,
  the last row per key kept (an id that is not a whole number: test_loss.py, case 5).
"""

from __future__ import annotations

import csv
import io
import os
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROJECT_YML = """\
name: harness
targets:
  dev: {type: duckdb, path: .stackyard/dev.duckdb}
monitors: {enabled: false}
sources:
  app:
    kind: sql_database
    connection: sqlite:///sources/app.sqlite
    tables:
      accounts: {primary_key: id, cursor: tick}
      events: {cursor: tick, append: true}
      plans: {primary_key: id}
  files:
    kind: filesystem
    url: sources/files
    tables:
      products: {glob: "products_*.csv"}
      payments: {glob: payments.csv, primary_key: id}
"""


@dataclass
class Expected:
    """What one command must leave and print."""

    exit_code: int
    rows_loaded: int
    rows_rejected: int
    rows_collapsed: int


@dataclass
class World:
    """Upstream (the SQLite file and the CSV folder) and what the warehouse must hold."""

    root: Path
    tick: int = 1
    accounts: dict[int, tuple[str, int]] = field(default_factory=dict)
    events: list[tuple[int, str, int]] = field(default_factory=list)
    plans: dict[int, str] = field(default_factory=dict)
    products: dict[int, list[tuple[int, str]]] = field(default_factory=dict)
    payments: list[tuple[str, int]] = field(default_factory=list)
    payments_changed: bool = False
    mtime: float = 1_700_000_000.0
    # the warehouse, as promised
    w_accounts: dict[int, tuple[str, int]] = field(default_factory=dict)
    w_events: Counter[tuple[int, str, int]] = field(default_factory=Counter)
    w_plans: dict[int, str] = field(default_factory=dict)
    w_products: Counter[tuple[int, str]] = field(default_factory=Counter)
    w_payments: dict[int, int] = field(default_factory=dict)
    loaded_ticks: set[tuple[str, int, int]] = field(default_factory=set)  # (table, id, tick)
    lost: set[str] = field(default_factory=set)  # sources whose tables the warehouse lost
    next_id: int = 1

    # ------------------------------------------------------------------ upstream

    def setup(self) -> None:
        from stackyard.project import init_project

        init_project(self.root)
        (self.root / "stackyard.yml").write_text(PROJECT_YML)
        self.upstream()

    def upstream(self) -> None:
        """The SQLite database and the CSV folder with their first rows (``setup`` without
        the project around them)."""
        (self.root / "sources/files").mkdir(parents=True, exist_ok=True)
        self._sql(
            "CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT, tick INTEGER)",
            "CREATE TABLE events (id INTEGER, kind TEXT, tick INTEGER)",
            "CREATE TABLE plans (id INTEGER PRIMARY KEY, name TEXT)",
        )
        self.insert_accounts(3)
        self.new_events(2)
        self.change_plans(0)
        self.write_products(0)
        self.write_payments([("1", 10), ("2", 20)])

    def _sql(self, *statements: str, rows: tuple[str, list[tuple[Any, ...]]] | None = None) -> None:
        con = sqlite3.connect(self.root / "sources/app.sqlite")
        for statement in statements:
            con.execute(statement)
        if rows and rows[1]:
            marks = ", ".join("?" * len(rows[1][0]))
            con.executemany(f"INSERT OR REPLACE INTO {rows[0]} VALUES ({marks})", rows[1])
        con.commit()
        con.close()

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id

    def insert_accounts(self, n: int) -> None:
        self.tick += 1
        new = [(self._id(), f"a{self.tick}", self.tick) for _ in range(n)]
        self.accounts.update({i: (name, t) for i, name, t in new})
        self._sql(rows=("accounts", new))

    def update_accounts(self, pick: int) -> None:
        if not self.accounts:
            return
        self.tick += 1
        key = sorted(self.accounts)[pick % len(self.accounts)]
        self.accounts[key] = (f"u{self.tick}", self.tick)
        self._sql(rows=("accounts", [(key, *self.accounts[key])]))

    def delete_account(self, pick: int) -> None:
        if not self.accounts:
            return
        key = sorted(self.accounts)[pick % len(self.accounts)]
        del self.accounts[key]
        self._sql(f"DELETE FROM accounts WHERE id = {key}")

    def new_events(self, n: int) -> None:
        self.tick += 1
        self._events(n, self.tick)

    def events_at_boundary(self, n: int) -> None:
        """Rows sharing the newest cursor value, arriving after it was loaded."""
        self._events(n, max((t for *_, t in self.events), default=self.tick))

    def _events(self, n: int, tick: int) -> None:
        new = [(self._id(), "view", tick) for _ in range(n)]
        self.events.extend(new)
        self._sql(rows=("events", new))

    def change_plans(self, pick: int) -> None:
        key = pick % 4
        if key in self.plans and pick % 2:
            del self.plans[key]
            self._sql(f"DELETE FROM plans WHERE id = {key}")
        else:
            self.plans[key] = f"p{self.tick}"
            self._sql(rows=("plans", [(key, self.plans[key])]))

    def write_products(self, k: int) -> None:
        self.tick += 1
        self.products[k] = [(k * 100 + i, f"n{self.tick}") for i in range(1 + self.tick % 3)]
        self._write(f"products_{k}.csv", "code,name", self.products[k])

    def remove_products(self, k: int) -> None:
        if k in self.products:
            del self.products[k]
            (self.root / f"sources/files/products_{k}.csv").unlink()

    def write_payments(self, rows: list[tuple[str, int]]) -> None:
        self.payments = rows
        self.payments_changed = True
        self._write("payments.csv", "id,amount", rows)

    def _write(self, name: str, header: str, rows: list[tuple[Any, ...]]) -> None:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header.split(","))
        writer.writerows(rows)
        path = self.root / "sources/files" / name
        path.write_text(buffer.getvalue())
        self.mtime += 10  # dlt finds changed files by modification time: make each write later
        os.utime(path, (self.mtime, self.mtime))

    # ------------------------------------------------------------------ the promises

    def run(self, refresh: bool = False) -> Expected:
        """What ``stackyard run`` (``refresh``: ``--full-refresh``) must do."""
        loaded = rejected = collapsed = 0
        failed = False
        if "app" in self.lost and not refresh:
            failed = True  # its tables are missing: the load fails, naming them
        else:
            loaded += self._load_app(refresh)
            self.lost.discard("app")
        if "files" in self.lost and not refresh:
            failed = True
        else:
            # A refresh forgets the local state first; on a lost warehouse there is nothing
            # to restore it from, so even a failed refresh leaves the source to start afresh.
            fresh = refresh or "files" in self.lost
            files = self._load_files(fresh)
            self.lost.discard("files")
            if files is None:
                failed = True
                self.payments_changed = self.payments_changed or fresh
            else:
                loaded, rejected, collapsed = loaded + files[0], files[1], files[2]
        return Expected(1 if failed else 0, loaded, rejected, collapsed)

    def _load_app(self, refresh: bool) -> int:
        if refresh:
            self.w_accounts, self.w_events = {}, Counter()
            self.loaded_ticks = set()
        count = 0
        for key, (name, tick) in self.accounts.items():
            if ("accounts", key, tick) not in self.loaded_ticks:
                count += 1
                self.loaded_ticks.add(("accounts", key, tick))
            self.w_accounts[key] = (name, tick)
        for row in self.events:
            if row not in self.w_events:
                self.w_events[row] += 1
                count += 1
        self.w_plans = dict(self.plans)
        return count + len(self.plans)

    def _load_files(self, refresh: bool) -> tuple[int, int, int] | None:
        if not self.products:
            return None  # the glob matches nothing: the whole source fails, tables kept
        self.w_products = Counter(r for rows in self.products.values() for r in rows)
        loaded = sum(self.w_products.values())
        rejected = collapsed = 0
        if refresh:
            self.w_payments = {}
        if self.payments_changed or refresh:
            good: dict[int, int] = {}
            kept = 0
            for raw, amount in self.payments:
                if not raw.lstrip("-").isdigit():
                    rejected += 1
                    continue
                kept += 1
                good.pop(int(raw), None)
                good[int(raw)] = amount
            collapsed = kept - len(good)
            self.w_payments.update(good)
            loaded += len(good)
            self.payments_changed = False
        return loaded, rejected, collapsed

    def lose_warehouse(self) -> None:
        self.lost = {"app", "files"}
        self.w_accounts, self.w_events, self.w_plans = {}, Counter(), {}
        self.w_products, self.w_payments = Counter(), {}

    def tables(self) -> dict[str, Any]:
        """The warehouse as promised, in the form :func:`warehouse` reads it back."""
        return {
            "app.accounts": sorted((k, *v) for k, v in self.w_accounts.items()),
            "app.events": sorted(self.w_events.elements()),
            "app.plans": sorted(self.w_plans.items()),
            "files.products": sorted(self.w_products.elements()),
            "files.payments": sorted(self.w_payments.items()),
        }


_COLUMNS = {
    "app.accounts": "id, name, tick",
    "app.events": "id, kind, tick",
    "app.plans": "id, name",
    "files.products": "code, name",
    "files.payments": "id, amount",
}


def warehouse(project: Path) -> dict[str, Any]:
    """Every harness table as it is in the warehouse (missing tables as empty)."""
    import duckdb

    con = duckdb.connect(str(project / ".stackyard/dev.duckdb"))
    try:
        present = {
            f"{s}.{t}"
            for s, t in con.sql(
                "SELECT table_schema, table_name FROM information_schema.tables"
            ).fetchall()
        }
        return {
            name: sorted(tuple(r) for r in con.sql(f"SELECT {cols} FROM {name}").fetchall())
            if name in present
            else []
            for name, cols in _COLUMNS.items()
        }
    finally:
        con.close()


def lose(project: Path) -> None:
    """The warehouse file lost: every schema in it gone. (Dropping them rather than deleting
    the file: the in-process dbt adapter keeps the database open, so a deleted file would
    live on in memory.)"""
    import duckdb

    con = duckdb.connect(str(project / ".stackyard/dev.duckdb"))
    try:
        for (schema,) in con.sql(
            "SELECT schema_name FROM information_schema.schemata WHERE schema_name NOT IN "
            "('main', 'information_schema', 'pg_catalog') AND catalog_name = current_database()"
        ).fetchall():
            con.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        con.close()
