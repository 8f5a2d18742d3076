"""A null rate or duplicates found anomalous stay anomalous on later passes until fixed: the
passes that found them stay out of the medians they are judged against."""

from __future__ import annotations

from pathlib import Path

from stackyard import Context
from tests.runner.conftest import make_project


def _check(ctx: Context, table: str, label: str) -> str:
    report = ctx.monitoring().run_now()
    health = next(t for t in report.tables if t.table == table)
    return next(c.status for c in health.checks if c.label == label)


def test_a_null_rate_or_duplicates_problem_stays_anomalous_until_fixed(tmp_path: Path) -> None:
    ctx = Context(make_project(tmp_path / "p"))
    assert ctx.run().ok
    assert [_check(ctx, "app.orders", "null_rate(status)") for _ in range(2)] == ["ok"] * 2
    ctx.sql("update app.orders set status = null where id % 4 = 0")
    # It read as usual from the fifth pass on: the anomalous passes made the median.
    statuses = [_check(ctx, "app.orders", "null_rate(status)") for _ in range(6)]
    assert statuses == ["anomaly"] * 6
    ctx.sql("update app.orders set status = 'placed' where status is null")
    assert _check(ctx, "app.orders", "null_rate(status)") == "ok"

    ctx.sql("insert into app.orders select * from app.orders where id <= 5")
    statuses = [_check(ctx, "app.orders", "duplicates") for _ in range(6)]
    assert statuses == ["anomaly"] * 6
