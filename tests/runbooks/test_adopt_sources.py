"""An adopted dbt project whose raw tables other tools load: its models are rebuilt on every
run (stackyard cannot tell whether those tables changed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.in_process import stackyard_in_process

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow

SOURCES = "version: 2\nsources:\n  - name: raw\n    schema: raw\n    tables: [{name: orders}]\n"


def stackyard(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return stackyard_in_process(*args, cwd=cwd)


def adopted(root: Path, sources: str = SOURCES) -> Path:
    """A dbt project reading raw.orders, which another tool loads into the dev target."""
    project = root / "shop"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        'name: shop\nversion: "1.0"\nconfig-version: 2\nprofile: shop\n'
    )
    (project / "models" / "sources.yml").write_text(sources)
    (project / "models" / "fct_orders.sql").write_text(
        "select * from {{ source('raw','orders') }}\n"
    )
    (project / "models" / "order_totals.sql").write_text(
        "{{ config(materialized='table') }}\n"
        "select count(*) as n, sum(amount) as total from {{ ref('fct_orders') }}\n"
    )
    done = stackyard("adopt", "dbt", "shop", cwd=root)
    assert done.returncode == 0, done.stdout + done.stderr
    (project / ".stackyard").mkdir(exist_ok=True)
    another_tool_loads(project, "create schema raw; create table raw.orders"
                       "(id int, amount int, updated_at timestamptz default now());"
                       "insert into raw.orders (id, amount) values (1, 10), (2, 20)")  # fmt: skip
    return project


def another_tool_loads(project: Path, sql: str) -> None:
    with duckdb.connect(str(project / ".stackyard" / "dev.duckdb")) as con:
        con.execute(sql)


def totals(project: Path) -> tuple[object, ...] | None:
    with duckdb.connect(str(project / ".stackyard" / "dev.duckdb"), read_only=True) as con:
        return con.execute("select n, total from main.order_totals").fetchone()


def test_models_on_tables_another_tool_loads_are_rebuilt_on_every_run(tmp_path: Path) -> None:
    project = adopted(tmp_path)
    first = stackyard("run", "--json", cwd=project)
    assert first.returncode == 0, first.stdout[-3000:]
    assert totals(project) == (2, 30)

    another_tool_loads(project, "insert into raw.orders (id, amount) values (3, 30)")
    again = stackyard("run", "--json", cwd=project)
    assert again.returncode == 0, again.stdout[-3000:]
    [build] = [s for s in json.loads(again.stdout)["steps"] if s["name"] == "dbt build"]
    assert build["status"] == "ok", build
    assert "dbt source raw is loaded outside stackyard" in build["detail"]
    assert totals(project) == (3, 60)  # it said 2 rows: the build was skipped


def test_the_freshness_an_adopted_project_declares_for_its_own_sources_is_checked(
    tmp_path: Path,
) -> None:
    project = adopted(
        tmp_path,
        "version: 2\nsources:\n  - name: raw\n    schema: raw\n"
        "    loaded_at_field: updated_at\n"
        "    freshness: {warn_after: {count: 24, period: hour}, "
        "error_after: {count: 72, period: hour}}\n"
        "    tables: [{name: orders}]\n",
    )
    another_tool_loads(project, "update raw.orders set updated_at = now() - interval 2 day")
    late = stackyard("run", "--json", cwd=project)
    assert late.returncode == 0, late.stdout[-3000:]
    result = json.loads(late.stdout)
    [step] = [s for s in result["steps"] if s["name"] == "source freshness"]
    assert step["status"] == "warn", step  # there was no freshness step at all
    assert [(f["source"], f["table"], f["status"]) for f in result["freshness"]] == [
        ("raw", "orders", "warn")
    ]

    another_tool_loads(project, "update raw.orders set updated_at = now() - interval 5 day")
    stale = stackyard("run", "--json", cwd=project)
    assert stale.returncode == 1, stale.stdout[-3000:]
    [step] = [s for s in json.loads(stale.stdout)["steps"] if s["name"] == "source freshness"]
    assert step["status"] == "failed", step

    # A selection checks the sources upstream of what it built (it checked none), through
    # the view between them too.
    selected = stackyard("run", "--select", "order_totals", "--json", cwd=project)
    assert selected.returncode == 1, selected.stdout[-3000:]
    result = json.loads(selected.stdout)
    [step] = [s for s in result["steps"] if s["name"] == "source freshness"]
    assert step["status"] == "failed", step
    assert [(f["source"], f["status"]) for f in result["freshness"]] == [("raw", "error")]


def test_a_build_on_raw_tables_missing_from_the_new_duckdb_target_says_what_to_do(
    tmp_path: Path,
) -> None:
    project = adopted(tmp_path)
    another_tool_loads(project, "drop table raw.orders")  # they are in the team's warehouse
    run = stackyard("run", "--json", cwd=project)
    assert run.returncode == 1, run.stdout[-3000:]
    [build] = [s for s in json.loads(run.stdout)["steps"] if s["name"] == "dbt build"]
    detail = " ".join(build["detail"].split())
    assert "raw.orders not on target 'dev' (.stackyard/dev.duckdb" in detail, detail
    assert "add the warehouse the dbt project runs on under targets:" in detail
