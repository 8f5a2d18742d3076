"""A pass after a run that changed nothing reuses the last measurements, and its verdicts are
the ones a measuring pass gives; any write to the warehouse in between makes it measure.

Real DuckDB files with tables written directly (no dlt or dbt), as the runner would pass runs.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from stackyard.config.model import ProjectConfig
from stackyard.console import CaptureConsole
from stackyard.monitors import judging
from stackyard.monitors import suite as suite_module
from stackyard.monitors.health import MonitorReport
from stackyard.monitors.reuse import MeasurementCache, Unchanged
from stackyard.monitors.suite import MonitorSuite
from stackyard.results import RunResult, SourceLoad, TableLoad
from stackyard.warehouse.base import Warehouse
from tests.monitors.conftest import duckdb_warehouse

NOW = datetime(2026, 3, 10, 7, 0, tzinfo=UTC)
LATER = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)

CONFIG = ProjectConfig.model_validate(
    {
        "name": "p",
        "sources": {
            "app": {
                "kind": "sql_database",
                "connection": "sqlite:///x.sqlite",
                "tables": {"orders": {"primary_key": "id"}, "notes": {}},
            }
        },
        "monitors": {"tables": {"app.orders": {"columns": ["amount"], "dimensions": ["status"]}}},
    }
)


def loaded(run_id: str) -> RunResult:
    load = SourceLoad("app", "app", "loaded", (TableLoad("orders", 1), TableLoad("notes", 1)))
    return RunResult(run_id, "p", "dev", NOW, NOW, loads=(load,))


def nothing_new(run_id: str) -> RunResult:
    # As a run whose sources' probes were unchanged and whose build was skipped reports it.
    load = SourceLoad("app", "app", "loaded")
    return RunResult(run_id, "p", "dev", LATER, LATER, loads=(load,), build="skipped")


def check(
    folder: Path, w: Warehouse, run: RunResult, now: datetime, unchanged: Unchanged | None
) -> MonitorReport:
    suite = MonitorSuite(
        project=CONFIG,
        project_dir=folder,
        transform_dir=folder / "transform",
        warehouse=w,
        console=CaptureConsole(),
        clock=lambda: now,
        sleep=lambda _: None,
    )
    try:
        return suite.check(run, unchanged)
    finally:
        w.close()


def first_run(folder: Path) -> Warehouse:
    folder.mkdir()
    w = duckdb_warehouse(folder)
    w.execute("CREATE SCHEMA app")
    w.execute(
        "CREATE TABLE app.orders AS SELECT range AS id, range % 7 * 10 AS amount, "
        "CASE WHEN range % 3 = 0 THEN 'open' ELSE 'paid' END AS status, "
        "DATE '2026-01-20' + CAST(range % 48 AS INTEGER) AS ordered_at, "
        "TIMESTAMPTZ '2026-03-10 06:00:00+00' AS _loaded_at FROM range(2000)"
    )
    w.execute("CREATE TABLE app.notes (note VARCHAR, _loaded_at TIMESTAMPTZ)")
    w.execute("INSERT INTO app.notes VALUES (NULL, TIMESTAMPTZ '2026-03-10 06:30:00+00')")
    check(folder, w, loaded("r1"), NOW, None)
    MeasurementCache(folder, "dev").seal("r1", w.write_stamp())
    return w


@pytest.fixture()
def queries(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The metric queries built (one per table measured)."""
    made: list[str] = []
    build = suite_module.metrics_query

    def counted(*args: Any) -> str:
        made.append(build(*args))
        return made[-1]

    monkeypatch.setattr(suite_module, "metrics_query", counted)
    return made


@pytest.fixture()
def judged(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The detector's judgements run (volume, and columns and dimensions)."""
    calls: list[str] = []
    for module, name in ((judging, "volume_checks"), (suite_module, "column_checks")):
        real = getattr(module, name)

        def counted(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            calls.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(module, name, counted)
    return calls


def test_a_pass_after_nothing_changed_reuses_and_judges_as_a_measuring_pass(
    tmp_path: Path, queries: list[str], judged: list[str]
) -> None:
    w = first_run(tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "b")  # the same warehouse, twice
    other = duckdb_warehouse(tmp_path / "b")
    MeasurementCache(tmp_path / "b", "dev").seal("r1", other.write_stamp())
    queries.clear()

    measured = check(tmp_path / "a", w, nothing_new("r2"), LATER, None)
    assert len(queries) == 2
    assert sorted(set(judged)) == ["column_checks", "volume_checks"]
    judged.clear()
    reused = check(tmp_path / "b", other, nothing_new("r2"), LATER, Unchanged("r1", stamp(other)))
    assert len(queries) == 2  # none more

    assert reused == measured
    statuses = {(t.table, c.check): c.status for t in reused.tables for c in t.checks}
    assert statuses[("app.orders", "dimension")] in ("ok", "learning")
    # Judged at this pass's time, not copied from the last one: 3.5 h since the load.
    fresh = next(c for c in reused.tables[1].checks if c.check == "freshness")
    assert fresh.reason.startswith("last loaded 3.5 h ago"), fresh.reason
    # The pass is recorded as any other, and keeps its measurements for the next run.
    assert other.query("SELECT count(*) FROM stackyard.monitor_runs WHERE run_id = 'r2'").rows == (
        (1,),
    )
    other.close()
    assert set(MeasurementCache(tmp_path / "b", "dev")._read()["dev"]["tables"]) == {
        "app.notes",
        "app.orders",
    }

    # The next no-op run judges what this one judged, from the same inputs: the detector's
    # verdicts are taken as they were (the first pass had no history, so it differed).
    MeasurementCache(tmp_path / "b", "dev").seal("r2", stamp(other))
    shutil.copytree(tmp_path / "b", tmp_path / "c")
    judged.clear()
    again = check(tmp_path / "b", other, nothing_new("r3"), LATER, Unchanged("r2", stamp(other)))
    assert judged == []
    assert len(queries) == 2
    third = duckdb_warehouse(tmp_path / "c")
    assert check(tmp_path / "c", third, nothing_new("r3"), LATER, None) == again


def stamp(w: Warehouse) -> str:
    value = w.write_stamp()
    assert value is not None
    return value


def test_a_write_to_the_warehouse_since_the_last_run_is_measured(
    tmp_path: Path, queries: list[str]
) -> None:
    w = first_run(tmp_path / "a")
    before = stamp(w)
    w.execute("DELETE FROM app.orders WHERE id < 500")  # a backfill, a hand-run dbt …
    w.close()
    queries.clear()

    after = stamp(w)
    assert after != before
    check(tmp_path / "a", w, nothing_new("r2"), LATER, Unchanged("r1", after))
    assert len(queries) == 2  # measured again: the table has 1,500 rows now
    assert w.query(
        "SELECT value FROM stackyard.monitor_metrics WHERE run_id = 'r2' "
        "AND table_name = 'app.orders' AND metric = 'row_count'"
    ).rows == ((1500.0,),)
    w.close()


def test_nothing_is_reused_without_the_previous_run_or_on_another_day(
    tmp_path: Path, queries: list[str]
) -> None:
    w = first_run(tmp_path / "a")
    queries.clear()
    check(tmp_path / "a", w, nothing_new("r2"), LATER, Unchanged("r0", stamp(w)))
    assert len(queries) == 2  # kept by another run's pass
    MeasurementCache(tmp_path / "a", "dev").seal("r2", stamp(w))
    queries.clear()
    tomorrow = datetime(2026, 3, 11, 0, 5, tzinfo=UTC)
    check(tmp_path / "a", w, nothing_new("r3"), tomorrow, Unchanged("r2", stamp(w)))
    assert len(queries) == 2  # "rows loaded today" is another day's


def test_a_kept_file_changed_by_hand_is_measured(tmp_path: Path, queries: list[str]) -> None:
    w = first_run(tmp_path / "a")
    path = tmp_path / "a" / ".stackyard" / "monitor_measurements.json"
    data = json.loads(path.read_text())
    data["dev"]["tables"]["app.orders"]["metrics"] = {"row_count": "many"}
    data["dev"]["tables"]["app.notes"]["verdicts"] = ["not", "a", "mapping"]
    path.write_text(json.dumps(data))
    queries.clear()
    report = check(tmp_path / "a", w, nothing_new("r2"), LATER, Unchanged("r1", stamp(w)))
    assert [q for q in queries if '"orders"' in q]  # measured again
    assert len(queries) == 1  # app.notes' measurements were intact
    assert {t.table for t in report.tables} == {"app.notes", "app.orders"}
