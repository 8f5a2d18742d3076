"""``stackyard restore-table T --as-of TIME`` on DuckDB and Postgres: the newest backup at or
before TIME is named with the loss window, the table comes back beside the original, verified."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from stackyard.project import init_project
from tests.runbooks.test_pg_copy import _kwargs, _state
from tests.runbooks.test_pg_copy import project as pg_project  # noqa: F401
from tests.runbooks.test_restore_drill import cli, without_pg_dump


def between_backups() -> str:
    """A whole second after every backup taken so far and before any taken from now on
    (``--as-of`` is read to the second)."""
    now = datetime.now(UTC)
    time.sleep(1 - now.microsecond / 1e6)
    return (now.replace(microsecond=0) + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S")


def printed_swap(out: str) -> str:
    """The swap statement restore-table prints, exactly as printed."""
    found = re.search(r"swap it in[^:]*: (.+)$", out, re.MULTILINE)
    assert found, out
    return found.group(1)


def backup(project: Path, *args: str, env: dict[str, str] | None = None) -> Path:
    return Path(cli("backup", "--project", str(project), *args, env=env).splitlines()[0].strip())


def test_duckdb_table_from_the_newest_backup_before(tmp_path: Path) -> None:
    project = init_project(tmp_path / "shop").path
    base = ("--project", str(project))
    cli("sql", "CREATE TABLE t AS SELECT range AS i, 'x' || range AS s FROM range(1000)", *base)
    first = backup(project)
    as_of = between_backups()
    cli("sql", "DELETE FROM t WHERE i >= 10", *base)
    backup(project)  # after --as-of: not the one to use

    cli("restore-table", "main.t", "--as-of", "2000-01-01T00:00:00", *base, code=2)
    dry = json.loads(cli("restore-table", "main.t", "--as-of", as_of, *base, "--dry-run", "--json"))
    assert dry["location"] == str(first)
    assert any("loss window" in note for note in dry["notes"])
    done = json.loads(cli("restore-table", "main.t", "--as-of", as_of, *base, "--json"))
    assert done["destination"] == "main.t__restored" and done["rows"] == 1000
    counts = "SELECT (SELECT count(*) FROM t) AS now, (SELECT count(*) FROM t__restored) AS back"
    rows = json.loads(cli("sql", counts, "--json", *base))["rows"]
    assert rows == [{"now": 10, "back": 1000}]
    again = cli("restore-table", "main.t", "--as-of", as_of, *base, code=2)
    assert "exists already" in again and "nothing was restored" in again
    assert "DROP TABLE" in again and "swap it in" in again


def test_a_backup_of_another_project_is_refused(tmp_path: Path) -> None:
    other = init_project(tmp_path / "other").path
    cli("sql", "CREATE TABLE t AS SELECT 1 AS i", "--project", str(other))
    foreign = backup(other)
    project = init_project(tmp_path / "shop").path
    cli("sql", "CREATE TABLE t AS SELECT 2 AS i", "--project", str(project))
    out = cli("restore-table", "main.t", "--from", str(foreign), "--project", str(project), code=2)
    assert "is a backup of project 'other'" in out
    tables = json.loads(
        cli("sql", "SELECT table_name FROM duckdb_tables()", "--json", "--project", str(project))
    )
    assert tables["rows"] == [{"table_name": "t"}]  # no t__restored from the other project


def test_duckdb_a_table_whose_schema_was_dropped_comes_back(tmp_path: Path) -> None:
    project = init_project(tmp_path / "shop").path
    base = ("--project", str(project))
    cli("sql", "CREATE SCHEMA shop_db; CREATE TABLE shop_db.orders AS SELECT 7 AS id", *base)
    backup(project)
    cli("sql", "DROP SCHEMA shop_db CASCADE", *base)
    # It said the (good) backup was damaged: "Schema with name shop_db does not exist".
    out = cli("restore-table", "shop_db.orders", "--from", "latest", *base)
    assert "shop_db.orders__restored (1 row" in out, out
    cli("sql", printed_swap(out), *base)
    rows = json.loads(cli("sql", "SELECT id FROM shop_db.orders", "--json", *base))["rows"]
    assert rows == [{"id": 7}]


def test_from_and_as_of_together_are_a_usage_error(tmp_path: Path) -> None:
    project = init_project(tmp_path / "shop").path
    base = ("--project", str(project))
    cli("sql", "CREATE TABLE t AS SELECT range AS i FROM range(10)", *base)
    backup(project)  # taken after the --as-of time below
    both = ("restore-table", "main.t", "--from", "latest", "--as-of", "2026-01-01T00:00:00")
    for dry in (("--dry-run",), ()):
        out = cli(*both, *base, *dry, code=2)
        assert "pass one of them" in out and "loss window" not in out, out
    tables = json.loads(cli("sql", "SELECT table_name FROM duckdb_tables()", "--json", *base))
    assert tables["rows"] == [{"table_name": "t"}]


def test_duckdb_printed_swap_keeps_the_table_its_view_and_key(tmp_path: Path) -> None:
    project = init_project(tmp_path / "shop").path
    base = ("--project", str(project))
    cli(
        "sql",
        "CREATE TABLE t (i INTEGER PRIMARY KEY, s VARCHAR DEFAULT 'new', "
        "twice INTEGER GENERATED ALWAYS AS (i * 2) VIRTUAL); "
        "INSERT INTO t (i, s) SELECT range, 'x' || range FROM range(1000); "
        "CREATE VIEW v AS SELECT * FROM t WHERE i >= 0",
        *base,
    )
    backup(project)
    cli("sql", "DELETE FROM t WHERE i >= 10", *base)

    swap = printed_swap(cli("restore-table", "main.t", "--from", "latest", *base))
    cli("sql", swap, *base)
    check = "SELECT count(*) AS n, sum(twice) AS twice, max(s) AS s FROM v"
    assert json.loads(cli("sql", check, "--json", *base))["rows"] == [
        {"n": 1000, "twice": 999_000, "s": "x999"}
    ]
    # Still the table it was: its primary key and default hold, and the copy is gone.
    cli("sql", "INSERT INTO t (i) VALUES (1)", *base, code=1)
    cli("sql", "INSERT INTO t (i) VALUES (5000)", *base)
    assert json.loads(cli("sql", "SELECT s FROM t WHERE i = 5000", "--json", *base))["rows"] == [
        {"s": "new"}
    ]
    names = json.loads(cli("sql", "SELECT table_name FROM duckdb_tables()", "--json", *base))
    assert names["rows"] == [{"table_name": "t"}]


def test_duckdb_a_dropped_table_comes_back_by_rename_and_the_note_says_what_it_lacks(
    tmp_path: Path,
) -> None:
    project = init_project(tmp_path / "shop").path
    base = ("--project", str(project))
    cli(
        "sql",
        "CREATE TABLE t (i INTEGER PRIMARY KEY, s VARCHAR DEFAULT 'new'); "
        "INSERT INTO t SELECT range, 'x' || range FROM range(100)",
        *base,
    )
    backup(project)
    cli("sql", "DROP TABLE t", *base)

    done = cli("restore-table", "main.t", "--from", "latest", *base)
    note = " ".join(done.split())
    # It said "the table keeps its views, grants and constraints" of a table that was gone.
    assert "main.t is gone" in note and "keeps its views" not in note
    assert "no primary key, defaults, identity, indexes or grants" in note
    swap = printed_swap(done)
    assert "RENAME TO" in swap
    cli("sql", swap, *base)
    assert json.loads(cli("sql", "SELECT count(*) AS n FROM t", "--json", *base))["rows"] == [
        {"n": 100}
    ]


def test_duckdb_swap_lists_the_columns_the_table_and_backup_share(tmp_path: Path) -> None:
    project = init_project(tmp_path / "shop").path
    base = ("--project", str(project))
    cli(
        "sql",
        "CREATE TABLE t AS SELECT range AS i, 'x' || range AS s, range * 2 AS old FROM range(1000)",
        *base,
    )
    backup(project)
    cli(
        "sql",
        "DELETE FROM t WHERE i >= 10; ALTER TABLE t DROP COLUMN old; "
        "ALTER TABLE t ADD COLUMN added INTEGER; "
        "ALTER TABLE t ADD COLUMN flag VARCHAR DEFAULT 'new'",
        *base,
    )

    done = cli("restore-table", "main.t", "--from", "latest", *base)
    gone = next(line for line in done.splitlines() if "no longer has" in line)
    assert "old" in gone and "leaves them out" in gone and "main.t__restored" in gone
    new = next(line for line in done.splitlines() if "the backup lacks" in line)
    assert "added, flag" in new and "default, NULL where it has none" in new
    swap = printed_swap(done)
    assert '"old"' not in swap and '"added"' not in swap
    cli("sql", swap, *base)  # runs as printed
    check = (
        "SELECT count(*) AS n, sum(i) AS i, max(s) AS s, count(added) AS added, "
        "min(flag) AS low, max(flag) AS high FROM t"
    )
    assert json.loads(cli("sql", check, "--json", *base))["rows"] == [
        {"n": 1000, "i": 499_500, "s": "x999", "added": 0, "low": "new", "high": "new"}
    ]


@pytest.mark.postgres
@pytest.mark.parametrize("client", ["pg_dump", "none"])
def test_postgres_table_from_the_newest_backup_before(
    pg_project: Path,  # noqa: F811
    pg_database: dict[str, Any],
    client: str,
) -> None:
    import psycopg

    env = without_pg_dump() if client == "none" else None
    base = ("--project", str(pg_project), "--target", "prod")
    first = backup(pg_project, "--target", "prod", env=env)
    before = _state(pg_database)["orders"]
    as_of = between_backups()
    with psycopg.connect(**_kwargs(pg_database), autocommit=True) as conn:
        conn.execute("DELETE FROM shop.orders WHERE id > 5")
    backup(pg_project, "--target", "prod", env=env)

    dry = cli("restore-table", "shop.orders", "--as-of", as_of, *base, "--dry-run", env=env)
    assert str(first) in dry and "loss window" in dry
    done = cli("restore-table", "shop.orders", "--as-of", as_of, *base, env=env)
    assert "as shop.orders__restored (300 rows" in done
    with psycopg.connect(**_kwargs(pg_database)) as conn:
        back = conn.execute("SELECT * FROM shop.orders__restored ORDER BY id").fetchall()
        (now,) = conn.execute("SELECT count(*) FROM shop.orders").fetchone()
        scratch = conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname LIKE '%%table_restore'"
        ).fetchone()
    assert back == before and now == 5
    assert scratch == (0,)  # the scratch database of a pg_dump backup is gone
    again = cli("restore-table", "shop.orders", "--as-of", as_of, *base, code=2, env=env)
    assert "exists already" in again and "nothing was restored" in again

    # The printed swap, run as printed, works although a view depends on the table (an
    # identity and a generated column included), and the view then reads the restored rows.
    with psycopg.connect(**_kwargs(pg_database), autocommit=True) as conn:
        conn.execute(printed_swap(done))
    with psycopg.connect(**_kwargs(pg_database)) as conn:
        (big,) = conn.execute("SELECT count(*) FROM shop.big_orders").fetchone()
        (left,) = conn.execute("SELECT to_regclass('shop.orders__restored')").fetchone()
    assert _state(pg_database)["orders"] == before
    assert big == sum(1 for row in before if row[2] is not None and row[2] > 100) and left is None


@pytest.mark.postgres
def test_postgres_swap_after_a_column_was_renamed(
    pg_project: Path,  # noqa: F811
    pg_database: dict[str, Any],
) -> None:
    import psycopg

    env = without_pg_dump()
    base = ("--project", str(pg_project), "--target", "prod")
    backup(pg_project, "--target", "prod", env=env)
    before = _state(pg_database)["orders"]
    with psycopg.connect(**_kwargs(pg_database), autocommit=True) as conn:
        conn.execute("DELETE FROM shop.orders WHERE id > 5")
        conn.execute("ALTER TABLE shop.orders RENAME COLUMN meta TO details")

    done = json.loads(cli("restore-table", "shop.orders", "--from", "latest", *base, "--json"))
    notes = done["notes"]
    assert any("no longer has the saved column(s) meta:" in n for n in notes), notes
    assert any("the backup lacks: details:" in n and "renamed" in n for n in notes), notes
    with psycopg.connect(**_kwargs(pg_database), autocommit=True) as conn:
        conn.execute(printed_swap("\n".join(notes)))
    after = _state(pg_database)["orders"]
    # Every saved row is back; the renamed column (meta, now details: 6th) has no default.
    assert len(after) == 300 and all(row[5] is None for row in after)
    assert [row[:5] + row[6:] for row in after] == [row[:5] + row[6:] for row in before]


@pytest.mark.postgres
def test_postgres_notes_say_a_not_null_column_the_backup_lacks_fails_the_swap(
    pg_project: Path,  # noqa: F811
    pg_database: dict[str, Any],
) -> None:
    import psycopg

    base = ("--project", str(pg_project), "--target", "prod")
    backup(pg_project, "--target", "prod", env=without_pg_dump())
    with psycopg.connect(**_kwargs(pg_database), autocommit=True) as conn:
        conn.execute("ALTER TABLE shop.orders ADD COLUMN region text NOT NULL DEFAULT 'eu'")
        conn.execute("ALTER TABLE shop.orders ALTER COLUMN region DROP DEFAULT")
    done = json.loads(cli("restore-table", "shop.orders", "--from", "latest", *base, "--json"))
    # Before: "rows get the column's default, NULL where it has none", and the swap as
    # printed then failed on the NOT NULL column.
    assert any(n.startswith("region cannot be NULL and has no default") for n in done["notes"])
    swap = printed_swap("\n".join(done["notes"]))
    with (
        psycopg.connect(**_kwargs(pg_database), autocommit=True) as conn,
        pytest.raises(psycopg.errors.NotNullViolation),
    ):
        conn.execute(swap)


@pytest.mark.postgres
def test_postgres_swap_warns_of_tables_its_delete_would_cascade_to(
    pg_project: Path,  # noqa: F811
    pg_database: dict[str, Any],
) -> None:
    import psycopg

    env = without_pg_dump()
    with psycopg.connect(**_kwargs(pg_database), autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE shop.notes (id int PRIMARY KEY, "
            "order_id bigint REFERENCES shop.orders ON DELETE CASCADE)"
        )
    base = ("--project", str(pg_project), "--target", "prod")
    backup(pg_project, "--target", "prod", env=env)
    done = cli("restore-table", "shop.orders", "--from", "latest", *base, env=env)
    # The printed DELETE would have emptied shop.notes without a word.
    assert "WARNING: shop.notes (ON DELETE CASCADE) references shop.orders" in " ".join(
        done.split()
    )
    assert printed_swap(done).startswith("BEGIN")


@pytest.mark.postgres
def test_postgres_a_table_whose_schema_was_dropped_comes_back(
    pg_project: Path,  # noqa: F811
    pg_database: dict[str, Any],
) -> None:
    import psycopg

    env = without_pg_dump()
    base = ("--project", str(pg_project), "--target", "prod")
    backup(pg_project, "--target", "prod", env=env)
    with psycopg.connect(**_kwargs(pg_database), autocommit=True) as conn:
        conn.execute("DROP SCHEMA shop CASCADE")
    # It failed with "unexpected error: InvalidSchemaName".
    done = cli("restore-table", "shop.orders", "--from", "latest", *base, env=env)
    assert "as shop.orders__restored (300 rows" in done, done


@pytest.mark.parametrize("offset", [20_000, 4_200], ids=["a data block", "its header"])
def test_duckdb_damaged_backup_restores_nothing(tmp_path: Path, offset: int) -> None:
    project = init_project(tmp_path / "shop").path
    base = ("--project", str(project))
    cli("sql", "CREATE TABLE t AS SELECT range AS i FROM range(200000)", *base)
    saved = backup(project) / "warehouse.duckdb"
    with saved.open("r+b") as handle:  # same size: only DuckDB's block checksums can tell
        handle.seek(offset)
        handle.write(b"\x00garbage\x00" * 100)
    # A damaged header failed as "unexpected error: Error: Corrupt database file", exit 1,
    # asking for a bug report.
    out = cli("restore-table", "main.t", "--from", str(saved.parent), *base, code=1)
    assert "damaged" in out and "checksum" in out
    tables = json.loads(cli("sql", "SELECT table_name FROM duckdb_tables()", "--json", *base))
    assert tables["rows"] == [{"table_name": "t"}]


@pytest.mark.slow
def test_notes_warn_that_an_incremental_tables_cursor_stays_put(tmp_path: Path) -> None:
    project = init_project(tmp_path / "shop", example="jaffle_shop").path
    base = ("--project", str(project))
    cli("run", *base)
    cli("sql", "CREATE TABLE main.plain AS SELECT range AS i FROM range(10)", *base)
    backup(project)

    def warnings(table: str, *args: str) -> list[str]:
        done = json.loads(cli("restore-table", table, "--from", "latest", *args, "--json", *base))
        return [n for n in done["notes"] if "loaded incrementally" in n]

    # Nothing loaded since the backup: the cursor has not moved, no row is lost by the swap,
    # and there is nothing to read again (a backfill of the backup's day was suggested).
    assert warnings("shop_db.orders", "--dry-run") == []
    import sqlite3

    with sqlite3.connect(project / "sources" / "jaffle_app.sqlite") as app:
        app.execute(
            "UPDATE orders SET updated_at = (SELECT max(updated_at) FROM orders), "
            "status = 'returned' WHERE id = (SELECT min(id) FROM orders)"
        )
        app.execute(
            "UPDATE orders SET updated_at = datetime(updated_at, '+1 day') "
            "WHERE id = (SELECT min(id) FROM orders)"
        )
    cli("run", *base)
    cursor = json.loads(
        cli(
            "sql",
            "SELECT CAST(max(updated_at) AS VARCHAR) AS m FROM shop_db.orders",
            "--json",
            *base,
        )
    )["rows"][0]["m"]

    # Swapping the copy in leaves dlt's cursor ahead of the table: the plan and the result
    # say so, with the cursor and the command that reads the rows since the backup again.
    for args in (["--dry-run"], []):
        (note,) = warnings("shop_db.orders", *args)
        assert "source 'shop_db' on cursor column updated_at" in note, note
        assert f"its value now: {cursor}" in note, note
        assert "next `stackyard run` loads none of them" in note, note
        assert "stackyard backfill shop_db.orders --start " in note, note
    # A table no source loads has no cursor to speak of.
    assert warnings("main.plain") == []


def test_duckdb_notes_a_column_whose_type_changed_since_the_backup(tmp_path: Path) -> None:
    project = init_project(tmp_path / "shop").path
    base = ("--project", str(project))
    cli("sql", "CREATE TABLE t AS SELECT range AS i, range + 0.25 AS amount FROM range(10)", *base)
    cli("sql", "ALTER TABLE t ALTER COLUMN amount TYPE DECIMAL(30,2)", *base)
    backup(project)
    cli("sql", "ALTER TABLE t ALTER COLUMN amount TYPE BIGINT", *base)
    done = cli("restore-table", "main.t", "--from", "latest", *base)
    # Before: no word of it, and the printed swap rounded 0.25 to 0.
    changed = next((line for line in done.splitlines() if "type changed" in line), "")
    assert "amount: DECIMAL(30,2) saved, BIGINT now" in changed, done
