"""Parquet values no warehouse holds as written fail naming the file, column and value:
timestamps finer than a microsecond, unsigned 64-bit integers past the largest signed one
(without dlt's tracebacks on stderr); values that fit load as they are."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

import pytest

from stackyard import Context
from tests.ingest.file_projects import file_project


def _timestamps(values: list[int], tz: str | None = None) -> bytes:
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
    root = file_project(tmp_path, tables, {"events.parquet": _timestamps(values, tz)})
    with Context(root) as ctx:
        (load,) = ctx.run().loads
    # Before: "ArrowInvalid: Casting from timestamp[ns] to timestamp[us] would lose data".
    assert load.status == "failed"
    error = str(load.error)
    assert "events.parquet" in error and "'at'" in error and ".123456789" in error, error
    assert "never rounded" in error


def test_nanosecond_columns_of_whole_microseconds_load_unchanged(tmp_path: Path) -> None:
    values = [1_700_000_000_000_000_000, 1_700_000_000_123_456_000]
    root = file_project(tmp_path, "{t: {glob: '*.parquet'}}", {"e.parquet": _timestamps(values)})
    with Context(root) as ctx:
        assert ctx.run().ok
        rows = ctx.sql('select "at" from f.t order by id').rows
    assert [r[0].replace(tzinfo=None) for r in rows] == [
        datetime(2023, 11, 14, 22, 13, 20),
        datetime(2023, 11, 14, 22, 13, 20, 123456),
    ]


def _unsigned(values: list[int]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"id": list(range(len(values))), "n": pa.array(values, type=pa.uint64())})
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


@pytest.mark.parametrize("key", ["", ", primary_key: id"])
def test_an_unsigned_value_past_bigint_fails_naming_it(
    tmp_path: Path, key: str, capfd: pytest.CaptureFixture[str]
) -> None:
    tables = f"{{t: {{glob: '*.parquet'{key}}}}}"
    root = file_project(tmp_path, tables, {"hits.parquet": _unsigned([5, 2**64 - 1])})
    with Context(root) as ctx:
        (load,) = ctx.run().loads
    # Before: "ConversionException: … Type UINT64 with value 18446744073709551615 can't be
    # cast", after 62 lines of dlt's tracebacks on stderr.
    assert load.status == "failed"
    error = str(load.error)
    assert "hits.parquet" in error and "'n'" in error and str(2**64 - 1) in error, error
    assert "Traceback" not in capfd.readouterr().err


def test_unsigned_values_that_fit_load_as_they_are(tmp_path: Path) -> None:
    root = file_project(
        tmp_path, "{t: {glob: '*.parquet'}}", {"hits.parquet": _unsigned([0, 2**63 - 1])}
    )
    with Context(root) as ctx:
        assert ctx.run().ok
        assert ctx.sql("select n from f.t order by id").rows == ((0,), (2**63 - 1,))
