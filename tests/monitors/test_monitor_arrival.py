"""Rows that stop arriving, through the real monitor suite on DuckDB, one pass a day.

A table judged by a time column whose newest days stop coming must not stay "ok" on its old
days: once it has learnt how soon a day's rows arrive, overdue days that usually have rows
are an ``arrival`` anomaly. Days it usually has no rows (weekends) and a table that never
gets new days (stores by opening date) are never overdue.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from stackyard.config.model import ProjectConfig
from stackyard.console import CaptureConsole
from stackyard.monitors.health import MonitorReport
from stackyard.monitors.suite import MonitorSuite
from stackyard.warehouse.base import Warehouse
from tests.monitors.conftest import duckdb_warehouse

START = date(2026, 2, 2)  # a Monday
CONFIG = ProjectConfig.model_validate(
    {
        "name": "p",
        "sources": {
            "app": {
                "kind": "sql_database",
                "connection": "sqlite:///x.sqlite",
                "tables": {"orders": {}, "visits": {}, "stores": {}},
            }
        },
        "monitors": {"tables": {"app.stores": {"time_column": "opened_at"}}},
    }
)


def _monitor(tmp_path: Path, warehouse: Warehouse, today: date) -> MonitorReport:
    suite = MonitorSuite(
        project=CONFIG,
        project_dir=tmp_path,
        transform_dir=tmp_path / "transform",
        warehouse=warehouse,
        console=CaptureConsole(),
        clock=lambda: datetime(today.year, today.month, today.day, 7, tzinfo=UTC),
        sleep=lambda _: None,
    )
    return suite.check(None)


def _table(warehouse: Warehouse, table: str, column: str, days: list[date]) -> None:
    warehouse.execute(f"DROP TABLE IF EXISTS app.{table}")
    values = ", ".join(f"(DATE '{d}', {40 + (d.toordinal() % 7)})" for d in days)
    warehouse.execute(
        f"CREATE TABLE app.{table} AS SELECT d::TIMESTAMP + INTERVAL 9 HOUR AS {column}, "
        f"i AS id FROM (VALUES {values}) AS v(d, n), range(n) AS r(i)"
    )


def _arrival(report: MonitorReport, table: str) -> str | None:
    (health,) = [t for t in report.tables if t.table == table]
    found = [c for c in health.checks if c.check == "arrival"]
    return found[0].reason if found else None


def test_rows_that_stop_arriving_alert_once_overdue_and_usual_gaps_never_do(
    tmp_path: Path,
) -> None:
    warehouse = duckdb_warehouse(tmp_path)
    warehouse.execute("CREATE SCHEMA app")
    history = [START - timedelta(days=back) for back in range(60, 0, -1)]
    stores = [date(2024, 5, 1) + timedelta(days=40 * i) for i in range(12)]
    _table(warehouse, "stores", "opened_at", stores)
    stopped = START + timedelta(days=21)  # orders' last day with rows: a Monday
    for offset in range(26):
        today = START + timedelta(days=offset)
        upto = [*history, *(START + timedelta(days=i) for i in range(offset + 1))]
        # orders: every day, until its rows stop coming after `stopped`.
        _table(warehouse, "orders", "ordered_at", [d for d in upto if d <= stopped])
        # visits: weekdays only, all along.
        _table(warehouse, "visits", "visited_at", [d for d in upto if d.weekday() < 5])
        report = _monitor(tmp_path, warehouse, today)
        assert _arrival(report, "app.visits") is None, (today, _arrival(report, "app.visits"))
        assert _arrival(report, "app.stores") is None, today
        why = _arrival(report, "app.orders")
        # A day's rows arrive the same day: yesterday without rows is within the grace day,
        # the day before it is overdue.
        if today <= stopped + timedelta(days=1):
            assert why is None, (today, why)
        else:
            overdue = (today - stopped).days - 1
            assert why == (
                f"no rows with ordered_at after {stopped}: rows for a day usually arrive "
                f"within 0 day(s), and {overdue} day(s) that usually have rows have none "
                f"({stopped + timedelta(days=1)}"
                + (f" to {today - timedelta(days=1)})" if overdue > 1 else ")")
            ), (today, why)
            (orders,) = [t for t in report.tables if t.table == "app.orders"]
            assert orders.status == "anomaly"
