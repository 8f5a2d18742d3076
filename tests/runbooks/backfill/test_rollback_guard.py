"""Rolling back a backfill that a later backfill of the same partitions followed would undo
the later one silently: it is refused, dry run included, until the later one is rolled back.
So is one whose partitions were loaded again since (a reload), unless forced."""

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


def test_rollback_after_a_retry_puts_back_what_the_retry_overwrote(project: Path) -> None:
    days = ["--start", "2024-02-25", "--end", "2024-02-27"]
    window = (
        "select id, amount from app.events where updated_at >= '2024-02-25' "
        "and updated_at < '2024-02-27' order by id"
    )
    db = sqlite3.connect(project / "sources" / "app.sqlite")
    # amount gains cents upstream: the backfill refuses it and swaps nothing.
    db.execute(
        "CREATE TABLE events2 (id INTEGER PRIMARY KEY, kind TEXT, amount DECIMAL(10,2), "
        "updated_at DATETIME)"
    )
    db.execute("INSERT INTO events2 SELECT id, kind, amount + 0.25, updated_at FROM events")
    db.execute("DROP TABLE events")
    db.execute("ALTER TABLE events2 RENAME TO events")
    db.commit()
    db.close()
    failed = backfill_json(project, "app.events", *days, check=1)
    assert {p["status"] for p in failed["partitions"]} == {"failed"}
    stackyard(project, "reload", "app.events", "--yes", check=0)
    reloaded = sql(project, window)
    assert {float(r["amount"]) % 1 for r in reloaded} == {0.25}
    retried = backfill_json(project, "app.events", *days, "--retry-failed")
    assert retried["backfill_id"] == failed["backfill_id"] and retried["ok"]

    stackyard(project, "backfill", "rollback", failed["backfill_id"], check=0)
    # Before: the copies the failed attempt took before the reload were put back (whole
    # amounts, without the cents the reload brought in).
    assert sql(project, window) == reloaded


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_rollback_refuses_to_put_back_copies_older_than_a_reload(
    tmp_path: Path, engine: str, request: pytest.FixtureRequest
) -> None:
    project = make_backfill_project(tmp_path / "mini")
    if engine == "postgres":
        add_postgres_target(project, request.getfixturevalue("pg_database"))
    stackyard(project, "run", "--json", check=0)
    days = ["--start", "2024-02-25", "--end", "2024-02-27"]
    window = (
        "select id, amount from app.events where updated_at >= '2024-02-25' "
        "and updated_at < '2024-02-27' order by id"
    )
    before = sql(project, window)
    done = backfill_json(project, "app.events", *days)
    assert done["ok"]
    db = sqlite3.connect(project / "sources" / "app.sqlite")
    db.execute("UPDATE events SET amount = amount + 100")  # corrected upstream, cursor untouched
    db.commit()
    db.close()
    stackyard(project, "reload", "app.events", "--yes", check=0)
    reloaded = sql(project, window)
    assert [r["amount"] for r in reloaded] == [r["amount"] + 100 for r in before]

    for extra in ([], ["--dry-run"]):
        refused = stackyard(project, "backfill", "rollback", done["backfill_id"], *extra, check=2)
        # Before: the rollback put back the copies taken before the backfill, older than the
        # reload, and said it had restored them.
        assert "24 rows of app.events in 2 of its partitions" in refused.stderr, extra
        assert "loaded after it ran" in refused.stderr
        assert f"rollback {done['backfill_id']} --force" in refused.stderr
        assert sql(project, window) == reloaded
    assert backfill_json(project, "status", done["backfill_id"])["status"] == "success"

    # Asked for, the old copies go back.
    stackyard(project, "backfill", "rollback", done["backfill_id"], "--force", check=0)
    assert sql(project, window) == before


def test_rollback_after_a_later_run_outside_its_days_goes_ahead(project: Path) -> None:
    days = ["--start", "2024-02-25", "--end", "2024-02-26"]
    done = backfill_json(project, "app.events", *days)
    db = sqlite3.connect(project / "sources" / "app.sqlite")
    db.execute("INSERT INTO events VALUES (99001, 'a', 1, '2024-03-20 10:00:00')")
    db.commit()
    db.close()
    stackyard(project, "run", "--select", "app", check=0)
    stackyard(project, "backfill", "rollback", done["backfill_id"], check=0)
    assert sql(project, COUNT)[0]["n"] == 12
    assert sql(project, "select count(*) as n from app.events where id = 99001")[0]["n"] == 1
