"""The "anything new?" probes: each change a load would pick up changes the probe."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from stackyard.config.secrets import Secrets
from stackyard.config.sources import FilesystemSource, SqlDatabaseSource
from stackyard.ingest.probe import ProbeStore, probe


def files_source(url: str = "files", **extra: object) -> FilesystemSource:
    return FilesystemSource.model_validate(
        {
            "kind": "filesystem",
            "url": url,
            "tables": {"t": {"glob": "*.csv", "primary_key": "id"}},
            **extra,
        }
    )


def sql_source(**table: object) -> SqlDatabaseSource:
    spec = {"primary_key": "id", "cursor": "at", **table}
    return SqlDatabaseSource.model_validate(
        {"kind": "sql_database", "connection": "sqlite:///app.sqlite", "tables": {"t": spec}}
    )


def secrets(tmp_path: Path) -> Secrets:
    return Secrets(tmp_path)


def test_a_folder_probe_sees_new_changed_and_touched_files(tmp_path: Path) -> None:
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "a.csv").write_text("x\n1\n")
    config = files_source()
    first = probe("s", config, tmp_path, secrets(tmp_path))
    assert first is not None
    assert probe("s", config, tmp_path, secrets(tmp_path)) == first
    stat = (folder / "a.csv").stat()
    os.utime(folder / "a.csv", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    touched = probe("s", config, tmp_path, secrets(tmp_path))
    assert touched != first
    (folder / "sub").mkdir()
    (folder / "sub" / "b.csv").write_text("x\n2\n")
    assert probe("s", config, tmp_path, secrets(tmp_path)) not in (first, touched)
    # the entry itself is part of the probe
    other = files_source(contract="freeze")
    assert probe("s", other, tmp_path, secrets(tmp_path)) != probe(
        "s", config, tmp_path, secrets(tmp_path)
    )


def test_a_bucket_cannot_be_probed(tmp_path: Path) -> None:
    assert probe("s", files_source("s3://bucket/x"), tmp_path, secrets(tmp_path)) is None


def test_a_sqlite_probe_sees_rows_at_the_last_cursor_value_and_deletes(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "app.sqlite")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, at TEXT)")
    db.executemany("INSERT INTO t VALUES (?, ?)", [(1, "2026-01-01"), (2, "2026-01-02")])
    db.commit()
    config = sql_source()
    seen = {probe("s", config, tmp_path, secrets(tmp_path))}
    for statement in (
        "INSERT INTO t VALUES (3, '2026-01-02')",  # same highest cursor value, new key
        "UPDATE t SET at = '2026-01-02' WHERE id = 1",  # moved up to the highest value
        "DELETE FROM t WHERE id = 1",
        "UPDATE t SET at = '2026-01-03' WHERE id = 2",
    ):
        db.execute(statement)
        db.commit()
        digest = probe("s", config, tmp_path, secrets(tmp_path))
        assert digest is not None and digest not in seen, statement
        seen.add(digest)
    db.close()


def test_sqlite_tables_the_probe_cannot_judge(tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "app.sqlite").execute("CREATE TABLE t (id INTEGER, at TEXT)")
    s = secrets(tmp_path)
    assert probe("s", sql_source(), tmp_path, s) is not None
    assert probe("s", sql_source(primary_key=None, append=True), tmp_path, s) is not None
    # no cursor (every load reads it all), deleted rows reconciled
    assert probe("s", sql_source(cursor=None), tmp_path, s) is None
    assert probe("s", sql_source(deletes="detect"), tmp_path, s) is None
    # a missing column: the load itself reports it
    assert probe("s", sql_source(cursor="nope"), tmp_path, s) is None


def test_cursor_values_the_probe_cannot_order(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "app.sqlite")
    db.execute("CREATE TABLE t (id INTEGER, at)")  # no type: values kept as written
    db.execute("CREATE TABLE d (id INTEGER, at DATETIME)")
    db.executemany("INSERT INTO t VALUES (?, ?)", [(1, 5), (2, "6")])  # a number and a text
    db.executemany("INSERT INTO d VALUES (?, ?)", [(1, "2026-01-01"), (2, "yesterday")])
    db.commit()
    s = secrets(tmp_path)
    assert probe("s", sql_source(primary_key=None, append=True), tmp_path, s) is None
    assert probe("s", sql_source(source_table="d"), tmp_path, s) is None


def test_only_sqlite_and_local_keyed_files_are_probed(tmp_path: Path) -> None:
    s = secrets(tmp_path)
    (tmp_path / "files").mkdir()
    # a table without a key is replaced from its files on every load: dlt always runs
    no_key = FilesystemSource.model_validate(
        {"kind": "filesystem", "url": "files", "tables": {"t": {"glob": "*.csv"}}}
    )
    assert probe("s", no_key, tmp_path, s) is None
    for url in ("postgresql://postgres@127.0.0.1:5432/app", "duckdb:///app.duckdb"):
        config = SqlDatabaseSource.model_validate(
            {
                "kind": "sql_database",
                "connection": url,
                "tables": {"t": {"cursor": "at", "append": True}},
            }
        )
        assert probe("s", config, tmp_path, s) is None, url


@pytest.mark.parametrize(
    ("kind", "last", "same_value", "later"),
    [
        ("INTEGER", 7, 7, 8),
        # the same time written another way: dlt compares times, not text
        ("DATETIME", "2026-01-02 10:00:00", "2026-01-02T10:00:00", "2026-01-02 10:00:01"),
    ],
)
def test_an_append_table_probe_sees_rows_at_the_last_cursor_value(
    tmp_path: Path, kind: str, last: object, same_value: object, later: object
) -> None:
    db = sqlite3.connect(tmp_path / "app.sqlite")
    db.execute(f"CREATE TABLE t (id INTEGER, kind TEXT, at {kind})")
    db.executemany("INSERT INTO t VALUES (?, 'view', ?)", [(1, last), (2, last)])
    db.commit()
    config = sql_source(primary_key=None, append=True)
    seen = {probe("s", config, tmp_path, secrets(tmp_path))}
    for statement, args in (
        ("INSERT INTO t VALUES (3, 'view', ?)", (same_value,)),  # a new row at the boundary
        ("UPDATE t SET kind = 'click' WHERE id = 1", ()),  # changed in place at the boundary
        ("UPDATE t SET id = 4 WHERE id = 3", ()),  # a row at the boundary replaced
        ("INSERT INTO t VALUES (5, 'view', ?)", (later,)),
    ):
        db.execute(statement, args)
        db.commit()
        digest = probe("s", config, tmp_path, secrets(tmp_path))
        assert digest is not None and digest not in seen, statement
        seen.add(digest)
    db.close()


def test_a_kept_probe_counts_only_for_the_run_that_kept_it(tmp_path: Path) -> None:
    store = ProbeStore(tmp_path, "dev")
    store.keep("s", "abc", "run-1", ["a", "b"])

    def tables() -> list[str]:
        return ["a", "b", "c"]

    assert store.unchanged("s", "abc", "run-1", tables)
    assert not store.unchanged("s", "abc", "run-2", tables)  # another run came later
    assert not store.unchanged("s", "abd", "run-1", tables)
    assert not store.unchanged("s", None, "run-1", tables)
    assert not store.unchanged("s", "abc", "run-1", lambda: ["b"])  # table a is gone
    assert not ProbeStore(tmp_path, "prod").unchanged("s", "abc", "run-1", tables)
    store.forget("s")
    assert not store.unchanged("s", "abc", "run-1", tables)
