"""Backfills on DuckDB, through the CLI as a user runs them."""

from __future__ import annotations

import json
import re
import sqlite3
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.runbooks.backfill.conftest import (
    backfill_json,
    make_backfill_project,
    sql,
    stackyard,
)


def ahead(days: int) -> str:
    """The UTC date ``days`` from today, as ``--start``/``--end`` take it."""
    return (datetime.now(UTC) + timedelta(days=days)).date().isoformat()


def test_source_table_backfill_repairs_changed_and_emptied_days(project: Path) -> None:
    db = sqlite3.connect(project / "sources" / "app.sqlite")
    # Upstream fixed amounts without touching the cursor, and deleted a whole day: a normal
    # incremental run sees neither.
    db.execute("UPDATE events SET amount = amount + 1000 WHERE updated_at LIKE '2024-02-29%'")
    db.execute("DELETE FROM events WHERE updated_at LIKE '2024-03-01%'")
    # A row whose cursor moved back before the range (from 2024-02-28): it was taken out with
    # its window and not re-loaded, and no incremental run reads it back (its cursor is
    # behind the table's state). It is looked up by key and loaded at its new place.
    db.execute("UPDATE events SET updated_at = '2024-02-21 10:00:00', amount = 7 WHERE id = 8003")
    db.commit()
    db.close()
    result = backfill_json(
        project, "app.events", "--start", "2024-02-27", "--end", "2024-03-03", "--workers", "2"
    )
    # Rows deleted upstream are listed: gone from the table, as from the source.
    assert sorted(result["validation"]["keys_removed"]) == sorted(str(10000 + i) for i in range(12))
    moved = (
        "select id, amount, strftime(updated_at, '%Y-%m-%d') as d from app.events where id = 8003"
    )
    assert sql(project, moved) == [{"id": 8003, "amount": 7, "d": "2024-02-21"}]
    assert [p["status"] for p in result["partitions"]] == ["success"] * 5
    assert [p["start"][:10] for p in result["partitions"]] == [
        "2024-02-27",
        "2024-02-28",
        "2024-02-29",
        "2024-03-01",
        "2024-03-02",
    ]
    assert result["validation"]["ok"] and result["validation"]["duplicate_keys"] == 0
    days = {
        r["d"]: (r["n"], r["amount"])
        for r in sql(
            project,
            "select strftime(updated_at, '%Y-%m-%d') as d, count(*) as n, sum(amount) as amount "
            "from app.events group by 1",
        )
    }
    assert days["2024-02-29"] == (12, 12 * 1000 + sum(range(10, 22)))
    assert "2024-03-01" not in days  # the emptied day is empty, not stale
    assert days["2024-02-28"] == (11, sum(range(10, 22)) - 13)
    assert days["2024-02-21"] == (13, sum(range(10, 22)) + 7)
    assert sql(project, "select count(*) - count(distinct id) as d from app.events")[0]["d"] == 0
    # No staging schema is left behind.
    schemas = {
        r["s"] for r in sql(project, "select schema_name as s from information_schema.schemata")
    }
    assert not any("backfill" in s for s in schemas)


def test_model_backfill_resume_status_and_rollback(project: Path) -> None:
    before = sql(project, "select count(*) as n from marts.daily_events")[0]["n"]
    first = backfill_json(project, "daily_events", "--start", "2024-02-20", "--end", "2024-03-01")
    assert first["ok"] and len(first["partitions"]) == 10
    assert first["validation"]["rows_actual"] == first["validation"]["rows_expected"] == 20
    after = sql(project, "select count(*) as n from marts.daily_events")[0]["n"]
    assert after == before + 20
    status = backfill_json(project, "status", first["backfill_id"])
    assert status["progress"]["success"] == 10 and status["status"] == "success"
    text = stackyard(project, "backfill", "status", check=0).stdout
    assert first["backfill_id"] in text and "10/10" in text
    # A run that built the model since stands in the way (dry run included): its rows are
    # newer than the copies. Before, the rollback put the copies back over the rebuilt rows
    # and said it had restored them.
    rebuilt = stackyard(
        project, "run", "--select", "daily_events", "--full-refresh", "--json", check=0
    )
    run = json.loads(rebuilt.stdout)
    # The full refresh starts at the model's `begin`: the backfilled days are gone. A row of
    # one of them stands for what a rebuild would have written there; a rollback deletes it.
    sql(project, "insert into marts.daily_events values (timestamp '2024-02-25', 'a', 1, 1)")
    for extra in ([], ["--dry-run"]):
        refused = stackyard(project, "backfill", "rollback", first["backfill_id"], *extra, check=2)
        assert "daily_events was built again after it ran" in refused.stderr, extra
        # That run alone: the one that built the model before the backfill does not count.
        assert f"by run(s) {run['run_id']} (ended " in refused.stderr
        assert re.search(r"ended [^)]*\)\. A build", refused.stderr), refused.stderr
        assert f"rollback {first['backfill_id']} --force" in refused.stderr
    assert sql(project, "select count(*) as n from marts.daily_events")[0]["n"] == before + 1
    rolled = stackyard(
        project, "backfill", "rollback", first["backfill_id"], "--json", "--force", check=0
    )
    assert '"partitions": 10' in rolled.stdout
    assert sql(project, "select count(*) as n from marts.daily_events")[0]["n"] == before
    assert backfill_json(project, "status", first["backfill_id"])["status"] == "rolled_back"


def test_dry_run_plans_without_writing(project: Path) -> None:
    plan = backfill_json(
        project, "app.events", "--start", "2024-02-20", "--end", "2024-02-23", "--dry-run"
    )
    assert plan["dry_run"] and plan["estimate"]["rows"] == 36
    assert plan["estimate"]["rows_method"] == "count"  # counted in the source database
    # A model's rows come from the engine's plan of its SQL over each window (an estimate).
    model = backfill_json(
        project, "daily_events", "--start", "2024-02-20", "--end", "2024-02-23", "--dry-run"
    )
    assert model["estimate"]["rows_method"] == "explain"
    assert all(isinstance(n, int) for n in model["estimate"]["rows_per_partition"])
    assert [p["status"] for p in plan["partitions"]] == ["pending"] * 3
    assert backfill_json(project, "status") == []
    # A budget is enforced on a count of the model's SQL, not on the planner's guess: one
    # month of a daily aggregate is one row a day, where the guess was about a day's worth.
    span = ["--start", "2024-02-01", "--end", "2024-03-01", "--grain", "month"]
    counted = backfill_json(project, "daily_events", *span, "--budget-rows", "0", "--dry-run")
    assert counted["estimate"]["rows_method"] == "count", counted["estimate"]
    rows = counted["estimate"]["rows"]
    assert rows > 1, counted["estimate"]
    # The dry run says the same command would be refused (it said nothing of the budget).
    assert counted["estimate"]["refused"] == (
        f"the backfill would write about {rows:,} rows, over the budget of 0"
    )
    said = stackyard(project, "backfill", "daily_events", *span, "--budget-rows", "0", "--dry-run")
    assert "would be refused: the backfill would write about" in said.stdout, said.stdout
    within = backfill_json(project, "daily_events", *span, "--budget-rows", str(rows), "--dry-run")
    assert within["estimate"]["refused"] is None
    refused = stackyard(project, "backfill", "daily_events", *span, "--budget-rows", str(rows - 1))
    assert refused.returncode == 2 and "over the budget" in refused.stderr, refused.stderr
    assert backfill_json(project, "status") == []
    done = backfill_json(project, "daily_events", *span, "--budget-rows", str(rows))
    assert sum(p["rows_written"] for p in done["partitions"]) == rows, done["partitions"]
    over = stackyard(
        project,
        "backfill",
        "app.events",
        "--start",
        "2024-02-20",
        "--end",
        "2024-02-23",
        "--budget-rows",
        "10",
    )
    assert over.returncode == 2 and "--yes" in over.stderr


def test_retry_failed_and_force(project: Path) -> None:
    db = sqlite3.connect(project / "sources" / "app.sqlite")
    db.execute("ALTER TABLE events RENAME TO events_gone")
    db.commit()
    failed = backfill_json(
        project, "app.events", "--start", "2024-02-20", "--end", "2024-02-22", check=1
    )
    assert {p["status"] for p in failed["partitions"]} == {"failed"}
    assert "events" in failed["partitions"][0]["error"]
    db.execute("ALTER TABLE events_gone RENAME TO events")
    db.commit()
    db.close()
    # Same command: the failed partitions stay failed until asked to retry.
    again = backfill_json(
        project, "app.events", "--start", "2024-02-20", "--end", "2024-02-22", check=1
    )
    assert again["backfill_id"] == failed["backfill_id"] and again["resumed"]
    retried = backfill_json(
        project, "app.events", "--start", "2024-02-20", "--end", "2024-02-22", "--retry-failed"
    )
    assert retried["backfill_id"] == failed["backfill_id"]
    assert [p["attempt"] for p in retried["partitions"]] == [2, 2]
    forced = backfill_json(
        project, "app.events", "--start", "2024-02-20", "--end", "2024-02-22", "--force"
    )
    assert forced["backfill_id"] != failed["backfill_id"]


def test_usage_errors_exit_2(project: Path) -> None:
    cases = [
        (["nope_model", "--start", "2024-01-01", "--end", "2024-01-02"], "neither a dbt model"),
        (["stg_events", "--start", "2024-01-01", "--end", "2024-01-02"], "not an incremental"),
        (["app.evnts", "--start", "2024-01-01", "--end", "2024-01-02"], "did you mean 'events'"),
        (["app.events", "--start", "2024-01-02", "--end", "2024-01-01"], "must be after"),
        (["app.events", "--start", "2024-01-01"], "--start and --end are required"),
        (
            ["app.events", "--start", "2024-01-01", "--end", "2024-01-02", "--tz", "Mars/X"],
            "unknown time zone",
        ),
        (["rollback"], "needs a backfill id"),
        # Before: a range wholly in the future "succeeded" with 0 rows and no word (exit 0).
        (["daily_events", "--start", ahead(10), "--end", ahead(20)], "after today"),
        (["app.events", "--start", ahead(1), "--end", ahead(2), "--dry-run"], "has data yet"),
        # Partitions cut on Paris days are not whole UTC batches: only dbt can run them.
        (
            [
                "daily_events",
                "--start",
                "2024-02-20",
                "--end",
                "2024-02-22",
                "--tz",
                "Europe/Paris",
                "--engine",
                "sql",
            ],
            "not whole day batches",
        ),
        (["app.events", "--start", "2024-02-20", "--end", "2024-02-22", "--engine", "sql"], "dlt"),
        (["daily_events", "--start", "2024-02-20", "--end", "2024-02-22", "--engine", "x"], "auto"),
        # A negative tolerance failed every validation after the rows were replaced (exit 1).
        (
            ["app.events", "--start", "2024-02-20", "--end", "2024-02-22", "--tolerance", "-1"],
            "--tolerance must be 0 or more",
        ),
        (
            ["daily_events", "--start", "2024-02-20", "--end", "2024-02-22", "--budget-rows", "-5"],
            "--budget-rows must be 0 or more",
        ),
    ]
    for args, message in cases:
        proc = stackyard(project, "backfill", *args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert message in proc.stderr, (args, proc.stderr)


def test_a_range_reaching_past_now_warns_and_one_wholly_after_it_records_nothing(
    project: Path,
) -> None:
    # Before: both "succeeded" with 0 rows for the days to come and no word of them.
    refused = stackyard(project, "backfill", "daily_events", "--start", ahead(3), "--end", ahead(5))
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "after today" in refused.stderr and "--end " + ahead(1) in refused.stderr
    assert backfill_json(project, "status") == []
    proc = stackyard(project, "backfill", "daily_events", "--start", ahead(-1), "--end", ahead(3))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "warning: 2 of 4 partitions (from " + ahead(1) in proc.stdout
    assert "no data yet" in proc.stdout
    ran = backfill_json(project, "daily_events", "--start", ahead(-1), "--end", ahead(3), "--force")
    assert ran["warnings"] and "2 of 4 partitions" in ran["warnings"][0]


def test_a_source_table_under_another_name_is_named_as_such_not_matched_to_a_model(
    tmp_path: Path,
) -> None:
    # Before: "'apq.events' is neither a dbt model nor SOURCE.TABLE (did you mean
    # 'daily_events'?)", a model, for what was plainly a source's table.
    project = make_backfill_project(tmp_path / "mini")
    (project / "sources" / "files").mkdir()
    (project / "sources" / "files" / "kinds.csv").write_text("id,kind\n1,a\n")
    with (project / "stackyard.yml").open("a") as f:
        f.write("  files:\n    kind: filesystem\n    url: sources/files\n")
        f.write("    tables:\n      kinds: {glob: kinds.csv, primary_key: id}\n")
    span = ["--start", "2024-02-20", "--end", "2024-02-22"]
    cases = [
        ("apq.events", ["no source is called 'apq' (did you mean 'app'?)"]),
        ("dlt_app.events", ["it is source app's table events ('dlt_app' is its name in dbt)"]),
        ("marts.daily_events", ["a model is named without its schema", "backfill daily_events"]),
        ("filez.kind", ["(did you mean 'files'?)", "has no table 'kind' (did you mean 'kinds'?)"]),
    ]
    for name, said in cases:
        proc = stackyard(project, "backfill", name, *span)
        assert proc.returncode == 2, (name, proc.stdout, proc.stderr)
        text = " ".join(proc.stderr.split())
        for words in said:
            assert words in text, (name, text)
        assert "did you mean 'daily_events'" not in text and "stg_events" not in text, text
    reloads = {
        "apq.events": "backfill it by date with `stackyard backfill app.events",
        "filez.kind": "with no cursor to cut by date: reload it whole with `stackyard reload "
        "files.kinds --yes`",
        "files.kinds": "reload it whole with `stackyard reload files.kinds --yes`",
    }
    for name, hint in reloads.items():
        text = " ".join(stackyard(project, "backfill", name, *span, check=2).stderr.split())
        assert hint in text, (name, text)


def test_one_dbt_run_for_many_days_fails_only_the_day_that_failed(project: Path) -> None:
    # A model that errors on one kind of row; one such row lands on 2024-02-24 only.
    (project / "transform" / "models" / "marts" / "fragile_events.sql").write_text(
        "{{ config(materialized='incremental', incremental_strategy='microbatch', "
        "event_time='event_day', batch_size='day', "
        "begin=(modules.datetime.date.today() - modules.datetime.timedelta(days=1)).isoformat()"
        ") }}\n"
        "select cast({{ dbt.date_trunc('day', 'updated_at') }} as timestamp) as event_day, "
        "count(*) as events, "
        "max(case when kind = 'poison' then error('poison row') else 1 end) as checked "
        "from {{ ref('stg_events') }} group by 1\n"
    )
    stackyard(project, "run", "--json", check=0)
    db = sqlite3.connect(project / "sources" / "app.sqlite")
    db.execute("INSERT INTO events VALUES (999999, 'poison', 1, '2024-02-24 12:00:00')")
    db.commit()
    db.close()
    # A late row in the past: only a backfill of the source table brings it in.
    backfill_json(project, "app.events", "--start", "2024-02-24", "--end", "2024-02-25")
    result = backfill_json(
        project,
        "fragile_events",
        "--start",
        "2024-02-22",
        "--end",
        "2024-02-27",
        "--run-size",
        "5",
        check=1,
    )
    status = {p["start"][:10]: p["status"] for p in result["partitions"]}
    assert status == {
        "2024-02-22": "success",
        "2024-02-23": "success",
        "2024-02-24": "failed",
        "2024-02-25": "success",
        "2024-02-26": "success",
    }
    assert all(p["executed"] and p["attempt"] == 1 for p in result["partitions"])
    assert result["partitions"][2]["error"]
    days = sql(project, "select count(*) as n from marts.fragile_events")[0]["n"]
    assert days >= 4  # the four good days are in, whatever the first build added
    assert (
        sql(
            project,
            "select count(*) as n from marts.fragile_events where event_day = '2024-02-24'",
        )[0]["n"]
        == 0
    )


def test_a_window_connectorx_cannot_read_is_read_through_sqlalchemy(project: Path) -> None:
    db = sqlite3.connect(project / "sources" / "app.sqlite")
    # DATETIME text holding a date only, beside full timestamps: ConnectorX panics on it.
    db.execute("INSERT INTO events VALUES (99001, 'a', 5, '2024-02-28')")
    db.commit()
    db.close()
    result = backfill_json(project, "app.events", "--start", "2024-02-28", "--end", "2024-02-29")
    assert [p["status"] for p in result["partitions"]] == ["success"], result
    rows = sql(project, "select count(*) as n from app.events where id = 99001")
    assert rows == [{"n": 1}]


def test_a_source_whose_columns_changed_is_refused_not_rounded_or_blanked(
    project: Path,
) -> None:
    db = sqlite3.connect(project / "sources" / "app.sqlite")
    # amount becomes a decimal with cents, kind is renamed: a run refuses both.
    db.execute(
        "CREATE TABLE events2 (id INTEGER PRIMARY KEY, category TEXT, amount DECIMAL(10,2), "
        "updated_at DATETIME)"
    )
    db.execute("INSERT INTO events2 SELECT id, kind, amount + 0.4, updated_at FROM events")
    db.execute("DROP TABLE events")
    db.execute("ALTER TABLE events2 RENAME TO events")
    db.commit()
    db.close()
    before = sql(project, "select id, kind, amount from app.events order by id")
    proc = stackyard(
        project, "backfill", "app.events", "--start", "2024-02-27", "--end", "2024-02-29"
    )
    output = proc.stdout + proc.stderr
    # Before: exit 0, "validation passed", amounts rounded back to whole numbers and every
    # kind NULL in the window; category never loaded.
    assert proc.returncode == 1, output
    assert "changed upstream" in output and "'amount'" in output and "'kind'" in output
    assert "stackyard run --select app" in output, output
    assert "2 partitions run, 2 failed" in output and "✔ backfill" not in output, output
    assert sql(project, "select id, kind, amount from app.events order by id") == before


def test_a_missing_secret_is_a_configuration_error_and_records_nothing(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = project / "stackyard.yml"
    config.write_text(
        config.read_text().replace(
            "connection: sqlite:///sources/app.sqlite", "connection: {secret: APP_DB_URL}"
        )
    )
    monkeypatch.delenv("APP_DB_URL", raising=False)
    for extra in ((), ("--dry-run",)):
        proc = stackyard(
            project,
            "backfill",
            "app.events",
            "--start",
            "2024-02-21",
            "--end",
            "2024-02-22",
            *extra,
        )
        output = proc.stdout + proc.stderr
        # Before: exit 1, a failed backfill recorded ("validation failed: 0 rows, expected 0;
        # missing 1") and no word of how to set the secret; the dry run already said it.
        assert proc.returncode == 2, output
        assert "export APP_DB_URL=" in output, output
    assert backfill_json(project, "status") == []


def test_the_backfill_mirror_is_owner_only(project: Path) -> None:
    done = backfill_json(project, "daily_events", "--start", "2024-02-27", "--end", "2024-02-29")
    mirror = project / ".stackyard" / "backfills" / f"{done['backfill_id']}.json"
    assert stat.S_IMODE(mirror.stat().st_mode) == 0o600
    assert stat.S_IMODE(mirror.parent.stat().st_mode) == 0o700
    check = json.loads(stackyard(project, "security", "check", "--json", check=None).stdout)
    assert [f for f in check["findings"] if f["check"] == "file-permissions"] == []
