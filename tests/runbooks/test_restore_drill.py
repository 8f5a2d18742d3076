"""The restore drill: back up the example project, load more, destroy the warehouse, restore,
run again — no duplicates, no gaps, cursors continue. On DuckDB and on Postgres."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from stackyard.project import init_project

STACKYARD = str(Path(sys.executable).with_name("stackyard"))


def cli(*args: str, code: int = 0, env: dict[str, str] | None = None) -> str:
    """One stackyard command in its own process, as a user runs it (DuckDB caches an open
    database per process, so a restore must be seen from a fresh one)."""
    done = subprocess.run([STACKYARD, *args], capture_output=True, text=True, check=False, env=env)
    assert done.returncode == code, done.stdout + done.stderr
    return done.stdout + done.stderr


def sql(project: Path, target: str, query: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(
        cli("sql", query, "--json", "--project", str(project), "--target", target)
    )["rows"]
    return rows


def add_orders(project: Path, count: int) -> None:
    """Copies of existing orders with their items (so the shop's tests still hold) and an
    edited customer, all updated after the last cursor."""
    db = sqlite3.connect(project / "sources" / "jaffle_app.sqlite")
    later = "2030-01-01 09:00:00"
    (top,) = db.execute("SELECT max(id) FROM orders").fetchone()
    (top_item,) = db.execute("SELECT max(id) FROM order_items").fetchone()
    originals = db.execute("SELECT * FROM orders ORDER BY id LIMIT ?", (count,)).fetchall()
    for n, order in enumerate(originals, 1):
        db.execute(
            "INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", (top + n, *order[1:-1], later)
        )
        for item in db.execute(
            "SELECT * FROM order_items WHERE order_id = ?", (order[0],)
        ).fetchall():
            top_item += 1
            db.execute(
                "INSERT INTO order_items VALUES (?, ?, ?, ?, ?)",
                (top_item, top + n, item[2], item[3], later),
            )
    db.execute("UPDATE customers SET name = 'Renamed', updated_at = ? WHERE id = 1", (later,))
    db.commit()
    db.close()


def source_counts(project: Path) -> dict[str, int]:
    db = sqlite3.connect(project / "sources" / "jaffle_app.sqlite")
    counts = {
        t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        for t in ("customers", "orders", "order_items")
    }
    db.close()
    return counts


def warehouse_state(project: Path, target: str) -> dict[str, Any]:
    """Rows per loaded table, duplicate keys, and the rows downstream marts see."""
    found: dict[str, Any] = {}
    for table in ("customers", "orders", "order_items"):
        row = sql(
            project, target, f"SELECT count(*) AS n, count(DISTINCT id) AS d FROM shop_db.{table}"
        )[0]
        found[table] = int(row["n"])
        found[f"{table}_duplicates"] = int(row["n"]) - int(row["d"])
    found["marts.orders"] = int(
        sql(project, target, "SELECT count(*) AS n FROM marts.orders")[0]["n"]
    )
    renamed = "SELECT count(*) AS n FROM shop_db.customers WHERE name = 'Renamed'"
    found["renamed"] = int(sql(project, target, renamed)[0]["n"])
    return found


def drill(project: Path, target: str, destroy: Any, env: dict[str, str] | None = None) -> Path:
    """The drill; ``env`` is the environment of the backup and restore commands."""
    cli("run", "--project", str(project), "--target", target)
    path = cli("backup", "--project", str(project), "--target", target, env=env)
    path = path.splitlines()[0].strip()
    manifest = json.loads((Path(path) / "manifest.json").read_text())
    backed_up = {t["schema"] + "." + t["table"]: t["rows"] for t in manifest["tables"]}
    first = source_counts(project)
    assert backed_up["shop_db.orders"] == first["orders"]
    assert "stackyard.runs" in backed_up  # platform state travels with the data

    # Work after the backup: new orders and an edited customer, loaded by a second run.
    add_orders(project, 25)
    cli("run", "--project", str(project), "--target", target)
    assert warehouse_state(project, target)["orders"] == first["orders"] + 25

    destroy()
    said = cli("restore", path, "--yes", "--project", str(project), "--target", target, env=env)
    # A server's dump holds no grants: the restore says so (it said only "✔ restored", and
    # every reader but the owner met "permission denied").
    grants = (
        f"grants were not restored (a backup holds none): run `stackyard apply --target {target}`"
    )
    assert (grants in " ".join(said.split())) == (target == "prod"), said
    restored = warehouse_state(project, target)
    assert restored["orders"] == first["orders"]  # exactly the backup: the 25 are not in it
    assert restored["renamed"] == 0

    # The next run continues from the backup's cursors: the 25 orders and the edit come back.
    cli("run", "--project", str(project), "--target", target)
    after = warehouse_state(project, target)
    now = source_counts(project)
    for table in ("customers", "orders", "order_items"):
        assert after[table] == now[table], table  # no gaps
        assert after[f"{table}_duplicates"] == 0, table  # no duplicates
    assert after["renamed"] == 1
    assert after["marts.orders"] == now["orders"]
    return Path(path)


@pytest.mark.slow
def test_restore_drill_duckdb(tmp_path: Path) -> None:
    project = init_project(tmp_path / "shop", example="jaffle_shop").path
    database = project / ".stackyard" / "dev.duckdb"

    def destroy() -> None:
        database.unlink()
        Path(f"{database}.wal").unlink(missing_ok=True)

    drill(project, "dev", destroy)
    # The destroyed file was not there to keep; the pipelines' newer state was kept aside.
    kept = list((project / ".stackyard" / "pipelines").glob(".before-restore-*/*"))
    assert {p.name for p in kept} == {"shop__shop_db__dev", "shop__shop_files__dev"}
    # The restored warehouse, the state kept aside and the backups are the owner's only.
    backups = list((project / ".stackyard" / "backups").iterdir())
    for path in (database, kept[0].parent, *backups):
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path


def postgres_project(tmp_path: Path, database: str) -> Path:
    project = init_project(tmp_path / "shop", example="jaffle_shop").path
    config = project / "stackyard.yml"
    text = config.read_text()
    text = re.sub(
        r"  prod:.*?(?=\n\nsources:)",
        "  prod:\n    type: postgres\n    host: 127.0.0.1\n    user: postgres\n"
        f"    database: {database}",
        text,
        flags=re.S,
    )
    config.write_text(text)
    return project


def without_pg_dump() -> dict[str, str]:
    """An environment whose PATH has stackyard but no PostgreSQL client programs."""
    assert shutil.which("pg_dump", path=str(Path(STACKYARD).parent)) is None
    return {**os.environ, "PATH": str(Path(STACKYARD).parent)}


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("client", ["pg_dump", "none"])
def test_restore_drill_postgres(
    tmp_path: Path, pg_database: dict[str, Any], pg_admin_dsn: str, client: str
) -> None:
    import psycopg

    project = postgres_project(tmp_path, str(pg_database["database"]))

    def destroy() -> None:
        with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{pg_database["database"]}" WITH (FORCE)')

    env = without_pg_dump() if client == "none" else None
    backup = drill(project, "prod", destroy, env=env)
    method = json.loads((backup / "manifest.json").read_text())["method"]
    assert method == ("pg_dump-directory" if client == "pg_dump" else "postgres-copy-binary")


def test_restore_refuses_a_damaged_backup(tmp_path: Path) -> None:
    project = init_project(tmp_path / "shop").path
    cli("sql", "CREATE TABLE t AS SELECT range AS i FROM range(200000)", "--project", str(project))
    path = Path(cli("backup", "--project", str(project)).splitlines()[0].strip())
    before = warehouse_files(project)
    with (path / "warehouse.duckdb").open("r+b") as handle:
        handle.seek(20_000)
        handle.write(b"\x00garbage\x00" * 100)
    output = cli("restore", str(path), "--yes", "--project", str(project), code=1)
    assert "damaged" in output and "warehouse.duckdb" in output
    assert warehouse_files(project) == before  # nothing replaced, nothing moved


def warehouse_files(project: Path) -> list[str]:
    return sorted(p.name for p in (project / ".stackyard").iterdir())
