"""What a load really left in the warehouse, read back from it.

dlt counts the rows it normalised. Those are not the rows a user finds: a merge collapses rows
that share a key within one load, and a run that finishes a package an interrupted run left
behind normalises nothing. So every count stackyard shows for a load is read from the
warehouse itself: the rows of each table that carry one of the load's ids.

The same place answers the question a run must ask before loading: does the warehouse still
have every table dlt's state says it loaded? When it does not (the DuckDB file was deleted, a
table was dropped by hand), an incremental load would bring back only the newest rows and
report success.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from stackyard.errors import counted
from stackyard.results import SourceLoad, TableLoad
from stackyard.warehouse.base import LoadedTable

LOAD_ID = "_dlt_load_id"
_LOAD_ID_FORM = re.compile(r"^[0-9]+(\.[0-9]+)?$")


def loaded_tables(pipeline: Any) -> list[str]:
    """Data tables dlt's schema says hold rows (seen data), in the pipeline's local state."""
    if not pipeline.default_schema_name:
        return []
    schema = pipeline.default_schema
    return [
        str(t["name"])
        for t in schema.data_tables(seen_data_only=True)
        if not t.get("parent") and not str(t["name"]).startswith("_")
    ]


def missing_tables(pipeline: Any, tables: Sequence[str]) -> list[str]:
    """Of ``tables``, those the warehouse does not have."""
    if not tables:
        return []
    with pipeline.destination_client() as client:
        found = {name for name, columns in client.get_storage_tables(tables) if columns}
    return [t for t in tables if t not in found]


def warehouse_counts(
    pipeline: Any,
    load_ids: Sequence[str],
    normalised: Mapping[str, int],
    merged: Sequence[str] = (),
) -> list[TableLoad]:
    """Rows each table holds from these loads, and the rows a merge collapsed.

    Args:
        pipeline: the dlt pipeline that ran the loads.
        load_ids: the loads' ids (new ones and finished pending ones).
        normalised: dlt's count of rows it wrote per table (tables without a load id column,
            dlt's nested tables, keep this count).
        merged: tables that merge on a key: rows dlt normalised beyond those kept share a key
            with another row of the same load (reported as duplicates).

    Returns:
        One entry per table that got rows, sorted by name.
    """
    ids = [i for i in load_ids if _LOAD_ID_FORM.match(i)]
    schema = pipeline.default_schema if pipeline.default_schema_name else None
    if not ids or schema is None:
        return [TableLoad(t, n) for t, n in sorted(normalised.items()) if n]
    tables = sorted(
        {
            str(t["name"])
            for t in schema.data_tables()
            if not str(t["name"]).startswith("_") and LOAD_ID in t.get("columns", {})
        }
    )
    present = set(tables) - set(missing_tables(pipeline, tables)) if tables else set()
    id_list = ", ".join(f"'{i}'" for i in ids)
    counts: dict[str, int] = {}
    with pipeline.sql_client() as client:
        for table in sorted(present):
            result = client.execute_sql(
                f"SELECT count(*) FROM {client.make_qualified_table_name(table)} "
                f"WHERE {client.escape_column_name(LOAD_ID)} IN ({id_list})"
            )
            counts[table] = int(result[0][0])
    out = []
    for table in sorted(set(counts) | set(normalised)):
        rows = counts.get(table, normalised.get(table, 0))
        duplicates = 0
        if table in merged and table in counts:
            duplicates = max(0, normalised.get(table, 0) - rows)
        if rows or duplicates:
            out.append(TableLoad(table, rows, duplicates))
    return out


def known_columns(pipeline: Any) -> dict[str, dict[str, str]]:
    """``{table: {column: dlt data type}}`` of what the pipeline has loaded so far; a decimal
    with its precision and scale (``decimal(38,0)``), which a file must be read with: read as
    dlt's default ``decimal(38,9)``, a later file changed the column's type and stopped the
    source."""
    if not pipeline.default_schema_name:  # nothing loaded yet, here or in the warehouse
        return {}
    schema = pipeline.default_schema
    return {
        table: {c: _data_type(col) for c, col in schema.get_table_columns(table).items()}
        for table in schema.data_table_names()
    }


def _data_type(column: Mapping[str, Any]) -> str:
    """
    >>> _data_type({"data_type": "decimal", "precision": 38, "scale": 0})
    'decimal(38,0)'
    >>> _data_type({"data_type": "decimal"}), _data_type({"data_type": "bigint", "precision": 32})
    ('decimal', 'bigint')
    """
    kind = str(column.get("data_type"))
    if kind == "decimal" and column.get("precision") is not None:
        return f"decimal({column['precision']},{column.get('scale') or 0})"
    return kind


def row_counts(pipeline: Any) -> dict[str, int]:
    """Rows per table that the pipeline's last run normalized (dlt's own tables left out)."""
    trace = pipeline.last_trace
    info = trace.last_normalize_info if trace else None
    counts: Mapping[str, int] = info.row_counts if info else {}
    return {t: int(n) for t, n in counts.items() if n and not t.startswith("_dlt")}


def tables_as_loaded(pipeline: Any) -> list[LoadedTable]:
    """The data tables of a pipeline's schema: each one's parent, and its key where it is
    loaded with ``merge`` (a nested table follows its root's disposition)."""
    tables = {t["name"]: t for t in pipeline.default_schema.data_tables()}
    found = []
    for name, table in tables.items():
        root = table
        while root.get("parent") in tables:
            root = tables[root["parent"]]
        merged = root.get("write_disposition") == "merge" and root is table
        key = tuple(c for c, col in table["columns"].items() if col.get("primary_key"))
        found.append(LoadedTable(name, table.get("parent"), key if merged else ()))
    return found


def load_detail(result: SourceLoad, kept: str, dataset: str, rejected_table: str) -> str:
    """The line a loaded source's step shows: rows, tables, and what was not loaded as sent.

    ``kept`` says which row of a key stays (the source kind's ``KEPT_OF_A_KEY``).

    >>> from stackyard.results import TableLoad
    >>> load = SourceLoad("shop", "shop", "loaded", (TableLoad("t", 3, 1),))
    >>> load_detail(load, "one per key, as dlt read them", "shop", "_rejected_rows")
    '3 rows in 1 table, 1 row sharing a key collapsed (one per key, as dlt read them)'
    """
    detail = f"{counted(result.rows, 'row')} in {counted(len(result.tables), 'table')}"
    deleted = sum(t.deleted for t in result.tables)
    if deleted:
        detail += f", {counted(deleted, 'row')} deleted upstream marked or removed"
    duplicates = sum(t.duplicates for t in result.tables)
    if duplicates:
        detail += f", {counted(duplicates, 'row')} sharing a key collapsed ({kept})"
    if result.rejected:
        detail += f", {result.rejected:,} rejected → {dataset}.{rejected_table}"
    for note in result.notes:
        detail += f"; {note}"
    return detail
