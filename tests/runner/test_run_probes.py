"""A run with nothing new skips the dlt pipelines, and never a load that has something new."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from stackyard import Context
from stackyard.console import CaptureConsole
from stackyard.monitors import suite
from stackyard.results import RunResult

NOTHING_NEW = "nothing new since run"


def load_details(console: CaptureConsole) -> dict[str, str]:
    """``{source: detail}`` of the load steps the console saw finish."""
    return {
        e[1].removeprefix("load "): e[3]
        for e in console.events
        if e[0] == "finished" and e[1].startswith("load ")
    }


def loaded(result: RunResult) -> dict[tuple[str, str], int]:
    return {(x.source, t.table): t.rows for x in result.loads for t in x.tables if t.rows}


def run(project: Path) -> tuple[RunResult, dict[str, str]]:
    console = CaptureConsole()
    ctx = Context(project, console=console)
    result = ctx.run()
    ctx.close()
    assert result.ok, result.to_dict()
    return result, load_details(console)


def execute(project: Path, *statements: str) -> None:
    db = sqlite3.connect(project / "sources" / "app.sqlite")
    for statement in statements:
        db.execute(statement)
    db.commit()
    db.close()


def test_nothing_new_builds_no_pipeline_and_no_dbt(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, _ = run(project)
    pipelines = project / ".stackyard" / "pipelines"
    before = {p: p.stat().st_mtime_ns for p in pipelines.rglob("*") if p.is_file()}
    queries: list[str] = []
    build = suite.metrics_query
    monkeypatch.setattr(suite, "metrics_query", lambda *a: queries.append(build(*a)) or build(*a))
    again, details = run(project)
    # ... nor a metric query: the monitor pass took the first run's measurements
    assert queries == [] and again.monitors is not None and again.monitors.tables
    assert all(NOTHING_NEW in d and first.run_id in d for d in details.values()), details
    assert set(details) == {"app", "files"}
    assert again.build == "skipped" and loaded(again) == {}
    # dlt was not run: its state and packages are untouched
    assert {p: p.stat().st_mtime_ns for p in pipelines.rglob("*") if p.is_file()} == before
    assert {(x.source, x.status) for x in again.loads} == {("app", "loaded"), ("files", "loaded")}
    # the run after a skipped one still skips (the probes moved on to the new run)
    _, details = run(project)
    assert all(again.run_id in d for d in details.values()), details


def test_a_new_row_at_the_last_cursor_value_is_loaded(project: Path) -> None:
    run(project)
    # Same updated_at as the newest rows: the highest cursor value does not move.
    execute(project, "INSERT INTO orders VALUES (201, 1, 5, 'placed', '2026-01-02 10:00:00')")
    _, details = run(project)
    # The probe sees it, so dlt's incremental load runs. (Whether dlt then picks the row up
    # is its own cursor comparison; with SQLite text timestamps it compares strings.)
    assert NOTHING_NEW in details["files"] and NOTHING_NEW not in details["app"]


def test_an_updated_row_is_loaded(project: Path) -> None:
    run(project)
    execute(
        project, "UPDATE customers SET name = 'x', updated_at = '2026-03-01 00:00:00' WHERE id = 7"
    )
    again, _ = run(project)
    assert loaded(again) == {("app", "customers"): 1}
    ctx = Context(project)
    assert list(ctx.sql("select name from app.customers where id = 7").rows) == [("x",)]
    ctx.close()


def test_a_changed_file_of_the_same_size_is_loaded(project: Path) -> None:
    run(project)
    csv = project / "sources" / "files" / "products.csv"
    stat = csv.stat()
    csv.write_text("sku,name,price\nA,alpha,900\nB,beta,250\n")
    os.utime(csv, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    again, details = run(project)
    assert NOTHING_NEW in details["app"] and NOTHING_NEW not in details["files"]
    assert loaded(again) == {("files", "products"): 2}


def test_a_new_file_is_loaded(project: Path) -> None:
    run(project)
    (project / "sources" / "files" / "more.csv").write_text("sku,name,price\nC,gamma,7\n")
    again, _ = run(project)
    assert loaded(again) == {("files", "products"): 1}


def test_a_warehouse_with_another_history_is_loaded_again(project: Path) -> None:
    first, _ = run(project)
    # As after restoring an older backup, or pointing the target at another database: the
    # run that kept the probes is not the warehouse's latest.
    ctx = Context(project)
    ctx.warehouse().execute(f"DELETE FROM stackyard.runs WHERE run_id = '{first.run_id}'")
    ctx.close()
    _, details = run(project)
    assert not any(NOTHING_NEW in d for d in details.values()), details


def test_a_table_dropped_by_hand_is_not_skipped_over(project: Path) -> None:
    run(project)
    ctx = Context(project)
    ctx.warehouse().execute("DROP TABLE app.orders")
    ctx.close()
    # The app database did not change, so its probe equals the kept one; the table it loaded
    # is gone, so the load runs, finds it missing, and says to reload it.
    ctx = Context(project)
    result = ctx.run()
    ctx.close()
    load = {x.source: x for x in result.loads}["app"]
    assert result.exit_code == 1 and load.status == "failed"
    assert "app.orders" in str(load.error) and "stackyard reload app" in str(load.error)


def test_a_failed_load_is_never_skipped_over(project: Path) -> None:
    run(project)
    csv = project / "sources" / "files" / "products.csv"
    stat = csv.stat()
    moved = csv.rename(csv.with_suffix(".bak"))
    ctx = Context(project)
    failed = ctx.run()
    ctx.close()
    assert {x.source: x.status for x in failed.loads}["files"] == "failed"
    # The file is back exactly as it was (same name, size and time) and the app database
    # never changed: both probes equal the ones kept, but the failed attempt dropped the
    # file source's probe and the failed run is the latest, so nothing is skipped wrongly.
    moved.rename(csv)
    os.utime(csv, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    again, details = run(project)
    assert NOTHING_NEW not in details["files"]
    assert again.build == "built"


def test_a_full_refresh_and_a_changed_source_entry_load(project: Path) -> None:
    run(project)
    console = CaptureConsole()
    ctx = Context(project, console=console)
    refreshed = ctx.run(full_refresh=True)
    ctx.close()
    assert refreshed.ok and sum(loaded(refreshed).values()) == 252
    # a refresh keeps no probe: the next run asks dlt again
    _, details = run(project)
    assert not any(NOTHING_NEW in d for d in details.values())
    config = project / "stackyard.yml"
    text = config.read_text()
    config.write_text(text.replace("kind: sql_database", "kind: sql_database\n    chunk_size: 500"))
    _, details = run(project)
    assert NOTHING_NEW not in details["app"] and NOTHING_NEW in details["files"]


def test_a_source_added_between_runs_does_not_reload_the_others(project: Path) -> None:
    first, _ = run(project)
    folder = project / "sources" / "more"
    folder.mkdir()
    (folder / "items.csv").write_text("sku,name\nX,ex\n")
    ctx = Context(project)
    added = ctx.sources().add(
        "more",
        {"kind": "filesystem", "url": "sources/more", "tables": {"items": {"glob": "*.csv"}}},
    )
    ctx.close()
    assert added.ok, added
    # `source add` records its first load as a run of its own; the sources it did not touch
    # are still as the first run kept them, so they are skipped.
    _, details = run(project)
    assert all(NOTHING_NEW in details[s] and first.run_id in details[s] for s in ("app", "files"))
    assert set(details) == {"app", "files", "more"}
