"""The boundary case, loaded for real: rows arriving later with the last cursor value of an
``append`` table (an integer cursor, and a timestamp) are loaded once, and a load is skipped
only when nothing could be new. SQLite sources are probed; Postgres ones always run dlt."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from stackyard import Context
from stackyard.console import CaptureConsole
from stackyard.ingest.loader import Loader
from stackyard.project import init_project

NOTHING_NEW = "nothing new since run"
Execute = Callable[..., None]


@pytest.fixture(params=["sqlite", "postgres"])
def upstream(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Execute]]:
    """The source's connection URL, and a function running statements on it."""
    if request.param == "sqlite":
        path = tmp_path / "app.sqlite"
        sqlite3.connect(path).close()

        def on_sqlite(*statements: str) -> None:
            db = sqlite3.connect(path)
            for statement in statements:
                db.execute(statement.replace("TIMESTAMP", "DATETIME"))
            db.commit()
            db.close()

        yield f"sqlite:///{path}", on_sqlite
        return
    import psycopg

    pg: dict[str, Any] = request.getfixturevalue("pg_database")
    dsn = f"postgresql://{pg['user']}@{pg['host']}:{pg['port']}/{pg['database']}"

    def on_postgres(*statements: str) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement.encode())

    yield dsn, on_postgres


def load(project: Path, run_id: str, latest: str | None) -> tuple[dict[str, int], bool]:
    """Rows loaded per table, and whether the probe skipped the source."""
    console = CaptureConsole()
    with Context(project, console=console) as ctx:
        session = ctx.session()
        with session.released():
            (result,) = Loader(session).load(
                ["app"], datetime.now(UTC), run_id=run_id, latest_run=latest
            )
    assert result.status == "loaded", result.error
    details = [e[3] for e in console.events if e[0] == "finished" and e[1] == "load app"]
    return {t.table: t.rows for t in result.tables if t.rows}, NOTHING_NEW in details[0]


def test_rows_at_the_last_cursor_value_are_loaded_once(
    tmp_path: Path, upstream: tuple[str, Execute]
) -> None:
    url, execute = upstream
    execute(
        "CREATE TABLE events (id INTEGER, kind TEXT, tick INTEGER)",
        "CREATE TABLE visits (id INTEGER, kind TEXT, at TIMESTAMP)",
        "INSERT INTO events VALUES (1, 'view', 7), (2, 'view', 7)",
        "INSERT INTO visits VALUES (1, 'view', '2026-01-02 10:00:00')",
    )
    project = appending_project(tmp_path, url, {"events": "tick", "visits": "at"})
    probed = url.startswith("sqlite")
    assert load(project, "r1", None) == ({"events": 2, "visits": 1}, False)
    assert load(project, "r2", "r1") == ({}, probed)
    execute(
        "INSERT INTO events VALUES (3, 'view', 7), (4, 'view', 7)",
        # the last value again, written another way (SQLite keeps the text as written)
        "INSERT INTO visits VALUES (2, 'view', '2026-01-02T10:00:00')",
    )
    assert load(project, "r3", "r2") == ({"events": 2, "visits": 1}, False)
    assert load(project, "r4", "r3") == ({}, probed)
    # a row at the last value changed in place: a row dlt has not loaded
    execute("UPDATE events SET kind = 'click' WHERE id = 4")
    assert load(project, "r5", "r4") == ({"events": 1}, False)
    with Context(project) as ctx:
        rows = ctx.sql("select id, kind, tick from app.events order by id, kind").rows
    assert list(rows) == [
        (1, "view", 7),
        (2, "view", 7),
        (3, "view", 7),
        (4, "click", 7),
        (4, "view", 7),
    ]


def appending_project(tmp_path: Path, url: str, cursors: dict[str, str]) -> Path:
    """A project appending each table of ``cursors`` (no key, that cursor) from ``url``."""
    project = tmp_path / "p"
    init_project(project)
    tables = "".join(f"      {t}: {{cursor: {c}, append: true}}\n" for t, c in cursors.items())
    (project / "stackyard.yml").write_text(
        "name: boundary\n"
        "targets:\n  dev: {type: duckdb, path: .stackyard/dev.duckdb}\n"
        "monitors: {enabled: false}\n"
        f"sources:\n  app:\n    kind: sql_database\n    connection: {url}\n    tables:\n{tables}"
    )
    return project


def sales_lines(tmp_path: Path, url: str, execute: Execute) -> Path:
    """A project loading ``sales`` (no key, cursor ``ts``, appended) from a source holding two
    lines at ``2026-01-01 10:00:00``."""
    execute(
        "CREATE TABLE sales (sku TEXT, qty INTEGER, ts TIMESTAMP)",
        "INSERT INTO sales VALUES ('A', 1, '2026-01-01 10:00:00'), ('B', 2, '2026-01-01 10:00:00')",
    )
    project = appending_project(tmp_path, url, {"sales": "ts"})
    return project


def test_a_copy_arriving_later_at_the_last_cursor_value_is_loaded(
    tmp_path: Path, upstream: tuple[str, Execute]
) -> None:
    """Two sales lines alike in every column, the second written after the first load: both
    are in the warehouse, and a load after that brings neither again."""
    url, execute = upstream
    project = sales_lines(tmp_path, url, execute)
    probed = url.startswith("sqlite")
    assert load(project, "r1", None) == ({"sales": 2}, False)
    execute("INSERT INTO sales VALUES ('A', 1, '2026-01-01 10:00:00')")
    assert load(project, "r2", "r1") == ({"sales": 1}, False)
    assert load(project, "r3", "r2") == ({}, probed)
    # two more copies at once, and one more copy of the other line
    execute(
        "INSERT INTO sales VALUES ('A', 1, '2026-01-01 10:00:00'), ('A', 1, '2026-01-01 10:00:00')",
        "INSERT INTO sales VALUES ('B', 2, '2026-01-01 10:00:00')",
    )
    assert load(project, "r4", "r3") == ({"sales": 3}, False)
    assert load(project, "r5", "r4") == ({}, probed)
    # the cursor moves on: the copies at the old value are no longer read
    execute("INSERT INTO sales VALUES ('A', 1, '2026-01-01 11:00:00')")
    assert load(project, "r6", "r5") == ({"sales": 1}, False)
    execute("INSERT INTO sales VALUES ('A', 1, '2026-01-01 11:00:00')")
    assert load(project, "r7", "r6") == ({"sales": 1}, False)
    with Context(project) as ctx:
        rows = ctx.sql("select sku, qty, count(*) from app.sales group by 1, 2 order by 1").rows
    assert list(rows) == [("A", 1, 6), ("B", 2, 2)]


KILLED_AFTER_EXTRACT = """
import os, sys
from datetime import UTC, datetime
from dlt.extract.extract import Extract
commit = Extract.commit_packages
def die_after(self):
    commit(self)
    os._exit(130)
Extract.commit_packages = die_after
from stackyard import Context
from stackyard.ingest.loader import Loader
with Context(sys.argv[1]) as ctx:
    session = ctx.session()
    with session.released():
        Loader(session).load(["app"], datetime.now(UTC), run_id="killed", latest_run=sys.argv[2])
"""


def test_a_copy_extracted_by_a_killed_load_is_loaded_once(
    tmp_path: Path, upstream: tuple[str, Execute]
) -> None:
    """Killed after extracting a later copy and before loading it: the next load finishes
    the package left pending, and then loads only the copy written since."""
    import subprocess
    import sys

    url, execute = upstream
    project = sales_lines(tmp_path, url, execute)
    assert load(project, "r1", None) == ({"sales": 2}, False)
    execute("INSERT INTO sales VALUES ('A', 1, '2026-01-01 10:00:00')")
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_AFTER_EXTRACT, str(project), "r1"],
        capture_output=True,
        text=True,
    )
    assert killed.returncode == 130, killed.stdout + killed.stderr
    execute("INSERT INTO sales VALUES ('A', 1, '2026-01-01 10:00:00')")
    assert load(project, "r3", "r1") == ({"sales": 2}, False)  # the pending copy, and the new one
    assert load(project, "r4", "r3")[0] == {}
    with Context(project) as ctx:
        rows = ctx.sql("select sku, count(*) from app.sales group by 1 order by 1").rows
    assert list(rows) == [("A", 3), ("B", 1)]
