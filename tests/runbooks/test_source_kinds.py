"""Source kinds come from one registry: every registered kind walks add → run → monitors, a
new kind is added through the registry alone, and a declared key (REST included) gets its
duplicate-key monitor."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, ClassVar, Literal

import pytest

from stackyard import Context
from stackyard.config.sources import (
    SourceBase,
    register_source_kind,
    source_kinds,
    unregister_source_kind,
)
from stackyard.monitors.health import TableHealth
from stackyard.project import init_project
from tests.conftest import write
from tests.ingest.api_server import TOKEN, ApiState, make_customers, serve

ENV = {"CRM_TOKEN": TOKEN}


# --------------------------------------------------------------------------- a toy kind


class ToySource(SourceBase):
    """A kind that makes rows up: the smallest complete kind."""

    BUILDER: ClassVar[str] = "tests.runbooks.test_source_kinds:build_toys"
    CLI_OPTIONS: ClassVar[tuple[str, ...]] = ("primary_key",)

    kind: Literal["toy"]
    rows: int = 3
    primary_key: str | None = None

    def declared_tables(self) -> tuple[str, ...]:
        return ("toys",)

    def primary_keys(self) -> dict[str, tuple[str, ...]]:
        return {"toys": (self.primary_key,)} if self.primary_key else {}


def build_toys(name: str, config: ToySource, context: Any) -> list[Any]:
    import dlt

    @dlt.resource(name="toys", primary_key=config.primary_key, write_disposition="merge")
    def toys() -> Iterator[dict[str, Any]]:
        yield from ({"toy_id": i, "colour": "red"} for i in range(1, config.rows + 1))

    return [toys]


@pytest.fixture()
def toy_kind() -> Iterator[None]:
    register_source_kind(ToySource)
    yield
    unregister_source_kind("toy")


# --------------------------------------------------------------------------- each kind


def _sql(project: Path, stack: ExitStack) -> dict[str, Any]:
    db = sqlite3.connect(project / "sources" / "app.sqlite")
    db.execute("CREATE TABLE things (thing_id INTEGER PRIMARY KEY, name TEXT)")
    db.executemany("INSERT INTO things VALUES (?, ?)", [(i, f"t{i}") for i in range(1, 6)])
    db.commit()
    db.close()
    return {
        "connection": "sqlite:///sources/app.sqlite",
        "tables": {"things": {"primary_key": "thing_id"}},
    }


def _files(project: Path, stack: ExitStack) -> dict[str, Any]:
    write(project / "sources/exports/things.csv", "thing_id,name\n1,a\n2,b\n3,c\n")
    return {
        "url": "sources/exports",
        "tables": {"things": {"glob": "things*.csv", "primary_key": "thing_id"}},
    }


def _rest(project: Path, stack: ExitStack) -> dict[str, Any]:
    url = stack.enter_context(serve(ApiState(customers=make_customers(12))))
    return {
        "base_url": url,
        "auth": {"type": "bearer", "token": {"secret": "CRM_TOKEN"}},
        "paginator": {
            "type": "page_number",
            "page_param": "page",
            "base_page": 1,
            "total_path": "total_pages",
        },
        "endpoints": {
            "customers": {"path": "/customers", "data_selector": "data", "primary_key": "id"}
        },
    }


def _python(project: Path, stack: ExitStack) -> dict[str, Any]:
    write(
        project / "sources/weather.py",
        """
        import dlt

        @dlt.source
        def weather():
            @dlt.resource
            def readings():
                yield [{"day": f"2026-01-0{i}", "temp_c": i * 1.5} for i in range(1, 6)]
            return readings
        """,
    )
    return {
        "path": "sources/weather.py",
        "function": "weather",
        "primary_keys": {"readings": "day"},
    }


def _stream(project: Path, stack: ExitStack) -> dict[str, Any]:
    from tests.ingest import jetstream

    tag = uuid.uuid4().hex[:10]
    name, subject = f"SYK_{tag.upper()}", f"syk{tag}"
    jetstream.reset_stream(name, f"{subject}.>")
    stack.callback(jetstream.delete_stream, name)
    jetstream.publish_events(f"{subject}.created", range(5))
    return {
        "url": jetstream.NATS_URL,
        "subject": f"{subject}.>",
        "table": "events",
        "primary_key": "event_id",
    }


def _external(project: Path, stack: ExitStack) -> dict[str, Any]:
    import duckdb

    from tests.ingest.loader_tables import write_tables

    (project / ".stackyard").mkdir(exist_ok=True)
    conn = duckdb.connect(str(project / ".stackyard" / "dev.duckdb"))
    try:
        write_tables(conn, "duckdb", "airbyte", "src", 1)  # as Airbyte writes them
    finally:
        conn.close()
    return {"loader": "airbyte", "tables": {"tickets": {"primary_key": "id"}, "users": {}}}


def _toy(project: Path, stack: ExitStack) -> dict[str, Any]:
    return {"rows": 4, "primary_key": "toy_id"}


# kind → (how to set up a source of it, the table whose declared key a monitor checks)
KIND_FIXTURES: dict[str, tuple[Callable[[Path, ExitStack], dict[str, Any]], str]] = {
    "sql_database": (_sql, "things"),
    "filesystem": (_files, "things"),
    "rest_api": (_rest, "customers"),
    "python": (_python, "readings"),
    "stream": (_stream, "events"),
    "external": (_external, "tickets"),
    "toy": (_toy, "toys"),
}


def walk(tmp_path: Path, kind: str) -> TableHealth:
    """add → run → monitors for one kind; the health of its keyed table."""
    setup, table = KIND_FIXTURES[kind]
    root = tmp_path / kind
    init_project(root)
    with ExitStack() as stack, Context(root, environ=ENV) as ctx:
        options = setup(root, stack)
        added = ctx.source_add("src", kind, options)
        assert added.ok, added
        run = ctx.run()
        assert run.ok, run.to_dict()
        report = ctx.monitoring().run_now()
    health = {t.table: t for t in report.tables}
    return health[f"src.{table}"]


def duplicate_check(health: TableHealth) -> Any:
    return next((c for c in health.checks if c.check == "duplicates"), None)


@pytest.mark.parametrize(
    "kind", ["sql_database", "filesystem", "rest_api", "python", "stream", "external"]
)
def test_every_built_in_kind_walks_add_run_monitors(tmp_path: Path, kind: str) -> None:
    health = walk(tmp_path, kind)
    check = duplicate_check(health)
    assert check is not None, f"{kind}: no duplicate-key monitor on {health.table}"
    assert check.status == "ok"


def test_every_registered_kind_has_a_walk() -> None:
    """A kind registered without a walk here fails, so no kind skips add → run → monitors."""
    missing = set(source_kinds()) - set(KIND_FIXTURES)
    assert not missing, f"add a setup for {sorted(missing)} to KIND_FIXTURES"


def test_a_rest_endpoints_declared_key_gets_its_duplicate_key_monitor(tmp_path: Path) -> None:
    health = walk(tmp_path, "rest_api")
    check = duplicate_check(health)
    assert check is not None and check.status == "ok"
    assert "id" in check.reason


def test_a_new_kind_is_added_through_the_registry_alone(tmp_path: Path, toy_kind: None) -> None:
    assert "toy" in source_kinds()
    health = walk(tmp_path, "toy")
    check = duplicate_check(health)
    assert check is not None and check.status == "ok"
    assert "toy_id" in check.reason


def test_source_add_help_lists_every_registered_kind() -> None:
    from typer.testing import CliRunner

    from stackyard.cli.main import app

    output = CliRunner().invoke(app, ["source", "add", "--help"], terminal_width=200).output
    for kind in source_kinds():
        assert kind in output


def test_every_kinds_cli_options_exist() -> None:
    import typer.main

    from stackyard.cli.main import app

    command: Any = typer.main.get_command(app)
    names = {p.name for p in command.commands["source"].commands["add"].params}
    for kind, cls in source_kinds().items():
        assert set(cls.CLI_OPTIONS) <= names, f"{kind}: {set(cls.CLI_OPTIONS) - names}"
