"""Bad input and faults: each a stated status, never a crash, and the run's result unchanged.

The suite runs on a real DuckDB file with tables written directly (no dlt or dbt), and a run
result as the runner would pass it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from stackyard.config.model import DuckDBTarget, ProjectConfig
from stackyard.config.project import Project
from stackyard.config.secrets import Secrets
from stackyard.console import CaptureConsole
from stackyard.monitors.health import MonitorReport
from stackyard.monitors.service import Monitoring
from stackyard.monitors.suite import MonitorSuite
from stackyard.results import RunResult, SourceLoad, TableLoad
from stackyard.session import Sessions
from stackyard.warehouse.base import Warehouse
from tests.monitors.conftest import Webhook, duckdb_warehouse

NOW = datetime(2026, 3, 10, 7, 0, tzinfo=UTC)


def project(**monitors: Any) -> ProjectConfig:
    return ProjectConfig.model_validate(
        {
            "name": "p",
            "sources": {
                "app": {
                    "kind": "sql_database",
                    "connection": "sqlite:///x.sqlite",
                    "tables": {"events": {}, "empty": {}, "users": {"primary_key": "id"}},
                }
            },
            "monitors": monitors,
        }
    )


def run(*tables: str, status: str = "loaded", error: str | None = None) -> RunResult:
    load = SourceLoad(
        "app",
        "app",
        status,
        tuple(TableLoad(t, 1) for t in tables),
        error=error,  # type: ignore[arg-type]
    )
    return RunResult("r-" + "-".join(tables), "p", "dev", NOW, NOW, loads=(load,))


def suite(
    tmp_path: Path, config: ProjectConfig, now: datetime = NOW
) -> tuple[Callable[[RunResult | None], MonitorReport], Warehouse]:
    w = duckdb_warehouse(tmp_path)
    s = MonitorSuite(
        project=config,
        project_dir=tmp_path,
        transform_dir=tmp_path / "transform",
        warehouse=w,
        console=CaptureConsole(),
        clock=lambda: now,
        sleep=lambda _: None,
    )
    return s.check, w


def tables(w: Warehouse) -> None:
    w.execute("CREATE SCHEMA app")
    w.execute("CREATE TABLE app.events (id INTEGER, note VARCHAR, _loaded_at TIMESTAMPTZ)")
    w.execute(
        "INSERT INTO app.events SELECT range, NULL, TIMESTAMPTZ '2026-03-10 06:00:00+00' "
        "FROM range(100)"
    )
    w.execute("CREATE TABLE app.empty (id INTEGER, created_at DATE, _loaded_at TIMESTAMPTZ)")
    w.execute("CREATE TABLE app.users (id INTEGER, name VARCHAR, _loaded_at TIMESTAMPTZ)")
    w.execute("INSERT INTO app.users VALUES (1, 'a', TIMESTAMPTZ '2026-03-10 06:00:00+00')")


def by_table(report: MonitorReport) -> dict[str, Any]:
    return {t.table: t for t in report.tables}


def test_empty_tables_all_null_columns_and_no_time_column_are_stated(tmp_path: Path) -> None:
    check, w = suite(tmp_path, project())
    tables(w)
    report = check(run("events", "empty", "users"))
    found = by_table(report)
    assert set(found) == {"app.events", "app.empty", "app.users"}
    empty = found["app.empty"]
    assert "the table is empty: null rates not judged" in [c.reason for c in empty.checks]
    assert next(c for c in empty.checks if c.check == "volume").reason.startswith(
        "no row has a value in created_at yet"
    )
    # Before: "no loaded time known yet", as if it had never been loaded.
    freshness = next(c for c in empty.checks if c.check == "freshness")
    assert freshness.reason == "not judged: the table has no rows to read a load time from"
    events = found["app.events"]
    note = next(c for c in events.checks if c.column == "note")
    assert (note.status, note.value) == ("ok", 1.0)  # always NULL is its normal state
    volume = events.volume
    assert volume is not None and volume.status == "learning"
    assert volume.reason.startswith("rows loaded on 2026-03-10: 100; learning the baseline")
    assert report.status == "ok"
    # the second pass, the next day: an all-NULL column stays ok
    check2, _ = suite(tmp_path, project(), NOW + timedelta(days=1))
    again = by_table(check2(run("events")))
    assert next(c for c in again["app.events"].checks if c.column == "note").status == "ok"


def test_a_table_dropped_between_runs_is_missing(tmp_path: Path, webhook: Webhook) -> None:
    config = project(alerts={"channels": {"hook": {"type": "webhook", "url": webhook.url}}})
    check, w = suite(tmp_path, config)
    tables(w)
    check(run("events", "users"))
    w.execute("DROP TABLE app.users")
    w.close()
    report = check(run("events"))
    users = by_table(report)["app.users"]
    assert users.status == "missing"
    assert users.why.startswith(
        "table: app.users does not exist (it had 3 columns when last measured"
    )
    assert report.status == "anomaly" and report.alerts_sent == 1
    assert "app.users" in webhook.texts()[0]


def test_load_times_in_the_future_warn_and_are_not_fresh(tmp_path: Path) -> None:
    check, w = suite(tmp_path, project())
    tables(w)
    w.execute("UPDATE app.users SET _loaded_at = TIMESTAMPTZ '2026-03-12 00:00:00+00'")
    w.close()
    users = by_table(check(run("users")))["app.users"]
    fresh = next(c for c in users.checks if c.check == "freshness")
    assert fresh.status == "warn"
    assert "in the future: a clock or time-zone problem" in fresh.reason


def test_stale_sources_warn_then_alert(tmp_path: Path) -> None:
    check, w = suite(tmp_path, project(), NOW + timedelta(hours=30))
    tables(w)
    fresh = next(c for c in by_table(check(None))["app.users"].checks if c.check == "freshness")
    assert fresh.status == "warn" and "over the 24 h warn limit" in fresh.reason
    check, _ = suite(tmp_path, project(), NOW + timedelta(hours=50))
    fresh = next(c for c in by_table(check(None))["app.users"].checks if c.check == "freshness")
    assert fresh.status == "anomaly" and "over the 48 h error limit" in fresh.reason


def test_a_failing_webhook_never_changes_the_run_result(tmp_path: Path, webhook: Webhook) -> None:
    webhook.status = 500
    config = project(
        tables={"app.users": {"key": "id"}},
        alerts={
            "retries": 1,
            "channels": {"hook": {"type": "webhook", "url": webhook.url}},
        },
    )
    check, w = suite(tmp_path, config)
    tables(w)
    w.execute("INSERT INTO app.users VALUES (1, 'again', TIMESTAMPTZ '2026-03-10 06:00:00+00')")
    w.close()
    the_run = run("users")
    before = the_run.to_dict()
    report = check(the_run)
    assert by_table(report)["app.users"].status == "anomaly"  # a duplicate key
    assert report.alerts_sent == 0
    assert report.alert_errors == (
        "hook: the webhook answered HTTP 500 Internal Server Error (after 2 attempt(s))",
    )
    assert the_run.to_dict() == before and the_run.ok


def test_a_failed_load_is_the_root_cause_and_volume_is_not_judged(tmp_path: Path) -> None:
    check, w = suite(tmp_path, project())
    tables(w)
    report = check(run(status="failed", error="connection refused"))
    users = by_table(report)["app.users"]
    assert [c.reason for c in users.problems] == [
        "the load of source 'app' failed: connection refused"
    ]
    assert "not judged: the load of source 'app' failed" in users.volume.reason  # type: ignore[union-attr]
    assert report.notes == ("1 alert not sent: no channel under monitors.alerts.channels",)


def test_incidents_are_recorded_against_a_monitored_table(tmp_path: Path) -> None:
    check, w = suite(tmp_path, project(tables={"app.events": {"time_column": "day"}}))
    w.execute("CREATE SCHEMA app")
    w.execute("CREATE TABLE app.events (id INTEGER, day DATE)")
    # 40 days of ~100 rows, except a broken week of 5 rows a day, then 100 again
    w.execute(
        "INSERT INTO app.events SELECT range, DATE '2026-01-30' + CAST(range // 100 AS INTEGER) "
        "FROM range(4000)"
    )
    w.execute(
        "DELETE FROM app.events WHERE day BETWEEN DATE '2026-02-20' AND DATE '2026-02-26' AND id % 100 >= 5"
    )
    w.close()
    first = by_table(check(None))["app.events"]
    assert first.status == "ok"
    monitoring = _monitoring(tmp_path, project(tables={"app.events": {"time_column": "day"}}))
    incident = monitoring.mark_incident(None, "app.events", "2026-02-20", "2026-02-26", "feed down")
    assert (incident.table, incident.start, incident.end) == (
        "app.events",
        date(2026, 2, 20),
        date(2026, 2, 26),
    )
    stored = w.query("SELECT table_name, note FROM stackyard.monitor_incidents").rows
    assert stored == (("app.events", "feed down"),)


def _monitoring(folder: Path, config: ProjectConfig) -> Monitoring:
    """Monitoring of a project whose dev target is the test's warehouse file."""
    target = DuckDBTarget(type="duckdb", path=str(folder / "w.duckdb"))
    config = config.model_copy(update={"targets": {"dev": target}})
    loaded = Project(folder / "stackyard.yml", config, Secrets(folder, environ={}))
    return Monitoring(loaded, Sessions(loaded, CaptureConsole()))


def test_a_time_column_that_cannot_be_used_is_a_config_warning_not_an_anomaly(
    tmp_path: Path,
) -> None:
    check, w = suite(tmp_path, project())
    w.execute("CREATE SCHEMA app")
    w.execute("CREATE TABLE app.events (id INTEGER, created_at DATE, _loaded_at TIMESTAMPTZ)")
    w.execute(
        "INSERT INTO app.events SELECT range, DATE '2026-01-20' + CAST(range / 100 AS INTEGER), "
        "TIMESTAMPTZ '2026-03-10 06:00:00+00' FROM range(4900)"
    )
    first = by_table(check(run("events")))["app.events"]
    assert first.volume is not None and first.volume.status == "ok", first.volume
    # A typo in time_column: all 4,900 rows were loaded today, and judged per load against
    # 100 rows a day they were an "anomaly" (exit 1, an alert) for a setting's mistake.
    for wrong in ("created", "id"):
        again, _ = suite(tmp_path, project(tables={"app.events": {"time_column": wrong}}))
        report = again(run("events"))
        found = by_table(report)["app.events"]
        assert report.status == "warn"
        config = next(c for c in found.checks if c.check == "config")
        assert f"time_column '{wrong}'" in config.reason
        assert found.volume is not None and found.volume.status == "ok"
        assert found.volume.reason.startswith(f"not judged: time_column '{wrong}' ")


def test_an_unusable_time_column_is_said_one_way_by_every_check(tmp_path: Path) -> None:
    """The config check said "counting rows per load instead", volume "not judged", and the
    columns and dimensions "has no time column; set time_column", though it was set."""
    _, w = suite(tmp_path, project())
    w.execute("CREATE SCHEMA app")
    w.execute(
        "CREATE TABLE app.events (id INTEGER, status VARCHAR, amount INTEGER, created_at DATE, "
        "_loaded_at TIMESTAMPTZ)"
    )
    w.execute(
        "INSERT INTO app.events SELECT range, 'placed', range, DATE '2026-03-01', "
        "TIMESTAMPTZ '2026-03-10 06:00:00+00' FROM range(10)"
    )
    declared = {"columns": ["amount"], "dimensions": ["status"]}
    cases = {
        "status": "time_column 'status' is VARCHAR, not a date or timestamp "
        "(did you mean 'created_at'?)",
        "created": "time_column 'created' is not a column of app.events "
        "(did you mean 'created_at'?)",
    }
    for wrong, why in cases.items():
        settings = {"app.events": {"time_column": wrong, **declared}}
        check, _ = suite(tmp_path, project(tables=settings))
        found = by_table(check(run("events")))["app.events"]
        said = [(c.check, c.reason) for c in found.checks if c.check in ("config", "volume")]
        assert said == [
            (
                "config",
                f"{why}: volume, columns and dimensions are not judged until it is "
                "fixed or removed",
            ),
            ("volume", f"not judged: {why}; fix or remove it"),
        ], said


def test_a_table_without_a_time_column_that_is_emptied_is_an_anomaly(tmp_path: Path) -> None:
    check, w = suite(tmp_path, project())
    tables(w)
    first = by_table(check(run("events")))["app.events"]
    assert first.volume is not None and first.volume.status == "learning"
    w.execute("DELETE FROM app.events")
    # Rows per load saw 0 new rows, a quiet day: "learning", exit 0, for an emptied table.
    later, _ = suite(tmp_path, project(), NOW + timedelta(hours=2))
    report = later(None)
    volume = by_table(report)["app.events"].volume
    assert volume is not None and volume.status == "anomaly", volume
    assert volume.reason == (
        "the table is empty (it had 100 rows on 2026-03-10): emptied or reloaded without data?"
    )
    assert report.status == "anomaly"


def test_a_day_marked_as_an_incident_is_known_not_an_anomaly(tmp_path: Path) -> None:
    settings = project(tables={"app.events": {"time_column": "day"}})
    check, w = suite(tmp_path, settings)
    w.execute("CREATE SCHEMA app")
    w.execute("CREATE TABLE app.events (id INTEGER, day DATE)")
    w.execute(
        "INSERT INTO app.events SELECT range, DATE '2026-01-30' + CAST(range // 100 AS INTEGER) "
        "FROM range(4000) WHERE DATE '2026-01-30' + CAST(range // 100 AS INTEGER) "
        "<> DATE '2026-03-07'"
    )
    w.close()
    first = check(None)
    volume = by_table(first)["app.events"].volume
    assert first.status == "anomaly" and volume is not None and volume.day == date(2026, 3, 7)
    _monitoring(tmp_path, settings).mark_incident(None, "app.events", "2026-03-07", "2026-03-07")
    # Marked, it stayed an anomaly (health exit 1, `incident open` opened it again) until
    # the day left recheck_days; known now, and still said, beside the latest day's verdict
    # (which health shows as the table's volume).
    again, _ = suite(tmp_path, settings)
    second = again(None)
    events = by_table(second)["app.events"]
    assert second.status == "ok", second
    volumes = {c.day: c for c in events.checks if c.check == "volume"}
    known = volumes[date(2026, 3, 7)]
    assert known.status == "ok"
    assert known.reason.startswith("a known incident (marked): rows with day on 2026-03-07: 0")
    latest = events.volume
    assert latest is not None and latest.day == max(volumes) > date(2026, 3, 7)


def test_a_marked_day_quiets_the_column_and_dimension_checks_of_that_day_too(
    tmp_path: Path,
) -> None:
    settings = project(
        tables={"app.events": {"time_column": "day", "columns": ["amount"], "dimensions": ["kind"]}}
    )
    check, w = suite(tmp_path, settings)
    w.execute("CREATE SCHEMA app")
    w.execute("CREATE TABLE app.events (id INTEGER, day DATE, kind VARCHAR, amount INTEGER)")
    # 40 days of 100 rows, half 'web' and half 'shop'; on 2026-03-09 (the latest complete
    # day) the shop's rows did not come: volume halves, and the 'shop' dimension is empty.
    w.execute(
        "INSERT INTO app.events SELECT range, DATE '2026-01-30' + CAST(range // 100 AS INTEGER), "
        "CASE WHEN range % 2 = 0 THEN 'web' ELSE 'shop' END, range % 7 FROM range(4000) "
        "WHERE NOT (DATE '2026-01-30' + CAST(range // 100 AS INTEGER) = DATE '2026-03-09' "
        "AND range % 2 = 1)"
    )
    w.close()
    first = by_table(check(None))["app.events"]
    dimension = [c for c in first.checks if c.check.startswith("dimension")]
    assert first.status == "anomaly"
    assert any(c.status == "anomaly" and c.day == date(2026, 3, 9) for c in dimension), first
    _monitoring(tmp_path, settings).mark_incident(None, "app.events", "2026-03-09", "2026-03-09")
    again, _ = suite(tmp_path, settings)
    second = by_table(again(None))["app.events"]
    # Known: every check of that day says so, and none is an anomaly any more.
    assert second.status == "ok", second.checks
    of_the_day = [c for c in second.checks if c.day == date(2026, 3, 9)]
    assert {c.check for c in of_the_day} >= {"volume", "dimension"}, of_the_day
    assert all(c.status == "ok" for c in of_the_day)


def test_a_table_counted_per_build_that_is_emptied_is_an_anomaly_while_learning(
    tmp_path: Path,
) -> None:
    """A model (or any table without a load time) counted per pass read "0; learning the
    baseline" when emptied, beside its emptied source's anomaly. One that has been empty
    before stays the detector's to judge (a usual empty table never alerts)."""
    check, w = suite(tmp_path, project())
    w.execute("CREATE SCHEMA app")
    w.execute("CREATE TABLE app.events (id INTEGER)")  # no time column, no load time
    w.execute("INSERT INTO app.events SELECT range FROM range(100)")
    w.execute("CREATE TABLE app.empty (id INTEGER)")
    assert by_table(check(None))["app.events"].volume.status == "learning"
    w.execute("DELETE FROM app.events")
    w.execute("INSERT INTO app.empty VALUES (1)")
    later, _ = suite(tmp_path, project(), NOW + timedelta(hours=2))
    found = by_table(later(None))
    volume = found["app.events"].volume
    assert volume is not None and volume.status == "anomaly", volume
    assert volume.reason.startswith("the table is empty (it had 100 rows when last measured")
    w.execute("DELETE FROM app.empty")
    again, _ = suite(tmp_path, project(), NOW + timedelta(hours=4))
    empty = by_table(again(None))["app.empty"].volume
    assert empty is not None and empty.status == "learning", empty  # it was empty before
