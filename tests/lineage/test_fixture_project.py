"""Impact on a hand-written dbt project against a hand-made answer key (fixtures/quirky).

The project has SELECT * over sources and models, CTE chains, UNION ALL of differently named
columns, window-function dedup, an ephemeral model and quoted identifiers with spaces. Lineage
compiles it with dbt in process and expands every star from the warehouse's columns.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from stackyard import Context

FIXTURE = Path(__file__).parent / "fixtures" / "quirky"
KEY = yaml.safe_load((FIXTURE / "expected.yml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def quirky(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture project, with its raw tables created in its DuckDB warehouse."""
    import duckdb

    root = tmp_path_factory.mktemp("lineage") / "quirky"
    shutil.copytree(FIXTURE, root)
    (root / ".stackyard").mkdir()
    with duckdb.connect(str(root / ".stackyard" / "dev.duckdb")) as con:
        con.execute((root / "warehouse.sql").read_text(encoding="utf-8"))
    return root


@pytest.fixture(scope="module")
def service(quirky: Path) -> Any:
    return Context(quirky).lineage()


def _pairs(items: list[str]) -> set[tuple[str, str]]:
    return {tuple(item.split(".", 1)) for item in items}  # type: ignore[misc]


@pytest.mark.parametrize("column", sorted(KEY["impact"]))
def test_impact_matches_the_answer_key(service: Any, column: str) -> None:
    result = service.impact(column)
    found = {(c.node, c.column) for c in result.downstream}
    expected = _pairs(KEY["impact"][column])
    assert expected - found == set(), f"missed (recall below 100%): {expected - found}"
    assert found - expected == set(), f"reported but not in the key: {found - expected}"


@pytest.mark.parametrize("column", sorted(KEY["referenced_in"]))
def test_models_that_join_or_filter_on_a_column_are_affected(service: Any, column: str) -> None:
    result = service.impact(column)
    assert set(KEY["referenced_in"][column]) <= set(result.models)


@pytest.mark.parametrize("column", sorted(KEY["tests"]))
def test_impact_lists_the_tests_on_affected_columns(service: Any, column: str) -> None:
    names = {t.name for t in service.impact(column).tests}
    assert set(KEY["tests"][column]) <= names


def test_impact_names_the_reports_people_read_and_their_owners(service: Any) -> None:
    result = service.impact("app.orders.amount_cents")
    exposed = {e.node: e for e in result.exposed}
    for node, owner in KEY["exposed"]["app.orders.amount_cents"].items():
        assert exposed[node].owner == owner
        assert exposed[node].exposures == ("sales_dashboard",)
    assert result.severity == "P0"


def test_a_report_that_only_filters_on_the_column_is_named_with_its_owner(
    service: Any, quirky: Path, tmp_path: Path
) -> None:
    # Before: the severity named the report, but neither "read by people" nor any other part
    # of the text output listed it (only --json's referenced_in had it).
    result = service.impact("app.orders.updated_at")
    exposed = {e.node: e for e in result.exposed}
    assert exposed["rpt_top_customers"].owner == "sales-analytics@example.com"
    shutil.copytree(quirky, tmp_path / "quirky")  # dbt-duckdb keeps the module's file open
    cli = Path(sys.executable).with_name("stackyard")

    def said(spec: str) -> str:
        return subprocess.run(
            [str(cli), "impact", spec, "-p", str(tmp_path / "quirky")],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "COLUMNS": "200"},
        ).stdout

    text = said("app.orders.updated_at")
    assert "  rpt_top_customers (reporting)" in text, text
    # Every model here takes a column from it (select d.*): none is listed as reading it in
    # joins or filters (each one was, under that heading).
    assert "read in joins or filters" not in text, text
    # dim_customers joins on the key and takes no column from it.
    text = said("app.orders.Customer ID")
    assert "read in joins or filters (2)\n  dim_customers: reads int_customer_orders" in text, text


def test_nothing_is_unresolved_when_every_schema_is_known(service: Any) -> None:
    assert service.graph().unresolved == {}


def test_upstream_lineage_walks_back_through_the_union(service: Any) -> None:
    result = service.lineage("stg_events.customer_id", "upstream")
    assert {(c.node, c.column) for c in result.upstream} == {
        ("web.web_events", "customer_id"),
        ("web.app_events", "user_id"),
    }
    assert result.downstream is None


def test_cli_prints_node_column_lists_and_unresolved(quirky: Path, tmp_path: Path) -> None:
    # A copy: dbt-duckdb keeps the module's warehouse file open in this process.
    shutil.copytree(quirky, tmp_path / "quirky")
    quirky = tmp_path / "quirky"
    cli = Path(sys.executable).with_name("stackyard")
    done = subprocess.run(
        [str(cli), "impact", "app.orders.status", "--json", "-p", str(quirky)],
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(done.stdout)
    assert {"node": "rpt_top_customers", "column": "Net Amount"} in data["downstream"]
    assert data["unresolved"] == []
    done = subprocess.run(
        [str(cli), "lineage", "dim_customers.Net Amount", "--upstream", "--json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=quirky,
    )
    data = json.loads(done.stdout)
    assert {"node": "app.orders", "column": "amount_cents"} in data["upstream"]


def test_a_star_over_an_unknown_table_is_reported_not_dropped(quirky: Path, tmp_path: Path) -> None:
    project = tmp_path / "quirky"
    shutil.copytree(quirky, project)
    sql = project / "transform" / "models" / "staging" / "stg_customers.sql"
    sql.write_text("select * from raw_app.not_loaded_yet\n", encoding="utf-8")
    result = Context(project).lineage().lineage("dim_customers.email", "upstream")
    reasons = [u for u in result.unresolved if u.node == "stg_customers"]
    assert reasons and reasons[0].column == "*"
    assert "not_loaded_yet" in reasons[0].reason
