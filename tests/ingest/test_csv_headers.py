"""CSV headers spelled in different cases in different files of one table fill one column,
as JSONL fields do (dlt stopped the load: two columns that both load as `name`)."""

from __future__ import annotations

from pathlib import Path

from stackyard import Context
from tests.ingest.file_projects import file_project


def test_files_spelling_a_header_in_different_cases_fill_one_column(tmp_path: Path) -> None:
    files = {"a.csv": "ID,Name\n1,x\n", "b.csv": "id,name\n2,y\n", "c.csv": "Id,NAME\n3,z\n"}
    root = file_project(tmp_path, "{t: {glob: '*.csv', primary_key: id}}", files)
    ctx = Context(root)
    (load,) = ctx.run().loads
    assert (load.status, load.rows) == ("loaded", 3), load.error
    assert ctx.sql("select id, name from f.t order by id").rows == ((1, "x"), (2, "y"), (3, "z"))
    # And a later file in yet another case merges into the same columns.
    (root / "sources" / "files" / "d.csv").write_text("ID,NAME\n1,changed\n")
    (load,) = ctx.run().loads
    assert (load.status, load.rows) == ("loaded", 1), load.error
    assert ctx.sql("select id, name from f.t order by id").rows == (
        (1, "changed"),
        (2, "y"),
        (3, "z"),
    )


def test_one_file_with_both_spellings_keeps_both_values(tmp_path: Path) -> None:
    root = file_project(tmp_path, "{t: {glob: '*.csv'}}", {"a.csv": "id,Name,name\n1,x,y\n"})
    ctx = Context(root)
    (load,) = ctx.run().loads
    assert (load.status, load.rows) == ("loaded", 1), load.error
    assert ctx.sql("select * exclude (_loaded_at, _dlt_load_id) from f.t").rows == ((1, "x", "y"),)
