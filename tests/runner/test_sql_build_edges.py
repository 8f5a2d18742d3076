"""`--engine auto` off the happy path: wherever the plan cannot give what `dbt build` gives
(a node that does not compile, a trailing semicolon, warn-error and fail-fast flags, Jinja
asking which command runs, vars reading the clock, names the warehouse would cut or fold),
the result is dbt's own: the same statuses, failure counts and messages, node for node."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stackyard.results import NodeResult
from stackyard.runner.sql_build import build
from tests.conftest import write
from tests.runner.test_sql_build import _on_duckdb, _on_postgres, outcome, relations

PROJECT = """
name: mini
version: "1.0"
profile: mini
models:
  mini:
    +materialized: table
"""


def _project(root: Path, models: dict[str, str], extra: str = "") -> Path:
    project = root / "transform"
    write(project / "dbt_project.yml", PROJECT + extra)
    for name, text in models.items():
        write(project / name, text)
    return project


def _both(
    root: Path, models: dict[str, str], extra: str = ""
) -> tuple[list[NodeResult], list[NodeResult], Any, Any]:
    """dbt's build, then auto's, of the same project on one DuckDB file."""
    dbt, warehouse = _on_duckdb(root, _project(root, models, extra))
    by_dbt = build("dbt", dbt, warehouse, (), (), False, warehouse.close)
    warehouse.close()
    by_auto = build("auto", dbt, warehouse, (), (), False, warehouse.close)
    warehouse.close()
    return by_dbt, by_auto, dbt, warehouse


def _status(results: list[NodeResult]) -> dict[str, str]:
    return {r.name: r.status for r in results}


def test_a_node_that_does_not_compile_fails_alone_and_the_rest_is_built(tmp_path: Path) -> None:
    by_dbt, by_auto, _, _ = _both(
        tmp_path,
        {
            "models/ok1.sql": "select 1 as n",
            "models/ok2.sql": "select * from {{ ref('ok1') }}",
            "models/needs_var.sql": "select {{ var('not_set') }} as n from {{ ref('ok1') }}",
            "models/after_var.sql": "select * from {{ ref('needs_var') }}",
        },
    )
    assert outcome(by_auto) == outcome(by_dbt)
    assert _status(by_auto) == {
        "ok1": "success",
        "ok2": "success",
        "needs_var": "error",
        "after_var": "skipped",
    }


def test_a_trailing_semicolon_is_an_error_as_in_dbt(tmp_path: Path) -> None:
    by_dbt, by_auto, _, _ = _both(
        tmp_path,
        {
            "models/m_semi.sql": "select 1 as x;",
            "tests/t_semi.sql": "select * from {{ ref('m_semi') }} where x > 5;",
            "tests/t_alone.sql": "select 1 as x where 1 = 0;",
        },
    )
    assert outcome(by_auto) == outcome(by_dbt)
    assert _status(by_auto)["m_semi"] == "error"
    assert _status(by_auto)["t_alone"] == "error"


WARNING = {
    "models/m_a.sql": "select null as x",
    "models/m_b.sql": "select * from {{ ref('m_a') }}",
    "models/schema.yml": """
version: 2
models:
  - name: m_a
    columns:
      - name: x
        data_tests:
          - not_null:
              config: {severity: warn}
""",
}


def test_warn_error_options_make_a_test_warning_fail_as_in_dbt(tmp_path: Path) -> None:
    flags = "flags:\n  warn_error_options:\n    error: [LogTestResult]\n"
    by_dbt, by_auto, _, _ = _both(tmp_path, WARNING, flags)
    assert outcome(by_auto) == outcome(by_dbt)
    assert _status(by_auto)["not_null_m_a_x"] == "fail"
    assert _status(by_auto)["m_b"] == "skipped"


def test_without_warn_error_the_same_warning_stays_a_warning_on_the_sql_path(
    tmp_path: Path,
) -> None:
    by_dbt, by_auto, _, _ = _both(tmp_path, WARNING)
    assert outcome(by_auto) == outcome(by_dbt)
    assert _status(by_auto)["not_null_m_a_x"] == "warn"
    assert {r.engine for r in by_auto} == {"sql"}


def test_fail_fast_sends_the_whole_build_to_dbt(tmp_path: Path) -> None:
    models = {"models/a_bad.sql": "select cast('x' as int) as n"}
    models.update({f"models/z_ok{i}.sql": f"select {i} as n" for i in range(3)})
    _, by_auto, _, _ = _both(tmp_path, models, "flags:\n  fail_fast: true\n")
    assert {r.engine for r in by_auto} == {"dbt"}
    assert _status(by_auto)["a_bad"] == "error"


def test_a_model_asking_which_command_runs_is_built_by_dbt(tmp_path: Path) -> None:
    _, by_auto, _, warehouse = _both(
        tmp_path, {"models/m_which.sql": "select '{{ flags.WHICH }}' as which"}
    )
    assert {r.engine for r in by_auto} == {"dbt"}
    assert list(warehouse.query("select which from main.m_which").rows) == [("build",)]
    warehouse.close()


def test_a_var_that_renders_the_invocation_keeps_no_plan(tmp_path: Path) -> None:
    from stackyard.runner.sql_cache import CACHE_FILE

    vars_ = 'vars:\n  run_id: "{{ invocation_id }}"\n'
    _, _, dbt, warehouse = _both(
        tmp_path, {"models/m_v.sql": "select '{{ var(\"run_id\") }}' as run_id"}, vars_
    )
    first = list(warehouse.query("select run_id from main.m_v").rows)
    warehouse.close()
    build("auto", dbt, warehouse, (), (), False, warehouse.close)
    second = list(warehouse.query("select run_id from main.m_v").rows)
    warehouse.close()
    assert first != second
    assert not (tmp_path / "transform" / "target" / CACHE_FILE).exists()


def _twice_as_dbt(dbt: Any, w: Any) -> list[NodeResult]:
    """dbt's build, then two auto builds (the second finds what the first left): each
    leaves dbt's relations and reports dbt's results."""
    by_dbt = build("dbt", dbt, w, (), (), False, w.close)
    dbt_rows = relations(w)
    w.close()
    for _ in range(2):
        by_auto = build("auto", dbt, w, (), (), False, w.close)
        assert relations(w) == dbt_rows
        w.close()
        assert outcome(by_auto) == outcome(by_dbt)
    return by_auto


LONG = "orders_enriched_with_customer_lifetime_value_and_first_order_date"


@pytest.mark.postgres
def test_on_postgres_a_name_longer_than_63_bytes_is_refused_as_by_dbt(
    tmp_path: Path, pg_database: dict[str, Any]
) -> None:
    models = {f"models/{LONG}.sql": "select 1 as x", "models/plain.sql": "select 3 as x"}
    dbt, w = _on_postgres(tmp_path, _project(tmp_path, models), pg_database)
    by_auto = _twice_as_dbt(dbt, w)
    found = {r.name: r for r in by_auto}
    assert found[LONG].status == "error" and "longer than 63" in found[LONG].message
    assert (found["plain"].status, found["plain"].engine) == ("success", "sql")


@pytest.mark.postgres
def test_on_postgres_an_unquoted_capitalised_name_is_rebuilt_as_by_dbt(
    tmp_path: Path, pg_database: dict[str, Any]
) -> None:
    models = {"models/Daily_Revenue.sql": "select 2 as x"}
    project = _project(tmp_path, models, "quoting:\n  identifier: false\n")
    dbt, w = _on_postgres(tmp_path, project, pg_database)
    by_auto = _twice_as_dbt(dbt, w)
    assert [(r.name, r.status) for r in by_auto] == [("Daily_Revenue", "success")]


def test_fail_fast_set_after_a_plan_was_kept_is_seen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dbt 1.11 reads DBT_ENGINE_FAIL_FAST: it is part of the kept plan's key."""
    from stackyard.runner.sql_cache import CACHE_FILE

    models = {"models/a_bad.sql": "select cast('x' as int) as n", "models/z_ok.sql": "select 1"}
    _, by_auto, dbt, warehouse = _both(tmp_path, models)
    assert {r.engine for r in by_auto} == {"sql"}
    assert (tmp_path / "transform" / "target" / CACHE_FILE).exists()
    monkeypatch.setenv("DBT_ENGINE_FAIL_FAST", "true")
    again = build("auto", dbt, warehouse, (), (), False, warehouse.close)
    warehouse.close()
    assert {r.engine for r in again} == {"dbt"}


@pytest.mark.parametrize(
    ("project_vars", "cli_vars"),
    [
        ('vars:\n  start: "{{ my_today() }}"\n', {}),  # a macro may read the clock
        ("", {"start": "{{ modules.datetime.date.today() }}"}),
    ],
)
def test_a_plan_is_not_kept_when_a_var_holds_jinja(
    tmp_path: Path, project_vars: str, cli_vars: dict[str, str]
) -> None:
    from stackyard.runner import sql_cache
    from stackyard.runner.sql_plan import plan_build

    project = _project(tmp_path, {"models/m.sql": "select 1"}, project_vars)
    node = {
        "unique_id": "model.mini.m",
        "name": "m",
        "resource_type": "model",
        "depends_on": {"nodes": [], "macros": []},
        "config": {"materialized": "table"},
        "compiled_code": "select 1",
        "raw_code": "select '{{ var(\"start\") }}'",
        "relation_name": '"db"."main"."m"',
    }
    manifest = {"nodes": {"model.mini.m": node}, "macros": {}}
    plan = plan_build(manifest, ["model.mini.m"])
    assert not sql_cache.save(project, "k", plan, manifest, cli_vars)
    assert sql_cache.save(project / "elsewhere", "k", plan, manifest, {})  # no such vars
