"""A failed attempt an orchestrator runs again holds its alerts; the last attempt sends them.
Under Prefect each failed attempt of a retried task was a failed run that paged someone, while
`stackyard run` retries a load inside one run in silence."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackyard import Context
from stackyard.integrations.steps import StepFailedError, run_step, worth_retrying
from tests.ingest.test_attempts import attempts, project

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
    assert any("held: this run failed, and the orchestrator runs it again" in n for n in notes)
    assert not any("not sent" in n for n in notes), notes
    # The last attempt's alerts go out (here: to no channel, which it says).
    assert any("not sent: no channel" in n for n in last.monitors.notes), last.monitors.notes


def test_a_run_that_passes_sends_its_alerts_even_with_retries_left(tmp_path: Path) -> None:
    root = project(tmp_path / "p", "{fails: 0}", POLICY)
    result = run_step(root, ["events"], 0.0, will_retry=True)
    assert result.ok and not any("held" in n for n in result.monitors.notes)


def test_a_failure_another_attempt_would_repeat_is_not_retried_and_alerts_at_once(
    tmp_path: Path,
) -> None:
    root = project(tmp_path / "p", "{fails: 0}", POLICY)
    with Context(root) as context:
        assert context.run().ok
    config = root / "stackyard.yml"
    # Bad input (a ValueError in the source): the orchestrator's retries would fail the same way.
    config.write_text(config.read_text().replace("{fails: 0}", "{fails: 99, error: ValueError}"))
    with Context(root) as context:
        repeated = context.run(will_retry=True)
    assert repeated.exit_code == 1 and not repeated.worth_retrying
    notes = repeated.monitors.notes
    assert not any("held" in n for n in notes), notes
    assert any("not sent: no channel" in n for n in notes), notes
    with pytest.raises(StepFailedError) as failed:
        run_step(root, ["events"], 0.0, will_retry=True)
    assert not failed.value.transient and not worth_retrying(failed.value)
    assert "not retried: another attempt would fail the same way" in str(failed.value)
    # A network blip is worth another attempt: its alerts are held for the last one.
    config.write_text(config.read_text().replace("ValueError", "ConnectionResetError"))
    with Context(root) as context:
        blip = context.run(will_retry=True)
    assert blip.worth_retrying and any("held" in n for n in blip.monitors.notes)
    with pytest.raises(StepFailedError) as failed:
        run_step(root, ["events"], 0.0, will_retry=True)
    assert failed.value.transient and worth_retrying(failed.value)


def test_a_refused_connection_under_an_orchestrator_gets_its_quick_retries_only(
    tmp_path: Path,
) -> None:
    # The orchestrator's retries (minutes apart, here 10 s, 20 s, 40 s) would only say the
    # same thing later; the run tries it twice more within seconds, as `stackyard run` does.
    policy = "    retries: {count: 3, backoff_factor: 10}\n"
    root = project(tmp_path / "p", "{fails: 99, error: ConnectionRefusedError}", policy)
    with pytest.raises(StepFailedError) as failed:
        run_step(root, ["events"], 0.0, will_retry=True)
    assert attempts(root) == 3 and not failed.value.transient, str(failed.value)
