"""Parquet timestamps finer than a microsecond fail naming the file and column; nanosecond
columns holding whole microseconds load as they are."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

import pytest

from stackyard import Context
from tests.ingest.file_projects import file_project


def _parquet(values: list[int], tz: str | None = None) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {"id": list(range(len(values))), "at": pa.array(values, type=pa.timestamp("ns", tz))}
    )
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


@pytest.mark.parametrize("key", ["", ", primary_key: id"])
@pytest.mark.parametrize("tz", [None, "UTC"])
def test_a_nanosecond_timestamp_fails_naming_the_file_and_column(
    tmp_path: Path, key: str, tz: str | None
) -> None:
    values = [1_700_000_000_000_000_000, 1_700_000_000_123_456_789]
    tables = f"{{t: {{glob: '*.parquet'{key}}}}}"
    root = file_project(tmp_path, tables, {"events.parquet": _parquet(values, tz)})
    with Context(root) as ctx:
        (load,) = ctx.run().loads
    # Before: "ArrowInvalid: Casting from timestamp[ns] to timestamp[us] would lose data".
    assert load.status == "failed"
    error = str(load.error)
    assert "events.parquet" in error and "'at'" in error and ".123456789" in error, error
    assert "never rounded" in error


def test_nanosecond_columns_of_whole_microseconds_load_unchanged(tmp_path: Path) -> None:
    values = [1_700_000_000_000_000_000, 1_700_000_000_123_456_000]
    root = file_project(tmp_path, "{t: {glob: '*.parquet'}}", {"e.parquet": _parquet(values)})
    with Context(root) as ctx:
        assert ctx.run().ok
        rows = ctx.sql('select "at" from f.t order by id').rows
    assert [r[0].replace(tzinfo=None) for r in rows] == [
        datetime(2023, 11, 14, 22, 13, 20),
        datetime(2023, 11, 14, 22, 13, 20, 123456),
    ]
