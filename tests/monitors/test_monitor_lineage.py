"""What the monitors watch follows what the project declares, not dbt's last manifest: a model
or source removed with its files is gone from the next pass, while a table dropped by hand
whose model is still declared is reported missing (real project on DuckDB, through the CLI)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from stackyard.cli.main import app
from stackyard.project import init_project
from tests.conftest import write

runner = CliRunner()


def cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def tables(root: Path, command: str) -> tuple[int, dict[str, Any]]:
    code, output = cli(command, "--json", "-p", str(root))
    return code, {t["table"]: t for t in json.loads(output)["tables"]}


def add_source(root: Path, name: str, table: str) -> None:
    write(root / f"sources/{name}/{table}.csv", "id,name\n1,Ada\n2,Grace\n")
    code, output = cli(
        "source", "add", name, "--kind", "filesystem", "--url", f"sources/{name}",
        "--table", f"{table}=*.csv", "--primary-key", f"{table}=id", "-p", str(root),
    )  # fmt: skip
    assert code == 0, output


def test_a_removed_source_is_not_watched_and_a_table_dropped_by_hand_is_missing(
    tmp_path: Path,
) -> None:
    root = tmp_path / "shop"
    init_project(root)
    add_source(root, "crm", "contacts")
    add_source(root, "exports", "orders")
    code, watched = tables(root, "monitor")
    assert code == 0, watched
    assert {"crm.contacts", "staging.stg_dlt__contacts", "staging.stg_dlt__orders"} <= set(watched)

    code, output = cli("source", "remove", "crm", "--drop-data", "--yes", "-p", str(root))
    assert code == 0, output
    code, output = cli("sql", "DROP VIEW staging.stg_dlt__orders", "-p", str(root))
    assert code == 0, output

    # Before: dbt's manifest of the last run still named stg_dlt__contacts, and every pass
    # until the next run said "staging.stg_dlt__contacts does not exist … dropped or
    # renamed?", exited 1 and alerted.
    for command in ("monitor", "health"):
        code, found = tables(root, command)
        assert code == 1, found
        assert not [t for t in found if "contacts" in t], found
        assert {t for t, h in found.items() if h["status"] == "missing"} == {
            "staging.stg_dlt__orders"
        }
    code, output = cli("health", "show", "staging.stg_dlt__contacts", "-p", str(root))
    assert code == 2 and "no monitored table" in output, output


def test_the_reports_lineage_says_an_ephemeral_model_has_no_table_to_watch() -> None:
    """It read "not monitored yet", as though a later pass would come to it."""
    from stackyard.monitors.lineage import Lineage
    from stackyard.monitors.report import _lineage

    def model(name: str, materialized: str) -> dict[str, object]:
        return {
            "resource_type": "model", "schema": "marts", "alias": name, "name": name,
            "fqn": ["p", "marts", name], "config": {"materialized": materialized},
        }  # fmt: skip

    manifest = {
        "nodes": {"model.p.e": model("e", "ephemeral"), "model.p.m": model("m", "table")},
        "parent_map": {"model.p.m": ["model.p.e"]},
    }
    nodes = {n["id"]: n for n in _lineage(Lineage.from_manifest(manifest), {})["nodes"]}
    assert nodes["model.p.e"]["why"].startswith("ephemeral: built into the models")
    assert nodes["model.p.m"]["why"] == "not monitored yet"
