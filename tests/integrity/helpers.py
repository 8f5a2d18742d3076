"""What the integrity tests share: a bare project, the CLI, and the warehouse read back."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from stackyard.cli.main import app
from stackyard.project import init_project

runner = CliRunner()


def cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run ``stackyard ARGS``; returns (exit code, output)."""
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.output


def cli_json(*args: str) -> tuple[int, Any]:
    """Run ``stackyard ARGS --json``; returns (exit code, parsed output)."""
    code, output = cli(*args, "--json")
    start = min(i for i in (output.find("{"), output.find("[")) if i >= 0)
    return code, json.loads(output[start:])


def new_project(root: Path) -> Path:
    """An empty project (no example data) in ``root``."""
    init_project(root)
    return root


def rows(project: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of a query on the project's DuckDB warehouse (opened, then closed)."""
    import duckdb

    con = duckdb.connect(str(project / ".stackyard" / "dev.duckdb"))
    try:
        return [tuple(r) for r in con.sql(sql).fetchall()]
    finally:
        con.close()


def scalar(project: Path, sql: str) -> Any:
    """The single value of a query on the warehouse."""
    return rows(project, sql)[0][0]


def sqlite_db(
    path: Path, *statements: str, rows_of: dict[str, list[tuple[Any, ...]]] | None = None
) -> Path:
    """Create or change a SQLite database: run the statements, then insert the rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path)
    for statement in statements:
        con.execute(statement)
    for table, values in (rows_of or {}).items():
        if values:
            marks = ", ".join("?" * len(values[0]))
            con.executemany(f"INSERT INTO {table} VALUES ({marks})", values)
    con.commit()
    con.close()
    return path
