"""A DuckDB file whose blocks fail their checksums is named as damaged, with the way back."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stackyard.errors import WarehouseError
from tests.monitors.conftest import duckdb_warehouse


def test_a_damaged_file_says_restore_not_check_the_sql(tmp_path: Path) -> None:
    warehouse = duckdb_warehouse(tmp_path)
    warehouse.execute("CREATE TABLE t AS SELECT range AS id, hash(range) AS h FROM range(400000)")
    warehouse.close()
    path = tmp_path / "w.duckdb"
    size = path.stat().st_size
    with open(path, "r+b") as file:
        for offset in range(1 << 19, size, 1 << 18):
            file.seek(offset)
            file.write(os.urandom(256))
    with pytest.raises(WarehouseError) as failed:
        warehouse.query("SELECT sum(h) FROM t")
    warehouse.close()
    # Before: "DuckDB rejected the query: Corrupt database file …", hint "check the SQL
    # against the schema".
    assert "is damaged" in failed.value.message and "Corrupt" in failed.value.message
    assert "stackyard restore latest" in str(failed.value.hint)
