"""What `stackyard run` prints at its end, from the run's result."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console

from stackyard.cli.render import run_summary
from stackyard.monitors.health import AlertOutcome, MonitorReport
from stackyard.results import RunResult

NOW = datetime(2026, 12, 3, 7, 0, tzinfo=UTC)


def printed(result: RunResult) -> str:
    console = Console(width=200, record=True, color_system=None)
    console.print(run_summary(result))
    return console.export_text()


def test_a_failed_alert_is_said_with_its_error_not_only_counted() -> None:
    failed = AlertOutcome(
        key="k",
        root_cause="shop_db.orders",
        channel="webhook:ops",
        status="failed",
        attempts=3,
        error="connection refused",
    )
    report = MonitorReport(alerts=(failed,), run_id="r1", measured_at=NOW)
    text = printed(RunResult("r1", "p", "dev", NOW, NOW, monitors=report))
    assert "alert failed: webhook:ops: connection refused (after 3 attempt(s))" in text
    sent = MonitorReport(alerts=(AlertOutcome("k", "t", "webhook:ops", "sent", 1),))
    assert "alert failed" not in printed(RunResult("r2", "p", "dev", NOW, NOW, monitors=sent))
