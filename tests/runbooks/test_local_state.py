"""A warehouse that lost tables dlt's local state says were loaded (its DuckDB file deleted
and created again empty by the next command, its Postgres database dropped and created
again, a table dropped by hand) is not healthy: `stackyard doctor` reports it with the way
back, and `stackyard backup` refuses to copy it, which would keep the loss and, with
`backups.keep`, delete the last good backup."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.runbooks.test_restore_guards import drop_kept_aside, on_postgres
from tests.runner.test_leases import project
from tests.runner.test_leases_across_processes import said, stackyard


def loaded(root: Path, *target: str) -> list[str]:
    """Keep one backup, run the held source at once, check all is well, back up; return the
    backup folders."""
    with (root / "stackyard.yml").open("a") as config:
        config.write("\nbackups:\n  keep: 1\n")
    (root / "sources" / "go").write_text("go")
    assert stackyard(root, "run", *target).returncode == 0
    done = stackyard(root, "backup", *target)
    assert done.returncode == 0, said(done)
    report = doctor(root, *target, code=0)
    assert "state: the warehouse has every table dlt's state loaded" in report["passed"]
    return backups(root)


def backups(root: Path) -> list[str]:
    return sorted(p.name for p in (root / ".stackyard" / "backups").iterdir())


def doctor(root: Path, *target: str, code: int) -> dict[str, Any]:
    done = stackyard(root, "doctor", "--json", *target)
    assert done.returncode == code, said(done)
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def lost(report: dict[str, Any]) -> list[dict[str, str]]:
    return [f for f in report["findings"] if f["check"] == "state"]


def assert_backup_refused(root: Path, tables: str, *target: str) -> None:
    before = backups(root)
    refused = stackyard(root, "backup", *target)
    text = said(refused)
    assert refused.returncode == 1, text
    assert "was not backed up: source 'events': " + tables in text, text
    assert "nothing was written" in text and "stackyard restore latest" in text, text
    assert "stackyard reload events --yes" in text, text
    assert backups(root) == before  # nothing written, the last good backup not pruned


def test_a_lost_duckdb_file_or_table_fails_the_doctor_and_stops_backups(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    good = loaded(root)
    (root / ".stackyard" / "dev.duckdb").unlink()
    # Before any command makes it again: lost, not "run `stackyard run` first".
    missing = stackyard(root, "backup")
    assert missing.returncode == 2 and "it is lost" in said(missing), said(missing)
    assert "stackyard restore latest" in said(missing) and "stackyard run`" not in said(missing)
    failed = stackyard(root, "run")
    assert failed.returncode == 1, said(failed)
    assert (root / ".stackyard" / "dev.duckdb").exists()  # created again, without the data
    # Monitors would watch nothing in it and report all clear, exit 0.
    for command in ("monitor", "health"):
        refused = stackyard(root, command)
        assert refused.returncode == 2, said(refused)
        assert "holds none of the tables dlt's state says were loaded" in said(refused)
        assert "made anew, empty, after it was lost" in said(refused)

    (finding,) = lost(doctor(root, code=1))
    assert finding["what"] == (
        "source 'events': events.events is missing on target 'dev', though dlt's state says "
        "it was loaded"
    )
    assert "stackyard restore latest (the last backup, taken " in finding["fix"]
    assert "`stackyard reload events --yes`" in finding["fix"]
    assert_backup_refused(root, "events.events is missing on target 'dev'")
    assert backups(root) == good

    assert stackyard(root, "restore", "latest", "--yes").returncode == 0
    assert not lost(doctor(root, code=0))
    dropped = stackyard(root, "sql", "drop table events.events")
    assert dropped.returncode == 0, said(dropped)
    (finding,) = lost(doctor(root, code=1))
    assert "events.events is missing" in finding["what"]
    # A table dropped by hand is the monitors' to report, not a lost warehouse.
    health = stackyard(root, "health")
    assert "made anew" not in said(health), said(health)
    assert_backup_refused(root, "events.events is missing on target 'dev'")


@pytest.mark.postgres
def test_a_postgres_database_dropped_and_created_again_is_found(
    tmp_path: Path, pg_database: dict[str, Any], pg_admin_dsn: str
) -> None:
    import psycopg

    database = str(pg_database["database"])
    root = on_postgres(project(tmp_path / "p"), database)
    good = loaded(root, "--target", "pg")
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{database}"')

    (finding,) = lost(doctor(root, "--target", "pg", code=1))
    assert "events.events is missing on target 'pg'" in finding["what"]
    assert "stackyard restore latest" in finding["fix"]
    assert_backup_refused(root, "events.events is missing on target 'pg'", "--target", "pg")
    assert backups(root) == good
    # status said "no runs yet on this target" and exit 0
    status = stackyard(root, "status", "--target", "pg")
    assert status.returncode == 2 and "has no run history, but it has been run" in said(status)
    # health said "no monitor pass yet", monitor "no tables monitored", both exit 0; and so
    # again after a run whose loads were refused (it makes the run history anew).
    assert_made_anew(root, tmp_path)
    failed = stackyard(root, "run", "--target", "pg")
    assert failed.returncode == 1, said(failed)
    assert_made_anew(root, tmp_path)
    restored = stackyard(root, "restore", "latest", "--yes", "--target", "pg")
    assert restored.returncode == 0, said(restored)
    assert not lost(doctor(root, "--target", "pg", code=0))
    assert stackyard(root, "status", "--target", "pg").returncode == 0
    health = stackyard(root, "health", "--target", "pg")
    assert health.returncode == 0 and "events.events" in health.stdout, said(health)
    drop_kept_aside(pg_admin_dsn, database)


def assert_made_anew(root: Path, tmp_path: Path) -> None:
    """health, monitor and report on target ``pg`` name the lost database, exit 2."""
    report = ["--out", str(tmp_path / "report.html")]
    for command in (["health"], ["monitor"], ["report", *report]):
        refused = stackyard(root, *command, "--target", "pg")
        text = said(refused)
        assert refused.returncode == 2, text
        assert "Postgres target 'pg'" in text, text
        assert "holds none of the tables dlt's state says were loaded (events.events)" in text
        assert "made anew, empty, after it was lost (its database dropped and created" in text
        assert "stackyard doctor" in text, text
    assert not (tmp_path / "report.html").exists()


@pytest.mark.postgres
def test_a_dropped_postgres_database_of_a_project_without_dlt_sources_is_named(
    tmp_path: Path, pg_database: dict[str, Any], pg_admin_dsn: str
) -> None:
    """No dlt state to compare: the mark of the runs, beside the project, and the run
    history gone from the database tell it lost, not new ("no monitor pass yet", exit 0)."""
    import psycopg
    import yaml

    from stackyard.project import init_project

    database = str(pg_database["database"])
    root = init_project(tmp_path / "dbt_only").path
    for name in list(yaml.safe_load((root / "stackyard.yml").read_text())["sources"]):
        assert stackyard(root, "source", "remove", name, "--yes").returncode == 0
    on_postgres(root, database)
    target = ("--target", "pg")
    assert stackyard(root, "run", *target).returncode == 0
    assert stackyard(root, "health", *target).returncode == 0
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{database}"')

    for command in ("health", "monitor"):
        refused = stackyard(root, command, *target)
        text = said(refused)
        assert refused.returncode == 2, text
        assert (
            f"Postgres target 'pg' (postgres@127.0.0.1:5432/{database}) has no run history" in text
        )
        assert "`stackyard run --target pg` builds the dbt project again" in text, text
    # doctor, which health points to, names it too (it said nothing: no dlt state to compare)
    doctor = stackyard(root, "doctor", *target)
    text = said(doctor)
    assert doctor.returncode == 1, text
    assert f"postgres@127.0.0.1:5432/{database}) has no run history, but this target" in text
    assert "`stackyard run --target pg` builds the dbt project again" in text, text
    assert stackyard(root, "run", *target).returncode == 0
    assert stackyard(root, "health", *target).returncode == 0
    assert stackyard(root, "doctor", *target).returncode == 0, said(stackyard(root, "doctor"))
