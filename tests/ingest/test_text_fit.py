"""On Postgres, whose text cannot hold NUL, a row holding one is rejected with its column and
the table's other rows load (the whole table's load failed on every run); DuckDB keeps it."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from stackyard import Context
from stackyard.ingest.text_fit import without_nul
from tests.ingest.file_projects import file_project, on_postgres


def _project(tmp_path: Path, db: dict[str, object] | None) -> Path:
    root = file_project(
        tmp_path,
        "{notes: {glob: '*.jsonl'}, codes: {glob: '*.csv'}}",
        {
            "notes.jsonl": '{"id": 1, "note": "fine"}\n{"id": 2, "note": "a\\u0000b"}\n'
            '{"id": 3, "note": null}\n{"id": 4, "note": "also fine"}\n',
            "codes.csv": b"id,code\n1,x\x00y\n2,ok\n",
        },
    )
    return root if db is None else on_postgres(root, db)


def test_postgres_rejects_rows_holding_nul_and_loads_the_rest(
    tmp_path: Path, pg_database: dict[str, object]
) -> None:
    ctx = Context(_project(tmp_path, pg_database))
    (load,) = ctx.run().loads
    assert load.status == "loaded", load.error
    assert load.rejected == 2
    assert {t.table: t.rows for t in load.tables} == {"notes": 3, "codes": 1}
    assert ctx.sql("select id, note from f.notes order by id").rows == (
        (1, "fine"),
        (3, None),
        (4, "also fine"),
    )
    assert ctx.sql("select id, code from f.codes").rows == ((2, "ok"),)
    rejected = ctx.sql(
        "select table_name, column_name, reason, raw from f._rejected_rows order by 1"
    ).rows
    assert [r[:2] for r in rejected] == [("codes", "code"), ("notes", "note")]
    assert "NUL" in rejected[0][2] and "Postgres" in rejected[0][2]
    assert '"x\\u0000y"' in rejected[0][3]  # the row as it was, the NUL written out


def test_duckdb_keeps_nul(tmp_path: Path) -> None:
    ctx = Context(_project(tmp_path, None))
    (load,) = ctx.run().loads
    assert (load.status, load.rejected) == ("loaded", 0)
    assert ctx.sql("select note from f.notes where id = 2").rows == (("a\x00b",),)


def test_rows_as_dicts_and_arrow_batches_are_screened_alike() -> None:
    rows = [
        {"id": 1, "tags": ["ok", "b\x00d"]},
        {"id": 2, "address": {"street": "x\x00"}},
        {"id": 3, "note": "fine"},
    ]
    kept, rejected = without_nul(rows, "t")
    assert kept == [{"id": 3, "note": "fine"}]
    assert [r.column for r in rejected] == ["tags", "address__street"]
    assert without_nul({"id": 1, "note": "x\x00"}, "t")[0] == []
    table = pa.table({"a": ["x", None, "y\x00"], "b": ["\x00", "z", "w"], "n": [1, 2, 3]})
    kept_table, rejected = without_nul(table, "t")
    assert kept_table.column("n").to_pylist() == [2]
    assert [r.column for r in rejected] == ["b", "a"]


def test_empty_text_stays_empty_on_postgres(tmp_path: Path, pg_database: dict[str, object]) -> None:
    root = _project(tmp_path, pg_database)
    (root / "sources" / "files" / "notes.jsonl").write_text(
        '{"id": 1, "note": ""}\n{"id": 2, "note": null}\n{"id": 3, "note": "x"}\n'
    )
    ctx = Context(root)
    assert ctx.run().ok
    # dlt's COPY made a quoted empty string NULL too (FORCE_NULL); '' and NULL differ.
    assert ctx.sql("select id, note, note is null from f.notes order by id").rows == (
        (1, "", False),
        (2, None, True),
        (3, "x", False),
    )
