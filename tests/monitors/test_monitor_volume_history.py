"""What a pass and the report judge volume with: every day the detector reads, and days whose
rows have since gone counted as the 0 they now are."""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from stackyard import Context
from stackyard.monitors.health import Check
from stackyard.monitors.lineage import Lineage
from stackyard.monitors.report import report_data
from tests.monitors.conftest import make_shop, today_utc


def _volume(ctx: Context, table: str) -> Check:
    report = ctx.monitoring().run_now()
    health = next(t for t in report.tables if t.table == table)
    return next(c for c in health.checks if c.check == "volume")


def _chart(ctx: Context, table: str) -> dict[str, dict[str, Any]]:
    data = report_data(
        project=ctx.config,
        warehouse=ctx.warehouse(),
        lineage=Lineage.load(ctx.transform_dir, "dev"),
        now=datetime.now(UTC),
    )
    chart = next(t for t in data["tables"] if t["table"] == table)
    return {p["day"]: p for p in chart["volume"]}


def test_rows_gone_from_the_newest_days_count_as_zero_and_alert(tmp_path: Path) -> None:
    root = make_shop(tmp_path / "shop", hook_url="http://127.0.0.1:9/unused", days=40)
    ctx = Context(root)
    assert ctx.run().ok
    today = today_utc()
    yesterday = today - timedelta(days=1)
    assert _chart(ctx, "app.orders")[yesterday.isoformat()]["value"] > 0

    # Yesterday's and today's orders vanish upstream; the table is replaced on every load.
    db = sqlite3.connect(root / "sources" / "app.sqlite")
    db.execute("DELETE FROM orders WHERE date(ordered_at) >= ?", (yesterday.isoformat(),))
    db.commit()
    db.close()
    assert ctx.run().ok

    check = _volume(ctx, "app.orders")
    assert (check.status, check.day, check.value) == ("anomaly", yesterday, 0)
    chart = _chart(ctx, "app.orders")
    assert [chart[d.isoformat()]["value"] for d in (yesterday, today)] == [0, 0]
    ctx.close()


def test_a_table_emptied_is_drawn_as_zero_and_stays_an_anomaly(tmp_path: Path) -> None:
    root = make_shop(tmp_path / "shop", hook_url="http://127.0.0.1:9/unused", days=40)
    ctx = Context(root)
    assert ctx.run().ok
    yesterday = today_utc() - timedelta(days=1)
    assert _chart(ctx, "app.orders")[yesterday.isoformat()]["value"] > 0
    ctx.sql("delete from app.orders")
    # Before: health said "no rows any more", and the report went on drawing the counts
    # the days had; once they were 0, the next pass said "no rows yet: nothing to judge".
    for _ in range(2):
        check = _volume(ctx, "app.orders")
        assert check.status == "anomaly" and "any more" in check.reason, check
        chart = _chart(ctx, "app.orders")
        assert chart[yesterday.isoformat()]["value"] == 0
        assert all(point["value"] == 0 for point in chart.values())
    ctx.close()


def test_the_report_draws_the_band_health_judged_with_half_a_year_of_history(
    tmp_path: Path,
) -> None:
    root = make_shop(tmp_path / "shop", hook_url="http://127.0.0.1:9/unused", days=20)
    ctx = Context(root)
    assert ctx.run().ok
    table = "staging.stg_dlt__customers"  # a model: rows after each build, kept by the store
    today = today_utc()
    rng = random.Random(3)
    # Half a year of daily passes: calm for the last two months, wild before them. How wild
    # a table can be is read from all of it, by health and by the report alike.
    seeded = [
        (
            "seed",
            datetime.now(UTC) - timedelta(days=back),
            table,
            "volume",
            None,
            today - timedelta(days=back),
            round(50 * (1 + rng.uniform(-0.02, 0.02) if back <= 60 else rng.uniform(0.3, 1.9))),
        )
        for back in range(1, 180)
    ]
    warehouse = ctx.warehouse()
    warehouse.execute_many(
        "INSERT INTO stackyard.monitor_metrics VALUES (?, ?, ?, ?, ?, ?, ?)", seeded
    )
    warehouse.close()

    check = _volume(ctx, table)
    assert check.day == today and check.lower is not None and check.upper is not None
    point = _chart(ctx, table)[today.isoformat()]
    assert (point["lower"], point["upper"]) == (check.lower, check.upper)
    ctx.close()


def test_a_marked_outage_is_known_downstream_and_the_latest_day_still_shown(
    tmp_path: Path,
) -> None:
    root = make_shop(tmp_path / "shop", hook_url="http://127.0.0.1:9/unused", days=40)
    # The staging view keeps the order time, so it is judged by day as its source is.
    (root / "transform" / "models" / "staging" / "dlt" / "stg_dlt__orders.sql").write_text(
        "select id as order_id, customer_id, amount, status, ordered_at "
        "from {{ source('dlt_app', 'orders') }}"
    )
    ctx = Context(root)
    assert ctx.run().ok
    lost = today_utc() - timedelta(days=2)
    db = sqlite3.connect(root / "sources" / "app.sqlite")
    db.execute("DELETE FROM orders WHERE date(ordered_at) = ?", (lost.isoformat(),))
    db.commit()
    db.close()
    assert ctx.run().ok
    source, view = "app.orders", "staging.stg_dlt__orders"
    assert {_volume(ctx, t).status for t in (source, view)} == {"anomaly"}

    ctx.monitoring().mark_incident(None, source, lost, lost, "export skipped a day")
    report = ctx.monitoring().run_now()
    for table in (source, view):
        health = next(t for t in report.tables if t.table == table)
        volume = [c for c in health.checks if c.check == "volume"]
        assert health.status == "ok", (table, health.checks)
        # The known day is said as known; the latest complete day is judged beside it.
        assert sorted((c.day, c.status) for c in volume) == [
            (lost, "ok"),
            (today_utc() - timedelta(days=1), "ok"),
        ], table
        known = next(c for c in volume if c.day == lost)
        assert known.reason.startswith("a known incident (marked): ")
    ctx.close()
