"""Misreports (cases 13, 14 and 15): what stackyard says is what the warehouse holds."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from tests.conftest import write
from tests.ingest.api_server import TOKEN, ApiState, make_customers, serve
from tests.integrity.helpers import cli, cli_json, new_project, rows, scalar


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    return new_project(tmp_path / "shop")


def test_case_13_a_paginator_add_that_loads_nothing_adds_nothing(project: Path) -> None:
    state = ApiState(customers=make_customers(23))
    env = {"CRM_TOKEN": TOKEN}

    def add(paginator: str) -> tuple[int, str]:
        return cli(
            "source", "add", "crm", "--kind", "rest_api", "--base-url", url,
            "--endpoint", "customers=/customers", "--auth", "bearer:CRM_TOKEN",
            "--paginator", paginator, "--data-selector", "data",
            "--primary-key", "customers=id", "-p", str(project), env=env,
        )  # fmt: skip

    with serve(state) as url:
        code, output = add("page_number:page_param=page,total_path=total_pages")
        assert code == 1, output
        assert "not added" in output and "base_page=1" in output
        assert "crm" not in (
            yaml.safe_load((project / "stackyard.yml").read_text())["sources"] or {}
        )
        assert not (project / "transform/models/staging/dlt/stg_dlt__customers.sql").exists()
        code, output = add("page_number:page_param=page,base_page=1,total_path=total_pages")
        assert code == 0, output
    assert scalar(project, "SELECT count(*) FROM crm.customers") == 23


def test_case_14_counts_agree_with_the_warehouse_everywhere(project: Path) -> None:
    write(
        project / "sources/exports/orders.csv",
        "id,amount,qty\n1,10,1\n2,20,2\n3,30,3\n",
    )
    code, output = cli(
        "source", "add", "exports", "--kind", "filesystem", "--url", "sources/exports",
        "--table", "orders=orders*.csv", "--primary-key", "orders=id", "-p", str(project),
    )  # fmt: skip
    assert code == 0, output
    # two bad rows, one of them bad in two columns; one key twice
    write(
        project / "sources/exports/orders_2.csv",
        "id,amount,qty\n4,40,4\n5,x,y\n6,oops,6\n4,41,4\n",
    )
    code, result = cli_json("run", "-p", str(project))
    assert code == 0, result
    counts = result["counts"]
    assert (
        counts["rows_rejected"]
        == 2
        == scalar(project, "SELECT count(*) FROM exports._rejected_rows")
    )
    load_ids = result["loads"][0]["load_ids"]
    in_warehouse = scalar(
        project,
        "SELECT count(*) FROM exports.orders WHERE _dlt_load_id IN ("
        + ", ".join(f"'{i}'" for i in load_ids)
        + ")",
    )
    assert counts["rows_loaded"] == in_warehouse
    assert counts["rows_collapsed"] == 1
    assert rows(project, "SELECT amount FROM exports.orders WHERE id = 4") == [(41,)]
    models = sum(
        1 for n in result["nodes"] if n["resource_type"] == "model" and n["status"] == "success"
    )
    assert counts["models_built"] == models
    code, status = cli_json("status", "-p", str(project))
    latest = status[0]
    assert (latest["rows_loaded"], latest["models_built"], latest["tests_passed"]) == (
        counts["rows_loaded"],
        counts["models_built"],
        counts["tests_passed"],
    )
    code, output = cli("run", "-p", str(project), "--force-build")
    assert "0 rows loaded" in output and f"{counts['tests_passed']} tests passed" in output


def test_case_15_source_list_shows_the_last_successful_load(project: Path) -> None:
    write(project / "sources/exports/orders.csv", "id,amount\n1,10\n")
    code, output = cli(
        "source", "add", "exports", "--kind", "filesystem", "--url", "sources/exports",
        "--table", "orders=orders*.csv", "-p", str(project),
    )  # fmt: skip
    assert code == 0, output
    code, first = cli_json("run", "-p", str(project))
    assert code == 0
    (project / "sources/exports/orders.csv").unlink()
    code, failed = cli_json("run", "-p", str(project))
    assert code == 1 and failed["loads"][0]["status"] == "failed"
    code, listed = cli_json("source", "list", "-p", str(project))
    assert listed[0]["last_status"] == "loaded"
    assert listed[0]["last_loaded_at"][:19] == first["started_at"][:19]


def test_case_15_remove_refuses_while_hand_written_models_read_the_source(project: Path) -> None:
    write(project / "sources/exports/orders.csv", "id,amount\n1,10\n")
    code, output = cli(
        "source", "add", "exports", "--kind", "filesystem", "--url", "sources/exports",
        "--table", "orders=orders*.csv", "-p", str(project),
    )  # fmt: skip
    assert code == 0, output
    write(
        project / "transform/models/marts/big_orders.sql",
        "select * from {{ source('dlt_exports', 'orders') }} where amount > 5\n",
    )
    code, output = cli("source", "remove", "exports", "-p", str(project))
    assert code == 2, output
    assert "transform/models/marts/big_orders.sql" in output.replace("\n", "")
    assert "exports" in yaml.safe_load((project / "stackyard.yml").read_text())["sources"]
    (project / "transform/models/marts/big_orders.sql").unlink()
    code, output = cli("source", "remove", "exports", "-p", str(project))
    assert code == 0, output
    code, output = cli("run", "-p", str(project))
    assert code == 0, output
