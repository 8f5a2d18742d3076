"""Column and dimension monitors through the real suite on DuckDB: measured in the table's one
batched query, judged per day, and shown as checks in health."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from stackyard import Context
from stackyard.cli.main import app
from stackyard.config.model import ProjectConfig
from stackyard.console import CaptureConsole
from stackyard.metadata.monitors import Incident, MetricStore
from stackyard.monitors.metrics import TableRef, metrics_query, plan_metrics
from stackyard.monitors.suite import MonitorSuite
from stackyard.project import init_project
from stackyard.warehouse.base import Warehouse
from tests.monitors.conftest import duckdb_warehouse

NOW = datetime(2026, 3, 10, 7, 0, tzinfo=UTC)
YESTERDAY = NOW.date() - timedelta(days=1)
OUTAGE = NOW.date() - timedelta(days=4)

CONFIG = ProjectConfig.model_validate(
    {
        "name": "p",
        "sources": {
            "app": {
                "kind": "sql_database",
                "connection": "sqlite:///x.sqlite",
                "tables": {"orders": {}},
            }
        },
        "monitors": {
            "tables": {
                "app.orders": {
                    "columns": ["amount", "status", "note"],
                    "dimensions": ["status"],
                }
            }
        },
    }
)


def _warehouse(tmp_path: Path) -> Warehouse:
    """40 days of orders up to today: 60 'placed', 30 'shipped', 10 'returned' a day, amounts
    around 50."""
    w = duckdb_warehouse(tmp_path)
    w.execute("CREATE SCHEMA app")
    w.execute(
        "CREATE TABLE app.orders AS SELECT range AS id, range % 37 AS customer_id, "
        "CASE WHEN range % 100 < 60 THEN 'placed' WHEN range % 100 < 90 THEN 'shipped' "
        "ELSE 'returned' END AS status, 40 + (range * 7) % 21 AS amount, "
        "TIMESTAMP '2026-01-30 10:00:00' + INTERVAL (range // 100) DAY AS ordered_at, "
        "CAST(NULL AS VARCHAR) AS note FROM range(4000)"
    )
    return w


def _pass(tmp_path: Path, w: Warehouse, now: datetime = NOW) -> dict[str, Any]:
    """A monitor pass at ``now``: the checks of app.orders by label (the table as ``_table``)."""
    suite = MonitorSuite(
        project=CONFIG,
        project_dir=tmp_path,
        transform_dir=tmp_path / "transform",
        warehouse=w,
        console=CaptureConsole(),
        clock=lambda: now,
        sleep=lambda _: None,
    )
    orders = next(t for t in suite.check(None).tables if t.table == "app.orders")
    return {c.label: c for c in orders.checks} | {"_table": orders}


def _orders(
    tmp_path: Path, *, broken: bool, emptied: bool = False, gone_since: date | None = None
) -> dict[str, Any]:
    """The orders, one pass. Broken: yesterday no 'returned' rows arrived and every amount was
    written in cents. Gone since: a first pass sees every row, then the rows of that day on
    are deleted."""
    w = _warehouse(tmp_path)
    if broken:
        w.execute(
            f"DELETE FROM app.orders WHERE status = 'returned' "
            f"AND CAST(ordered_at AS DATE) = DATE '{YESTERDAY}'"
        )
        w.execute(
            f"UPDATE app.orders SET amount = amount * 100 "
            f"WHERE CAST(ordered_at AS DATE) = DATE '{YESTERDAY}'"
        )
    if emptied:  # every row of yesterday gone
        w.execute(f"DELETE FROM app.orders WHERE CAST(ordered_at AS DATE) = DATE '{YESTERDAY}'")
    checks = _pass(tmp_path, w)
    if gone_since is not None:
        w.execute(f"DELETE FROM app.orders WHERE CAST(ordered_at AS DATE) >= DATE '{gone_since}'")
        checks = _pass(tmp_path, w)
    return checks


def test_healthy_columns_and_dimensions_are_judged_and_ok(tmp_path: Path) -> None:
    checks = _orders(tmp_path, broken=False)
    for label in ("distinct(amount)", "mean(amount)", "median(amount)", "distinct(status)"):
        assert checks[label].status == "ok", checks[label].reason
        assert checks[label].day == YESTERDAY
    assert "mean(status)" not in checks  # not numeric
    # A column NULL on every row: its days have rows and no values ("had no rows" before).
    note = checks["distinct(note)"]
    assert note.status == "ok" and "days without values are usual here" in note.reason
    assert "no rows" not in note.reason
    dimension = checks["dimension(status)"]
    assert dimension.status == "ok"
    assert "each of 3 values of status within their bands" in dimension.reason
    assert checks["_table"].status == "ok"


def test_a_value_that_stops_arriving_and_a_unit_change_are_anomalies(tmp_path: Path) -> None:
    checks = _orders(tmp_path, broken=True)
    returned = checks["dimension(status=returned)"]
    assert returned.status == "anomaly" and returned.value == 0
    assert "status = returned: 0 rows is below the expected band" in returned.reason
    # The table has its rows: the detector's "the table looks empty" would be untrue here.
    assert "the table" not in returned.reason and "the value" in returned.reason
    mean = checks["mean(amount)"]
    assert mean.status == "anomaly" and mean.value > mean.upper
    assert "the mean of amount is" in mean.reason and "above" in mean.reason
    # the table's total volume dropped by only a tenth: not what gave it away
    table = checks["_table"]
    assert table.status == "anomaly"


def _told_by_volume(checks: dict[str, Any]) -> None:
    """A day with no rows at all: volume's outage, and no finding of the columns' own."""
    assert checks["volume"].status == "anomaly"
    # Before: distinct(status) and every dimension value alerted too, and the table's "why"
    # led with dimension(status=…): one outage told as a dozen findings.
    for label in ("distinct(status)", "dimension(status)"):
        check = checks[label]
        assert check.status == "ok" and check.day == YESTERDAY, check
        assert "no rows that day (volume judges it)" in check.reason
    assert not [label for label in checks if label.startswith("dimension(status=")]
    # No rows, no mean: said by volume, not judged as a level.
    assert "mean(amount)" not in checks and "median(amount)" not in checks


def test_a_day_whose_rows_are_all_gone_is_judged_not_skipped(tmp_path: Path) -> None:
    checks = _orders(tmp_path, broken=False, emptied=True)
    # Before that: these checks judged the day before, whose rows were all there, and said ok.
    _told_by_volume(checks)


def test_days_whose_rows_were_all_deleted_up_to_today_are_judged_not_skipped(
    tmp_path: Path,
) -> None:
    # Yesterday's and today's rows deleted after a pass counted them: volume judged
    # yesterday's 0, and these checks moved back to the day before the newest day with rows
    # (three days ago), all ok.
    checks = _orders(tmp_path, broken=False, gone_since=YESTERDAY)
    _told_by_volume(checks)


def test_profiles_and_dimensions_ride_in_the_one_batched_query() -> None:
    plan = plan_metrics(
        TableRef("app", "orders", "source"),
        {
            "id": "BIGINT",
            "customer_id": "BIGINT",
            "status": "VARCHAR",
            "amount": "DOUBLE",
            "ordered_at": "TIMESTAMP",
        },
        time_column=None,
        key=["id"],
        today=NOW,
        profile=["amount", "nope", "customer_id", "id"],
        dimensions=["status"],
    )
    assert plan.profile_columns == ("amount", "customer_id", "id")
    assert plan.dimensions == ("status",)
    # An id's mean and median say nothing about the data: distinct count only.
    assert plan.numeric_columns == {"amount"}
    assert "columns nope not in app.orders; not monitored" in plan.notes
    sql = metrics_query(plan, "duckdb")
    assert sql.count("SELECT") == 3  # totals, per day (with the profiles), per status value
    assert 'COUNT(DISTINCT "amount")' in sql and 'MEDIAN("amount")' in sql
    assert 'COUNT(DISTINCT "customer_id")' in sql and 'AVG("customer_id")' not in sql
    postgres = metrics_query(plan, "postgres")
    assert "PERCENTILE_CONT(0.5) WITHIN GROUP" in postgres
    no_time = plan_metrics(
        TableRef("app", "t", "source"),
        {"id": "BIGINT"},
        time_column=None,
        key=[],
        today=NOW,
        profile=["id"],
    )
    assert no_time.profile_columns == ()
    assert any("has no time column" in n for n in no_time.notes)


@pytest.mark.slow
def test_the_example_project_shows_column_and_dimension_monitors(tmp_path: Path) -> None:
    root = tmp_path / "shop"
    init_project(root, example="jaffle_shop")
    ctx = Context(root)
    result = ctx.run()
    assert result.ok, result.to_dict()
    health = ctx.monitoring().health()
    orders = next(t for t in health.tables if t.table == "shop_db.orders")
    labels = {c.label: c for c in orders.checks}
    for label in ("distinct(order_total)", "mean(order_total)", "median(order_total)"):
        assert labels[label].status in ("ok", "learning"), labels[label].reason
    assert "distinct(customer_id)" in labels
    assert "mean(customer_id)" not in labels and "median(customer_id)" not in labels
    assert labels["dimension(store_id)"].status in ("ok", "learning")
    assert "values of store_id" in labels["dimension(store_id)"].reason
    assert "@shop-data" in orders.owners

    cli = CliRunner().invoke(app, ["health", "show", "shop_db.orders", "--project", str(root)])
    assert "mean(order_total)" in cli.output and "dimension(store_id)" in cli.output

    out = tmp_path / "report.html"
    ctx.monitoring().report(None, out)
    page = out.read_text()
    assert "Columns and dimensions" in page
    data = page.split('id="report-data">', 1)[1].split("</script>", 1)[0]
    assert "mean(order_total)" in data and "dimension(store_id)" in data
    ctx.close()


# Alerted days and marked incidents stay out of column and dimension baselines, as out of
# volume's: a second outage is news, not the usual.


def _alerted(w: Warehouse) -> None:
    """A first pass alerts on the outage (the whole table empty four days ago)."""


def _marked(w: Warehouse) -> None:
    """… and the outage is then marked as a known incident."""
    MetricStore(w).add_incident(Incident("app.orders", OUTAGE, OUTAGE, "feed down"), NOW)


@pytest.mark.parametrize("then", [_alerted, _marked], ids=["alerted", "marked"])
def test_a_value_that_stops_arriving_after_a_whole_table_outage_is_an_anomaly(
    tmp_path: Path, then: Callable[[Warehouse], None]
) -> None:
    w = _warehouse(tmp_path)
    w.execute(f"DELETE FROM app.orders WHERE CAST(ordered_at AS DATE) = DATE '{OUTAGE}'")
    first = _pass(tmp_path, w)
    assert first["volume"].status == "anomaly" and first["volume"].day == OUTAGE
    then(w)
    w.execute(
        "DELETE FROM app.orders WHERE status = 'returned' "
        f"AND CAST(ordered_at AS DATE) = DATE '{YESTERDAY}'"
    )
    checks = _pass(tmp_path, w)
    # Before: the outage's empty day stayed in the value's baseline ("the value was empty
    # before"), and 'returned' going quiet was ok (exit 0 once the outage was marked).
    returned = checks.get("dimension(status=returned)")
    assert returned is not None, checks["dimension(status)"].reason
    assert returned.status == "anomaly" and returned.day == YESTERDAY and returned.value == 0
    assert "never been empty before" in returned.reason
    # The other values are judged without the outage too, and are fine.
    quiet = [k for k, c in checks.items() if k.startswith("dimension") and c.status == "anomaly"]
    assert quiet == ["dimension(status=returned)"]


def test_a_value_judged_without_its_own_flood_day(tmp_path: Path) -> None:
    # A flood of 'returned' three days ago was alerted on by the pass of that time; later,
    # 'returned' falls to one row a day. Kept in, the flood widened the value's band so far
    # that the fall read as usual.
    flood = NOW.date() - timedelta(days=3)
    w = _warehouse(tmp_path)
    # Every 'placed' order marked 'returned' that day: the table's volume is as usual.
    w.execute(
        "UPDATE app.orders SET status = 'returned' WHERE status = 'placed' "
        f"AND CAST(ordered_at AS DATE) = DATE '{flood}'"
    )
    later = f"CAST(ordered_at AS DATE) > DATE '{flood + timedelta(days=1)}'"
    w.execute(f"CREATE TABLE app.held AS SELECT * FROM app.orders WHERE {later}")
    w.execute(f"DELETE FROM app.orders WHERE {later}")
    then = _pass(tmp_path, w, NOW - timedelta(days=2))
    assert then["volume"].status == "ok"
    assert then["dimension(status=returned)"].status == "anomaly"
    assert then["dimension(status=returned)"].day == flood
    w.execute("INSERT INTO app.orders SELECT * FROM app.held")
    w.execute(
        "DELETE FROM app.orders WHERE status = 'returned' AND id % 10 != 0 "
        f"AND CAST(ordered_at AS DATE) = DATE '{YESTERDAY}'"
    )
    checks = _pass(tmp_path, w)
    returned = checks.get("dimension(status=returned)")
    assert returned is not None, checks["dimension(status)"].reason
    assert returned.status == "anomaly" and returned.day == YESTERDAY


def test_declared_columns_and_dimensions_show_as_learning_on_a_first_day(
    tmp_path: Path,
) -> None:
    w = duckdb_warehouse(tmp_path)
    w.execute("CREATE SCHEMA app")
    w.execute(
        "CREATE TABLE app.orders AS SELECT range AS id, 'placed' AS status, 40 AS amount, "
        f"TIMESTAMP '{NOW.date()} 01:00:00' AS ordered_at, CAST(NULL AS VARCHAR) AS note "
        "FROM range(5)"
    )
    checks = _pass(tmp_path, w)
    # Before: no line at all for them, as if the declaration had not been read.
    for label in ("distinct(amount)", "distinct(status)", "distinct(note)", "dimension(status)"):
        assert checks[label].status == "learning", checks[label]
        assert "fewer than two days" in checks[label].reason


def test_a_column_left_with_one_value_says_one_value_not_none(tmp_path: Path) -> None:
    """It read "1 distinct valuess is below … : the column has no values", in health and in
    the alerts sent."""
    w = _warehouse(tmp_path)
    w.execute("UPDATE app.orders SET amount = 40 + id % 50")  # 50 values a day
    w.execute(
        f"UPDATE app.orders SET amount = 50 WHERE CAST(ordered_at AS DATE) = DATE '{YESTERDAY}'"
    )
    status = _pass(tmp_path, w)["distinct(amount)"]
    assert status.status == "anomaly" and status.value == 1, status.reason
    assert "1 distinct value is below the expected band" in status.reason, status.reason
    assert "valuess" not in status.reason and "has no values" not in status.reason


def test_rows_dated_after_today_are_not_judged_and_yesterday_still_is(tmp_path: Path) -> None:
    """One row dated thirteen days ahead made each day up to it an "outage" (no rows yet),
    and every column check judged that last day ("the table has no rows that day"), never
    yesterday."""
    w = _warehouse(tmp_path)
    w.execute(
        "INSERT INTO app.orders SELECT id + 100000, customer_id, status, amount, "
        "ordered_at + INTERVAL 13 DAY, note FROM app.orders ORDER BY ordered_at DESC LIMIT 1"
    )
    checks = _pass(tmp_path, w)
    assert checks["volume"].status == "ok" and checks["volume"].day == YESTERDAY
    for label in ("distinct(amount)", "mean(amount)", "dimension(status)"):
        assert checks[label].status == "ok" and checks[label].day == YESTERDAY, label
    ahead = checks["volume(ordered_at)"]
    assert ahead.status == "warn", ahead.reason
    assert "1 row dated after today by ordered_at" in ahead.reason
    assert checks["_table"].status == "warn"
