"""A backfill whose validation fails: said so, the partitions named, and a way forward."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from stackyard.console import CaptureConsole
from stackyard.context import Context
from stackyard.runbooks.backfill.job import BackfillOptions
from stackyard.runbooks.backfill.source_table import SourceTableTarget
from tests.runbooks.backfill.conftest import backfill_json, sql, stackyard

RANGE = ("--start", "2024-02-20", "--end", "2024-02-23")


def test_a_partition_that_fails_validation_is_named_and_retried(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = SourceTableTarget.replace_run
    changed: list[bool] = []

    def load_then_delete_upstream(self: SourceTableTarget, windows: Any, *args: Any) -> Any:
        outcomes = loaded(self, windows, *args)
        if not changed and any(w.start.day == 21 for w in windows):
            # Upstream changes after 2024-02-21 was loaded and before the validation.
            db = sqlite3.connect(project / "sources" / "app.sqlite")
            db.execute("DELETE FROM events WHERE id IN (1000, 1001)")
            db.commit()
            db.close()
            changed.append(True)
        return outcomes

    monkeypatch.setattr(SourceTableTarget, "replace_run", load_then_delete_upstream)
    console = CaptureConsole()
    with Context(project, console=console) as ctx:
        result = ctx.backfill().run(BackfillOptions("app.events", *RANGE[1::2], run_size=1))
    assert changed and result.exit_code == 1
    assert [p.status for p in result.record.partitions] == ["success"] * 3
    [mismatch] = (result.record.validation or {})["count_mismatches"]
    assert mismatch["start"].startswith("2024-02-21") and (
        mismatch["expected"],
        mismatch["actual"],
    ) == (10, 12)
    # Before: "✔ backfill app.events … 3 partitions run" over the failed validation.
    [finished] = [e for e in console.events if e[:2] == ("finished", "backfill app.events")]
    assert finished[2] == "failed" and "validation failed" in finished[3], finished
    monkeypatch.undo()

    # The text names the day (only --json had it) and says how to go on.
    status = stackyard(project, "backfill", "status", result.record.backfill_id, check=0).stdout
    assert "2024-02-21" in status and "12 rows, expected 10" in status, status
    assert "--retry-failed" in status, status
    plan = backfill_json(project, "app.events", *RANGE, "--retry-failed", "--dry-run")
    assert [p["status"] for p in plan["partitions"]] == ["skipped", "pending", "skipped"]

    # Before: --retry-failed ran nothing and the backfill stayed failed.
    retried = backfill_json(project, "app.events", *RANGE, "--retry-failed")
    assert retried["backfill_id"] == result.record.backfill_id and retried["ok"]
    assert [p["executed"] for p in retried["partitions"]] == [False, True, False]
    day = "select count(*) as n from app.events where cast(updated_at as date) = '2024-02-21'"
    assert sql(project, day) == [{"n": 10}]
