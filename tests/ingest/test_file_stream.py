"""Files streamed in batches give the rows the whole-file reader gave: same values, same types,
same rejected lines, same key winners; and a keyed load in small batches lands as one would."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stackyard import Context
from stackyard.ingest import file_stream
from stackyard.ingest.file_stream import read_batches
from stackyard.ingest.files import local_copy
from stackyard.ingest.loader import Loader
from stackyard.project import init_project
from tests.ingest.whole_file_reference import read_whole


def _tricky_csv(path: Path) -> Path:
    """Leading zeros, 64-bit edge integers, null-looking tokens, quoted newlines, a row with
    a field too many, keys repeated far apart, and a value of another type only after the
    first 20,480 rows DuckDB samples."""
    lines = ["id,code,big,note,amount,late,sparse"]
    tokens = ["", "NULL", "NA", "null", "None", "-"]
    for i in range(24_000):
        big = [9223372036854775807, -9223372036854775808, 0][i % 3]
        note = f'"two\nlines {i}"' if i % 97 == 0 else tokens[i % len(tokens)]
        late = "x1" if i == 23_500 else ("10.6" if i == 7 else str(i))
        sparse = "2.5" if i > 22_000 and i % 11 == 0 else ""
        lines.append(f"{i % 15_000},{i % 1000:05d},{big},{note},{i / 8},{late},{sparse}")
        if i == 4_000:
            lines.append("1,2,3,4,5,6,7,8")
    path.write_text("\n".join(lines) + "\n")
    return path


def _item(path: Path) -> dict[str, Any]:
    return {"relative_path": path.name, "file_name": path.name, "file_url": path.as_uri()}


def _batched(
    paths: list[Path], fmt: str, *, key: list[str], types: dict[str, str], batch_rows: int
) -> tuple[Any, list[Any], int]:
    rejected: list[Any] = []
    collapsed: list[int] = []
    batches = list(
        read_batches(
            [_item(p) for p in paths],
            file_format=fmt,
            table="t",
            column_types=types,
            delimiter=",",
            key=key,
            local_copy=local_copy,
            reject=rejected.extend,
            collapsed=collapsed.append,
            batch_rows=batch_rows,
        )
    )
    assert all(b.num_rows <= batch_rows for b in batches)
    return pa.concat_tables(batches) if batches else None, rejected, sum(collapsed)


@pytest.mark.parametrize(
    "types",
    [{}, {"id": "BIGINT", "big": "BIGINT", "amount": "DOUBLE", "late": "BIGINT"}],
    ids=["first load", "known columns"],
)
def test_a_tricky_csv_in_batches_equals_the_whole_file(
    tmp_path: Path, types: dict[str, str]
) -> None:
    path = _tricky_csv(tmp_path / "orders.csv")
    whole, whole_rejected, whole_collapsed = read_whole(
        [str(path)], file_format="csv", column_types=types, key=["id"]
    )
    rows, rejected, collapsed = _batched([path], "csv", key=["id"], types=types, batch_rows=1000)
    assert rows.schema == whole.schema
    assert rows.equals(whole)
    assert rejected == whole_rejected and len(rejected) >= 2
    assert collapsed == whole_collapsed > 0
    assert rows.num_rows == 15_000
    codes = rows.column("code").to_pylist()
    assert "00042" in codes or 42 in codes  # whichever type, as before


def _write(fmt: str, path: Path, columns: dict[str, list[Any]]) -> Path:
    table = pa.table(columns)
    if fmt == "parquet":
        pq.write_table(table, path)
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in table.to_pylist()))
    else:
        header = ",".join(columns)
        body = "".join(",".join(str(v) for v in r.values()) + "\n" for r in table.to_pylist())
        path.write_text(header + "\n" + body)
    return path


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
@pytest.mark.parametrize("key", [["id"], []], ids=["keyed", "no key"])
def test_files_in_batches_unify_types_and_keep_each_keys_last_row(
    tmp_path: Path, fmt: str, key: list[str]
) -> None:
    paths = [
        _write(fmt, tmp_path / f"a.{fmt}", {"id": [1, 2, 3, 2, 4], "v": [1, 2, 3, 4, 5]}),
        _write(fmt, tmp_path / f"b.{fmt}", {"id": [5, 1, 6], "v": [1.5, 2.5, 3.5]}),
        _write(fmt, tmp_path / f"c.{fmt}", {"id": [3, 7], "v": [7, 8], "extra": ["x", "y"]}),
    ]
    whole, _, whole_collapsed = read_whole([str(p) for p in paths], file_format=fmt, key=key)
    for batch_rows in (1, 2, 100):
        rows, _, collapsed = _batched(paths, fmt, key=key, types={}, batch_rows=batch_rows)
        assert rows.schema == whole.schema
        assert rows.equals(whole), batch_rows
        assert collapsed == whole_collapsed == (3 if key else 0)
    assert whole.schema.field("v").type == pa.float64()
    if key:
        assert whole.column("id").to_pylist() == [2, 4, 5, 1, 6, 3, 7]
        assert whole.column("v").to_pylist() == [4, 5, 1.5, 2.5, 3.5, 7, 8]


@pytest.mark.parametrize("key", [["id"], []], ids=["keyed", "no key"])
@pytest.mark.parametrize(
    ("values", "kind"),
    [
        ("5", pa.int64()),
        ("2026-01-02 10:00:00", pa.timestamp("us")),
        ("2026-01-02", pa.date32()),
        ("true", pa.bool_()),
    ],
)
def test_a_column_empty_in_one_file_takes_the_type_the_others_give(
    tmp_path: Path, key: list[str], values: str, kind: Any
) -> None:
    (tmp_path / "a.csv").write_text(f"id,n\n1,{values}\n")
    (tmp_path / "b.csv").write_text("id,n\n2,\n3,\n")
    paths = [tmp_path / "a.csv", tmp_path / "b.csv"]
    # Before: "Unable to merge: Field n has incompatible types: int64 vs string", and the
    # first load of the table (or its reload) failed.
    rows, rejected, _ = _batched(paths, "csv", key=key, types={}, batch_rows=1)
    assert rejected == []
    assert rows.schema.field("n").type == kind
    assert rows.column("id").to_pylist() == [1, 2, 3]
    assert rows.column("n").null_count == 2
    # A column no file has a value in keeps the reader's own guess.
    (tmp_path / "a.csv").write_text("id,n\n1,\n")
    rows, _, _ = _batched(paths, "csv", key=key, types={}, batch_rows=2)
    assert rows.schema.field("n").type == pa.string() and rows.column("n").null_count == 3


def test_files_with_no_rows_yield_nothing(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("id,v\n")
    rows, rejected, collapsed = _batched(
        [tmp_path / "a.csv"], "csv", key=["id"], types={}, batch_rows=10
    )
    assert rows is None and rejected == [] and collapsed == 0


def _load(project: Path) -> Any:
    with Context(project) as ctx:
        session = ctx.session()
        with session.released():
            (load,) = Loader(session).load(["files"], datetime.now(UTC))
        assert load.status == "loaded", load.error
        warehouse = list(ctx.sql("select id, v from files.orders order by id").rows)
        return load, warehouse


def test_a_keyed_load_in_small_batches_merges_in_duckdb_as_one_batch_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(file_stream, "BATCH_ROWS", 2)
    project = tmp_path / "p"
    init_project(project)
    folder = project / "sources" / "files"
    folder.mkdir(parents=True)
    (folder / "a.csv").write_text("id,v\n1,a1\n2,a2\n3,a3\n1,a4\n4,a5\n")
    (folder / "b.csv").write_text("id,v\n2,b1\n5,b2\n2,b3\n")
    with Context(project) as ctx:
        ctx.source_add(
            "files",
            "filesystem",
            {"url": "sources/files", "tables": {"orders": {"glob": "*.csv", "primary_key": "id"}}},
            load=False,
        )
    load, warehouse = _load(project)
    assert warehouse == [(1, "a4"), (2, "b3"), (3, "a3"), (4, "a5"), (5, "b2")]
    assert load.rows == len(warehouse) and load.tables[0].duplicates == 3
    # A later file repeating keys merges into what is there, last row winning.
    (folder / "c.csv").write_text("id,v\n3,c1\n6,c2\n3,c3\n1,c4\n")
    load, warehouse = _load(project)
    assert warehouse == [(1, "c4"), (2, "b3"), (3, "c3"), (4, "a5"), (5, "b2"), (6, "c2")]
    assert load.rows == 3 and load.tables[0].duplicates == 1
