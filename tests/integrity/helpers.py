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


def cli_json(*args: str, env: dict[str, str] | None = None) -> tuple[int, Any]:
    """Run ``stackyard ARGS --json``; returns (exit code, parsed output)."""
    code, output = cli(*args, "--json", env=env)
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


def table_digest(project: Path, schema: str) -> dict[str, tuple[int, str]]:
    """``{table: (rows, content hash)}`` of a schema, without dlt's and stackyard's load
    columns (which differ between loads of the same rows)."""
    import hashlib

    names = [
        r[0]
        for r in rows(
            project,
            "SELECT table_name FROM information_schema.tables "
            f"WHERE table_schema = '{schema}' AND table_name NOT LIKE '\\_dlt%' ESCAPE '\\'",
        )
    ]
    out = {}
    for name in sorted(names):
        columns = [
            r[0]
            for r in rows(
                project,
                "SELECT column_name FROM information_schema.columns WHERE "
                f"table_schema = '{schema}' AND table_name = '{name}' ORDER BY column_name",
            )
            if r[0] not in ("_loaded_at", "_dlt_load_id", "_dlt_id", "rejected_at")
        ]
        found = sorted(
            repr(r) for r in rows(project, f'SELECT {", ".join(columns)} FROM {schema}."{name}"')
        )
        out[name] = (len(found), hashlib.sha256("\n".join(found).encode()).hexdigest()[:16])
    return out


def sh(*args: str) -> tuple[int, str]:
    """Run ``stackyard ARGS`` in a new process (as a user would: nothing cached in memory,
    e.g. a DuckDB file deleted between commands is really gone)."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "stackyard.cli.main", *args],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "COLUMNS": "200"},
    )
    return done.returncode, done.stdout + done.stderr
