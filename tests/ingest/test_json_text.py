"""A JSONL file's objects and arrays load as the JSON each line holds, on DuckDB and Postgres
(stackyard.ingest.json_text)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stackyard import Context
from tests.ingest.file_projects import file_project, on_postgres

LINES = (
    '{"id": 1, "attrs": {"a": 1}, "tags": [1, 2], "items": [{"x": 1}]}\n'
    '{"id": 2, "attrs": {"b": "2", "c": {"d": [true, null]}}, "tags": [], "items": [{"y": 2}]}\n'
    '{"id": 3, "attrs": null, "tags": null}\n'
)
SENT = {
    1: ({"a": 1}, [1, 2], [{"x": 1}]),
    2: ({"b": "2", "c": {"d": [True, None]}}, [], [{"y": 2}]),
    3: (None, None, None),
}


def _project(tmp_path: Path, db: dict[str, object] | None) -> Path:
    root = file_project(
        tmp_path, "{events: {glob: '*.jsonl', primary_key: id}}", {"a.jsonl": LINES}
    )
    return root if db is None else on_postgres(root, db)


def _loaded(ctx: Context) -> dict[int, tuple[object, ...]]:
    rows = ctx.sql(
        "select id, cast(attrs as varchar), cast(tags as varchar), cast(items as varchar) "
        "from f.events order by id"
    ).rows
    return {
        int(r[0]): tuple(None if v is None else json.loads(str(v)) for v in r[1:]) for r in rows
    }


def _json_type(ctx: Context) -> set[str]:
    rows = ctx.sql(
        "select data_type from information_schema.columns "
        "where table_schema = 'f' and table_name = 'events' "
        "and column_name in ('attrs', 'tags', 'items')"
    ).rows
    return {str(r[0]).lower() for r in rows}


def test_objects_keep_only_their_own_keys_on_duckdb(tmp_path: Path) -> None:
    ctx = Context(_project(tmp_path, None))
    assert ctx.run().ok
    # Before: {"a": 1} was stored as {"a": 1, "b": null, "c": null}, keys never sent.
    assert _loaded(ctx) == SENT
    assert _json_type(ctx) == {"json"}
    # A later file with other keys merges into the same json columns.
    folder = ctx.project.project_dir / "sources" / "files"
    (folder / "b.jsonl").write_text('{"id": 4, "attrs": {"z": 9}, "tags": ["t"], "items": []}\n')
    assert ctx.run().ok
    assert _loaded(ctx)[4] == ({"z": 9}, ["t"], [])


@pytest.mark.postgres
def test_objects_and_arrays_load_on_postgres(
    tmp_path: Path, pg_database: dict[str, object]
) -> None:
    ctx = Context(_project(tmp_path, pg_database))
    result = ctx.run()
    # Before: "ArrowInvalid: Unsupported Type: list<element: int64>", naming another table.
    assert result.ok, result.to_dict()
    assert _loaded(ctx) == SENT
    assert _json_type(ctx) == {"jsonb"}


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_field_of_strings_and_numbers_loads_each_value_as_its_text(
    tmp_path: Path, engine: str, request: pytest.FixtureRequest
) -> None:
    lines = '{"id": 1, "code": "A1"}\n{"id": 2, "code": 7}\n{"id": 3, "code": "x\\"y"}\n'
    root = file_project(tmp_path, "{codes: {glob: '*.jsonl', primary_key: id}}", {"a.jsonl": lines})
    if engine == "postgres":
        on_postgres(root, request.getfixturevalue("pg_database"))
    ctx = Context(root)
    assert ctx.run().ok
    # Before: "A1" was stored with its JSON quotes ('"A1"', 4 characters), and x"y as '"x\"y"'.
    rows = ctx.sql("select id, code from f.codes order by id").rows
    assert [tuple(r) for r in rows] == [(1, "A1"), (2, "7"), (3, 'x"y')]


def _later_runs(tmp_path: Path, runs: list[str], db: dict[str, object] | None = None) -> Context:
    """A project whose table ``e`` loads ``runs[0]`` as its first file, then each later text
    as a file of its own, one run each (every run must load)."""
    root = file_project(
        tmp_path, "{e: {glob: 'e_*.jsonl', primary_key: id}}", {"e_0.jsonl": runs[0]}
    )
    if db is not None:
        on_postgres(root, db)
    ctx = Context(root)
    for number, lines in enumerate(runs):
        if number:
            (root / "sources" / "files" / f"e_{number}.jsonl").write_text(lines)
        result = ctx.run()
        assert result.ok, (number, result.to_dict())
    return ctx


def _values(ctx: Context) -> tuple[dict[int, object], str]:
    """Each row's ``o`` as the JSON it holds (None for NULL), and the column's type."""
    rows = ctx.sql("select id, cast(o as varchar) from f.e order by id").rows
    kind = ctx.sql(
        "select data_type from information_schema.columns "
        "where table_schema = 'f' and table_name = 'e' and column_name = 'o'"
    ).rows
    return (
        {int(r[0]): None if r[1] is None else json.loads(str(r[1])) for r in rows},
        str(kind[0][0]).lower(),
    )


ENGINES = ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.mark.parametrize("engine", ENGINES)
def test_a_field_of_objects_and_arrays_loads_as_json_and_later_files_keep_loading(
    tmp_path: Path, engine: str, request: pytest.FixtureRequest
) -> None:
    # Before: the first file's mix loaded as text, and the next file with only objects there
    # stopped the source ("column 'o' changed type upstream"), every run.
    db = request.getfixturevalue("pg_database") if engine == "postgres" else None
    ctx = _later_runs(
        tmp_path,
        [
            '{"id": 1, "o": {"a": 1}}\n{"id": 2, "o": [1, 2]}\n{"id": 3, "o": null}\n',
            '{"id": 4, "o": {"a": 5}}\n',
            '{"id": 5, "o": [3, {"b": "x"}]}\n',
            '{"id": 6, "o": []}\n{"id": 7, "o": {"c": null}}\n',
            '{"id": 8, "o": 5}\n{"id": 9, "o": "s"}\n',
        ],
        db,
    )
    values, kind = _values(ctx)
    assert kind in {"json", "jsonb"}
    assert values == {
        1: {"a": 1},
        2: [1, 2],
        3: None,
        4: {"a": 5},
        5: [3, {"b": "x"}],
        6: [],
        7: {"c": None},
        8: 5,
        9: "s",
    }


def test_objects_first_then_a_mix_of_objects_and_arrays(tmp_path: Path) -> None:
    ctx = _later_runs(
        tmp_path,
        ['{"id": 1, "o": {"a": 1}}\n', '{"id": 2, "o": [1]}\n{"id": 3, "o": {"b": 2}}\n'],
    )
    assert _values(ctx) == ({1: {"a": 1}, 2: [1], 3: {"b": 2}}, "json")


def test_objects_beside_plain_values_load_as_the_json_each_line_holds(tmp_path: Path) -> None:
    # A number stays a number and a string a string (with its quotes, as JSON), never text.
    ctx = _later_runs(
        tmp_path,
        [
            '{"id": 1, "o": 5}\n{"id": 2, "o": {"a": 1}}\n{"id": 3, "o": "x"}\n',
            '{"id": 4, "o": 7}\n',
            '{"id": 5, "o": {"c": 2}}\n{"id": 6, "o": null}\n',
        ],
    )
    assert _values(ctx) == ({1: 5, 2: {"a": 1}, 3: "x", 4: 7, 5: {"c": 2}, 6: None}, "json")
    assert ctx.sql("select cast(o as varchar) from f.e where id = 3").rows[0][0] == '"x"'


def test_a_first_load_of_numbers_in_one_file_and_objects_in_another(tmp_path: Path) -> None:
    # Before: "Unable to merge: Field o has incompatible types: int64 vs string".
    files = {"e_1.jsonl": '{"id": 1, "o": 5}\n', "e_2.jsonl": '{"id": 2, "o": {"a": 1}}\n'}
    ctx = Context(file_project(tmp_path, "{e: {glob: 'e_*.jsonl', primary_key: id}}", files))
    result = ctx.run()
    assert result.ok, result.to_dict()
    assert _values(ctx) == ({1: 5, 2: {"a": 1}}, "json")


def test_a_text_field_takes_a_later_object_as_its_json_text(tmp_path: Path) -> None:
    # Before: the object stopped the source on a changed type until the table was reloaded.
    ctx = _later_runs(
        tmp_path,
        ['{"id": 1, "o": "A1"}\n{"id": 2, "o": 7}\n', '{"id": 3, "o": {"a": [1, "b"]}}\n'],
    )
    rows = ctx.sql("select id, o from f.e order by id").rows
    assert [tuple(r) for r in rows] == [(1, "A1"), (2, "7"), (3, '{"a":[1,"b"]}')]
