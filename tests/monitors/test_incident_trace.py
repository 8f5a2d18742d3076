"""`incident trace` lists what the monitors found at the first bad node: an outage upstream,
with no load failing, is the volume anomaly that opened the incident."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from typer.testing import CliRunner

from stackyard import Context
from stackyard.cli.main import app
from tests.monitors.conftest import Webhook, break_orders, make_shop, today_utc


def test_a_volume_outage_is_in_the_trace_of_the_incident_it_opened(
    tmp_path: Path, webhook: Webhook
) -> None:
    root = make_shop(tmp_path / "shop", hook_url=webhook.url)
    ctx = Context(root)
    assert ctx.run().ok
    today = today_utc()
    dropped = today - timedelta(days=1)
    break_orders(root, drop=dropped, duplicate=today - timedelta(days=6))
    ctx.run()
    cli = CliRunner()
    opened = cli.invoke(app, ["incident", "open", "--from", "monitor", "--json", "-p", str(root)])
    assert opened.exit_code == 0, opened.output
    found = json.loads(opened.output)
    incident = next(i for i in found["incidents"] if "orders" in i["root_cause"])

    traced = cli.invoke(app, ["incident", "trace", incident["id"], "--json", "-p", str(root)])
    assert traced.exit_code == 0, traced.output
    trace = json.loads(traced.output)
    monitors = [c["detail"] for c in trace["changes"] if c["kind"] == "monitor"]
    # Before: only the source's freshness was listed, though no load had failed.
    assert any(d.startswith("volume: ") and "0 rows" in d for d in monitors), trace["changes"]

    text = cli.invoke(app, ["incident", "trace", incident["id"], "-p", str(root)])
    assert "  monitor: volume: " in text.output, text.output
