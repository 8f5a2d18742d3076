"""Which tables a monitor pass watches: every source table but dlt's own bookkeeping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stackyard import Context
from stackyard.cli.main import app
from stackyard.config import load_project_config
from stackyard.errors import ConfigError
from stackyard.monitors.lineage import Lineage
from stackyard.monitors.targets import refuse_entries_naming_one_table
from tests.conftest import write
from tests.runner.conftest import make_project


def test_source_tables_whose_names_start_with_an_underscore_are_watched(tmp_path: Path) -> None:
    """A table named ``_archive``, or one dlt spells with a leading ``_`` (``Événements``
    loads as ``_v_nements``), was never monitored, with no note: only dlt's ``_dlt_*`` tables
    were meant to be left out."""
    root = make_project(tmp_path / "mini")
    rows = "id,created_at\n1,2026-12-01T10:00:00\n2,2026-12-02T10:00:00\n"
    write(root / "sources" / "arc" / "a.csv", rows)
    write(root / "sources" / "arc" / "e.csv", rows)
    with (root / "stackyard.yml").open("a", encoding="utf-8") as f:
        f.write(
            "  arc:\n"
            "    kind: filesystem\n"
            "    url: sources/arc\n"
            "    tables:\n"
            "      _archive: {glob: a.csv, primary_key: id}\n"
            "      Événements: {glob: e.csv, primary_key: id}\n"
        )
    assert Context(root).run().exit_code == 0
    cli = CliRunner()
    health = json.loads(cli.invoke(app, ["health", "--json", "--project", str(root)]).stdout)
    watched = {t["table"] for t in health["tables"]}
    assert {"arc._archive", "arc._v_nements"} <= watched, sorted(watched)
    assert not any("._dlt_" in t or "_rejected_rows" in t for t in watched), sorted(watched)
    for table in ("arc._archive", "arc._v_nements"):
        show = cli.invoke(app, ["health", "show", table, "--project", str(root)])
        said = " ".join(show.output.split())
        assert show.exit_code == 0, said
        # The key declared under the name as written is the key of the table as loaded.
        assert "duplicates: 0 duplicate keys (id)" in said, said


def test_two_entries_naming_one_table_are_refused_before_anything_runs(tmp_path: Path) -> None:
    """`customer_orders` and `marts.customer_orders` were both accepted and one silently won:
    the other's owner was never told and its direction never applied."""
    root = make_project(tmp_path / "mini")
    Context(root).dbt_manifest(tmp_path / "state")  # a parse: which relation each model builds
    with (root / "stackyard.yml").open("a", encoding="utf-8") as f:
        f.write(
            "monitors:\n"
            "  tables:\n"
            "    customer_orders: {direction: spike, owner: '@one'}\n"
            "    marts.customer_orders: {direction: drop, owner: '@two'}\n"
            "    app.orders: {owner: '@three'}\n"
        )
    cli = CliRunner()
    for command in ("run", "monitor"):
        result = cli.invoke(app, [command, "--project", str(root)])
        said = " ".join(result.output.split())
        assert result.exit_code == 2, said
        assert (
            "monitors.tables.customer_orders and monitors.tables.marts.customer_orders both "
            "name the table marts.customer_orders"
        ) in said, said
        assert "app.orders" not in said, said
    # Nothing was attempted: no source loaded, no warehouse written.
    assert not (root / ".stackyard" / "dev.duckdb").exists()


def test_a_source_table_named_by_its_source_and_by_its_schema_is_one_table(
    tmp_path: Path,
) -> None:
    config = write(
        tmp_path / "stackyard.yml",
        """
        name: shop
        targets:
          dev: {type: duckdb}
        sources:
          app:
            kind: sql_database
            connection: sqlite:///sources/app.sqlite
            schema: raw_app
            tables:
              orders: {primary_key: id}
        monitors:
          tables:
            app.orders: {owner: '@one'}
            raw_app.orders: {owner: '@two'}
            raw_app.customers: {owner: '@three'}
        """,
    )
    with pytest.raises(ConfigError) as info:
        refuse_entries_naming_one_table(load_project_config(config), Lineage())
    said = str(info.value)
    assert "monitors.tables.app.orders and monitors.tables.raw_app.orders both name" in said
    assert "customers" not in said, said
