"""`stackyard run` end to end on real DuckDB, dlt and dbt."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

from stackyard import Context
from stackyard.console import CaptureConsole


def rows(ctx: Context, sql: str) -> list[tuple[object, ...]]:
    result = list(ctx.sql(sql).rows)
    ctx.close()
    return result


def test_run_loads_builds_tests_and_records(project: Path) -> None:
    console = CaptureConsole()
    ctx = Context(project, console=console)
    result = ctx.run()
    assert result.ok, result.to_dict()
    assert result.exit_code == 0
    loaded = {(load.source, t.table): t.rows for load in result.loads for t in load.tables}
    assert loaded == {("app", "customers"): 50, ("app", "orders"): 200, ("files", "products"): 2}
    assert result.count("model", "success") == 4
    assert result.count("test", "pass") == 8
    assert {f.status for f in result.freshness} == {"pass"}
    assert rows(ctx, "select count(*) from marts.customer_orders") == [(50,)]
    assert rows(ctx, "select sum(orders) from marts.customer_orders") == [(200,)]
    # history travels with the data
    assert rows(ctx, "select status, rows_loaded, tests_passed from stackyard.runs") == [
        ("success", 252, 8)
    ]
    assert rows(ctx, "select count(*) from stackyard.loads where row_count > 0") == [(3,)]
    assert [s.run_id for s in ctx.status()] == [result.run_id]
    steps = [e[1] for e in console.events if e[0] == "finished"]
    assert steps[0] == "ensure schemas" and steps[-2:] == ["record run", "monitors"]
    assert "load app" in steps and "dbt build" in steps


def test_second_run_is_incremental_and_never_duplicates(project: Path) -> None:
    ctx = Context(project)
    ctx.run()
    again = ctx.run()
    assert again.ok
    assert sum(load.rows for load in again.loads) == 0
    db = sqlite3.connect(project / "sources" / "app.sqlite")
    db.execute(
        "UPDATE orders SET status = 'placed', updated_at = '2026-02-01 00:00:00' WHERE id <= 10"
    )
    db.execute("INSERT INTO orders VALUES (201, 1, 5, 'placed', '2026-02-01 00:00:00')")
    db.commit()
    db.close()
    third = ctx.run()
    assert third.ok
    assert {t.table: t.rows for load in third.loads for t in load.tables} == {"orders": 11}
    assert rows(ctx, "select count(*), count(distinct id) from app.orders") == [(201, 201)]
    assert rows(ctx, "select count(*) from app.orders where status = 'placed'") == [(74,)]


def test_a_failing_source_skips_its_models_but_not_the_others(project: Path) -> None:
    (project / "sources" / "app.sqlite").unlink()
    (project / "sources" / "app.sqlite").mkdir()  # unreadable as a database
    result = Context(project).run()
    assert result.exit_code == 1
    by_source = {load.source: load for load in result.loads}
    assert by_source["app"].status == "failed"
    assert by_source["app"].error
    assert by_source["files"].status == "loaded" and by_source["files"].rows == 2
    skipped = {s.name: s.reason for s in result.skipped}
    assert skipped["stg_dlt__orders"] == "upstream source 'app' failed to load"
    assert "customer_orders" in skipped
    built = {n.name for n in result.nodes if n.resource_type == "model"}
    assert built == {"stg_dlt__products"}


def test_a_model_below_two_failed_sources_is_skipped_once_and_ephemerals_not_at_all(
    project: Path,
) -> None:
    models = project / "transform" / "models"
    (models / "marts" / "order_products.sql").write_text(
        "select o.order_id, p.sku from {{ ref('int_orders') }} o "
        "cross join {{ ref('stg_dlt__products') }} p\n"
    )
    # ephemeral: inlined into its children, never a relation of its own, never "built"
    (models / "marts" / "int_orders.sql").write_text(
        "{{ config(materialized='ephemeral') }}\nselect * from {{ ref('stg_dlt__orders') }}\n"
    )
    assert Context(project).run().count("model", "success") == 5  # 6 models, 1 ephemeral
    shutil.rmtree(project / "sources" / "files")  # a missing folder: the files load fails
    (project / "sources" / "app.sqlite").unlink()
    (project / "sources" / "app.sqlite").mkdir()  # unreadable as a database
    result = Context(project).run()
    assert result.exit_code == 1
    names = [s.name for s in result.skipped]
    assert sorted(names) == [
        "customer_orders",
        "order_products",
        "stg_dlt__customers",
        "stg_dlt__orders",
        "stg_dlt__products",
    ]
    assert result.to_dict()["counts"]["models_skipped"] == 5
    skipped = {s.name: s.reason for s in result.skipped}
    assert skipped["order_products"] == (
        "upstream source 'app' failed to load; upstream source 'files' failed to load"
    )
    assert skipped["stg_dlt__products"] == "upstream source 'files' failed to load"


def test_bad_csv_rows_are_kept_with_the_reason(project: Path) -> None:
    ctx = Context(project)
    assert ctx.run().ok
    (project / "sources" / "files" / "more.csv").write_text(
        "sku,name,price\nC,gamma,300\nD,delta,not-a-number\nE,epsilon\nF,phi,7\n"
    )
    result = ctx.run(select=["files"])
    files = next(load for load in result.loads if load.source == "files")
    assert files.rejected == 2
    assert rows(ctx, "select sku from files.products order by sku") == [
        ("A",),
        ("B",),
        ("C",),
        ("F",),
    ]
    rejected = rows(
        ctx,
        "select table_name, file, line, column_name, reason from files._rejected_rows "
        "order by line",
    )
    assert [(r[0], r[1], r[2], r[3]) for r in rejected] == [
        ("products", "more.csv", 3, "price"),
        ("products", "more.csv", 4, "price"),
    ]
    assert "not-a-number" in str(rejected[0][4]) or "CAST" in str(rejected[0][4])


def test_select_a_source_runs_only_its_part(project: Path) -> None:
    result = Context(project).run(select=["files"])
    assert [load.source for load in result.loads] == ["files"]
    assert {n.name for n in result.nodes if n.resource_type == "model"} == {"stg_dlt__products"}


def test_a_source_named_in_a_space_separated_selection_is_loaded(project: Path) -> None:
    # dbt reads 'files customer_orders' as a union; the source among them was dropped.
    result = Context(project).run(select=["files customer_orders"])
    assert [load.source for load in result.loads] == ["files"]
    built = {n.name for n in result.nodes if n.resource_type == "model"}
    assert {"stg_dlt__products", "customer_orders"} <= built


def test_a_failing_test_fails_the_run(project: Path) -> None:
    db = sqlite3.connect(project / "sources" / "app.sqlite")
    db.execute("UPDATE orders SET status = 'lost' WHERE id = 1")
    db.commit()
    db.close()
    result = Context(project).run()
    assert result.exit_code == 1
    failed = [n for n in result.nodes if n.failed]
    assert next(n.name for n in failed).startswith("accepted_values_stg_dlt__orders_status")
    assert failed[0].failures == 1


def test_nothing_new_skips_the_build_but_still_checks_freshness(project: Path) -> None:
    ctx = Context(project)
    first = ctx.run()
    again = ctx.run()
    build = next(s for s in again.steps if s.name == "dbt build")
    assert build.status == "skipped" and first.run_id in build.detail
    assert again.ok and again.build == "skipped" and not again.nodes
    assert {f.table for f in again.freshness} == {"customers", "orders", "products"}
    # a changed model, or --force-build, builds again
    model = project / "transform/models/marts/customer_orders.sql"
    model.write_text(model.read_text() + "-- changed\n")
    changed = ctx.run()
    assert changed.build == "built" and changed.count("model", "success") == 4
    forced = ctx.run(force_build=True)
    assert forced.build == "built" and forced.count("test", "pass") == 8


def test_a_model_gone_from_the_warehouse_is_built_again_though_nothing_is_new(
    project: Path,
) -> None:
    # A view dropped with the table it reads (Postgres, a table rebuilt by a backfill), or
    # a table dropped by hand: the next run skipped its build (no new rows, no change) and
    # the model stayed gone.
    ctx = Context(project)
    assert ctx.run().ok
    (schema, name), *_ = ctx.sql(
        "select table_schema, table_name from information_schema.tables "
        "where table_name = 'customer_orders'"
    ).rows
    ctx.sql(f'drop table "{schema}"."{name}"')
    again = ctx.run()
    assert again.ok and again.build == "built"
    assert ctx.sql(f'select count(*) from "{schema}"."{name}"').rows[0][0] > 0
    assert ctx.run().build == "skipped"  # all there again: nothing to build
    ctx.close()


def test_a_run_that_only_removes_deleted_rows_builds(project: Path) -> None:
    config = project / "stackyard.yml"
    config.write_text(
        config.read_text().replace(
            "orders: {primary_key: id, cursor: updated_at}",
            "orders: {primary_key: id, cursor: updated_at, deletes: remove}",
        )
    )
    ctx = Context(project)
    assert ctx.run().ok
    before = ctx.sql("select sum(orders) from marts.customer_orders").rows[0][0]
    db = sqlite3.connect(project / "sources" / "app.sqlite")
    db.execute("DELETE FROM orders WHERE id = 1")
    db.commit()
    db.close()
    again = ctx.run()
    assert again.ok and again.build == "built", again.to_dict()
    assert "0 rows loaded, 1 deleted upstream;" in again.counts.text()
    # the mart no longer counts the deleted order (the build used to be skipped)
    assert ctx.sql("select sum(orders) from marts.customer_orders").rows == ((before - 1,),)


def test_a_failed_run_is_never_skipped_over(project: Path) -> None:
    db = sqlite3.connect(project / "sources" / "app.sqlite")
    db.execute("UPDATE orders SET status = 'lost' WHERE id = 1")
    db.commit()
    db.close()
    ctx = Context(project)
    assert ctx.run().exit_code == 1
    again = ctx.run()  # no new rows, but the last run failed: build and test again
    assert again.build == "built" and again.exit_code == 1


def test_a_table_named_in_capitals_merges_its_updates(project: Path) -> None:
    """dlt names the table `orders`; the second load must see it as loaded and merge."""
    config = project / "stackyard.yml"
    config.write_text(config.read_text().replace("      orders: {", "      Orders: {"))
    ctx = Context(project)
    assert ctx.run().ok
    db = sqlite3.connect(project / "sources" / "app.sqlite")
    db.execute(
        "UPDATE orders SET amount = amount + 1, updated_at = '2026-02-01 00:00:00' WHERE id <= 10"
    )
    db.commit()
    db.close()
    assert ctx.run().ok
    assert rows(ctx, "select count(*), count(distinct id) from app.orders") == [(200, 200)]


def test_a_source_whose_load_failed_is_left_out_of_freshness(project: Path) -> None:
    # The first run in its own process: this one must not keep the lost file open.
    cli = [sys.executable, "-m", "stackyard.cli.main", "run", "--project", str(project)]
    subprocess.run(cli, check=True, capture_output=True)
    # The warehouse file is lost; 'files' also starts over (no dlt state), 'app' does not, so
    # its load refuses: its tables are missing though dlt's state says they were loaded.
    (project / ".stackyard" / "dev.duckdb").unlink()
    shutil.rmtree(project / ".stackyard" / "pipelines" / "mini__files__dev")
    result = Context(project).run()
    assert result.exit_code == 1
    loads = {load.source: load for load in result.loads}
    assert loads["app"].status == "failed" and "reload app" in str(loads["app"].error)
    assert loads["files"].status == "loaded"
    # The freshness of the source that did load is still judged, with no warehouse error
    # about the failed source's missing tables (its load already says what to do).
    fresh = {s.name: s for s in result.steps}["source freshness"]
    assert fresh.status == "ok" and fresh.detail == "1/1 source tables fresh", fresh
    assert {(f.source, f.table, f.status) for f in result.freshness} == {
        ("dlt_files", "products", "pass")
    }


def test_engine_sql_on_a_project_with_hooks_is_refused_before_anything_loads(
    project: Path,
) -> None:
    import pytest

    from stackyard.errors import EngineRefusedError

    config = project / "transform" / "dbt_project.yml"
    config.write_text(config.read_text() + 'on-run-end: ["select 1"]\n')
    with pytest.raises(EngineRefusedError, match="on-run-start/on-run-end hooks"):
        Context(project).run(engine="sql")
    with Context(project) as ctx:
        assert not ctx.status()  # nothing ran, nothing recorded
        assert not ctx.sql(
            "select count(*) from information_schema.tables where table_schema = 'app'"
        ).rows[0][0]


def test_a_build_refused_after_loading_is_recorded_so_the_next_run_builds(project: Path) -> None:
    import pytest

    from stackyard.errors import EngineRefusedError

    assert Context(project).run().ok
    # A node only dbt builds is found once the project compiles, after the loads.
    write_model = project / "transform" / "models" / "marts" / "grown.sql"
    write_model.write_text(
        "{{ config(materialized='incremental', unique_key='customer_id') }}\n"
        "select * from {{ ref('customer_orders') }}\n"
    )
    assert Context(project).run().ok
    db = sqlite3.connect(project / "sources" / "app.sqlite")
    db.execute("UPDATE customers SET name = 'renamed', updated_at = '2026-02-01' WHERE id = 7")
    db.commit()
    db.close()
    with pytest.raises(EngineRefusedError):
        Context(project).run(engine="sql")
    with Context(project) as ctx:
        assert ctx.status()[0].status == "failed"  # the refused run, with its load
    again = Context(project).run()
    assert again.ok and again.build == "built"  # not "nothing new since the last build"
    assert rows(Context(project), "select count(*) from marts.customer_orders") == [(50,)]
