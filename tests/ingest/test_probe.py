"""The "anything new?" probes: each change a load would pick up changes the probe."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from stackyard.config.secrets import Secrets
from stackyard.config.sources import FilesystemSource, SqlDatabaseSource
from stackyard.ingest.probe import ProbeStore, probe


def files_source(url: str = "files", **extra: object) -> FilesystemSource:
    return FilesystemSource.model_validate(
        {"kind": "filesystem", "url": url, "tables": {"t": {"glob": "*.csv"}}, **extra}
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
    # no cursor (every load reads it all), deleted rows reconciled, append-only tables
    assert probe("s", sql_source(cursor=None), tmp_path, s) is None
    assert probe("s", sql_source(deletes="detect"), tmp_path, s) is None
    assert probe("s", sql_source(primary_key=None, append=True), tmp_path, s) is None
    # a missing column: the load itself reports it
    assert probe("s", sql_source(cursor="nope"), tmp_path, s) is None


def test_a_kept_probe_counts_only_for_the_run_that_kept_it(tmp_path: Path) -> None:
    store = ProbeStore(tmp_path, "dev")
    store.keep("s", "abc", "run-1")
    assert store.unchanged("s", "abc", "run-1")
    assert not store.unchanged("s", "abc", "run-2")  # another run came later
    assert not store.unchanged("s", "abd", "run-1")
    assert not store.unchanged("s", None, "run-1")
    assert not ProbeStore(tmp_path, "prod").unchanged("s", "abc", "run-1")
    store.forget("s")
    assert not store.unchanged("s", "abc", "run-1")
