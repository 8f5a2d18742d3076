"""A failed attempt an orchestrator runs again holds its alerts; the last attempt sends them.
Under Prefect each failed attempt of a retried task was a failed run that paged someone, while
`stackyard run` retries a load inside one run in silence."""

from __future__ import annotations

from pathlib import Path

from stackyard import Context
from stackyard.integrations.steps import run_step
from tests.ingest.test_attempts import project

POLICY = "    retries: {count: 0}\n"


def test_a_failed_attempt_that_will_be_retried_holds_its_alerts(tmp_path: Path) -> None:
    root = project(tmp_path / "p", "{fails: 0}", POLICY)
    with Context(root) as context:
        assert context.run().ok  # the table exists: its failed loads are alerted on
    config = root / "stackyard.yml"
    config.write_text(config.read_text().replace("{fails: 0}", "{fails: 99}"))
    with Context(root) as context:
        held = context.run(will_retry=True)
        last = context.run()
    assert held.exit_code == 1 and held.will_retry
    notes = held.monitors.notes
    assert any(
        "alert(s) held: this run failed, and the orchestrator runs it again" in n for n in notes
    )
    assert not any("not sent" in n for n in notes), notes
    # The last attempt's alerts go out (here: to no channel, which it says).
    assert any("not sent: no channel" in n for n in last.monitors.notes), last.monitors.notes


def test_a_run_that_passes_sends_its_alerts_even_with_retries_left(tmp_path: Path) -> None:
    root = project(tmp_path / "p", "{fails: 0}", POLICY)
    result = run_step(root, ["events"], 0.0, will_retry=True)
    assert result.ok and not any("held" in n for n in result.monitors.notes)
