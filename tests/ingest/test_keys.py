"""Key detection: an id-like column unique in the loaded rows is the key; free text never is,
and a one-row table is no evidence for a column whose name does not say it is a key."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackyard.ingest.keys import detect_key
from stackyard.transform.staging import Column
from tests.monitors.conftest import duckdb_warehouse

COLUMNS = [Column("note", "text"), Column("amount", "bigint"), Column("customer_id", "bigint")]


@pytest.mark.parametrize(
    ("rows", "columns", "key"),
    [
        # one row: only the id-like name counts, never the free text that comes first
        ("('first order, thanks', 5, 7)", COLUMNS, ("customer_id",)),
        ("('first order, thanks', 5, 7)", COLUMNS[:2], ()),
        # two rows, no id-like column: a unique number may be the key, free text may not
        ("('a', 5, 7), ('b', 6, 7)", COLUMNS, ("amount",)),
        ("('a', 5, 7), ('b', 5, 7)", COLUMNS, ()),
    ],
)
def test_detect_key(tmp_path: Path, rows: str, columns: list[Column], key: tuple[str, ...]) -> None:
    warehouse = duckdb_warehouse(tmp_path)
    warehouse.execute("CREATE SCHEMA s")
    warehouse.execute("CREATE TABLE s.t (note text, amount bigint, customer_id bigint)")
    warehouse.execute(f"INSERT INTO s.t VALUES {rows}")
    try:
        assert detect_key(warehouse, "s", "t", columns) == key
    finally:
        warehouse.close()
