"""Two sources with a table of the same name: the second `source add` is refused with a hint
that works as written, `--table NEW=SOURCE_TABLE`, which loads it under another name."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from stackyard.cli.main import app
from stackyard.project import init_project

runner = CliRunner()


def _db(path: Path, names: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        conn.executemany("INSERT INTO customers VALUES (?, ?)", list(enumerate(names, 1)))
    conn.close()


def test_same_table_name_in_two_sources_is_loaded_under_another_name(tmp_path: Path) -> None:
    root = tmp_path / "shop"
    init_project(root)
    _db(root / "sources/shop.sqlite", ["Ada", "Grace"])
    _db(root / "sources/crm.sqlite", ["Alan", "Edsger", "Barbara"])
    base = ["source", "add", "--kind", "sql_database", "-p", str(root)]
    first = runner.invoke(
        app,
        [
            *base[:2],
            "shop",
            *base[2:],
            "--connection",
            "sqlite:///sources/shop.sqlite",
            "--table",
            "customers",
        ],
    )
    assert first.exit_code == 0, first.output
    clash = runner.invoke(
        app,
        [
            *base[:2],
            "crm",
            *base[2:],
            "--connection",
            "sqlite:///sources/crm.sqlite",
            "--table",
            "customers",
        ],
    )
    assert clash.exit_code == 2
    flat = " ".join(clash.output.split())
    assert "stg_dlt__customers.sql already exists" in flat
    assert "--table crm_customers=customers" in flat

    renamed = runner.invoke(
        app,
        [
            *base[:2],
            "crm",
            *base[2:],
            "--connection",
            "sqlite:///sources/crm.sqlite",
            "--table",
            "crm_customers=customers",
        ],
    )
    assert renamed.exit_code == 0, renamed.output
    assert "loaded crm_customers: 3 rows" in renamed.output
    yml = (root / "stackyard.yml").read_text()
    assert "source_table: customers" in yml
    assert (root / "transform/models/staging/dlt/stg_dlt__crm_customers.sql").exists()
    count = runner.invoke(
        app, ["sql", "select count(*) as n from crm.crm_customers", "-p", str(root), "--json"]
    )
    assert count.exit_code == 0, count.output
    assert json.loads(count.output)["rows"] == [{"n": 3}]
