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


def test_a_key_declared_as_its_header_spells_it_still_collapses_and_rejects(
    tmp_path: Path,
) -> None:
    # The header `ID` is staged as dlt's `id`: the key declared `ID` is read as `id` too,
    # so a row without one is still rejected and a key given twice kept once.
    files = {"a.csv": "ID,v\n1,old\n,no key\n", "b.csv": "ID,v\n1,new\n2,x\n"}
    root = file_project(tmp_path, "{t: {glob: '*.csv', primary_key: ID}}", files)
    ctx = Context(root)
    (load,) = ctx.run().loads
    assert (load.status, load.rows, load.rejected) == ("loaded", 2, 1), load.error
    assert ctx.sql("select id, v from f.t order by id").rows == ((1, "new"), (2, "x"))
