"""Loss and overwrite (cases 4, 5, 7, 8, 11 and 12): no row is silently dropped or rounded."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import write
from tests.integrity.helpers import cli, cli_json, new_project, rows, scalar


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    return new_project(tmp_path / "shop")


def _add_files(project: Path, *extra: str) -> tuple[int, str]:
    return cli(
        "source", "add", "exports", "--kind", "filesystem", "--url", "sources/exports",
        "--table", "orders=orders*.csv", *extra, "-p", str(project),
    )  # fmt: skip


def test_case_04_a_glob_matching_no_file_fails_the_table(project: Path) -> None:
    write(project / "sources/exports/orders.csv", "id,amount\n1,10\n2,20\n")
    code, output = _add_files(project)
    assert code == 0, output
    (project / "sources/exports/orders.csv").unlink()
    code, output = cli("run", "-p", str(project))
    assert code == 1, output
    assert "no file matches 'orders*.csv'" in output
    assert scalar(project, "SELECT count(*) FROM exports.orders") == 2  # left as it was
    # declared empty-able, the same run empties the table and succeeds
    text = (project / "stackyard.yml").read_text()
    (project / "stackyard.yml").write_text(
        text.replace("glob: orders*.csv", "glob: orders*.csv\n        allow_empty: true")
    )
    code, output = cli("run", "-p", str(project), "--select", "exports")
    assert "no file matches" not in output


def test_case_04_on_a_remote_url_with_credentials_no_file_fails_too(project: Path) -> None:
    """A bucket URL with credentials is listed the way the load signs in (dlt's own
    filesystem resource): a glob matching nothing there fails the table just the same.
    Shown on fsspec's in-memory file system, which needs no server."""
    import uuid

    import fsspec

    bucket = f"memory://bucket-{uuid.uuid4().hex[:8]}/exports"
    memory = fsspec.filesystem("memory")
    memory.pipe(f"{bucket}/orders_1.csv", b"id,amount\n1,10\n2,20\n")
    text = (project / "stackyard.yml").read_text()
    (project / "stackyard.yml").write_text(
        text.replace(
            "sources: {}\n",
            f"sources:\n  remote:\n    kind: filesystem\n    url: {bucket}\n"
            "    credentials: {secret: BUCKET_KEY}\n"
            "    retries: {count: 0}\n"  # the endpoint stays down: no point waiting on it
            "    tables:\n      orders: {glob: 'orders_*.csv'}\n",
        )
    )
    env = {"BUCKET_KEY": "not-used-by-memory-but-passed-on"}
    code, output = cli("run", "-p", str(project), env=env)
    assert code == 0, output
    memory.rm(f"{bucket}/orders_1.csv")
    code, output = cli("run", "-p", str(project), env=env)
    assert code == 1, output
    assert "no file matches 'orders_*.csv'" in output
    assert scalar(project, "SELECT count(*) FROM remote.orders") == 2  # left as it was


def test_case_04_s3_credentials_are_read_as_dlt_expects_them(project: Path) -> None:
    """s3:// with credentials: plain text is refused saying what is expected; a JSON object
    reaches S3 (here an endpoint nobody listens on), so the listing fails on that."""
    import json
    import socket

    with socket.socket() as probe:  # a free port, closed again: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    text = (project / "stackyard.yml").read_text()
    (project / "stackyard.yml").write_text(
        text.replace(
            "sources: {}\n",
            "sources:\n  bucket:\n    kind: filesystem\n    url: s3://exports/orders\n"
            "    credentials: {secret: BUCKET_KEY}\n"
            "    retries: {count: 0}\n"  # the endpoint stays down: no point waiting on it
            "    tables:\n      orders: {glob: 'orders_*.csv'}\n",
        )
    )
    code, output = cli("run", "-p", str(project), env={"BUCKET_KEY": "AKIA-plain-text"})
    assert code == 1, output
    assert "must be a JSON object" in output and "AKIA-plain-text" not in output
    key = {
        "aws_access_key_id": "key",
        "aws_secret_access_key": "secret-9d2e",
        "endpoint_url": f"http://127.0.0.1:{port}",
    }
    code, result = cli_json("run", "-p", str(project), env={"BUCKET_KEY": json.dumps(key)})
    assert code == 1, result
    error = result["loads"][0]["error"]
    assert f"127.0.0.1:{port}" in error or f"127.0.0.1', {port}" in error, error
    assert "secret-9d2e" not in json.dumps(result)


def test_case_05_a_decimal_in_an_integer_key_is_rejected_not_rounded(project: Path) -> None:
    write(project / "sources/exports/orders.csv", "id,amount\n10,100\n11,110\n")
    code, output = _add_files(project, "--primary-key", "orders=id")
    assert code == 0, output
    write(project / "sources/exports/orders2.csv", "id,amount\n10.6,999\n12,120\n")
    code, result = cli_json("run", "-p", str(project))
    assert rows(project, "SELECT id, amount FROM exports.orders ORDER BY id") == [
        (10, 100),
        (11, 110),
        (12, 120),
    ]
    rejected = rows(project, "SELECT table_name, column_name, raw FROM exports._rejected_rows")
    assert rejected == [("orders", "id", "10.6,999")]
    assert result["loads"][0]["rejected"] == 1


def test_case_05_a_reload_takes_a_column_that_gained_fractions_as_it_now_is(
    project: Path,
) -> None:
    """Loaded incrementally, a fraction in an integer column is rejected, never rounded; a
    reload starts the table over as a fresh project would: the column becomes a double."""
    write(project / "sources/exports/orders.csv", "id,amount\n1,100\n2,200\n")
    code, output = _add_files(project, "--primary-key", "orders=id")
    assert code == 0, output
    write(project / "sources/exports/orders.csv", "id,amount\n1,100\n2,200.5\n3,300\n")
    code, result = cli_json("run", "-p", str(project))
    assert code == 0 and result["counts"]["rows_rejected"] == 1, result
    assert rows(project, "SELECT id, amount FROM exports.orders ORDER BY id") == [
        (1, 100),
        (2, 200),
        (3, 300),
    ]
    code, result = cli_json("reload", "exports", "--yes", "-p", str(project))
    assert code == 0, result
    assert result["counts"]["rows_loaded"] == 3 and result["counts"]["rows_rejected"] == 0
    assert rows(project, "SELECT id, amount FROM exports.orders ORDER BY id") == [
        (1, 100.0),
        (2, 200.5),
        (3, 300.0),
    ]


def test_case_07_reserved_schema_names_are_refused(project: Path) -> None:
    write(project / "sources/exports/orders.csv", "id\n1\n")
    for schema in ("stackyard", "information_schema", "pg_catalog", "main", "Stackyard"):
        code, output = _add_files(project, "--schema", schema)
        assert code == 2, output
        assert "reserved" in output, output
    assert "exports" not in (project / "stackyard.yml").read_text()


def test_case_08_schema_names_are_normalised_as_dlt_does(project: Path) -> None:
    write(project / "sources/exports/orders.csv", "id,amount\n1,10\n")
    code, output = _add_files(project, "--schema", "RawSales")
    assert code == 0, output
    assert scalar(project, "SELECT count(*) FROM raw_sales.orders") == 1
    sources_yml = (project / "transform/models/staging/dlt/_sources.yml").read_text()
    assert "schema: raw_sales" in sources_yml
    code, output = cli("run", "-p", str(project))
    assert code == 0, output
    assert "missing" not in output
    code, output = cli("source", "remove", "exports", "--drop-data", "--yes", "-p", str(project))
    assert code == 0, output
    assert "dropped schema raw_sales" in output
    assert (
        rows(
            project,
            "SELECT schema_name FROM information_schema.schemata WHERE schema_name = 'raw_sales'",
        )
        == []
    )


def test_case_11_types_are_inferred_over_every_file_of_a_first_load(project: Path) -> None:
    write(project / "sources/exports/orders_a.csv", "id,amount\n1,10\n2,20\n")
    write(project / "sources/exports/orders_b.csv", "id,amount\n3,10.5\n")
    code, output = _add_files(project, "--primary-key", "orders=id")
    assert code == 0, output
    assert rows(project, "SELECT id, amount FROM exports.orders ORDER BY id") == [
        (1, 10.0),
        (2, 20.0),
        (3, 10.5),
    ]


def test_case_12_a_missing_sqlite_file_is_an_error_that_creates_nothing(project: Path) -> None:
    code, output = cli(
        "source", "add", "app", "--kind", "sql_database",
        "--connection", "sqlite:///sources/nope.sqlite", "-p", str(project),
    )  # fmt: skip
    assert code == 2, output
    assert "does not exist" in output and "nothing was created" in output
    assert not (project / "sources/nope.sqlite").exists()


@pytest.mark.parametrize("mode", ["detect", "remove"])
def test_rows_deleted_upstream_are_marked_or_removed_as_declared(project: Path, mode: str) -> None:
    from tests.integrity.helpers import sqlite_db

    db = sqlite_db(
        project / "sources/app.sqlite",
        "CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT, updated_at TEXT)",
        rows_of={"accounts": [(i, f"a{i}", "2026-01-01 00:00:00") for i in range(1, 6)]},
    )
    (project / "stackyard.yml").write_text(
        (project / "stackyard.yml")
        .read_text()
        .replace(
            "sources: {}",
            "sources:\n  app:\n    kind: sql_database\n    connection: sqlite:///sources/app.sqlite\n"
            "    tables:\n      accounts: {primary_key: id, cursor: updated_at, "
            f"deletes: {mode}}}\n",
        )
    )
    code, output = cli("run", "-p", str(project))
    assert code == 0, output
    sqlite_db(db, "DELETE FROM accounts WHERE id IN (2, 4)")
    code, result = cli_json("run", "-p", str(project))
    assert code == 0, result
    assert result["loads"][0]["tables"] == [
        {"table": "accounts", "rows": 0, "duplicates": 0, "deleted": 2}
    ]
    if mode == "detect":
        assert rows(
            project, "SELECT id FROM app.accounts WHERE _deleted_at IS NOT NULL ORDER BY id"
        ) == [(2,), (4,)]
        assert scalar(project, "SELECT count(*) FROM app.accounts") == 5
    else:
        assert rows(project, "SELECT id FROM app.accounts ORDER BY id") == [(1,), (3,), (5,)]
    # a key back upstream is a live row again; nothing is marked twice
    sqlite_db(db, "INSERT INTO accounts VALUES (2, 'back', '2026-01-02 00:00:00')")
    code, result = cli_json("run", "-p", str(project))
    assert code == 0, result
    live = "WHERE _deleted_at IS NULL" if mode == "detect" else ""
    assert rows(project, f"SELECT id FROM app.accounts {live} ORDER BY id") == [
        (1,),
        (2,),
        (3,),
        (5,),
    ]
