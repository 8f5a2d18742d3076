"""Issue 5's "done when": break a source on purpose and watch every part of monitoring say so.

A real project runs through ``Context.run()`` (dlt, dbt, DuckDB); the orders source is then
broken — a day's rows deleted, ``amount`` renamed, a day duplicated — and the next run's
monitors must find the anomalies, send exactly one grouped alert to a local webhook, colour
the source red in the report, and make ``stackyard health`` say what is wrong.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

from typer.testing import CliRunner

from stackyard import Context
from stackyard.cli.main import app
from tests.monitors.conftest import Webhook, break_orders, make_shop, seed_volume_history, today_utc


def _monitor(ctx: Context, run: object) -> object:
    """The monitor pass `stackyard run` ended with (it runs monitors as its last step)."""
    report = run.monitors  # type: ignore[attr-defined]
    assert report is not None
    return report


def test_breaking_a_source_is_caught_grouped_and_shown(tmp_path: Path, webhook: Webhook) -> None:
    root = make_shop(tmp_path / "shop", hook_url=webhook.url)
    ctx = Context(root)
    first = ctx.run()
    assert first.ok, first.to_dict()
    before = _monitor(ctx, first)
    # The orders' own ordered_at gives 35 days of history; the tables counted per load or
    # per build get a month of history seeded, as if monitors had run daily.
    assert before.status != "anomaly", [t.why for t in before.tables]  # type: ignore[attr-defined]
    assert webhook.received == []
    seed_volume_history(ctx.warehouse(), skip=("app.orders",))

    today = today_utc()
    dropped, doubled = today - timedelta(days=3), today - timedelta(days=5)
    break_orders(root, drop=dropped, duplicate=doubled)
    broken = ctx.run()
    exit_code = broken.exit_code
    report = _monitor(ctx, broken)

    # the run's own result is what dbt said (the duplicate ids fail a unique test), untouched
    assert broken.exit_code == exit_code == 1
    tables = {t.table: t for t in report.tables}  # type: ignore[attr-defined]
    # Listed as health lists them, most severe first (app.customers, ok, led by name).
    severity = ["missing", "anomaly", "error", "warn", "learning", "ok"]
    ranks = [severity.index(t.status) for t in report.tables]  # type: ignore[attr-defined]
    assert ranks == sorted(ranks) and report.tables[0].status == "anomaly"  # type: ignore[attr-defined]
    orders = tables["app.orders"]
    assert orders.status == "anomaly"
    found = {(c.check, c.column, c.day): c for c in orders.checks if c.status == "anomaly"}
    drop = found[("volume", None, dropped)]
    assert drop.value == 0 and "below the expected band" in drop.reason and "outage" in drop.reason
    spike = found[("volume", None, doubled)]
    assert spike.value > spike.upper and "above the expected band" in spike.reason
    assert "every value is NULL" in found[("null_rate", "channel", None)].reason
    assert found[("duplicates", None, None)].value == spike.value / 2
    added = [c for c in orders.checks if c.check == "schema"]
    assert [(c.column, c.status) for c in added] == [("channel_v2", "warn")]
    # downstream of it, the same story: the duplicated ids fail stg_dlt__orders' unique test
    staging = tables["staging.stg_dlt__orders"]
    assert staging.status == "anomaly"
    assert {c.check for c in staging.problems} >= {"duplicates", "tests"}
    assert tables["files.products"].status == "ok"

    # one grouped alert, for the root cause, naming the downstream tables
    assert report.alerts_sent == 1  # type: ignore[attr-defined]
    assert len(webhook.received) == 1
    message = webhook.received[0]
    assert message["text"].startswith("stackyard: app.orders anomaly")
    assert "staging.stg_dlt__orders (model, downstream)" in message["text"]
    assert "null_rate(channel)" in message["text"]
    assert "@app-team" in message["text"] and "analytics@example.com" in message["text"]
    assert message["blocks"][0]["type"] == "header"

    # health says what is wrong, on the orders' line, and exits 1
    health = ctx.monitoring().health()
    line = next(t for t in health.tables if t.table == "app.orders")
    assert line.status == "anomaly"
    assert f"rows with ordered_at on {dropped}: 0 rows is below the expected band" in line.why
    assert "null_rate(channel): every value is NULL" in line.why
    result = CliRunner().invoke(app, ["health", "--project", str(root), "--json"])
    assert result.exit_code == 1, result.output
    data = json.loads(result.output)
    row = next(t for t in data["tables"] if t["table"] == "app.orders")
    assert row["status"] == "anomaly" and row["lower"] is not None
    # whole rows, as the text says the band (107.11 read as out of a band said as 107–220)
    assert row["lower"] == int(row["lower"]) and row["upper"] == int(row["upper"])
    assert f"{int(row['lower']):,}–{int(row['upper']):,}" in row["why"]

    # the report colours the source red in the lineage graph
    out = ctx.monitoring().report(out=tmp_path / "report.html")
    text = out.read_text()
    payload = json.loads(
        re.search(r'<script type="application/json" id="report-data">(.*?)</script>', text, re.S)
        .group(1)  # type: ignore[union-attr]
        .replace("<\\/", "</")
    )
    nodes = {n["relation"]: n for n in payload["lineage"]["nodes"]}
    assert nodes["app.orders"]["status"] == "anomaly"
    assert nodes["app.orders"]["colour"] == "#d64545"
    assert nodes["files.products"]["colour"] == "#2e9e5b"

    # the next run alerts on the same findings again? no: suppressed within the interval
    again = _monitor(ctx, ctx.run())
    assert [a.status for a in again.alerts] == ["suppressed"]  # type: ignore[attr-defined]
    assert len(webhook.received) == 1
    ctx.close()


def test_renaming_a_column_a_model_reads_is_one_alert_for_the_source(
    tmp_path: Path, webhook: Webhook
) -> None:
    root = make_shop(tmp_path / "shop", hook_url=webhook.url)
    ctx = Context(root)
    _monitor(ctx, ctx.run())
    today = today_utc()
    # stg_dlt__orders selects amount: the loader refuses the source rather than load NULLs
    break_orders(
        root, drop=today - timedelta(days=3), duplicate=today - timedelta(days=5), rename="amount"
    )
    broken = ctx.run()
    assert broken.exit_code == 1
    report = _monitor(ctx, broken)
    tables = {t.table: t for t in report.tables}  # type: ignore[attr-defined]
    for name in ("app.orders", "app.customers"):
        load = next(c for c in tables[name].checks if c.check == "load")
        assert load.status == "anomaly"
        assert "the load of source 'app' failed" in load.reason and "amount" in load.reason
    assert len(webhook.received) == 1
    text = webhook.received[0]["text"]
    assert text.startswith("stackyard: source app anomaly")
    assert (
        "app.customers (source, root cause)" in text and "app.orders (source, root cause)" in text
    )
    line = next(t for t in ctx.monitoring().health().tables if t.table == "app.orders")
    assert "load: the load of source 'app' failed" in line.why
    ctx.close()
