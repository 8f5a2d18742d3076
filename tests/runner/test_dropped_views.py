"""On Postgres a view over a rebuilt table whose test failed is created again, not left
dropped: dbt-postgres drops the old table with CASCADE, and ``dbt build`` skips the views
downstream of a failed test."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stackyard.cli.main import app
from tests.conftest import write
from tests.runner.test_run_postgres import add_prod_target

pytestmark = pytest.mark.postgres


def test_a_view_over_a_table_whose_test_failed_is_there_after_the_run(
    project: Path, pg_database: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    add_prod_target(project, pg_database)
    monkeypatch.setenv("PROD_PG_PASSWORD", "")
    t = project / "transform"
    (t / "dbt_project.yml").write_text(
        (t / "dbt_project.yml").read_text()
        + "    reporting: {+materialized: view, +schema: reporting}\n"
    )
    write(
        t / "models" / "reporting" / "rpt_top_customers.sql",
        "select customer_id, orders from {{ ref('customer_orders') }} where orders > 3\n",
    )
    write(
        t / "tests" / "no_customer_over_100_orders.sql",
        "select * from {{ ref('customer_orders') }} where orders > 100\n",
    )
    runner = CliRunner()
    args = ["run", "--project", str(project), "--target", "prod"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output

    db = sqlite3.connect(project / "sources" / "app.sqlite")
    db.executemany(
        "INSERT INTO orders VALUES (?, 1, 5, 'placed', '2026-01-03 10:00:00')",
        [(1000 + i,) for i in range(150)],
    )
    db.commit()
    db.close()
    second = runner.invoke(app, [*args, "--json"])
    assert second.exit_code == 1, second.output  # the test failed: the run says so
    # Before: "relation reporting.rpt_top_customers does not exist" until a run passed.
    query = "select count(*) as n from reporting.rpt_top_customers where customer_id = 1"
    read = runner.invoke(app, ["sql", query, "-p", str(project), "-t", "prod", "--json"])
    assert read.exit_code == 0 and '"n": 1' in read.output, read.output
    assert "created again" in second.output
