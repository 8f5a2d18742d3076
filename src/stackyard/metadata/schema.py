"""The ``stackyard`` metadata schema: every table stackyard keeps in a target warehouse.

This module and its two neighbours own all SQL on the schema: :mod:`.history` the run history
(``runs``, ``steps``, ``loads``, ``node_results``, ``freshness``; :mod:`.builds` reads which
runs built a model), :mod:`.monitors` the monitors' tables, :mod:`.leases` the run leases
(``run_leases``). The backfill ledger's tables
(``backfills``, ``backfill_partitions``, ``backfill_leases``) are declared here too; their SQL
runs inside backfill workers' transactions, in :mod:`stackyard.runbooks.backfill.ledger`.
Other code asks them; it never queries these tables by hand. Only portable SQL is used, so
the same tables exist on every engine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from stackyard.warehouse.base import Warehouse

METADATA_SCHEMA = "stackyard"

RUN_TABLES: dict[str, str] = {
    "runs": "run_id VARCHAR NOT NULL, project VARCHAR, target VARCHAR, status VARCHAR, "
    "started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ, selected VARCHAR, rows_loaded BIGINT, "
    "rows_rejected BIGINT, models_built INTEGER, models_failed INTEGER, tests_passed INTEGER, "
    "tests_failed INTEGER, transform_hash VARCHAR, dbt_build VARCHAR",
    "steps": "run_id VARCHAR NOT NULL, step VARCHAR, status VARCHAR, detail VARCHAR, "
    "started_at TIMESTAMPTZ, seconds DOUBLE PRECISION",
    "loads": "run_id VARCHAR NOT NULL, source VARCHAR, schema_name VARCHAR, table_name VARCHAR, "
    "row_count BIGINT, load_ids VARCHAR, status VARCHAR, rejected BIGINT, error VARCHAR, "
    "seconds DOUBLE PRECISION",
    "node_results": "run_id VARCHAR NOT NULL, unique_id VARCHAR, name VARCHAR, "
    "resource_type VARCHAR, status VARCHAR, failures BIGINT, message VARCHAR, "
    "seconds DOUBLE PRECISION",
    "freshness": "run_id VARCHAR NOT NULL, source VARCHAR, table_name VARCHAR, status VARCHAR, "
    "max_loaded_at VARCHAR, age_hours DOUBLE PRECISION",
}

MONITOR_TABLES: dict[str, str] = {
    "monitor_runs": "run_id VARCHAR NOT NULL, measured_at TIMESTAMPTZ, trigger VARCHAR, "
    "status VARCHAR, tables_checked INTEGER, anomalies INTEGER, summary VARCHAR",
    "monitor_metrics": "run_id VARCHAR NOT NULL, measured_at TIMESTAMPTZ, table_name VARCHAR, "
    "metric VARCHAR, column_name VARCHAR, day DATE, value DOUBLE PRECISION",
    "monitor_findings": "run_id VARCHAR NOT NULL, measured_at TIMESTAMPTZ, table_name VARCHAR, "
    "kind VARCHAR, node VARCHAR, check_name VARCHAR, column_name VARCHAR, day DATE, "
    "status VARCHAR, value DOUBLE PRECISION, expected DOUBLE PRECISION, "
    "lower_bound DOUBLE PRECISION, upper_bound DOUBLE PRECISION, reason VARCHAR",
    "monitor_schemas": "table_name VARCHAR NOT NULL, kind VARCHAR, node VARCHAR, "
    "unique_id VARCHAR, column_name VARCHAR, data_type VARCHAR, position INTEGER, "
    "captured_at TIMESTAMPTZ",
    "monitor_incidents": "table_name VARCHAR NOT NULL, start_day DATE, end_day DATE, "
    "note VARCHAR, marked_at TIMESTAMPTZ",
    "monitor_alerts": "run_id VARCHAR NOT NULL, sent_at TIMESTAMPTZ, alert_key VARCHAR, "
    "root_cause VARCHAR, channel VARCHAR, status VARCHAR, attempts INTEGER, error VARCHAR, "
    "summary VARCHAR, findings VARCHAR",
}

# The backfill ledger; its reads and writes run on the backfill workers' own connections, inside
# their transactions, in stackyard.runbooks.backfill.ledger.
BACKFILL_TABLES: dict[str, str] = {
    "backfills": "backfill_id VARCHAR NOT NULL, target VARCHAR, target_kind VARCHAR, "
    "warehouse_target VARCHAR, range_start VARCHAR, range_end VARCHAR, grain VARCHAR, "
    "time_zone VARCHAR, workers INTEGER, status VARCHAR, holder VARCHAR, "
    "created_at TIMESTAMPTZ, finished_at TIMESTAMPTZ, code_fingerprint VARCHAR, "
    "validation VARCHAR, preimage_table VARCHAR, rolled_back_at TIMESTAMPTZ, "
    "preimage_dropped_at TIMESTAMPTZ",
    "backfill_partitions": "backfill_id VARCHAR NOT NULL, seq INTEGER, window_start VARCHAR, "
    "window_end VARCHAR, status VARCHAR, attempt INTEGER, worker INTEGER, "
    "heartbeat TIMESTAMPTZ, started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ, "
    "seconds DOUBLE PRECISION, rows_written BIGINT, rows_source BIGINT, error VARCHAR, "
    "code_fingerprint VARCHAR, input_fingerprint VARCHAR, preimage_rows BIGINT, engine VARCHAR",
    "backfill_leases": "target VARCHAR NOT NULL PRIMARY KEY, backfill_id VARCHAR, "
    "holder VARCHAR, heartbeat TIMESTAMPTZ",
}

# Who is running what: one row per source or transformation being run, so two runs of the
# same thing never overlap (stackyard.metadata.run_leases owns its SQL).
LEASE_TABLES: dict[str, str] = {
    "run_leases": "name VARCHAR NOT NULL PRIMARY KEY, holder VARCHAR, run_id VARCHAR, "
    "acquired_at TIMESTAMPTZ, expires_at TIMESTAMPTZ",
}

# Postgres accepts at most 65,535 parameters per statement.
_MAX_PARAMS = 30_000


def column_types(columns: str) -> list[str]:
    """The types of a table's column definitions, constraints left out.

    >>> column_types("a VARCHAR NOT NULL, b DOUBLE PRECISION, c VARCHAR NOT NULL PRIMARY KEY")
    ['VARCHAR', 'DOUBLE PRECISION', 'VARCHAR']
    """
    return [
        c.split(" ", 1)[1].replace(" NOT NULL", "").replace(" PRIMARY KEY", "")
        for c in columns.split(", ")
    ]


_COLUMN_TYPES = {
    name: column_types(columns)
    for tables in (RUN_TABLES, MONITOR_TABLES, BACKFILL_TABLES, LEASE_TABLES)
    for name, columns in tables.items()
}


def ensure_tables(warehouse: Warehouse, tables: Mapping[str, str]) -> None:
    """Create the metadata schema and tables, and add columns newer versions need."""
    warehouse.ensure_schema(METADATA_SCHEMA)
    if warehouse.INFORMATION_SCHEMA and _all_present(warehouse, tables):
        return  # the usual case, answered by one query instead of one per table
    for table, columns in tables.items():
        warehouse.ensure_table(METADATA_SCHEMA, table, columns)


def _all_present(warehouse: Warehouse, tables: Mapping[str, str]) -> bool:
    """Whether every table already has every column (read with one query)."""
    p = warehouse.param()
    rows = warehouse.query(
        f"SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = {p}",
        (METADATA_SCHEMA,),
    ).rows
    present = {(str(table), str(column)) for table, column in rows}
    return all(
        (table, column.split(" ", 1)[0]) in present
        for table, columns in tables.items()
        for column in columns.split(", ")
    )


def existing_tables(warehouse: Warehouse) -> set[str]:
    """The metadata tables this warehouse has (none before the first run)."""
    if not warehouse.schema_exists(METADATA_SCHEMA):
        return set()
    return set(warehouse.tables_in(METADATA_SCHEMA))


def relation(warehouse: Warehouse, table: str) -> str:
    """A metadata table's quoted name, e.g. ``"stackyard"."runs"``."""
    return warehouse.quote(METADATA_SCHEMA, table)


def insert_rows(warehouse: Warehouse, table: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """Append rows to a metadata table, a few multi-row INSERTs whatever their number."""
    # One multi-row INSERT per chunk: DuckDB's executemany runs a statement per row,
    # which costs about a millisecond each.
    if not rows:
        return
    width = len(rows[0])
    types = _COLUMN_TYPES.get(table)
    if warehouse.LIST_PARAMETERS and types is not None and len(types) == width:
        # One list per column, unnested row by row: binding a list is much cheaper than
        # thousands of scalar parameters (a monitor pass's findings: 5x faster on DuckDB).
        p = warehouse.param()
        warehouse.execute(
            f"INSERT INTO {relation(warehouse, table)} SELECT "
            + ", ".join(f"unnest(CAST({p} AS {t}[]))" for t in types),
            [list(column) for column in zip(*rows, strict=True)],
        )
        return
    one = "(" + ", ".join([warehouse.param()] * width) + ")"
    size = max(1, _MAX_PARAMS // width)
    for start in range(0, len(rows), size):
        chunk = rows[start : start + size]
        params = [value for row in chunk for value in row]
        warehouse.execute(
            f"INSERT INTO {relation(warehouse, table)} VALUES {', '.join([one] * len(chunk))}",
            params,
        )
