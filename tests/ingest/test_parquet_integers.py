"""A Parquet unsigned 64-bit value past the largest signed one fails naming the file, column
and value, without dlt's tracebacks on stderr; values that fit load as they are."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from stackyard import Context
from tests.ingest.file_projects import file_project


def _parquet(values: list[int]) -> bytes:
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
    root = file_project(tmp_path, tables, {"hits.parquet": _parquet([5, 2**64 - 1])})
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
        tmp_path, "{t: {glob: '*.parquet'}}", {"hits.parquet": _parquet([0, 2**63 - 1])}
    )
    with Context(root) as ctx:
        assert ctx.run().ok
        assert ctx.sql("select n from f.t order by id").rows == ((0,), (2**63 - 1,))
