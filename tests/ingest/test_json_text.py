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
