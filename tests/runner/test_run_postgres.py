"""The same project on Postgres, with a password secret that must never be written anywhere."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from stackyard.cli.main import app
from tests.secret_scan import SecretScan

SECRET = "pw-Zq8!never-print-me"

pytestmark = pytest.mark.postgres


def add_prod_target(project: Path, db: dict[str, object]) -> None:
    text = (project / "stackyard.yml").read_text()
    text = text.replace(
        "  dev: {type: duckdb}\n",
        "  dev: {type: duckdb}\n"
        "  prod:\n"
        "    type: postgres\n"
        f"    host: {db['host']}\n"
        f"    port: {db['port']}\n"
        f"    user: {db['user']}\n"
        f"    database: {db['database']}\n"
        "    password: {secret: PROD_PG_PASSWORD}\n",
    )
    (project / "stackyard.yml").write_text(text)


def test_run_on_postgres_and_no_secret_is_written_anywhere(
    project: Path,
    pg_database: dict[str, object],
    monkeypatch: pytest.MonkeyPatch,
    secret_scan: SecretScan,
) -> None:
    secret_scan.secret(SECRET)
    secret_scan.project(project)
    secret_scan.postgres(pg_database)
    add_prod_target(project, pg_database)
    monkeypatch.setenv("PROD_PG_PASSWORD", SECRET)
    runner = CliRunner()
    first = runner.invoke(app, ["run", "--project", str(project), "--target", "prod", "--json"])
    assert first.exit_code == 0, first.output
    status = runner.invoke(app, ["status", "--project", str(project), "-t", "prod", "--json"])
    assert status.exit_code == 0 and '"status": "success"' in status.output
    query = runner.invoke(
        app,
        [
            "sql",
            "select count(*) as n from marts.customer_orders",
            "-p",
            str(project),
            "-t",
            "prod",
            "--json",
        ],
    )
    assert '"n": 50' in query.output

    # Everything stackyard wrote: its output, files in the project, and every table of the
    # target database (run history, dlt's state) are searched by the secrets scan.
    secret_scan.output(first.output, status.output, query.output)


def test_unreachable_postgres_is_a_configuration_error(project: Path) -> None:
    add_prod_target(project, {"host": "127.0.0.1", "port": 1, "user": "nobody", "database": "none"})
    result = CliRunner().invoke(
        app,
        ["run", "--project", str(project), "--target", "prod"],
        env={"PROD_PG_PASSWORD": SECRET},
    )
    assert result.exit_code == 2
    assert "cannot connect to Postgres target 'prod'" in result.output
    assert "Traceback" not in result.output
    assert SECRET not in result.output
