"""Generated staging models quote column names that are reserved words or need quoting, for
the target's dialect, so a source with columns named select, order or group builds and its
key tests pass (real dlt load + dbt build on DuckDB), and the SQL parses as intended everywhere."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp
from typer.testing import CliRunner

from stackyard import Context
from stackyard.cli.main import app
from stackyard.project import init_project
from stackyard.transform.staging import (
    Column,
    LoadedTable,
    needs_quotes,
    quote_column,
    staging_files,
)

runner = CliRunner()
ENGINES = ("duckdb", "postgres", "snowflake", "bigquery")


def test_source_with_reserved_column_names_builds_and_tests_pass(tmp_path: Path) -> None:
    root = tmp_path / "shop"
    init_project(root)
    (root / "sources" / "exports").mkdir(parents=True)
    (root / "sources" / "exports" / "orders.csv").write_text(
        'select,order,group,"Total Due",placed_at\n'
        "1,a,x,10.5,2026-01-01 10:00:00\n2,b,y,3.25,2026-01-02 11:00:00\n"
    )
    result = runner.invoke(
        app,
        [
            "source",
            "add",
            "exports",
            "--kind",
            "filesystem",
            "--url",
            "sources/exports",
            "--table",
            "orders=orders.csv",
            "--primary-key",
            "orders=select",
            "-p",
            str(root),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "✔ staging models build" in result.output and "✔ their tests pass" in result.output
    sql = (root / "transform/models/staging/dlt/stg_dlt__orders.sql").read_text()
    assert '"select"' in sql and '"order"' in sql and '"group"' in sql
    yml = (root / "transform/models/staging/dlt/stg_dlt__orders.yml").read_text()
    assert "quote: true" in yml
    rows = (
        Context(root)
        .sql('select "select", "order", "group", total_due from staging.stg_dlt__orders order by 1')
        .rows
    )
    assert rows == ((1, "a", "x", 10.5), (2, "b", "y", 3.25))


@pytest.mark.parametrize("dialect", ENGINES)
def test_generated_model_selects_exactly_the_intended_columns(dialect: str) -> None:
    names = ["select", "order", "group", "from", "id", "amount", "Total Due", 'we"ird']
    table = LoadedTable("orders", (*(Column(n, "text") for n in names), Column("at", "timestamp")))
    (model, _) = staging_files("shop", [table], dialect)
    sql = model.text.replace("{{ source('dlt_shop', 'orders') }}", "raw.orders")
    statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    assert len(statements) == 1 and isinstance(statements[0], exp.Select)
    cte = next(c for c in statements[0].find_all(exp.CTE) if c.alias == "renamed")
    outputs = [s.alias_or_name for s in cte.this.selects]
    expected = ["order_id" if n == "id" else n for n in names] + ["at", "_loaded_at"]
    if dialect == "snowflake":  # quoted in upper case, as dlt creates them there
        expected = [n.upper() if n.isidentifier() and needs_quotes(n) else n for n in expected]
    assert sorted(outputs) == sorted(expected), outputs


def test_quote_column_is_per_dialect() -> None:
    assert quote_column("order", "duckdb") == '"order"'
    assert quote_column("order", "postgres") == '"order"'
    assert quote_column("order", "snowflake") == '"ORDER"'
    assert quote_column("order", "bigquery") == "`order`"
    assert quote_column("customer_id", "snowflake") == "customer_id"


def test_id_keeps_its_name_when_the_table_has_the_entity_id_already() -> None:
    table = LoadedTable("items", (Column("id", "bigint"), Column("item_id", "bigint")))
    (model, _) = staging_files("shop", [table], "duckdb")
    # `id as item_id` beside the table's own item_id: DuckDB renamed one, Postgres refused
    assert "id as item_id" not in model.text
    assert "        id,\n" in model.text and "        item_id,\n" in model.text
