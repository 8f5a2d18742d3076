"""A keyed filesystem table reads each file once, and again when it changes: a new file with
an older modification time than those already read (``cp -p``, an unpacked archive) is read
too (a cursor on the latest time skipped it without a word), and a failed read is not
remembered as read."""

from __future__ import annotations

import os
from pathlib import Path

from stackyard import Context
from tests.ingest.file_projects import file_project

OLD = 1_577_836_800  # 2020-01-01


def _project(tmp_path: Path) -> tuple[Path, Path]:
    root = file_project(tmp_path, "{t: {glob: '*.jsonl', primary_key: id}}")
    return root, root / "sources" / "files"


def _rows(ctx: Context) -> tuple[tuple[object, ...], ...]:
    return ctx.sql("select id, v from f.t order by id").rows


def test_new_files_are_read_whatever_their_time_and_each_file_once(tmp_path: Path) -> None:
    root, files = _project(tmp_path)
    (files / "b.jsonl").write_text('{"id": 1, "v": "one"}\n')
    ctx = Context(root)
    assert ctx.run().loads[0].rows == 1

    old = files / "a.jsonl"
    old.write_text('{"id": 2, "v": "two"}\n')
    os.utime(old, (OLD, OLD))
    (load,) = ctx.run().loads
    assert (load.status, load.rows) == ("loaded", 1)
    assert _rows(ctx) == ((1, "one"), (2, "two"))

    assert ctx.run().loads[0].rows == 0  # nothing new: nothing read

    old.write_text('{"id": 2, "v": "TWO"}\n')  # changed (size too), still an old time
    os.utime(old, (OLD + 60, OLD + 60))
    assert ctx.run().loads[0].rows == 1
    assert _rows(ctx) == ((1, "one"), (2, "TWO"))


def test_a_file_with_a_line_that_is_not_json_is_read_again_once_fixed(tmp_path: Path) -> None:
    root, files = _project(tmp_path)
    bad = files / "a.jsonl"
    bad.write_text('{"id": 1, "v": \n')
    ctx = Context(root)
    (load,) = ctx.run().loads
    assert (load.status, load.rows, load.rejected) == ("loaded", 0, 1), load.error
    bad.write_text('{"id": 1, "v": "one"}\n')
    os.utime(bad, (OLD, OLD))
    (load,) = ctx.run().loads
    assert (load.status, load.rows) == ("loaded", 1)
    assert _rows(ctx) == ((1, "one"),)


def test_rows_without_a_key_value_are_rejected_and_the_rest_load(tmp_path: Path) -> None:
    root, files = _project(tmp_path)
    (files / "a.jsonl").write_text(
        '{"id": 1, "v": "one"}\n{"v": "no id"}\n{"id": null, "v": "null id"}\n{"id": 2, "v": "two"}\n'
    )
    ctx = Context(root)
    (load,) = ctx.run().loads
    assert (load.status, load.rows, load.rejected) == ("loaded", 2, 2), load.error
    assert _rows(ctx) == ((1, "one"), (2, "two"))
    rejected = ctx.sql("select file, column_name, reason from f._rejected_rows").rows
    assert rejected == (("a.jsonl", "id", "no value for the key column id"),) * 2


def test_a_row_without_a_key_value_names_its_line_and_quotes_it_as_the_file_holds_it(
    tmp_path: Path,
) -> None:
    """Such rows had no line and their text re-encoded as JSON (`{"v":"no id","id":null}`),
    where every other rejected row names its line and quotes the file."""
    jsonl = (
        '\ufeff{"id": 1, "v": "one"}\n\nnot json\n{"v":   "no id"}\r\n'
        '{"id": 2, "v": "two"}\n{"id": null, "v": "null id"}\n'
    )
    csv = 'id,v\n1,"two\nlines"\n,"no\nid"\n\n3,x,extra\n2,b\n,"last"\n'
    for name, glob, content, expected in (
        ("a.jsonl", "*.jsonl", jsonl,
         [(3, "not json"), (4, '{"v":   "no id"}'), (6, '{"id": null, "v": "null id"}')]),
        ("a.csv", "*.csv", csv, [(4, ',"no\nid"'), (7, "3,x,extra"), (9, ',"last"')]),
    ):  # fmt: skip
        root = file_project(tmp_path / name, f"{{t: {{glob: '{glob}', primary_key: id}}}}")
        (root / "sources" / "files" / name).write_text(content, newline="")
        ctx = Context(root)
        (load,) = ctx.run().loads
        assert (load.status, load.rows, load.rejected) == ("loaded", 2, 3), load.error
        rows = ctx.sql("select line, raw from f._rejected_rows order by line").rows
        assert list(rows) == expected, rows


def test_a_field_longer_than_pythons_csv_limit_loads_beside_a_row_without_a_key(
    tmp_path: Path,
) -> None:
    """Finding the keyless row's line read the file with Python's csv reader, which refuses
    a field over 128 KiB: the whole load failed ("field larger than field limit")."""
    root = file_project(tmp_path / "p", "{t: {glob: '*.csv', primary_key: id}}")
    body = "x" * 200_000
    (root / "sources" / "files" / "a.csv").write_text(f"id,v\n1,short\n2,{body}\n,no key\n")
    ctx = Context(root)
    (load,) = ctx.run().loads
    assert (load.status, load.rows, load.rejected) == ("loaded", 2, 1), load.error
    assert ctx.sql("select id, length(v) from f.t order by id").rows == ((1, 5), (2, 200_000))
    assert ctx.sql("select line, raw from f._rejected_rows").rows == ((4, ",no key"),)


def test_a_rejected_record_names_its_line_and_quotes_it_as_the_file_holds_it(
    tmp_path: Path,
) -> None:
    text = (
        'id,note,n\n1,"two\nlines",5\n2,x,6\n3,,7,extra\n4,"a\nb\nc",8\n5,y\n'
        '6,"over\nlines",9,extra\n7,z,8\n'
    )
    for name, content in (("lf.csv", text), ("crlf.csv", text.replace("\n", "\r\n"))):
        root = tmp_path / name
        ctx = Context(file_project(root, "{m: {glob: '*.csv', primary_key: id}}", {name: content}))
        (load,) = ctx.run().loads
        assert load.rejected == 3, load
        rows = ctx.sql("select line, raw from f._rejected_rows order by line").rows
        # Before: lines 4, 6 and 7 (DuckDB counts records), and the record rebuilt by DuckDB
        # (with CRLF, "\n3,4,5"); an editor shows these records at lines 5, 9 and 10.
        assert rows == (
            (5, "3,,7,extra"),
            (9, "5,y"),
            (10, '6,"over\nlines",9,extra'.replace("\n", "\r\n" if name == "crlf.csv" else "\n")),
        ), rows
        assert ctx.sql("select count(*) from f.m").rows == ((4,),)


def test_a_quoted_empty_key_is_no_key_and_does_not_merge_rows(tmp_path: Path) -> None:
    """`""` is text, not NULL, to the reader: every row with one was merged into one row
    under the key '' (the earlier ones lost)."""
    for name, glob, content in (
        ("a.csv", "*.csv", 'id,v\n1,a\n"",b\n2,c\n"",d\n"  ",e\n'),
        ("a.jsonl", "*.jsonl",
         '{"id": "1", "v": "a"}\n{"id": "", "v": "b"}\n{"id": "2", "v": "c"}\n'
         '{"id": "", "v": "d"}\n{"id": " ", "v": "e"}\n'),
    ):  # fmt: skip
        root = file_project(tmp_path / name, f"{{t: {{glob: '{glob}', primary_key: id}}}}")
        (root / "sources" / "files" / name).write_text(content)
        ctx = Context(root)
        (load,) = ctx.run().loads
        assert (load.status, load.rows, load.rejected) == ("loaded", 2, 3), load
        rows = ctx.sql("select line, reason from f._rejected_rows order by line").rows
        assert [r[0] for r in rows] == [3, 5, 6] if name == "a.csv" else [2, 4, 5], rows
        assert {r[1] for r in rows} == {"no value for the key column id"}


def test_a_keyless_row_after_a_quote_that_never_closes_still_names_its_line(
    tmp_path: Path,
) -> None:
    root = file_project(tmp_path, "{t: {glob: '*.csv', primary_key: id}}")
    (root / "sources" / "files" / "a.csv").write_text(
        'id,name,note\n1,Ada,x\n3,"Grace,z\n,NoKey,y\n4,L,ok\n'
    )
    ctx = Context(root)
    (load,) = ctx.run().loads
    assert (load.rows, load.rejected) == (2, 2), load
    rows = ctx.sql("select line, raw from f._rejected_rows order by line").rows
    assert rows == ((3, '3,"Grace,z'), (4, ",NoKey,y")), rows


def test_the_history_gives_each_table_its_own_rejected_rows(tmp_path: Path) -> None:
    """Every table row of a load in stackyard.loads carried the source's total: summing the
    column counted each rejected row once per table."""
    tables = "{a: {glob: 'a*.jsonl', primary_key: id}, b: {glob: 'b*.jsonl', primary_key: id}}"
    root = file_project(tmp_path, tables)
    files = root / "sources" / "files"
    (files / "a.jsonl").write_text('{"id": 1}\n{"v": 1}\n{"v": 2}\n')
    (files / "b.jsonl").write_text('{"id": 1}\n{"id": 2}\n{"v": 3}\n')
    ctx = Context(root)
    (load,) = ctx.run().loads
    assert (load.rows, load.rejected) == (3, 3), load.error
    loads = ctx.sql("select table_name, row_count, rejected from stackyard.loads order by 1")
    assert loads.rows == (("a", 1, 2), ("b", 2, 1))
