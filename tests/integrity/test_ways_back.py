"""Ways back (cases 9 and 10): a lost warehouse, a dropped table, an upstream rename."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tests.conftest import write
from tests.integrity.helpers import new_project, rows, scalar, sh, sqlite_db, table_digest


def _project(root: Path) -> Path:
    project = new_project(root)
    sqlite_db(
        project / "sources/app.sqlite",
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, updated_at TEXT)",
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, amount INTEGER, "
        "updated_at TEXT)",
        rows_of={
            "customers": [(i, f"c{i}", "2026-01-01 00:00:00") for i in range(1, 8)],
            "orders": [(i, 1 + i % 7, 10 * i, "2026-01-01 00:00:00") for i in range(1, 10)],
        },
    )
    write(project / "sources/files/payments.csv", "id,order_id,paid\n1,1,10\n2,2,20\n3,3,30\n")
    code, output = sh(
        "source", "add", "app", "--kind", "sql_database",
        "--connection", "sqlite:///sources/app.sqlite",
        "--table", "customers", "--table", "orders",
        "--cursor", "customers=updated_at", "--cursor", "orders=updated_at", "-p", str(project),
    )  # fmt: skip
    assert code == 0, output
    code, output = sh(
        "source", "add", "files", "--kind", "filesystem", "--url", "sources/files",
        "--table", "payments=payments*.csv", "--primary-key", "payments=id", "-p", str(project),
    )  # fmt: skip
    assert code == 0, output
    return project


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    return _project(tmp_path / "shop")


def _digests(project: Path) -> dict[str, dict[str, tuple[int, str]]]:
    return {s: table_digest(project, s) for s in ("app", "files", "staging")}


def test_case_09_a_lost_warehouse_fails_the_run_then_reload_brings_it_back(
    project: Path, tmp_path: Path
) -> None:
    # one update upstream, loaded incrementally, so the state has moved on
    sqlite_db(
        project / "sources/app.sqlite",
        "UPDATE orders SET amount = 999, updated_at = '2026-01-02 00:00:00' WHERE id = 2",
    )
    code, output = sh("run", "-p", str(project))
    assert code == 0, output
    before = _digests(project)
    (project / ".stackyard/dev.duckdb").unlink()

    code, output = sh("run", "-p", str(project))
    assert code == 1, output
    assert "app.customers, app.orders are missing" in output.replace("\n", " ")
    assert "stackyard reload app" in output.replace("\n", " ")
    # The backup is named as a way back too (only `doctor` named it).
    assert "`stackyard restore latest` puts back every table" in " ".join(output.split())

    code, output = sh("reload", "app", "--dry-run", "-p", str(project))
    assert code == 0, output
    assert "1. drop every table of schema app" in output
    code, output = sh("reload", "app", "--yes", "-p", str(project))
    assert code == 0, output
    code, output = sh("run", "--full-refresh", "--select", "files", "-p", str(project))
    assert code == 0, output
    after = _digests(project)
    assert after["app"] == before["app"] and after["files"] == before["files"]
    assert after["staging"] == before["staging"]

    # and the same as a fresh project loading the same upstream
    fresh = tmp_path / "fresh"
    shutil.copytree(project, fresh, ignore=shutil.ignore_patterns(".stackyard", "target"))
    code, output = sh("run", "-p", str(fresh))
    assert code == 0, output
    assert _digests(fresh) == after


def test_case_10_a_table_dropped_by_hand_is_named_and_reloaded(project: Path) -> None:
    import duckdb

    con = duckdb.connect(str(project / ".stackyard/dev.duckdb"))
    con.execute("DROP TABLE app.orders")
    con.close()
    code, output = sh("run", "-p", str(project))
    assert code == 1, output
    assert "app.orders is missing" in output.replace("\n", " ")
    code, output = sh("reload", "app.orders", "--dry-run", "-p", str(project))
    assert code == 0 and "source:dlt_app.orders+" in output, output
    code, output = sh("reload", "app.orders", "--yes", "-p", str(project))
    assert code == 0, output
    assert scalar(project, "SELECT count(*) FROM app.orders") == 9
    assert scalar(project, "SELECT count(*) FROM app.customers") == 7
    # Only what reads the reloaded table is rebuilt (in full): a full refresh of everything
    # downstream of the source wiped an unrelated incremental model's backfilled history.
    built = rows(
        project,
        "SELECT name FROM stackyard.node_results WHERE resource_type = 'model' AND run_id = "
        "(SELECT run_id FROM stackyard.runs ORDER BY started_at DESC LIMIT 1)",
    )
    assert [r[0] for r in built] == ["stg_dlt__orders"], built
    code, output = sh("run", "-p", str(project))
    assert code == 0, output
    assert scalar(project, "SELECT count(*) FROM app.orders") == 9


def test_case_10_recovery_after_an_upstream_rename(project: Path) -> None:
    db = project / "sources/app.sqlite"
    sqlite_db(
        db,
        "ALTER TABLE orders RENAME COLUMN customer_id TO client_id",
        "UPDATE orders SET updated_at = '2026-01-03 00:00:00' WHERE id = 1",
    )
    sh("run", "-p", str(project))  # loads the changed row with the new column
    # the fix the hint names: the staging model selects the new column under the old name
    model = project / "transform/models/staging/dlt/stg_dlt__orders.sql"
    model.write_text(model.read_text().replace("customer_id", "client_id as customer_id", 1))
    code, output = sh("reload", "app.orders", "--yes", "-p", str(project))
    assert code == 0, output
    assert rows(project, "SELECT count(*), count(client_id) FROM app.orders") == [(9, 9)]
    columns = [r[0] for r in rows(project, "DESCRIBE app.orders")]
    assert "customer_id" not in columns  # the old column went with the reload
    code, output = sh("run", "-p", str(project))
    assert code == 0, output
