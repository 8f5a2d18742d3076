"""`stackyard run --engine auto|sql`: the build as compiled SQL gives what `dbt build` gives.

One small dbt project on DuckDB holds a view, a table, an ephemeral, an incremental model and
a model with a ``sql_header`` (both left to dbt), a failing test with a model after it (skipped), a warn-severity test and a singular
test: dbt builds it, then the SQL engine does, and both must leave the same relations and
report the same statuses and failure counts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stackyard.errors import EngineRefusedError
from stackyard.results import NodeResult
from stackyard.runner.sql_build import build
from stackyard.runner.sql_plan import build_order, plan_build, whole_build_reason
from stackyard.warehouse.base import Warehouse
from tests.conftest import write

MODELS = {
    "raw_orders.sql": "select * from (values (1, 10, 'a'), (2, 20, 'b'), (3, null, 'b'))"
    " as t(id, amount, kind)",
    "orders_eph.sql": "{{ config(materialized='ephemeral') }}\n"
    "select id, amount * 2 as doubled, kind from {{ ref('raw_orders') }}",
    "orders.sql": "{{ config(materialized='table') }}\nselect * from {{ ref('orders_eph') }}",
    "by_kind.sql": "{{ config(materialized='table') }}\n"
    "select kind, count(*) as n from {{ ref('orders') }} group by kind",
    "after_failure.sql": "{{ config(materialized='view') }}\nselect * from {{ ref('by_kind') }}",
    "grown.sql": "{{ config(materialized='incremental', unique_key='id') }}\n"
    "select id, amount from {{ ref('raw_orders') }}",
    "on_grown.sql": "{{ config(materialized='table') }}\nselect count(*) as n from {{ ref('grown') }}",
    # the header defines what the SQL calls: run without it, the model fails
    "headed.sql": "{{ config(materialized='table', sql_header='create or replace temp macro "
    "twice(x) as x * 2;') }}\nselect twice(id) as n from {{ ref('raw_orders') }}",
}

SCHEMA = """
version: 2
models:
  - name: raw_orders
    columns:
      - name: id
        data_tests: [unique, not_null]
  - name: orders
    columns:
      - name: doubled
        data_tests:
          - not_null:
              config: {severity: warn}
  - name: by_kind
    columns:
      - name: kind
        data_tests:
          - accepted_values:
              arguments: {values: ['a']}
  - name: grown
    columns:
      - name: id
        data_tests: [unique]
"""


def _project(root: Path) -> Path:
    project = root / "transform"
    write(
        project / "dbt_project.yml",
        """
        name: mini
        version: "1.0"
        profile: mini
        models:
          mini:
            +materialized: view
        """,
    )
    for name, sql in MODELS.items():
        write(project / "models" / name, sql)
    write(project / "models" / "schema.yml", SCHEMA)
    write(project / "tests" / "no_big_orders.sql", "select * from {{ ref('orders') }} where 1 = 0")
    return project


def _on_duckdb(root: Path, project: Path) -> tuple[Any, Any]:
    """A dbt runner and a DuckDB warehouse for ``project``, with its profile under ``root``."""
    from stackyard.config.model import DuckDBTarget
    from stackyard.config.secrets import Secrets
    from stackyard.transform.dbt import Dbt
    from stackyard.warehouse.duckdb import DuckDBWarehouse

    path = root / "mini.duckdb"
    write(
        root / "profiles.yml",
        f"""
        mini:
          target: dev
          outputs:
            dev: {{type: duckdb, path: "{path}", schema: main, threads: 1}}
        """,
    )
    target = DuckDBTarget(type="duckdb", path=str(path))
    warehouse = DuckDBWarehouse("dev", target, root, Secrets(root, environ={}))
    return Dbt(project, "dev", {}, profiles_dir=root), warehouse


def _on_postgres(root: Path, project: Path, db: dict[str, Any]) -> tuple[Any, Any]:
    """A dbt runner and a Postgres warehouse (database ``db``) for ``project``."""
    from stackyard.config.model import PostgresTarget
    from stackyard.config.secrets import Secrets
    from stackyard.transform.dbt import Dbt
    from stackyard.warehouse.postgres import PostgresWarehouse

    write(
        root / "profiles.yml",
        f"""
        mini:
          target: dev
          outputs:
            dev: {{type: postgres, host: "{db["host"]}", port: {db["port"]}, user: "{db["user"]}",
                   password: "", dbname: "{db["database"]}", schema: public, threads: 1}}
        """,
    )
    target = PostgresTarget(type="postgres", **db)  # type: ignore[arg-type]
    warehouse = PostgresWarehouse("dev", target, root, Secrets(root))
    return Dbt(project, "dev", {}, profiles_dir=root), warehouse


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The project built by dbt, then again by the SQL engine; what each left and said."""
    root = tmp_path_factory.mktemp("sqlbuild")
    dbt, warehouse = _on_duckdb(root, _project(root))
    by_dbt = build("dbt", dbt, warehouse, (), (), False, warehouse.close)
    dbt_rows = relations(warehouse)
    warehouse.close()
    by_sql = build("auto", dbt, warehouse, (), (), False, warehouse.close)
    sql_rows = relations(warehouse)
    warehouse.close()
    return {
        "dbt": by_dbt,
        "sql": by_sql,
        "dbt_rows": dbt_rows,
        "sql_rows": sql_rows,
        "dbt_runner": dbt,
        "warehouse": warehouse,
    }


def relations(w: Warehouse) -> dict[tuple[str, str, str], list[tuple[Any, ...]]]:
    """Every relation the build made: ``(schema, name, type)`` → its rows, sorted."""
    found = w.query(
        "SELECT table_schema, table_name, table_type FROM information_schema.tables "
        "WHERE table_schema NOT IN ('information_schema', 'pg_catalog') "
        "AND table_schema NOT LIKE 'stackyard%' ORDER BY 1, 2"
    ).rows
    out = {}
    for schema, name, kind in found:
        rows = w.query(f"SELECT * FROM {w.quote(schema, name)}").rows
        out[(str(schema), str(name), str(kind))] = sorted(rows, key=repr)
    return out


def outcome(results: list[NodeResult]) -> dict[str, tuple[str, int | None, str]]:
    return {r.unique_id: (r.status, r.failures, r.message) for r in results}


def test_the_sql_engine_leaves_the_same_relations_and_rows(built: dict[str, Any]) -> None:
    assert built["sql_rows"] == built["dbt_rows"]
    kinds = {name: kind for (_, name, kind) in built["dbt_rows"]}
    assert kinds["orders"] == "BASE TABLE" and kinds["raw_orders"] == "VIEW"
    assert "orders_eph" not in kinds  # ephemeral: inlined, never built


def test_statuses_failures_and_messages_match_dbt(built: dict[str, Any]) -> None:
    by_dbt, by_sql = outcome(built["dbt"]), outcome(built["sql"])
    assert by_sql == by_dbt
    statuses = {uid.split(".")[2]: s for uid, (s, _, _) in by_dbt.items()}
    # the failing test skips the model after it; the warn test does not stop anything
    assert statuses["accepted_values_by_kind_kind__a"] == "fail"
    assert statuses["after_failure"] == "skipped"
    assert statuses["not_null_orders_doubled"] == "warn"
    (warned,) = [v for k, v in by_dbt.items() if ".not_null_orders_doubled." in k]
    assert warned == ("warn", 1, "Got 1 result, configured to warn if != 0")
    (failed,) = [v for k, v in by_dbt.items() if ".accepted_values_by_kind_kind__a." in k]
    assert failed == ("fail", 1, "Got 1 result, configured to fail if != 0")


def test_incremental_models_are_left_to_dbt_and_the_rest_run_as_sql(
    built: dict[str, Any],
) -> None:
    engines = {r.name: r.engine for r in built["sql"]}
    assert engines["grown"] == "dbt"
    assert {n for n, e in engines.items() if e == "dbt"} == {"grown", "headed"}
    assert {r.engine for r in built["dbt"]} == {"dbt"}


def test_engine_sql_refuses_naming_the_node_and_why(built: dict[str, Any]) -> None:
    w = built["warehouse"]
    with pytest.raises(EngineRefusedError) as refused:
        build("sql", built["dbt_runner"], w, (), (), False, w.close)
    w.close()
    assert refused.value.exit_code == 2
    assert "model.mini.grown: materialized=incremental" in refused.value.message


# --- the plan, without a warehouse ---------------------------------------------------------


def _node(uid: str, parents: list[str], **config: Any) -> dict[str, Any]:
    kind = uid.split(".")[0]
    return {
        "unique_id": uid,
        "name": uid.split(".")[-1],
        "resource_type": kind,
        "depends_on": {"nodes": parents, "macros": []},
        "config": {"materialized": "test" if kind == "test" else "table", **config},
        "compiled_code": "select 1",
        "relation_name": f'"db"."main"."{uid.split(".")[-1]}"',
    }


def test_a_multi_parent_test_holds_back_only_nodes_below_all_its_parents() -> None:
    nodes = {
        n["unique_id"]: n
        for n in (
            _node("model.p.a", []),
            _node("model.p.b", []),
            _node("test.p.rel", ["model.p.a", "model.p.b"]),
            _node("model.p.from_a", ["model.p.a"]),
            _node("model.p.from_both", ["model.p.a", "model.p.b"]),
        )
    }
    after = build_order(nodes, list(nodes))
    assert "test.p.rel" not in after["model.p.from_a"]
    assert "test.p.rel" in after["model.p.from_both"]


@pytest.mark.parametrize(
    ("config", "why"),
    [
        ({"materialized": "incremental"}, "materialized=incremental"),
        ({"post-hook": ["grant select on {{ this }} to x"]}, "the model has hooks"),
        ({"contract": {"enforced": True}}, "the model has an enforced contract"),
        ({"grants": {"select": ["x"]}}, "the model has grants"),
        ({"persist_docs": {"relation": True}}, "the model persists docs"),
        ({"sql_header": "set time zone 'UTC';"}, "the model sets sql_header"),
        ({"sorted_by": ["id"]}, "the model sets sorted_by"),
        ({"materialized": "table"}, ""),
    ],
)
def test_a_model_goes_to_dbt_with_the_reason(config: dict[str, Any], why: str) -> None:
    manifest = {"nodes": {"model.p.m": _node("model.p.m", [], **config)}, "macros": {}}
    (step,) = plan_build(manifest, ["model.p.m"]).steps
    assert step.why == why
    assert (step.kind == "dbt") == bool(why)


@pytest.mark.parametrize(
    ("config", "why"),
    [
        ({"store_failures": True}, "the test stores its failures"),
        ({"fail_calc": "sum(n)"}, "fail_calc 'sum(n)'"),
        ({"sql_header": "set time zone 'UTC';"}, "the test sets sql_header"),
        ({"severity": "warn", "warn_if": ">10", "error_if": ">100"}, ""),
    ],
)
def test_a_test_goes_to_dbt_with_the_reason(config: dict[str, Any], why: str) -> None:
    manifest = {"nodes": {"test.p.t": _node("test.p.t", [], **config)}, "macros": {}}
    (step,) = plan_build(manifest, ["test.p.t"]).steps
    assert step.why == why


def test_a_model_whose_macro_queries_the_warehouse_goes_to_dbt() -> None:
    node = _node("model.p.m", [])
    node["depends_on"]["macros"] = ["macro.p.cols"]
    macros = {"macro.p.cols": {"name": "cols", "macro_sql": "{% set r = run_query('x') %}"}}
    (step,) = plan_build({"nodes": {"model.p.m": node}, "macros": macros}, ["model.p.m"]).steps
    assert step.kind == "dbt" and "cols" in step.why


@pytest.mark.parametrize(
    ("manifest", "why"),
    [
        ({"unit_tests": {"unit_test.p.m.t": {}}}, "the project has unit tests"),
        ({"nodes": {"operation.p.h": {"resource_type": "operation"}}}, "on-run-start"),
        (
            {"macros": {"m": {"name": "default__get_test_sql", "package_name": "p"}}},
            "overrides how dbt builds",
        ),
        ({"nodes": {}, "macros": {}}, None),
    ],
)
def test_what_sends_the_whole_build_to_dbt(manifest: dict[str, Any], why: str | None) -> None:
    found = whole_build_reason(manifest)
    assert (found is None) if why is None else (why in str(found))


def test_an_unchanged_project_builds_from_the_kept_plan_without_compiling(
    built: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    dbt, w = built["dbt_runner"], built["warehouse"]

    def no_compile(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("compiled again")

    monkeypatch.setattr(dbt, "compile_selection", no_compile)
    again = build("auto", dbt, w, (), (), False, w.close)
    assert relations(w) == built["dbt_rows"]
    w.close()
    assert outcome(again) == outcome(built["dbt"])


def test_the_plan_key_changes_with_any_project_file_and_the_selection(tmp_path: Path) -> None:
    from stackyard.runner.sql_cache import plan_key

    project = _project(tmp_path)
    first = plan_key(project, {"select": []})
    write(project / "target" / "run_results.json", "{}")  # dbt's output is not an input
    assert plan_key(project, {"select": []}) == first
    assert plan_key(project, {"select": ["orders"]}) != first
    write(project / "models" / "orders.sql", "select 1 as id")
    assert plan_key(project, {"select": []}) != first


def test_a_plan_whose_sql_reads_the_clock_is_not_kept(tmp_path: Path) -> None:
    from stackyard.runner import sql_cache

    node = _node("model.p.m", [])
    manifest = {"nodes": {"model.p.m": {**node, "raw_code": "select {{ run_started_at }}"}}}
    plan = plan_build({**manifest, "macros": {}}, ["model.p.m"])
    assert not sql_cache.save(tmp_path, "k", plan, manifest)
    assert sql_cache.load(tmp_path, "k") is None
    steady = {"nodes": {"model.p.m": {**node, "raw_code": "select 1"}}}
    assert sql_cache.save(tmp_path, "k", plan, steady)
    assert sql_cache.load(tmp_path, "k") == plan


def test_the_headed_model_gets_its_header_from_dbt(built: dict[str, Any]) -> None:
    (headed,) = [r for r in built["sql"] if r.name == "headed"]
    assert (headed.status, headed.engine) == ("success", "dbt")
    rows = {name: r for (_, name, _), r in built["sql_rows"].items()}
    assert rows["headed"] == [(2,), (4,), (6,)]


def _env_project(root: Path) -> Path:
    project = root / "transform"
    write(
        project / "dbt_project.yml",
        """
        name: mini
        version: "1.0"
        profile: mini
        models:
          mini:
            +materialized: table
            +schema: "{{ env_var('STACKYARD_TEST_PLAN_SCHEMA', 'reporting') }}"
        """,
    )
    write(project / "models" / "marts" / "stores.sql", "select 1 as id")
    return project


def test_a_kept_plan_is_not_reused_after_an_env_var_of_the_project_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STACKYARD_TEST_PLAN_SCHEMA", raising=False)
    dbt, w = _on_duckdb(tmp_path, _env_project(tmp_path))
    first = build("auto", dbt, w, (), (), False, w.close)
    assert [(r.status, r.engine) for r in first] == [("success", "sql")]
    assert ("main_reporting", "stores", "BASE TABLE") in relations(w)
    w.close()
    monkeypatch.setenv("STACKYARD_TEST_PLAN_SCHEMA", "elsewhere")
    again = build("auto", dbt, w, (), (), False, w.close)
    assert [(r.status, r.engine) for r in again] == [("success", "sql")]
    assert ("main_elsewhere", "stores", "BASE TABLE") in relations(w)
    w.close()


def test_a_model_that_errors_names_its_file_as_dbt_does(tmp_path: Path) -> None:
    project = _env_project(tmp_path)
    write(project / "models" / "marts" / "stores.sql", "select * from no_such_table")
    dbt, w = _on_duckdb(tmp_path, project)
    (by_dbt,) = build("dbt", dbt, w, (), (), False, w.close)
    w.close()
    (by_sql,) = build("auto", dbt, w, (), (), False, w.close)
    w.close()
    assert (by_sql.status, by_sql.engine) == (by_dbt.status, "sql") == ("error", "sql")
    # dbt-duckdb words it a Runtime Error (dbt-postgres a Database Error)
    head = "Runtime Error in model stores (models/marts/stores.sql)"
    assert by_dbt.message.splitlines()[0] == by_sql.message.splitlines()[0] == head
    # the warehouse's own message follows, indented as dbt indents it
    assert "no_such_table" in by_sql.message.splitlines()[1]
    assert by_sql.message.splitlines()[1].startswith("  ")


def test_the_plan_key_holds_the_env_vars_the_project_reads_not_the_profiles(
    tmp_path: Path,
) -> None:
    from stackyard.runner.sql_cache import dbt_versions, plan_key

    project = _env_project(tmp_path)
    profile = {"profiles": "password: \"{{ env_var('PG_PW') }}\""}
    first = plan_key(project, profile, {})
    assert plan_key(project, profile, {"UNRELATED": "x"}) == first
    assert plan_key(project, profile, {"STACKYARD_TEST_PLAN_SCHEMA": "reporting"}) != first
    # the profile's variables are the target's secrets: never in the key, even hashed, also
    # when the profile is written into the project's folder (stackyard's default)
    assert plan_key(project, profile, {"PG_PW": "x"}) == first
    (project / "profiles.yml").write_text(profile["profiles"])
    written = plan_key(project, profile, {})
    assert plan_key(project, profile, {"PG_PW": "x"}) == written
    assert {"dbt-core", "dbt-adapters", "dbt-duckdb", "dbt-postgres"} <= set(dbt_versions())


@pytest.mark.postgres
def test_on_postgres_a_header_model_matches_dbt_and_an_error_names_its_file(
    tmp_path: Path, pg_database: dict[str, Any]
) -> None:
    project = _env_project(tmp_path)
    # the header's time zone decides the date: 2025-12-31 in Honolulu, 2026-01-01 in UTC
    write(
        project / "models" / "marts" / "stores.sql",
        """{{ config(sql_header="set time zone 'Pacific/Honolulu';") }}
        select cast(cast('2026-01-01 00:00:00+00' as timestamptz) as date) as d""",
    )
    write(project / "models" / "marts" / "broken.sql", "select * from no_such_table")
    dbt, w = _on_postgres(tmp_path, project, pg_database)
    by_dbt = {r.name: r for r in build("dbt", dbt, w, (), (), False, w.close)}
    dbt_rows = relations(w)
    w.close()
    by_sql = {r.name: r for r in build("auto", dbt, w, (), (), False, w.close)}
    assert relations(w) == dbt_rows
    w.close()
    assert [str(d) for (d,) in dbt_rows[("public_reporting", "stores", "BASE TABLE")]] == [
        "2025-12-31"
    ]
    assert by_sql["stores"].engine == "dbt" and by_sql["broken"].engine == "sql"
    head = "Database Error in model broken (models/marts/broken.sql)"
    assert by_dbt["broken"].message.splitlines()[0] == head
    assert by_sql["broken"].message.splitlines()[0] == head
    assert "no_such_table" in by_sql["broken"].message


def test_a_project_with_hooks_builds_its_ephemerals_through_dbt(tmp_path: Path) -> None:
    # The hooks send the whole build to dbt after the plan's compile; dbt was handed the
    # manifest that compile had written into, and referenced __dbt__cte__orders_eph unbuilt.
    project = _project(tmp_path)
    config = project / "dbt_project.yml"
    config.write_text(config.read_text() + 'on-run-end: ["select 1"]\n')
    dbt, w = _on_duckdb(tmp_path, project)
    results = build("auto", dbt, w, ("+orders",), (), False, w.close)
    w.close()
    models = {(r.name, r.status, r.engine) for r in results if r.resource_type == "model"}
    assert models == {("raw_orders", "success", "dbt"), ("orders", "success", "dbt")}
