"""``stackyard doctor`` on a warehouse damaged or lost: a DuckDB file damaged in blocks no
query had read since (it said "healthy" while reading those rows failed), and a Postgres
database dropped (its fix put "createdb" before the restore)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stackyard.project import init_project
from tests.runbooks.test_doctor import checks, cli, doctor, with_postgres_target


def test_a_damaged_block_is_a_finding_naming_the_table_and_the_backup(tmp_path: Path) -> None:
    project = init_project(tmp_path / "shop").path
    cli(
        project,
        "sql",
        "CREATE TABLE orders AS SELECT i, 'order ' || i AS note FROM range(2000000) r(i)",
    )
    cli(project, "backup")
    healthy = doctor(project, code=0)
    assert any(p.startswith("blocks: every row of 1 table (") for p in healthy["passed"])

    warehouse = project / ".stackyard" / "dev.duckdb"
    with warehouse.open("r+b") as handle:
        handle.seek(warehouse.stat().st_size // 2)
        handle.write(b"\xa5" * 4096)
    assert '"n": 2000000' in cli(project, "sql", "select count(*) as n from orders", "--json")
    report = doctor(project, code=1)
    assert checks(report) == ["blocks"]
    (finding,) = report["findings"]
    assert "is damaged" in finding["what"] and "(reading main.orders)" in finding["what"]
    assert "`stackyard restore latest --yes`" in finding["fix"]
    assert "1 finding on target 'dev'" in cli(project, "doctor", code=1)


@pytest.mark.postgres
def test_a_dropped_postgres_database_is_restored_not_created_empty(
    tmp_path: Path, pg_database: dict[str, Any], pg_admin_dsn: str
) -> None:
    import psycopg

    project = with_postgres_target(init_project(tmp_path / "shop").path, pg_database["database"])
    cli(project, "sql", "--target", "prod", "CREATE TABLE orders AS SELECT 1 AS id")
    cli(project, "backup", "--target", "prod")
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{pg_database["database"]}" WITH (FORCE)')
    (finding,) = doctor(project, "--target", "prod", code=1)["findings"]
    # Before: "… the database exists (createdb …)" first, the restore only for a server that
    # cannot start; created empty, the database is behind dlt's state.
    fix = finding["fix"]
    assert fix.startswith("if the database was dropped or its server lost: `stackyard restore")
    assert fix.index("restore latest") < fix.index("createdb"), fix
