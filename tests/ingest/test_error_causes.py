"""A failing file source reports the real cause (DuckDB's message, with the file and line),
never the StopIteration it was raised inside, nor a megabyte-long offending row."""

from __future__ import annotations

from pathlib import Path

from stackyard import Context
from stackyard.project import init_project


def _run(tmp_path: Path, name: str, content: bytes, table: str = "", target: str = "") -> str:
    """Load one file (``table``: more of the table's settings, ``target``: of the DuckDB
    target's); the load's error."""
    root = tmp_path / "p"
    init_project(root)
    (root / "sources" / "files").mkdir(parents=True)
    (root / "sources" / "files" / name).write_bytes(content)
    text = (
        (root / "stackyard.yml")
        .read_text()
        .replace(
            "sources: {}\n",
            f"sources:\n  f:\n    kind: filesystem\n    url: sources/files\n"
            f"    tables: {{t: {{glob: '{name}'{table}}}}}\n",
        )
        .replace("    path: .stackyard/dev.duckdb\n", f"    path: .stackyard/dev.duckdb\n{target}")
    )
    (root / "stackyard.yml").write_text(text)
    result = Context(root).run()
    (load,) = result.loads
    assert load.status == "failed"
    return load.error or ""


def test_oversized_csv_field_says_the_line_is_too_long(tmp_path: Path) -> None:
    error = _run(tmp_path, "big.csv", b"id,a\n1," + b"x" * 3_000_000 + b"\n")
    assert "StopIteration" not in error
    assert "Maximum line size" in error and "big.csv" in error, error
    assert "xxxxxxxxxx" not in error  # the offending row is not echoed
    assert len(error) < 1000


def test_a_load_out_of_memory_says_to_raise_the_targets_limit(tmp_path: Path) -> None:
    # A keyed load merges in DuckDB; a limit far below what the merge needs fails it (a
    # sensible one spills instead).
    rows = b"".join(b"%d,%s\n" % (i, b"x" * 50) for i in range(20_000))
    error = _run(
        tmp_path, "t.csv", b"id,s\n" + rows, ", primary_key: id", "    memory_limit: 2MB\n"
    )
    assert "load step" in error and "Out of Memory" in error, error
    assert "set `memory_limit` on the target in stackyard.yml" in error
    assert "SET threads" not in error  # DuckDB's own advice has nowhere to go in stackyard


def test_a_cursor_that_is_no_column_names_it_the_table_and_what_to_do(tmp_path: Path) -> None:
    """A misspelt cursor failed the load with "KeyError: 'updatedat'" alone: dlt's own
    message under it, naming the table, was dropped for the bare key."""
    import sqlite3

    root = tmp_path / "p"
    init_project(root)
    with sqlite3.connect(root / "app.sqlite") as db:
        db.execute("create table customers (id integer primary key, updated_at text)")
        db.execute("insert into customers values (1, '2026-01-01')")
    text = (
        (root / "stackyard.yml")
        .read_text()
        .replace(
            "sources: {}\n",
            "sources:\n  app:\n    kind: sql_database\n    connection: sqlite:///app.sqlite\n"
            "    tables: {customers: {primary_key: id, cursor: updatedat}}\n",
        )
    )
    (root / "stackyard.yml").write_text(text)
    result = Context(root).run()
    (load,) = result.loads
    assert load.status == "failed"
    assert "Cursor column `updatedat` does not exist in table `customers`" in (load.error or "")
    assert "`cursor` in stackyard.yml must name one of the source table's columns" in (
        load.error or ""
    )


def test_columns_named_alike_say_which_collide_and_what_to_do(tmp_path: Path) -> None:
    # Before: dlt's "Arrow column name collision after input data normalization" and the
    # list of every field, with no word of which two or what to do.
    from tests.ingest.file_projects import file_project

    files = {"a.csv": "id,Total Due,total_due,note\n1,2,3,x\n"}
    root = file_project(tmp_path, "{t: {glob: '*.csv'}}", files)
    (load,) = Context(root).run().loads
    assert load.status == "failed"
    assert "columns 'Total Due' and 'total_due' would load as one column, total_due" in str(
        load.error
    ), load.error
    assert "rename one of them in the source" in str(load.error)
