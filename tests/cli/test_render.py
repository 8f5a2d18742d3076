"""What `stackyard run` prints at its end, from the run's result."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console

from stackyard.cli.render import RichConsole, run_summary
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


def test_status_in_80_columns_keeps_every_figure_whole() -> None:
    from datetime import timedelta

    from stackyard.cli.render import status_table
    from stackyard.metadata.history import RunSummary

    run = RunSummary(
        "20261205T100000-ab12cd34", "production_eu", "interrupted",
        NOW, NOW + timedelta(seconds=1234.5), 12345678, 42, 310, 2,
    )  # fmt: skip
    console = Console(width=80, record=True, color_system=None)
    console.print(status_table([run]))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    # Cut to "12,34…" before: a row count the warehouse does not hold.
    for figure in ("12,345,678", "1234.5s", "interrupted", "passed,", "2 failed"):
        assert figure in text, text
    assert "…" not in text, text
    assert "20261205T" in text, text


def test_a_failed_step_is_shown_whole_and_the_rest_on_one_line_in_80_columns() -> None:
    """Before: "dbt build could not run: Compilation Error" alone, dbt's reason cut off."""
    console = Console(width=80, record=True, color_system=None, force_terminal=True)
    steps = RichConsole(console)
    steps.step_started("load app")
    steps.step_finished("load app", "ok", "nothing new since run r1 " + "x" * 80 + "\nsecond")
    steps.step_started("dbt build")
    reason = (
        "Model 'model.shop.stores' (models/marts/stores.sql) depends on a node named "
        "'does_not_exist' which was not found"
    )
    failure = f"dbt build could not run: Compilation Error\n  {reason}\n  → see dbt.log"
    steps.step_finished("dbt build", "failed", failure)
    console.print(steps)
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80, text
    said = " ".join(text.split())
    assert "✘ dbt build" in said and reason in said and "→ see dbt.log" in said, text
    assert "nothing new since run r1 xxx" in said and "…" in said and "second" not in said, text


def test_steps_written_to_a_file_or_a_pipe_are_never_cut() -> None:
    """A scheduler's log has no terminal to fit: Rich's 80 columns cut a step's detail to
    "13 models built; 71 tests passed (of 84 nodes, 83 run…"."""
    console = Console(width=80, record=True, color_system=None)
    assert not console.is_terminal
    steps = RichConsole(console)
    detail = "13 models built; 71 tests passed (of 84 nodes, 83 run as one selection, 1 skipped)"
    steps.step_finished("dbt build", "ok", detail)
    console.print(steps)
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80, text
    assert detail in " ".join(text.split()) and "…" not in text, text


def test_status_in_80_columns_never_splits_a_run_id() -> None:
    """Before: '20261206T041546' on one line and '-810b4f' on the next."""
    from datetime import timedelta

    from stackyard.cli.render import status_table
    from stackyard.metadata.history import RunSummary

    runs = [
        RunSummary(
            "20261205T100000-ab12cd34", "production_eu", "interrupted",
            NOW, NOW + timedelta(seconds=1234.5), 12345678, 42, 310, 2,
        ),
        RunSummary(
            "20261206T041546-810b4f", "dev", "success",
            NOW, NOW + timedelta(seconds=14.3), 93037, 13, 71, 0,
        ),
    ]  # fmt: skip
    console = Console(width=80, record=True, color_system=None)
    console.print(status_table(runs))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80, text
    for run in runs:
        assert any(run.run_id in line for line in text.splitlines()), text
    for figure in ("12,345,678", "1234.5s", "interrupted", "93,037", "14.3s", "success"):
        assert figure in text, text
    assert "…" not in text, text


def test_sql_in_80_columns_shows_a_wide_result_row_by_row_with_every_value_whole() -> None:
    """Before: twelve columns squeezed into 80, each value cut to a letter and '…'."""
    from stackyard.cli.render import query_table
    from stackyard.warehouse.base import QueryResult

    columns = tuple(f"lifetime_value_{n}" for n in range(12))
    rows = tuple(tuple(f"{r}-2026-12-0{n % 9 + 1} 12:44:11" for n in range(12)) for r in (1, 2))
    console = Console(width=80, record=True, color_system=None)
    console.print(query_table(QueryResult(columns, rows)))
    text = console.export_text()
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80, text
    assert "…" not in text, text
    for row in rows:
        for column, value in zip(columns, row, strict=True):
            assert any(column in line and value in line for line in lines), (column, value, text)
    assert "row 1" in text and "row 2" in text, text

    narrow = QueryResult(("customer_id", "customer_name"), ((1, "Ines Davis"),))
    console = Console(width=80, record=True, color_system=None)
    console.print(query_table(narrow))
    text = console.export_text()
    (header,) = [line for line in text.splitlines() if "customer_id" in line]
    assert "customer_name" in header and "row 1" not in text, text  # a table while it fits
