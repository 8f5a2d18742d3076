"""Rolling back a backfill that a later backfill of the same partitions followed would undo
the later one silently: it is refused, dry run included, until the later one is rolled back."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.runbooks.backfill.conftest import backfill_json, sql, stackyard

DAY = ["--start", "2024-02-25", "--end", "2024-02-26"]
COUNT = "select count(*) as n from app.events where updated_at >= '2024-02-25' and updated_at < '2024-02-26'"


def test_rollback_refuses_while_a_later_backfill_covers_the_same_days(project: Path) -> None:
    first = backfill_json(project, "app.events", *DAY)["backfill_id"]
    db = sqlite3.connect(project / "sources" / "app.sqlite")
    db.execute("DELETE FROM events WHERE id IN (5000, 5001)")  # two rows of 2024-02-25
    db.commit()
    db.close()
    second = backfill_json(project, "app.events", *DAY)["backfill_id"]
    assert sql(project, COUNT)[0]["n"] == 10

    for extra in ([], ["--dry-run"]):
        refused = stackyard(project, "backfill", "rollback", first, *extra, check=2)
        assert "later backfill(s) of app.events" in refused.stderr, extra
        assert second in refused.stderr
        assert f"rollback {second}`, then `stackyard backfill rollback {first}`" in refused.stderr
    assert sql(project, COUNT)[0]["n"] == 10  # nothing changed
    assert backfill_json(project, "status", first)["status"] == "success"
    assert backfill_json(project, "status", second)["status"] == "success"

    # Newest first: the later one, then the earlier one, puts the day back as it was.
    plan = backfill_json(project, "rollback", second, "--dry-run")
    assert plan["dry_run"] and plan["rows_restored"] == 12
    assert sql(project, COUNT)[0]["n"] == 10
    stackyard(project, "backfill", "rollback", second, check=0)
    assert sql(project, COUNT)[0]["n"] == 12
    stackyard(project, "backfill", "rollback", first, check=0)
    assert sql(project, COUNT)[0]["n"] == 12
