"""Pre-images (the copies a rollback restores) are kept for ``backfills.preimage_days`` after a
backfill succeeded, shown in ``backfill status``, then dropped: after the next successful
backfill, or by ``backfill prune``. A failed backfill keeps its own."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.runbooks.backfill.conftest import backfill_json, sql, stackyard


def _preimage_tables(project: Path, backfill_id: str) -> set[str]:
    rows = sql(
        project,
        "select table_name as t from information_schema.tables "
        f"where table_schema = 'stackyard' and table_name like 'backfill_{backfill_id}%'",
    )
    return {r["t"] for r in rows}


def test_preimages_expire_are_pruned_and_failed_backfills_keep_theirs(project: Path) -> None:
    days = ["--start", "2024-02-20", "--end", "2024-02-23"]
    first = backfill_json(project, "app.events", *days)
    first_id = first["backfill_id"]
    status = backfill_json(project, "status", first_id)
    assert status["preimage_expires_at"] > status["finished_at"]
    assert status["preimage_dropped_at"] is None
    assert "pre-images kept until" in stackyard(project, "backfill", "status", check=0).stdout
    assert _preimage_tables(project, first_id) == {
        f"backfill_{first_id}__pre",
        f"backfill_{first_id}__pre__marks",
    }
    # Seven days by default: nothing has expired yet.
    assert backfill_json(project, "prune")["pruned"] == []
    assert len(_preimage_tables(project, first_id)) == 2

    # Confirming one backfill drops its pre-images at once; it can no longer be rolled back.
    pruned = backfill_json(project, "prune", first_id)["pruned"]
    assert pruned == [{"backfill_id": first_id, "target": "app.events", "rows_dropped": 36}]
    assert _preimage_tables(project, first_id) == set()
    assert backfill_json(project, "status", first_id)["preimage_dropped_at"]
    refused = stackyard(project, "backfill", "rollback", first_id, check=2)
    assert "can no longer be rolled back" in refused.stderr

    # A failed backfill keeps its pre-images, even when everything else expires at once.
    db = sqlite3.connect(project / "sources" / "app.sqlite")
    db.execute("ALTER TABLE events RENAME TO events_gone")
    db.commit()
    other = ["--start", "2024-03-01", "--end", "2024-03-03"]
    failed = backfill_json(project, "app.events", *other, check=1)
    db.execute("ALTER TABLE events_gone RENAME TO events")
    db.commit()
    db.close()
    with (project / "stackyard.yml").open("a") as f:
        f.write("backfills: {preimage_days: 0}\n")
    refused = stackyard(project, "backfill", "prune", failed["backfill_id"], check=2)
    assert "kept until it succeeds" in refused.stderr

    # The next successful backfill drops what expired (with 0 days, its own too).
    model = backfill_json(project, "daily_events", *days)
    assert backfill_json(project, "status", model["backfill_id"])["preimage_dropped_at"]
    assert _preimage_tables(project, model["backfill_id"]) == set()
    assert len(_preimage_tables(project, failed["backfill_id"])) == 2
    assert backfill_json(project, "status", failed["backfill_id"])["preimage_dropped_at"] is None


def test_status_names_each_backfills_state_and_offers_no_second_rollback(project: Path) -> None:
    days = ["--start", "2024-02-20", "--end", "2024-02-22"]
    backfill_id = backfill_json(project, "app.events", *days)["backfill_id"]
    status = stackyard(project, "backfill", "status", backfill_id, check=0).stdout
    assert f"{backfill_id}  app.events  [success]" in status
    assert f"stackyard backfill rollback {backfill_id}" in status

    stackyard(project, "backfill", "rollback", backfill_id, check=0)
    status = stackyard(project, "backfill", "status", backfill_id, check=0).stdout
    assert f"{backfill_id}  app.events  [rolled_back]" in status
    assert "rolled back; its pre-images are kept until" in status
    assert "stackyard backfill rollback" not in status
    stackyard(project, "backfill", "rollback", backfill_id, check=2)
