"""A row whose cursor moved upstream out of a backfill's range is looked up by key and loaded
at its new place; a rollback puts it back where it was, once."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.runbooks.backfill.conftest import (
    add_postgres_target,
    backfill_json,
    make_backfill_project,
    sql,
    stackyard,
)

ROW = "select id, amount, cast(updated_at as date) as d from app.events where id in (8003, 9004)"


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_rows_moved_out_of_the_range_are_reloaded_and_rolled_back(
    tmp_path: Path, engine: str, request: pytest.FixtureRequest
) -> None:
    root = make_backfill_project(tmp_path / "mini")
    if engine == "postgres":
        add_postgres_target(root, request.getfixturevalue("pg_database"))
    stackyard(root, "run", "--json", check=0)
    before = sorted(str(r) for r in sql(root, ROW))
    db = sqlite3.connect(root / "sources" / "app.sqlite")
    # 8003 moved to before the range, 9004 to after it (both outside 2024-02-27 … 03-03).
    db.execute("UPDATE events SET updated_at = '2024-02-21 10:00:00', amount = 7 WHERE id = 8003")
    db.execute("UPDATE events SET updated_at = '2024-03-05 09:00:00', amount = 9 WHERE id = 9004")
    db.execute("DELETE FROM events WHERE id = 9005")  # deleted upstream: listed, not found
    db.commit()
    db.close()
    result = backfill_json(
        root, "app.events", "--start", "2024-02-27", "--end", "2024-03-03", "--workers", "2"
    )
    assert result["validation"]["ok"] and result["validation"]["keys_removed"] == ["9005"]
    rows = {r["id"]: (r["amount"], str(r["d"])[:10]) for r in sql(root, ROW)}
    # Before: both were gone from the table (listed as removed) though still in the source.
    assert rows == {8003: (7, "2024-02-21"), 9004: (9, "2024-03-05")}
    dupes = sql(root, "select count(*) - count(distinct id) as d from app.events")
    assert dupes[0]["d"] == 0

    stackyard(root, "backfill", "rollback", result["backfill_id"], "--json", check=0)
    assert sorted(str(r) for r in sql(root, ROW)) == before
    assert sql(root, "select count(*) - count(distinct id) as d from app.events")[0]["d"] == 0
