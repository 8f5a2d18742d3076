"""Duplicates (cases 1, 2, 3 and 6 of the integrity issue): no load path repeats a row."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from tests.conftest import write
from tests.integrity.helpers import cli, cli_json, new_project, rows, scalar, sqlite_db


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    return new_project(tmp_path / "shop")


def _config(project: Path) -> dict:
    return yaml.safe_load((project / "stackyard.yml").read_text())


def test_case_01_key_read_from_the_database_is_written_and_updates_merge(project: Path) -> None:
    sqlite_db(
        project / "sources/billing.sqlite",
        "CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT, updated_at TEXT)",
        rows_of={"accounts": [(i, f"a{i}", "2026-01-01 00:00:00") for i in range(1, 11)]},
    )
    code, output = cli(
        "source", "add", "billing", "--kind", "sql_database",
        "--connection", "sqlite:///sources/billing.sqlite",
        "--table", "accounts", "--cursor", "accounts=updated_at", "-p", str(project),
    )  # fmt: skip
    assert code == 0, output
    table = _config(project)["sources"]["billing"]["tables"]["accounts"]
    assert table == {"primary_key": "id", "cursor": "updated_at"}
    sqlite_db(
        project / "sources/billing.sqlite",
        "UPDATE accounts SET name = 'changed', updated_at = '2026-01-02 00:00:00' WHERE id = 3",
    )
    code, output = cli("run", "-p", str(project))
    assert code == 0, output
    assert rows(project, "SELECT count(*), count(DISTINCT id) FROM billing.accounts") == [(10, 10)]
    assert scalar(project, "SELECT name FROM billing.accounts WHERE id = 3") == "changed"


def _events(path: Path, n: int, at: str) -> None:
    sqlite_db(
        path,
        "CREATE TABLE IF NOT EXISTS events (id INTEGER, kind TEXT, updated_at TEXT)",
        rows_of={"events": [(i, "view", at) for i in range(1, n + 1)]},
    )


def test_case_02_cursor_without_key_is_refused_unless_append(project: Path) -> None:
    _events(project / "sources/app.sqlite", 1000, "2026-01-01 00:00:00")
    args = [
        "source", "add", "app", "--kind", "sql_database",
        "--connection", "sqlite:///sources/app.sqlite",
        "--table", "events", "--cursor", "events=updated_at", "-p", str(project),
    ]  # fmt: skip
    code, output = cli(*args)
    assert code == 2, output
    assert "no primary key" in output and "--append" in output
    assert "app" not in (_config(project).get("sources") or {})

    code, output = cli(*args, "--append")
    assert code == 0, output
    assert _config(project)["sources"]["app"]["tables"]["events"]["append"] is True
    for _ in range(2):
        code, output = cli("run", "-p", str(project))
        assert code == 0, output
        assert scalar(project, "SELECT count(*) FROM app.events") == 1000
    # rows that share the last cursor value but arrive later are new rows: loaded once
    sqlite_db(
        project / "sources/app.sqlite",
        "INSERT INTO events VALUES (2001, 'click', '2026-01-01 00:00:00')",
        "INSERT INTO events VALUES (2002, 'click', '2026-01-03 00:00:00')",
    )
    for _ in range(2):
        code, output = cli("run", "-p", str(project))
        assert code == 0, output
        assert rows(project, "SELECT count(*), count(DISTINCT id) FROM app.events") == [
            (1002, 1002)
        ]


def test_case_03_cursor_without_table_is_a_usage_error(project: Path) -> None:
    sqlite_db(
        project / "sources/crm.sqlite",
        "CREATE TABLE contacts (id INTEGER PRIMARY KEY, updated_at TEXT)",
    )
    code, output = cli(
        "source", "add", "crm", "--kind", "sql_database",
        "--connection", "sqlite:///sources/crm.sqlite",
        "--cursor", "contacts=updated_at", "-p", str(project),
    )  # fmt: skip
    assert code == 2, output
    assert "--cursor contacts=updated_at" in output and "--table contacts" in output
    assert not (_config(project).get("sources") or {})


def test_case_06_duplicate_keys_in_one_batch_are_collapsed_and_reported(project: Path) -> None:
    write(
        project / "sources/exports/orders.csv",
        "id,status\n1,placed\n2,placed\n3,placed\n2,shipped\n4,placed\n5,placed\n"
        "6,placed\n5,returned\n",
    )
    code, result = cli_json(
        "source", "add", "exports", "--kind", "filesystem", "--url", "sources/exports",
        "--table", "orders=orders.csv", "--primary-key", "orders=id", "-p", str(project),
    )  # fmt: skip
    assert code == 0, result
    load = result["load"]
    assert load["tables"] == [{"table": "orders", "rows": 6, "duplicates": 2, "deleted": 0}]
    assert rows(project, "SELECT id, status FROM exports.orders ORDER BY id") == [
        (1, "placed"),
        (2, "shipped"),
        (3, "placed"),
        (4, "placed"),
        (5, "returned"),
        (6, "placed"),
    ]
    code, output = cli("source", "show", "exports", "-p", str(project))
    assert code == 0, output


def test_case_01_on_mariadb_the_key_is_written_and_updates_merge(
    project: Path, mariadb_database: str
) -> None:
    import sqlalchemy

    engine = sqlalchemy.create_engine(mariadb_database)
    with engine.begin() as conn:
        conn.execute(
            sqlalchemy.text(
                "CREATE TABLE accounts (id INT PRIMARY KEY, name VARCHAR(20), updated_at DATETIME)"
            )
        )
        for i in range(1, 6):
            conn.execute(
                sqlalchemy.text(f"INSERT INTO accounts VALUES ({i}, 'a{i}', '2026-01-01')")
            )
    code, output = cli(
        "source", "add", "billing", "--kind", "sql_database", "--connection", mariadb_database,
        "--table", "accounts", "--cursor", "accounts=updated_at", "-p", str(project),
    )  # fmt: skip
    assert code == 0, output
    assert _config(project)["sources"]["billing"]["tables"]["accounts"]["primary_key"] == "id"
    with engine.begin() as conn:
        conn.execute(
            sqlalchemy.text(
                "UPDATE accounts SET name = 'b', updated_at = '2026-01-02' WHERE id = 2"
            )
        )
    engine.dispose()
    code, output = cli("run", "-p", str(project))
    assert code == 0, output
    assert rows(project, "SELECT count(*), count(DISTINCT id) FROM billing.accounts") == [(5, 5)]


def _rest_events(project: Path, url: str) -> None:
    config = _config(project)
    config["sources"] = {
        "feed": {
            "kind": "rest_api",
            "base_url": url,
            "auth": {"type": "bearer", "token": {"secret": "FEED_TOKEN"}},
            "paginator": {
                "type": "page_number", "page_param": "page", "base_page": 1,
                "total_path": "total_pages",
            },
            "endpoints": {
                "events": {
                    "path": "/events", "data_selector": "data", "cursor": "updated_at",
                    "cursor_param": "since", "initial_value": "2000-01-01T00:00:00Z",
                    "append": True,
                }
            },
        }
    }  # fmt: skip
    (project / "stackyard.yml").write_text(yaml.safe_dump(config, sort_keys=False))


def test_case_02_rest_append_loads_rows_at_the_last_cursor_value_once(project: Path) -> None:
    """An API that answers ``since=X`` with the rows at X too (many do): an appending
    endpoint must not append them again on every run."""
    from tests.ingest.api_server import TOKEN, ApiState, serve

    def event(i: int, at: str) -> dict[str, object]:
        return {"id": i, "kind": "view", "updated_at": at}

    state = ApiState(since_inclusive=True, page_size=4)
    state.tables["events"] = [event(i, "2026-01-01T00:00:00Z") for i in range(1, 7)]
    env = {"FEED_TOKEN": TOKEN}
    with serve(state) as url:
        _rest_events(project, url)
        for _ in range(2):
            code, output = cli("run", "-p", str(project), env=env)
            assert code == 0, output
            assert rows(project, "SELECT count(*), count(DISTINCT id) FROM feed.events") == [(6, 6)]
        # a row at the last cursor value arriving later is new: loaded once, as is a newer one
        state.tables["events"] += [event(7, "2026-01-01T00:00:00Z"), event(8, "2026-01-02")]
        for _ in range(2):
            code, output = cli("run", "-p", str(project), env=env)
            assert code == 0, output
            assert rows(project, "SELECT count(*), count(DISTINCT id) FROM feed.events") == [(8, 8)]
        # a copy alike in every field of a row at the last value, arriving later: loaded once
        state.tables["events"].append(event(8, "2026-01-02"))
        for _ in range(2):
            code, output = cli("run", "-p", str(project), env=env)
            assert code == 0, output
            assert rows(project, "SELECT count(*), count(DISTINCT id) FROM feed.events") == [(9, 8)]


_PYTHON_EVENTS = """
import json
from pathlib import Path

import dlt


@dlt.source
def feed():
    @dlt.resource(write_disposition="append")
    def events(updated_at=dlt.sources.incremental("updated_at")):
        yield json.loads((Path(__file__).parent / "events.json").read_text())

    return events
"""


def test_case_02_python_source_appending_with_a_cursor_loads_boundary_rows_once(
    project: Path,
) -> None:
    """A user's resource with dlt's incremental and no key: rows at the last cursor value are
    not loaded again (whatever stackyard's load stamp), and a later copy of one is loaded."""
    import json

    write(project / "sources/feed.py", _PYTHON_EVENTS)
    events = [{"id": i, "updated_at": "2026-01-01"} for i in range(1, 4)]
    (project / "sources/events.json").write_text(json.dumps(events))
    config = _config(project)
    config["sources"] = {"feed": {"kind": "python", "path": "sources/feed.py", "function": "feed"}}
    (project / "stackyard.yml").write_text(yaml.safe_dump(config))
    for _ in range(2):
        code, output = cli("run", "-p", str(project))
        assert code == 0, output
        assert rows(project, "SELECT count(*), count(DISTINCT id) FROM feed.events") == [(3, 3)]
    events.append({"id": 4, "updated_at": "2026-01-01"})
    (project / "sources/events.json").write_text(json.dumps(events))
    code, output = cli("run", "-p", str(project))
    assert code == 0, output
    assert rows(project, "SELECT count(*), count(DISTINCT id) FROM feed.events") == [(4, 4)]
    # a copy alike in every field of a row at the last value, arriving later: loaded once
    events.append({"id": 4, "updated_at": "2026-01-01"})
    (project / "sources/events.json").write_text(json.dumps(events))
    for _ in range(2):
        code, output = cli("run", "-p", str(project))
        assert code == 0, output
        assert rows(project, "SELECT count(*), count(DISTINCT id) FROM feed.events") == [(5, 4)]


def test_a_declared_key_the_source_repeats_is_collapsed_on_the_first_load_too(
    project: Path,
) -> None:
    # The key is declared, not enforced: the source holds id 1 twice (edited in place, say).
    sqlite_db(
        project / "sources/app.sqlite",
        "CREATE TABLE items (id INTEGER, name TEXT, updated_at TEXT)",
        rows_of={
            "items": [
                (1, "old", "2026-01-01 00:00:00"),
                (1, "new", "2026-01-02 00:00:00"),
                (2, "other", "2026-01-01 00:00:00"),
                (3, "dated", "2026-01-01 00:00:00"),
                (3, "earlier", "2025-12-31 00:00:00"),
            ]
        },
    )
    config = _config(project)
    config["sources"] = {
        "app": {
            "kind": "sql_database",
            "connection": "sqlite:///sources/app.sqlite",
            "tables": {"items": {"primary_key": "id", "cursor": "updated_at"}},
        }
    }
    (project / "stackyard.yml").write_text(yaml.safe_dump(config))
    code, run = cli_json("run", "-p", str(project))
    assert code == 0, run
    # As every later merge does: one row per key, the latest kept, the others counted.
    assert rows(project, "SELECT id, name FROM app.items ORDER BY id") == [
        (1, "new"),
        (2, "other"),
        (3, "dated"),
    ]
    assert (run["counts"]["rows_loaded"], run["counts"]["rows_collapsed"]) == (3, 2), run
