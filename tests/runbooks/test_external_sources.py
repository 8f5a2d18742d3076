"""Tables loaded by Airbyte and Fivetran become sources in one command, and a stale one is caught.

The tables are written by the test as those tools write them (their own columns included),
into the project's DuckDB file and into a throwaway Postgres database.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from stackyard import Context
from stackyard.cli.main import app
from stackyard.infra.layout import build_declaration
from stackyard.project import init_project
from tests.conftest import write
from tests.ingest.loader_tables import write_tables

runner = CliRunner()


def cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def duckdb_tables(project: Path, loader: str, schema: str, hours_ago: float = 1.0) -> None:
    import duckdb

    conn = duckdb.connect(str(project / ".stackyard" / "dev.duckdb"))
    try:
        write_tables(conn, "duckdb", loader, schema, hours_ago)
    finally:
        conn.close()


@pytest.fixture()
def project(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "shop"
    init_project(root)
    (root / ".stackyard").mkdir(exist_ok=True)
    duckdb_tables(root, "airbyte", "support")
    duckdb_tables(root, "fivetran", "billing")
    yield root


def add(project: Path, name: str, loader: str, *extra: str) -> tuple[int, dict[str, Any]]:
    code, output = cli(
        "source", "add", name, "--kind", "external", "--loader", loader,
        "-p", str(project), "--json", *extra,
    )  # fmt: skip
    return code, json.loads(output)


def query(project: Path, sql: str) -> list[list[Any]]:
    with Context(project) as ctx:
        return [list(r) for r in ctx.sql(sql).rows]


def test_airbyte_and_fivetran_schemas_become_sources_in_one_command(project: Path) -> None:
    code, airbyte = add(project, "support", "airbyte")
    assert code == 0, airbyte
    code, fivetran = add(project, "billing", "fivetran")
    assert code == 0, fivetran
    code, again = add(project, "support", "airbyte")  # the runbook can be run again
    assert code == 0 and not again["config_changed"] and not again["files_written"], again
    checks = {c["name"]: c for c in airbyte["checks"]}
    assert checks["staging models build"]["detail"].startswith("2/2")
    assert checks["freshness passes"]["ok"]
    assert "SVC_AIRBYTE" in checks["loader access declared"]["detail"]

    staging = project / "transform" / "models" / "staging"
    sources = (staging / "airbyte" / "_sources.yml").read_text()
    entry = yaml.safe_load(sources)["sources"][0]
    assert entry["name"] == "airbyte_support" and entry["schema"] == "support"
    assert entry["loaded_at_field"] == "_airbyte_extracted_at"
    assert entry["freshness"] == {
        "warn_after": {"count": 24, "period": "hour"},
        "error_after": {"count": 48, "period": "hour"},
    }
    fivetran_sources = (staging / "fivetran" / "_sources.yml").read_text()
    assert "loaded_at_field: _fivetran_synced" in fivetran_sources
    assert not (staging / "dlt").exists()

    tickets = (staging / "airbyte" / "stg_airbyte__tickets.sql").read_text()
    assert "source('airbyte_support', 'tickets')" in tickets
    assert "_airbyte_raw_id" not in tickets and "_airbyte_meta" not in tickets
    assert "_ab_cdc_deleted_at is null" in tickets
    assert "cast(_airbyte_extracted_at as timestamp) as _loaded_at" in tickets
    invoices = (staging / "fivetran" / "stg_fivetran__invoices.sql").read_text()
    assert "not coalesce(_fivetran_deleted, false)" in invoices
    yml = (staging / "fivetran" / "stg_fivetran__invoices.yml").read_text()
    assert "name: invoice_id" in yml and "- unique" in yml  # the catalog's primary key

    # rows deleted upstream (soft deletes) are not in the staging models
    assert query(project, "select count(*) from staging.stg_fivetran__invoices") == [[4]]
    assert query(project, "select count(*) from staging.stg_airbyte__tickets") == [[3]]
    assert query(project, "select count(*) from billing.invoices") == [[5]]  # untouched

    with Context(project) as ctx:
        config = ctx.config
        entry = config.sources["support"]
        assert entry.kind == "external" and entry.declared_tables() == ("tickets", "users")
        assert config.access.databases["AIRBYTE"].schemas == ["support"]
        assert config.access.service_accounts["SVC_FIVETRAN"].loader == "fivetran"
        declaration = build_declaration(config)
        chain = declaration.roles_held("ANALYTICS_SOURCES_READER")
        assert {"AIRBYTE_DB_READER", "FIVETRAN_DB_READER"} <= chain
        assert "DLT_DB_READER" not in chain  # no source is loaded by dlt

        run = ctx.run()
        assert run.ok, run.to_dict()
        assert not run.loads  # never loaded by stackyard
        fresh = {(f.source, f.table): f.status for f in run.freshness}
        assert fresh[("airbyte_support", "tickets")] == "pass"
        assert fresh[("fivetran_billing", "invoices")] == "pass"
        report = ctx.monitoring().run_now()
    health = {t.table: t for t in report.tables}
    dupes = next(c for c in health["billing.invoices"].checks if c.check == "duplicates")
    assert dupes.status == "ok" and "id" in dupes.reason


def test_a_stale_external_source_fails_freshness_and_skips_its_downstream(
    project: Path,
) -> None:
    assert add(project, "support", "airbyte")[0] == 0
    assert add(project, "billing", "fivetran")[0] == 0
    write(
        project / "transform/models/marts/revenue.sql",
        "select sum(amount) as revenue from {{ ref('stg_fivetran__invoices') }}\n",
    )
    duckdb_tables(project, "fivetran", "billing", hours_ago=72)  # the sync stopped 3 days ago

    code, output = cli("run", "-p", str(project), "--json")
    assert code == 1, output
    result = json.loads(output)
    fresh = {(f["source"], f["table"]): f for f in result["freshness"]}
    assert fresh[("fivetran_billing", "invoices")]["status"] == "error"
    assert fresh[("fivetran_billing", "invoices")]["age_hours"] >= 71
    skipped = {s["name"]: s["reason"] for s in result["skipped"]}
    assert {"stg_fivetran__invoices", "stg_fivetran__customers", "revenue"} <= set(skipped)
    assert "upstream source 'billing' is stale" in skipped["revenue"]
    built = {n["name"] for n in result["nodes"] if n["resource_type"] == "model"}
    assert {"stg_airbyte__tickets", "stg_airbyte__users"} <= built
    assert "revenue" not in built
    assert result["loads"] == []

    # A table the loader dropped: its freshness cannot be read, so nothing downstream is built.
    duckdb_tables(project, "fivetran", "billing", hours_ago=1)
    with Context(project) as ctx:
        ctx.sql("drop table support.users")
    code, output = cli("run", "-p", str(project), "--json")
    assert code == 1, output
    skipped = {s["name"]: s["reason"] for s in json.loads(output)["skipped"]}
    assert "support.users is not on target 'dev'" in skipped["stg_airbyte__tickets"]


def test_an_external_source_missing_from_the_target_is_not_fresh(project: Path) -> None:
    # Added on one target, run on one whose warehouse lacks its tables: that read "0/0
    # external source tables fresh", then the models failed on raw catalog errors.
    assert add(project, "billing", "fivetran")[0] == 0
    with Context(project) as ctx:
        ctx.sql("drop schema billing cascade")
    code, output = cli("run", "-p", str(project), "--json")
    assert code == 1, output
    result = json.loads(output)
    fresh = {f["table"]: f for f in result["freshness"] if f["source"] == "fivetran_billing"}
    assert fresh["invoices"]["status"] == "runtime error"
    assert fresh["invoices"]["message"] == "billing.invoices is not on target 'dev'"
    skipped = {s["name"]: s["reason"] for s in result["skipped"]}
    assert "billing.invoices is not on target 'dev'" in skipped["stg_fivetran__invoices"]
    assert "Catalog Error" not in output
    assert not [n for n in result["nodes"] if n["status"] == "error"]


def test_missing_schema_or_table_is_a_usage_error_and_nothing_is_written(
    project: Path,
) -> None:
    before = (project / "stackyard.yml").read_text()
    code, output = cli(
        "source", "add", "crm", "--kind", "external", "--loader", "airbyte", "-p", str(project)
    )
    assert code == 2, output
    assert "schema 'crm' does not exist" in output
    code, output = cli(
        "source", "add", "support", "--kind", "external", "--loader", "airbyte",
        "--table", "tikets", "-p", str(project),
    )  # fmt: skip
    assert code == 2, output
    assert "support.tikets not found" in output and "tickets" in output
    code, output = cli(
        "source", "add", "support", "--kind", "external", "--loader", "airbyte",
        "-p", str(project), "--dry-run",
    )  # fmt: skip
    assert code == 0, output
    assert "loaded by airbyte" in output and "loaded_at_field: _airbyte_extracted_at" in output
    assert "nothing is loaded" in output
    assert (project / "stackyard.yml").read_text() == before
    assert not (project / "transform/models/staging/airbyte").exists()


def test_an_unknown_loader_needs_its_loaded_at_column(project: Path) -> None:
    code, output = cli(
        "source", "add", "billing", "--kind", "external", "--loader", "hevo", "-p", str(project)
    )
    assert code == 2, output
    assert "--loaded-at" in output
    # A column the tables do not have: refused before anything is written (it was written,
    # and every later run failed on it).
    before = (project / "stackyard.yml").read_text()
    code, output = cli(
        "source", "add", "billing", "--kind", "external", "--loader", "hevo",
        "--loaded-at", "_fivetran_sync", "-p", str(project),
    )  # fmt: skip
    assert code == 2, output
    assert "has no column '_fivetran_sync'" in output and "_fivetran_synced" in output
    assert (project / "stackyard.yml").read_text() == before
    assert not (project / "transform/models/staging/hevo").exists()
    code, result = add(project, "billing", "hevo", "--loaded-at", "_fivetran_synced")
    assert code == 0, result
    sources = (project / "transform/models/staging/hevo/_sources.yml").read_text()
    assert "name: hevo_billing" in sources and "loaded_at_field: _fivetran_synced" in sources
    model = (project / "transform/models/staging/hevo/stg_hevo__invoices.sql").read_text()
    assert "_fivetran_synced" in model.split("-- timestamps")[1]  # only as _loaded_at


def test_remove_undoes_an_external_source(project: Path) -> None:
    assert add(project, "support", "airbyte")[0] == 0
    code, output = cli("source", "show", "support", "-p", str(project), "--json")
    assert code == 0, output
    shown = json.loads(output)
    assert shown["kind"] == "external"
    assert {t["table"]: (t["rows"], t["model"]) for t in shown["tables"]} == {
        "tickets": (4, "stg_airbyte__tickets"),
        "users": (3, "stg_airbyte__users"),
    }
    # The dry run names the dbt source and the file it is in (it named dlt's file and the
    # stackyard source), and the removal the file it deleted (it named dlt's).
    code, output = cli("source", "remove", "support", "-p", str(project), "--dry-run", "--json")
    assert code == 0, output
    steps = {s["action"]: s["detail"] for s in json.loads(output)["steps"]}
    assert steps["edit dbt sources"] == (
        "take the dbt source 'airbyte_support' out of transform/models/staging/airbyte/_sources.yml"
    )
    code, output = cli("source", "remove", "support", "-p", str(project), "--json")
    assert code == 0, output
    removed = json.loads(output)["files_removed"]
    assert "transform/models/staging/airbyte/stg_airbyte__tickets.sql" in removed
    assert "transform/models/staging/airbyte/_sources.yml" in removed
    assert not any("dlt" in f for f in removed), removed
    assert not list((project / "transform/models/staging").glob("*/stg_airbyte__*"))
    assert query(project, "select count(*) from support.tickets") == [[4]]  # not ours to drop


@pytest.mark.postgres
def test_airbyte_and_fivetran_tables_on_postgres(
    tmp_path: Path, pg_database: dict[str, Any]
) -> None:
    import psycopg

    dsn = (
        f"postgresql://{pg_database['user']}@{pg_database['host']}:{pg_database['port']}/"
        f"{pg_database['database']}"
    )
    with psycopg.connect(dsn) as conn:
        write_tables(conn, "postgres", "airbyte", "support", 1)
        write_tables(conn, "postgres", "fivetran", "billing", 1)
    root = tmp_path / "shop"
    init_project(root)
    text = (
        (root / "stackyard.yml")
        .read_text()
        .replace(
            "    path: .stackyard/dev.duckdb\n",
            "    path: .stackyard/dev.duckdb\n"
            "  pg:\n"
            "    type: postgres\n"
            f"    host: {pg_database['host']}\n"
            f"    port: {pg_database['port']}\n"
            f"    user: {pg_database['user']}\n"
            f"    database: {pg_database['database']}\n",
        )
    )
    (root / "stackyard.yml").write_text(text)
    code, airbyte = add(root, "support", "airbyte", "-t", "pg")
    assert code == 0, airbyte
    code, fivetran = add(root, "billing", "fivetran", "-t", "pg")
    assert code == 0, fivetran
    yml = (root / "transform/models/staging/fivetran/stg_fivetran__invoices.yml").read_text()
    assert "name: invoice_id" in yml
    with Context(root) as ctx:
        run = ctx.run(target="pg")
        assert run.ok, run.to_dict()
        rows = ctx.sql("select count(*) from staging.stg_fivetran__invoices", target="pg").rows
        assert rows[0][0] == 4
    with psycopg.connect(dsn) as conn:
        conn.execute("update billing.invoices set _fivetran_synced = now() - interval '3 days'")
    with Context(root) as ctx:
        run = ctx.run(target="pg")
    assert not run.ok
    assert any("'billing' is stale" in s.reason for s in run.skipped)
