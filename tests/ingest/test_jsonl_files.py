"""A JSONL line with an object that gives a name twice, at any depth, is rejected with its line
number, as a stream's event is, and the file's other lines load, on DuckDB and Postgres
(stackyard.ingest.jsonl_files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stackyard import Context
from tests.ingest.file_projects import file_project, on_postgres

ENGINES = ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)]


def _context(
    tmp_path: Path, lines: list[str], engine: str, request: pytest.FixtureRequest | None
) -> Context:
    root = file_project(
        tmp_path,
        "{orders: {glob: '*.jsonl', primary_key: id}}",
        {"orders.jsonl": "\n".join(lines) + "\n"},
    )
    if request is not None and engine == "postgres":
        on_postgres(root, request.getfixturevalue("pg_database"))
    return Context(root)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_line_naming_a_field_twice_is_rejected_and_the_others_load(
    tmp_path: Path, engine: str, request: pytest.FixtureRequest
) -> None:
    lines = [
        '{"id": 1, "a": 1}',
        '{"id": 2, "a": 1, "a": 2}',
        "",
        '{"id": 3, "a": 12345678901234567890.12}',
        '{"id": 4, "a": 4}',
    ]
    ctx = _context(tmp_path, lines, engine, request)
    result = ctx.run()
    (load,) = result.loads
    # Before: the load failed on DuckDB's "duplicate key" error and no line of the file loaded.
    assert load.status == "loaded", load.error
    assert (load.rows, load.rejected) == (2, 2)
    assert result.to_dict()["counts"]["rows_rejected"] == 2
    assert ctx.sql("select id, a from f.orders order by id").rows == ((1, 1), (4, 4))
    rejected = ctx.sql(
        "select line, column_name, reason, raw from f._rejected_rows order by line"
    ).rows
    assert [r[:2] for r in rejected] == [(2, "a"), (4, "a")]
    assert rejected[0][2] == "the field a appears twice in one object: one value would be lost"
    assert rejected[0][3] == lines[1]
    assert "more digits than a double-precision column keeps" in rejected[1][2]


@pytest.mark.parametrize("engine", ENGINES)
def test_a_name_given_twice_in_a_nested_object_is_rejected(
    tmp_path: Path, engine: str, request: pytest.FixtureRequest
) -> None:
    lines = [
        '{"id": 1, "attrs": {"x": 1}, "items": [{"sku": "a"}, {"sku": "b"}]}',
        '{"id": 2, "attrs": {"x": 1, "x": 2}, "items": []}',
        '{"id": 3, "attrs": {"x": 3}, "items": [{"sku": "c", "q": {"n": 1, "n": 2}}]}',
        '{"id": 4, "attrs": {"x": 4}, "items": [{"sku": "d", "q": {"n": 1}}]}',
    ]
    ctx = _context(tmp_path, lines, engine, request)
    (load,) = ctx.run().loads
    # Before: DuckDB kept the objects' JSON text as written, and Postgres's jsonb one value.
    assert load.status == "loaded", load.error
    assert (load.rows, load.rejected) == (2, 2)
    assert ctx.sql("select id from f.orders order by id").rows == ((1,), (4,))
    rejected = ctx.sql("select line, column_name, reason from f._rejected_rows order by line").rows
    assert [r[:2] for r in rejected] == [(2, "x"), (3, "n")]
    assert all("appears twice in one object" in r[2] for r in rejected)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_line_that_is_not_json_is_rejected_and_the_others_load(
    tmp_path: Path, engine: str, request: pytest.FixtureRequest
) -> None:
    # Before: the load failed ("line 3: malformed JSON … nothing of the file was loaded").
    lines = ['{"id": 1, "a": 1}', '{"id": 2, "a": 1, "a": 2}', '{"id": 3, "a": }', '{"id": 4}']
    root = file_project(
        tmp_path,
        "{orders: {glob: '*.jsonl', primary_key: id}}",
        {"orders.jsonl": ("\n".join(lines) + '\n{"id": 5, "a": "\xff"}\n').encode("latin-1")},
    )
    if engine == "postgres":
        on_postgres(root, request.getfixturevalue("pg_database"))
    ctx = Context(root)
    (load,) = ctx.run().loads
    assert load.status == "loaded", load.error
    assert (load.rows, load.rejected) == (2, 3)
    assert ctx.sql("select id, a from f.orders order by id").rows == ((1, 1), (4, None))
    rejected = ctx.sql("select line, reason, raw from f._rejected_rows order by line").rows
    assert [r[0] for r in rejected] == [2, 3, 5]
    assert rejected[1][1:] == ("the line is not JSON: Expecting value at column 16", lines[2])
    assert rejected[2][1] == "the line is not UTF-8 text (byte 17 of the line)"


@pytest.mark.parametrize("key", ["", ", primary_key: id"])
def test_a_line_that_is_not_an_object_is_rejected_and_the_fields_keep_their_columns(
    tmp_path: Path, key: str
) -> None:
    # Before: without a key the whole file loaded into one `json` column (id and name gone,
    # exit 0); with a key the load failed in dlt's normalize step on the missing id.
    lines = ['{"id": 1, "name": "a"}', "[1, 2, 3]", "", '"text"', '{"id": 2, "name": "b"}']
    root = file_project(
        tmp_path,
        f"{{orders: {{glob: '*.jsonl'{key}}}}}",
        {"orders.jsonl": "\n".join(lines) + "\n"},
    )
    ctx = Context(root)
    (load,) = ctx.run().loads
    assert load.status == "loaded", load.error
    assert (load.rows, load.rejected) == (2, 2)
    assert ctx.sql("select id, name from f.orders order by id").rows == ((1, "a"), (2, "b"))
    rejected = ctx.sql("select line, reason, raw from f._rejected_rows order by line").rows
    assert [(r[0], r[2]) for r in rejected] == [(2, "[1, 2, 3]"), (4, '"text"')]
    assert rejected[0][1] == (
        "the line is JSON but not an object (a row is an object of fields: {...}); it is an array"
    )
    assert rejected[1][1].endswith("it is a string")


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("meta", [', "meta": {"x": 1}', ""], ids=["nested", "flat"])
@pytest.mark.parametrize("first", ["name", "NAME"])
def test_a_field_in_two_cases_is_one_column_and_a_line_with_both_is_rejected(
    tmp_path: Path, engine: str, meta: str, first: str, request: pytest.FixtureRequest
) -> None:
    # Before: with a nested value the NAME values loaded nowhere (name NULL, a name_1 column
    # NULL, no reject, exit 0); without one they went to name_1, or name, by the lines' order.
    other = "NAME" if first == "name" else "name"
    lines = [
        f'{{"id": 1, "{first}": "a"{meta}}}',
        f'{{"id": 2, "{other}": "B"{meta}}}',
        f'{{"id": 3, "name": "c", "NAME": "C"{meta}}}',
        f'{{"id": 4, "{first}": "d"{meta}}}',
    ]
    ctx = _context(tmp_path, lines, engine, request)
    (load,) = ctx.run().loads
    assert load.status == "loaded", load.error
    assert (load.rows, load.rejected) == (3, 1)
    assert ctx.sql("select id, name from f.orders order by id").rows == (
        (1, "a"),
        (2, "B"),
        (4, "d"),
    )
    columns = ctx.sql("select * from f.orders limit 0").columns
    assert not [c for c in columns if c.startswith("name_")], columns
    rejected = ctx.sql("select line, column_name, reason, raw from f._rejected_rows").rows
    assert [r[:2] for r in rejected] == [(3, "NAME")]
    assert rejected[0][2].startswith("the fields name and NAME of one object differ only in case")
    assert rejected[0][3] == lines[2]


@pytest.mark.parametrize("engine", ENGINES)
def test_a_field_in_another_case_in_another_file_fills_the_same_column(
    tmp_path: Path, engine: str, request: pytest.FixtureRequest
) -> None:
    # Before: dlt stopped the load on the two columns (name, NAME) the files gave.
    root = file_project(
        tmp_path,
        "{orders: {glob: '*.jsonl', primary_key: id}}",
        {"a.jsonl": '{"id": 1, "name": "a"}\n', "b.jsonl": '{"ID": 2, "NAME": "B"}\n'},
    )
    if engine == "postgres":
        on_postgres(root, request.getfixturevalue("pg_database"))
    ctx = Context(root)
    (load,) = ctx.run().loads
    assert load.status == "loaded", load.error
    assert ctx.sql("select id, name from f.orders order by id").rows == ((1, "a"), (2, "B"))


@pytest.mark.parametrize("engine", ENGINES)
def test_a_nested_object_with_a_name_in_two_cases_is_rejected_and_the_others_load(
    tmp_path: Path, engine: str, request: pytest.FixtureRequest
) -> None:
    # Before: DuckDB's "Duplicate name in struct" failed the whole source.
    lines = [
        '{"id": 1, "meta": {"A": 1, "a": 2}}',
        '{"id": 2, "meta": {"a": 2}}',
        '{"id": 3, "meta": {"A": 3}}',
    ]
    ctx = _context(tmp_path, lines, engine, request)
    (load,) = ctx.run().loads
    assert load.status == "loaded", load.error
    assert (load.rows, load.rejected) == (2, 1)
    rows = ctx.sql("select id, meta from f.orders order by id").rows
    assert [(i, json.loads(m) if isinstance(m, str) else m) for i, m in rows] == [
        (2, {"a": 2}),
        (3, {"A": 3}),
    ]
    rejected = ctx.sql("select line, column_name, reason from f._rejected_rows").rows
    assert rejected == (
        (
            1,
            "a",
            "the fields A and a of one object differ only in case, and a warehouse does not "
            "tell column names apart by case: one value would be lost",
        ),
    )


def test_an_integer_too_wide_for_a_column_of_doubles_is_rejected_in_a_doubles_words(
    tmp_path: Path,
) -> None:
    # Before: "wider than a 64-bit integer column holds", of a column of doubles.
    wide = "123456789012345678901234"
    root = file_project(
        tmp_path,
        "{orders: {glob: '*.jsonl', primary_key: id}}",
        {"a.jsonl": '{"id": 1, "amt": 1.5}\n'},
    )
    ctx = Context(root)
    assert ctx.run().ok
    folder = root / "sources" / "files"
    (folder / "b.jsonl").write_text(f'{{"id": 2, "amt": {wide}}}\n{{"id": 3, "amt": 2}}\n')
    (folder / "c.jsonl").write_text(
        f'{{"id": 4, "amt": 2.5}}\n{{"id": 5, "amt": {wide}}}\n{{"id": 6, "amt": 9007199254740993}}\n'
    )
    (load,) = ctx.run().loads
    assert load.status == "loaded", load.error
    assert ctx.sql("select id, amt from f.orders order by id").rows == (
        (1, 1.5),
        (3, 2.0),
        (4, 2.5),
    )
    rejected = ctx.sql("select file, line, reason from f._rejected_rows order by file, line").rows
    assert [r[:2] for r in rejected] == [("b.jsonl", 1), ("c.jsonl", 2), ("c.jsonl", 3)]
    for _, _, reason in rejected:
        assert "more digits than a double-precision column keeps" in reason, reason
        assert "64-bit" not in reason


@pytest.mark.parametrize("engine", ENGINES)
def test_a_reject_of_a_table_without_a_key_keeps_its_line_and_text(
    tmp_path: Path, engine: str, request: pytest.FixtureRequest
) -> None:
    # Before: line NULL (no `line` column at all when every reject was such), and raw the
    # row rebuilt after reading ({"id": 2, "amt": 9007199254740993} without the spaces).
    line = '{"id": 2,  "amt": 9007199254740993}'
    root = file_project(
        tmp_path,
        "{orders: {glob: '*.jsonl'}}",
        {"a.jsonl": '{"id": 1, "amt": 1.5}\n', "b.jsonl": f'{{"id": 3, "amt": 4}}\n{line}\n'},
    )
    if engine == "postgres":
        on_postgres(root, request.getfixturevalue("pg_database"))
    ctx = Context(root)
    (load,) = ctx.run().loads
    assert load.status == "loaded", load.error
    assert ctx.sql("select id, amt from f.orders order by id").rows == ((1, 1.5), (3, 4.0))
    rejected = ctx.sql("select file, line, column_name, raw from f._rejected_rows").rows
    assert rejected == (("b.jsonl", 2, "amt", line),)


@pytest.mark.postgres
def test_rejected_rows_has_a_line_column_when_no_reject_has_a_line(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # A text holding NUL, which Postgres's text cannot hold, is found as the rows load, with
    # no line: the table was made without a `line` column.
    lines = ['{"id": 1, "s": "a"}', '{"id": 2, "s": "a\\u0000b"}']
    ctx = _context(tmp_path, lines, "postgres", request)
    (load,) = ctx.run().loads
    assert load.status == "loaded", load.error
    assert ctx.sql("select line, column_name from f._rejected_rows").rows == ((None, "s"),)


def test_a_field_first_given_after_duckdbs_sample_loads_with_every_value(tmp_path: Path) -> None:
    # DuckDB typed a JSONL file from its first 20,480 lines: a field first given after them
    # failed the whole file ('has unknown key "late"'), a number field turning to text failed
    # its cast.
    lines = [json.dumps({"id": i, "v": i}) for i in range(25_000)]
    lines += [
        json.dumps({"id": 25_000, "v": 1, "late": "x"}),
        json.dumps({"id": 25_001, "v": "text"}),
    ]
    ctx = _context(tmp_path, lines, "duckdb", None)
    (load,) = ctx.run().loads
    assert load.status == "loaded", load.error
    assert (load.rows, load.rejected) == (25_002, 0)
    found = ctx.sql(
        "select count(*), count(late), max(late), "
        "count(*) filter (where v = 'text'), count(*) filter (where v = '24999') from f.orders"
    ).rows
    assert found == ((25_002, 1, "x", 1, 1),)


def test_a_field_of_numbers_in_one_file_and_strings_in_another_loads_as_text(
    tmp_path: Path,
) -> None:
    # As one file holding both files' lines is read (an Arrow error stopped the load).
    files = {
        "a.jsonl": '{"id": 1, "v": 5}\n{"id": 3, "v": true}\n{"id": 4, "v": "2026-04-03"}\n',
        "b.jsonl": '{"id": 2, "v": "x"}\n',
    }
    root = file_project(tmp_path, "{t: {glob: '*.jsonl'}}", files)
    (load,) = Context(root).run().loads
    assert (load.status, load.rows) == ("loaded", 4), load.error
    rows = Context(root).sql("select id, v from f.t order by id").rows
    assert rows == ((1, "5"), (2, "x"), (3, "true"), (4, "2026-04-03"))


def test_numbers_loaded_as_text_keep_the_text_their_line_writes(tmp_path: Path) -> None:
    """DuckDB reads a JSON number as a double before it becomes text: a version 1.10 loaded
    as 1.1, 5.10 as 5.1 and 1e3 as 1000.0."""
    files = {
        "a.jsonl": '{"id": 1, "v": 5.10, "n": {"x": 1.50}}\n\n{"id": 2, "v": 1e3}\n'
        '{"id": 3, "v": -0.0, "w": 1.10}\n{"id": 4, "w": "1.2a", "v": 7}\n',
        "b.jsonl": '{"id": 5, "v": "x"}\n',
    }
    root = file_project(tmp_path, "{t: {glob: '*.jsonl', primary_key: id}}", files)
    (load,) = Context(root).run().loads
    assert (load.status, load.rows) == ("loaded", 5), load.error
    rows = Context(root).sql("select id, v, w from f.t order by id").rows
    assert rows == (
        (1, "5.10", None), (2, "1e3", None), (3, "-0.0", "1.10"),
        (4, "7", "1.2a"), (5, "x", None),
    )  # fmt: skip
    # A later file's number in the text column: as written too.
    (root / "sources" / "files" / "c.jsonl").write_text('{"id": 6, "v": 2.50}\n')
    assert Context(root).run().ok
    assert Context(root).sql("select v from f.t where id = 6").rows == (("2.50",),)
