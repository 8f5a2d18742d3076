"""ConnectorX panics on SQLite DATETIME text holding a date only next to full timestamps. The
panic (a BaseException) is a failed load, never a crash; under ``backend: auto`` the source is
read again through SQLAlchemy in the same attempt, each row loaded once."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import dlt

from stackyard import Context
from stackyard.console import CaptureConsole
from stackyard.project import init_project
from tests.integrity.helpers import cli, cli_json

BAD = [(1, 1.5, "2024-01-05"), (2, 2.5, "2024-01-06 10:00:00"), (3, 3.0, "2024-01-07")]


def _project(root: Path, backend: str = "", files: bool = False) -> Path:
    """A project whose SQLite source ``app`` has ``orders`` (cursor) and ``events`` (no
    cursor, replaced each load), both with date-only DATETIME text; ``files``: a CSV source
    too."""
    init_project(root)
    (root / "sources" / "files").mkdir(parents=True)
    db = sqlite3.connect(root / "sources" / "app.sqlite")
    for table in ("orders", "events"):
        db.execute(
            f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, amount REAL, changed_at DATETIME)"
        )
        db.executemany(f"INSERT INTO {table} VALUES (?, ?, ?)", BAD)
    db.commit()
    db.close()
    (root / "sources" / "files" / "products.csv").write_text("sku,price\nA,1\nB,2\n")
    setting = f"    backend: {backend}\n" if backend else ""
    extra = (
        "  files:\n    kind: filesystem\n    url: sources/files\n"
        "    tables: {products: {glob: '*.csv', primary_key: sku}}\n"
        if files
        else ""
    )
    yml = root / "stackyard.yml"
    yml.write_text(
        yml.read_text().replace(
            "sources: {}\n",
            "sources:\n  app:\n    kind: sql_database\n"
            f"    connection: sqlite:///sources/app.sqlite\n{setting}"
            "    tables:\n      orders: {primary_key: id, cursor: changed_at}\n"
            "      events: {primary_key: id}\n" + extra,
        )
    )
    return root


def _add(root: Path, rows: list[tuple[int, float, str]]) -> None:
    db = sqlite3.connect(root / "sources" / "app.sqlite")
    for table in ("orders", "events"):
        db.executemany(f"INSERT INTO {table} VALUES (?, ?, ?)", rows)
    db.commit()
    db.close()


def _counts(ctx: Context, table: str) -> tuple[int, int]:
    ((rows, keys),) = ctx.sql(f"SELECT count(*), count(DISTINCT id) FROM app.{table}").rows
    return int(rows), int(keys)


def _pending(root: Path) -> bool:
    pipeline = dlt.attach(
        pipeline_name=f"{root.name}__app__dev", pipelines_dir=str(root / ".stackyard/pipelines")
    )
    return bool(pipeline.has_pending_data)


def test_auto_reads_through_sqlalchemy_after_a_panic_and_loads_each_row_once(
    tmp_path: Path,
) -> None:
    root = _project(tmp_path / "p")
    console = CaptureConsole()
    ctx = Context(root, console=console)
    result = ctx.run()
    assert result.ok and result.exit_code == 0, result.to_dict()
    (load,) = result.loads
    assert load.status == "loaded"
    assert {t.table: t.rows for t in load.tables} == {"orders": 3, "events": 3}
    assert _counts(ctx, "orders") == (3, 3) and _counts(ctx, "events") == (3, 3)
    ((midnight,),) = ctx.sql("SELECT CAST(changed_at AS VARCHAR) FROM app.orders WHERE id = 1").rows
    assert str(midnight).startswith("2024-01-05 00:00:00")
    (note,) = load.notes
    assert "ConnectorX could not read a value" in note and "ParseError" in note
    assert "set `backend: pyarrow`" in note
    assert note in result.to_dict()["loads"][0]["notes"]  # kept for --json
    assert any(e[0] == "progress" and e[2] == note for e in console.events)
    assert next(e[:3] for e in console.events if e[:2] == ("finished", "load app")) == (
        "finished",
        "load app",
        "warn",
    )
    assert not _pending(root)

    # New rows, one of them date-only again: read once, the old ones not twice.
    _add(root, [(4, 4.0, "2024-02-01"), (5, 5.0, "2024-02-02 08:30:00")])
    result = ctx.run()
    assert result.ok, result.to_dict()
    assert _counts(ctx, "orders") == (5, 5) and _counts(ctx, "events") == (5, 5)
    (load,) = result.loads
    assert len(load.notes) == 1
    assert not _pending(root)
    assert ctx.run().ok  # nothing new: nothing read again
    assert _counts(ctx, "orders") == (5, 5) and _counts(ctx, "events") == (5, 5)


def test_explicit_connectorx_fails_that_source_with_the_hint_and_the_run_goes_on(
    tmp_path: Path,
) -> None:
    root = _project(tmp_path / "p", backend="connectorx", files=True)
    code, output = cli_json("run", "-p", str(root))
    assert code == 1, output
    loads = {load["source"]: load for load in output["loads"]}
    assert loads["app"]["status"] == "failed"
    assert "ConnectorX could not read source 'app'" in loads["app"]["error"]
    assert "set `backend: pyarrow`" in loads["app"]["error"]
    assert loads["files"]["status"] == "loaded" and loads["files"]["tables"][0]["rows"] == 2
    assert not _pending(root)  # the interrupted extract is never loaded later

    with Context(root) as ctx:
        ((status,),) = ctx.sql(
            f"SELECT status FROM stackyard.runs WHERE run_id = '{output['run_id']}'"
        ).rows
        assert status == "failed"  # recorded
    yml = root / "stackyard.yml"
    yml.write_text(yml.read_text().replace("backend: connectorx", "backend: pyarrow"))
    code, text = cli("run", "-p", str(root))
    assert code == 0, text
    with Context(root) as ctx:
        assert _counts(ctx, "orders") == (3, 3) and _counts(ctx, "events") == (3, 3)


SOURCE = """
import dlt


class Panic(BaseException):
    \"\"\"What a native extension raises when it panics (pyo3's PanicException).\"\"\"


@dlt.source
def crashing():
    @dlt.resource
    def things():
        yield {"id": 1}
        raise Panic("called `Option::unwrap()` on a `None` value")

    return things
"""


def test_a_panic_in_any_source_is_a_failed_load_not_a_crash(tmp_path: Path) -> None:
    root = _project(tmp_path / "p", backend="pyarrow", files=True)
    (root / "sources" / "crashing.py").write_text(SOURCE)
    yml = root / "stackyard.yml"
    yml.write_text(
        yml.read_text().replace(
            "  files:\n",
            "  crashing:\n    kind: python\n    path: sources/crashing.py\n"
            "    function: crashing\n  files:\n",
        )
    )
    code, output = cli_json("run", "-p", str(root))
    assert code == 1, output
    loads = {load["source"]: load for load in output["loads"]}
    assert loads["crashing"]["status"] == "failed"
    assert "Option::unwrap()" in loads["crashing"]["error"]
    assert loads["app"]["status"] == "loaded" and loads["files"]["status"] == "loaded"


def test_stop_requests_pass_and_other_base_exceptions_are_panics() -> None:
    import asyncio

    from stackyard.ingest.backend_fallback import is_panic, panic_message

    # a stop request, alone or inside a group, is never taken for a failed load
    assert not is_panic(KeyboardInterrupt()) and not is_panic(SystemExit(1))
    assert not is_panic(BaseExceptionGroup("g", [KeyboardInterrupt(), ValueError()]))
    assert not is_panic(ValueError())  # ordinary errors have their own boundary
    assert is_panic(BaseExceptionGroup("g", [asyncio.CancelledError()]))
    # a cancellation escaping a stream's event loop is named as one, not as a crash
    cancelled = panic_message("events", None, asyncio.CancelledError())
    assert cancelled == "loading source 'events' was cancelled before it finished (CancelledError)"
