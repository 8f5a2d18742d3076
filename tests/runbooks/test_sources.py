"""`stackyard source add / remove / list / show` against real sources, tried as a user would."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stackyard import Context
from stackyard.cli.main import app
from stackyard.errors import UsageError
from stackyard.project import init_project
from tests.conftest import write
from tests.ingest.api_server import TOKEN, ApiState, make_customers, serve
from tests.secret_scan import SecretScan

runner = CliRunner()


def cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.output


def git(project: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=project, capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture()
def project(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "shop"
    init_project(root)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "init")
    yield root


def assert_pristine(project: Path) -> None:
    assert git(project, "status", "--porcelain") == ""


def test_filesystem_add_is_idempotent_and_remove_restores(project: Path) -> None:
    write(
        project / "sources/exports/orders.csv",
        "id,customer_id,status,ordered_at\n1,7,placed,2026-01-01 10:00:00\n"
        "2,8,shipped,2026-01-02 11:00:00\n",
    )
    args = [
        "source",
        "add",
        "exports",
        "--kind",
        "filesystem",
        "--url",
        "sources/exports",
        "--table",
        "orders=orders.csv",
        "-p",
        str(project),
    ]
    code, output = cli(*args, "--dry-run")  # the source dbt will know it by
    assert code == 0 and "the dbt source 'dlt_exports'" in output, output
    code, output = cli(*args)
    assert code == 0, output
    for line in (
        "schema exists",
        "rows loaded: orders",
        "staging models build",
        "their tests pass",
        "freshness passes",
    ):
        assert f"✔ {line}" in output
    # The run recorded for the first load also holds the build that verified it: status and
    # the report said 0 models built and 0 tests passed for a build that had happened.
    built = re.search(r"(\d+)/\d+ models built.*?(\d+)/\d+ tests passed", output, re.S)
    assert built is not None, output
    runs = (
        Context(project)
        .sql("SELECT models_built, tests_passed, dbt_build FROM stackyard.runs")
        .rows
    )
    assert [tuple(r) for r in runs] == [(int(built[1]), int(built[2]), "built")], runs
    sql = (project / "transform/models/staging/dlt/stg_dlt__orders.sql").read_text()
    assert "id as order_id" in sql
    assert "cast(ordered_at as timestamp) as ordered_at" in sql
    assert "_loaded_at" in sql and "_dlt_load_id" not in sql
    yml = (project / "transform/models/staging/dlt/stg_dlt__orders.yml").read_text()
    assert "name: order_id" in yml and "detected in the data" in yml
    sources = (project / "transform/models/staging/dlt/_sources.yml").read_text()
    assert "loaded_at_field: _loaded_at" in sources and "count: 48" in sources

    before = {
        p: p.read_text()
        for p in project.rglob("*")
        if p.is_file()
        and ".git" not in p.parts
        and ".stackyard" not in p.parts
        and "target" not in p.parts
        and "logs" not in p.parts
    }
    code, output = cli(*args)
    assert code == 0 and "already in stackyard.yml" in output
    after = {p: p.read_text() for p in before}
    assert before == after  # running it again changes nothing
    code, output = cli("run", "-p", str(project))
    assert code == 0, output
    assert ("staging", "stg_dlt__orders") in relations(project)

    code, output = cli(
        "source", "remove", "exports", "--drop-data", "--dry-run", "-p", str(project)
    )
    assert code == 0 and "staging.stg_dlt__orders, built on them" in output, output
    code, output = cli("source", "remove", "exports", "--drop-data", "--yes", "-p", str(project))
    assert code == 0, output
    assert "dropped schema exports" in output
    # The staging view built from the deleted model goes with the data it read: DuckDB's
    # DROP SCHEMA … CASCADE left it behind, over a table that was no longer there.
    assert "dropped staging.stg_dlt__orders" in output, output
    assert ("staging", "stg_dlt__orders") not in relations(project)
    (project / "sources/exports/orders.csv").unlink()
    (project / "sources/exports").rmdir()
    assert_pristine(project)


def test_sql_database_sqlite_discovers_tables_and_keys(project: Path) -> None:
    import sqlite3

    db = sqlite3.connect(project / "sources" / "app.sqlite")
    db.execute("CREATE TABLE accounts (account_ref TEXT PRIMARY KEY, name TEXT)")
    db.execute("CREATE TABLE events (id INTEGER, account_ref TEXT, happened_at DATETIME)")
    db.executemany("INSERT INTO accounts VALUES (?, ?)", [("a1", "x"), ("a2", "y")])
    db.executemany(
        "INSERT INTO events VALUES (?, ?, ?)", [(i, "a1", "2026-01-01 00:00:00") for i in range(5)]
    )
    db.commit()
    db.close()
    code, output = cli(
        "source",
        "add",
        "app",
        "--kind",
        "sql_database",
        "--connection",
        "sqlite:///sources/app.sqlite",
        "-p",
        str(project),
        "--json",
    )
    data = json.loads(output)
    assert code == 0, output
    assert data["ok"] and {t["table"]: t["rows"] for t in data["load"]["tables"]} == {
        "accounts": 2,
        "events": 5,
    }
    config = (project / "stackyard.yml").read_text()
    assert "accounts: {primary_key: account_ref}" in config
    accounts = (project / "transform/models/staging/dlt/stg_dlt__accounts.yml").read_text()
    assert "name: account_ref" in accounts and "declared" in accounts
    events = (project / "transform/models/staging/dlt/stg_dlt__events.yml").read_text()
    assert "name: event_id" in events  # id is unique in the data: detected

    code, output = cli("source", "list", "-p", str(project), "--json")
    listed = json.loads(output)
    assert [(s["name"], s["kind"], len(s["tables"])) for s in listed] == [
        ("app", "sql_database", 2)
    ]
    # the first load is recorded as a run's load is
    assert listed[0]["last_loaded_at"] is not None and listed[0]["last_status"] == "loaded"
    code, output = cli("source", "list", "-p", str(project))
    assert code == 0 and "never" not in output, output
    code, output = cli("source", "show", "app", "-p", str(project))
    assert code == 0 and "stg_dlt__accounts" in output and "events" in output


def test_rest_api_add_with_secret_auth(project: Path, secret_scan: SecretScan) -> None:
    secret_scan.secret(TOKEN)
    secret_scan.project(project)
    state = ApiState(customers=make_customers(23))
    with serve(state) as url:
        code, output = cli(
            "source",
            "add",
            "crm",
            "--kind",
            "rest_api",
            "--base-url",
            url,
            "--endpoint",
            "customers=/customers",
            "--auth",
            "bearer:CRM_TOKEN",
            "--paginator",
            "page_number:page_param=page,base_page=1,total_path=total_pages",
            "--data-selector",
            "data",
            "--primary-key",
            "customers=id",
            "--cursor",
            "customers=updated_at",
            "--cursor-param",
            "since",
            "--initial-value",
            "2000-01-01T00:00:00Z",
            "-p",
            str(project),
            env={"CRM_TOKEN": TOKEN},
        )
        assert code == 0, output
        assert "loaded customers: 23 rows" in output
        secret_scan.output(output)
        # the project the runbook left behind runs as a whole
        code, output = cli("run", "-p", str(project), env={"CRM_TOKEN": TOKEN})
        assert code == 0, output
        secret_scan.output(output)
        assert "2 tests passed" in output
    sql = (project / "transform/models/staging/dlt/stg_dlt__customers.sql").read_text()
    assert "id as customer_id" in sql and "lifetime_value" in sql
    assert TOKEN not in (project / "stackyard.yml").read_text()


def test_python_source(project: Path) -> None:
    write(
        project / "sources/weather.py",
        """
        import dlt

        @dlt.source
        def weather(city: str = "Oslo"):
            @dlt.resource(primary_key="day")
            def readings():
                yield [{"day": f"2026-01-0{i}", "city": city, "temp_c": i * 1.5}
                       for i in range(1, 6)]
            return readings
        """,
    )
    git(project, "add", "-A")
    git(project, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "src")
    code, output = cli(
        "source",
        "add",
        "weather",
        "--kind",
        "python",
        "--path",
        "sources/weather.py",
        "--function",
        "weather",
        "-p",
        str(project),
    )
    assert code == 0, output
    code, output = cli("run", "-p", str(project))
    assert code == 0, output
    yml = (project / "transform/models/staging/dlt/stg_dlt__readings.yml").read_text()
    assert "name: day" in yml
    code, _ = cli("source", "remove", "weather", "--yes", "-p", str(project))
    assert code == 0
    assert_pristine(project)


def relations(project: Path) -> set[tuple[str, str]]:
    rows = (
        Context(project).sql("SELECT table_schema, table_name FROM information_schema.tables").rows
    )
    return {(str(r[0]), str(r[1])) for r in rows}


def schemas(project: Path) -> set[str]:
    database = project / ".stackyard" / "dev.duckdb"
    if not database.exists():
        return set()
    rows = Context(project).sql("SELECT schema_name FROM information_schema.schemata").rows
    return {str(r[0]) for r in rows}


def test_a_folder_that_does_not_exist_is_refused_before_anything(project: Path) -> None:
    args = ["--table", "x=*.csv", "--primary-key", "x=id", "-p", str(project)]
    for dry_run in ([], ["--dry-run"]):
        code, output = cli(
            "source", "add", "broken", "--kind", "filesystem", "--url", "sources/nowhere",
            *args, *dry_run,
        )  # fmt: skip
        assert code == 2, output
        assert "--url sources/nowhere: the folder" in output and "does not exist" in output
    assert "broken" not in schemas(project)
    code, output = cli(
        "source", "add", "mine", "--kind", "python", "--path", "sources/nope.py",
        "--function", "f", "-p", str(project),
    )  # fmt: skip
    assert code == 2 and "--path sources/nope.py: the file" in output, output
    # SQLite would create a missing file, empty, on connect: refused up front as well.
    code, output = cli(
        "source", "add", "db", "--kind", "sql_database", "--connection",
        "sqlite:///sources/nowhere.sqlite", "--table", "orders", "-p", str(project),
    )  # fmt: skip
    assert code == 2, output
    assert "--connection sources/nowhere.sqlite: the file" in output, output
    # ... and from the Python API, which takes the entry as it is.
    entry = {"kind": "sql_database", "connection": "sqlite:///sources/nowhere.sqlite"}
    with pytest.raises(UsageError, match=r"--connection sources/nowhere\.sqlite: the file"):
        Context(project).sources().add("db", entry | {"tables": {"orders": {}}})
    assert "db" not in schemas(project)
    assert not (project / "sources" / "nowhere.sqlite").exists()
    assert_pristine(project)


def test_a_function_the_file_does_not_define_is_refused_before_anything(project: Path) -> None:
    """It was a failed first load (exit 1), though nothing could be attempted."""
    write(
        project / "sources/boom.py",
        """
        import dlt

        @dlt.source
        def load_items():
            return dlt.resource([{"id": 1}], name="items")

        def helper():
            pass
        """,
    )
    before = (project / "stackyard.yml").read_text()
    for function, suggestion in (("load_item", " (did you mean 'load_items'?)"), ("nosuch", "")):
        code, output = cli(
            "source", "add", "x", "--kind", "python", "--path", "sources/boom.py",
            "--function", function, "-p", str(project),
        )  # fmt: skip
        assert code == 2, output
        said = " ".join(output.split())
        assert f"--function {function}: sources/boom.py defines no '{function}'{suggestion}" in (
            said
        )
        assert "functions in the file: helper, load_items" in said
    assert (project / "stackyard.yml").read_text() == before
    assert "x" not in schemas(project)


def test_one_rejected_row_is_counted_as_one(project: Path) -> None:
    write(project / "sources/one/a.csv", "id,amount\n1,0.5\n2,1e400\n")  # past a double
    code, output = cli(
        "source", "add", "f", "--kind", "filesystem", "--url", "sources/one",
        "--table", "a=*.csv", "--primary-key", "a=id", "-p", str(project),
    )  # fmt: skip
    assert code == 1, output  # a rejected row fails the verification
    said = " ".join(output.split())
    assert "rows loaded: a: 1 row in f.a" in said  # was "1 rows in f.a"
    assert "no rejected rows: 1 row did not fit: see f._rejected_rows" in said  # "1 rows"


def test_failed_first_load_adds_nothing_and_drops_the_schema_it_created(project: Path) -> None:
    (project / "sources" / "empty").mkdir()  # there, but no file matches the glob
    code, output = cli(
        "source", "add", "broken", "--kind", "filesystem", "--url", "sources/empty",
        "--table", "x=*.csv", "--primary-key", "x=id", "-p", str(project),
    )  # fmt: skip
    assert code == 1, output
    assert "✘ first load" in output or "first load failed" in output
    assert not {"broken", "broken_staging"} & schemas(project)
    (project / "sources" / "empty").rmdir()
    assert_pristine(project)


def test_remove_drops_dlt_staging_schema_too(project: Path) -> None:
    write(project / "sources/exports/orders.csv", "id,status\n1,placed\n2,shipped\n")
    code, output = cli(
        "source", "add", "exports", "--kind", "filesystem", "--url", "sources/exports",
        "--table", "orders=orders.csv", "--primary-key", "orders=id", "-p", str(project),
    )  # fmt: skip
    assert code == 0, output
    write(project / "sources/exports/orders.csv", "id,status\n1,shipped\n3,placed\n")
    code, output = cli("run", "-p", str(project))  # merges on the key, through dlt's staging
    assert code == 0, output
    assert {"exports", "exports_staging"} <= schemas(project)

    code, output = cli(
        "source", "remove", "exports", "--drop-data", "--dry-run", "-p", str(project)
    )
    assert code == 0 and "DROP SCHEMA exports_staging CASCADE" in output, output
    code, output = cli("source", "remove", "exports", "--drop-data", "--yes", "-p", str(project))
    assert code == 0, output
    assert "dropped schema exports\n" in output and "dropped schema exports_staging" in output
    assert not {"exports", "exports_staging"} & schemas(project)


def test_remove_drop_data_of_an_unknown_source_asks_nothing(project: Path) -> None:
    done = runner.invoke(
        app, ["source", "remove", "nosuch", "--drop-data", "-p", str(project)], input="y\n"
    )
    assert done.exit_code == 2, done.output
    assert "no source named 'nosuch'" in done.output
    assert "Drop schema" not in done.output


def test_clashes_and_bad_options_change_nothing(project: Path) -> None:
    write(project / "transform/models/staging/dlt/stg_dlt__orders.sql", "select 1 as hand_made\n")
    write(project / "sources/exports/orders.csv", "id\n1\n")
    git(project, "add", "-A")
    git(project, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "mine")
    code, output = cli(
        "source",
        "add",
        "exports",
        "--kind",
        "filesystem",
        "--url",
        "sources/exports",
        "--table",
        "orders=orders.csv",
        "-p",
        str(project),
    )
    assert code == 2
    assert "stg_dlt__orders.sql already exists and was not generated by stackyard" in output
    assert_pristine(project)
    code, output = cli("source", "add", "x", "--kind", "filesytem", "-p", str(project))
    assert code == 2 and "did you mean 'filesystem'" in output
    code, output = cli(
        "source", "add", "x", "--kind", "rest_api", "--base-url", "ftp://x", "-p", str(project)
    )
    assert code == 2 and "base_url" in output
    code, output = cli("source", "remove", "nope", "-p", str(project))
    assert code == 2 and "no source named 'nope'" in output
    assert_pristine(project)


def test_add_and_remove_touch_only_their_own_lines_of_sources_yml(project: Path) -> None:
    long = "Orders as the old shop wrote them, kept for the finance team's reconciliation " * 2
    hand_made = (
        "# our own sources, kept by hand\n"
        "version: 2\n"
        "sources:\n"
        "  - name: legacy\n"
        f"    description: {long.strip()}\n"
        "    schema: legacy\n"
        "    freshness: {warn_after: {count: 12,   period: hour}}   # as finance asked\n"
        "    tables:\n"
        "      - name: orders\n"
    )
    sources_yml = project / "transform/models/staging/dlt/_sources.yml"
    write(sources_yml, hand_made)
    write(project / "sources/exports/orders.csv", "id,status\n1,placed\n2,shipped\n")
    git(project, "add", "-A")
    git(project, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "mine")

    code, output = cli(
        "source", "add", "exports", "--kind", "filesystem", "--url", "sources/exports",
        "--table", "orders=orders.csv", "-p", str(project),
    )  # fmt: skip
    assert code == 0, output
    text = sources_yml.read_text()
    assert text.startswith(hand_made)  # every line it did not need to touch, byte for byte
    assert "name: dlt_exports" in text[len(hand_made) :]

    code, output = cli("source", "remove", "exports", "--drop-data", "--yes", "-p", str(project))
    assert code == 0, output
    assert sources_yml.read_text() == hand_made
    assert_pristine(project)


@pytest.mark.parametrize("json_output", [False, True])
def test_a_password_in_connection_is_refused_without_printing_it(
    project: Path, json_output: bool
) -> None:
    args = ["source", "add", "e2", "--kind", "sql_database", "-p", str(project)]
    args += ["--connection", "postgresql://u:S3cretPw@db.example/d", "--table", "orders"]
    code, output = cli(*args, *(["--json"] if json_output else []))
    assert code == 2, output
    assert "S3cretPw" not in output
    assert "password" in output and "--connection-secret" in output
    assert "e2" not in (project / "stackyard.yml").read_text()


def test_a_url_whose_driver_is_not_installed_is_a_usage_error(project: Path) -> None:
    code, output = cli(
        "source", "add", "m", "--kind", "sql_database", "-p", str(project), "--no-load",
        "--connection", "mysql://root@127.0.0.1:3306/test", "--table", "t",
    )  # fmt: skip
    assert code == 2, output
    assert "no driver for 'mysql://'" in output and "mysql+pymysql://" in output


def test_a_mixed_case_table_is_verified_under_the_name_it_loads_as(project: Path) -> None:
    import sqlite3

    db = sqlite3.connect(project / "crm.sqlite")
    db.execute("CREATE TABLE MixedCase (id INTEGER PRIMARY KEY, v TEXT)")
    db.execute("INSERT INTO MixedCase VALUES (1, 'a'), (2, 'b')")
    db.commit()
    db.close()
    code, output = cli(
        "source", "add", "mc", "--kind", "sql_database", "-p", str(project),
        "--connection", "sqlite:///crm.sqlite", "--table", "MixedCase",
    )  # fmt: skip
    assert code == 0, output
    assert "rows loaded: mixed_case: 2 rows in mc.mixed_case" in output
    code, output = cli("source", "show", "mc", "-p", str(project))
    assert code == 0 and "missing" not in output, output


def test_remove_drop_data_says_what_other_targets_still_hold(project: Path) -> None:
    config = project / "stackyard.yml"
    config.write_text(
        config.read_text().replace(
            "targets:\n",
            "targets:\n  other:\n    type: duckdb\n    path: .stackyard/other.duckdb\n",
        )
    )
    write(project / "sources/exports/orders.csv", "id,status\n1,placed\n")
    code, output = cli(
        "source", "add", "exports", "--kind", "filesystem", "--url", "sources/exports",
        "--table", "orders=orders.csv", "-p", str(project),
    )  # fmt: skip
    assert code == 0, output
    code, output = cli("run", "-t", "other", "-p", str(project))
    assert code == 0, output

    code, output = cli("source", "remove", "exports", "--drop-data", "--yes", "-p", str(project))
    assert code == 0, output
    assert "exports" not in schemas(project)
    said = " ".join(output.split())
    assert "note: dropped on target 'dev' only; other may still hold the data" in said, output
    command = 'stackyard sql -t other "DROP SCHEMA IF EXISTS exports CASCADE"'
    assert command in said, output
    # The command shown is one a user can run as it is.
    code, output = cli(
        "sql", "-t", "other", "DROP SCHEMA IF EXISTS exports CASCADE", "-p", str(project)
    )
    assert code == 0, output
    held = (
        Context(project)
        .sql("SELECT schema_name FROM information_schema.schemata", target="other")
        .rows
    )
    assert "exports" not in {r[0] for r in held}


def test_a_key_declared_in_capitals_is_tested_under_the_name_it_loads_as(
    project: Path,
) -> None:
    # Before: the generated tests named "ID", quoted, a column the staging model had
    # renamed from the loaded `id` (dbt: 0/2 tests passed).
    write(project / "sources/exports/things.csv", "ID,Name\n1,a\n2,b\n")
    code, output = cli(
        "source", "add", "exports", "--kind", "filesystem", "-p", str(project),
        "--url", "sources/exports", "--table", "things=*.csv", "--primary-key", "things=ID",
    )  # fmt: skip
    assert code == 0, output
    assert "their tests pass: 2/2" in output, output
    yml = (project / "transform/models/staging/dlt/stg_dlt__things.yml").read_text()
    assert "- name: thing_id" in yml and "quote: true" not in yml
    # The monitors' duplicate check reads the key as it loaded too.
    report = Context(project).monitoring().run_now()
    health = {t.table: t for t in report.tables}
    dupes = next(c for c in health["exports.things"].checks if c.check == "duplicates")
    assert dupes.status == "ok" and "(id)" in dupes.reason, dupes


def test_a_semicolon_export_is_refused_naming_the_flag_and_added_with_it(project: Path) -> None:
    write(project / "sources/exports/inv.csv", "id;amount\n1;9.50\n2;12.00\n")
    args = ["source", "add", "exports", "--kind", "filesystem", "-p", str(project)]
    args += ["--url", "sources/exports", "--table", "inv=*.csv", "--primary-key", "inv=id"]
    code, output = cli(*args)
    # Before: "the first load brought no rows" (each line rejected as one field).
    assert code == 1 and "--delimiter ';'" in output, output
    assert git(project, "status", "--porcelain") == "?? sources/\n"  # the export alone
    code, output = cli(*args, "--delimiter", ";")
    assert code == 0 and "loaded inv: 2 rows" in output, output
    assert Context(project).sql("select id, amount from exports.inv order by id").rows == (
        (1, 9.5),
        (2, 12.0),
    )
