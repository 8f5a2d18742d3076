"""Tables written as Airbyte and Fivetran write them, for tests and the docs' examples.

Airbyte (Destinations V2, https://docs.airbyte.com/understanding-airbyte/airbyte-metadata-fields)
adds ``_airbyte_raw_id``, ``_airbyte_extracted_at``, ``_airbyte_meta`` and
``_airbyte_generation_id`` (and, from a CDC source, ``_ab_cdc_deleted_at`` on rows deleted
upstream); Fivetran (https://fivetran.com/docs/core-concepts/system-columns-and-tables) adds
``_fivetran_synced`` and ``_fivetran_deleted`` (soft deletes) and keeps the source's primary key.

    python tests/ingest/loader_tables.py --duckdb shop/.stackyard/dev.duckdb \
        --loader airbyte --schema support [--hours-ago 2]
"""

from __future__ import annotations

import argparse
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# table → (columns, rows); ids 1..n, the last row deleted upstream
AIRBYTE = {
    "tickets": ("id bigint, subject varchar, status varchar, requester_id bigint", 4),
    "users": ("id bigint, name varchar, email varchar", 3),
}
FIVETRAN = {
    "invoices": (
        "id bigint primary key, customer_id bigint, amount numeric(10,2), status varchar",
        5,
    ),
    "customers": ("id bigint primary key, name varchar", 3),
}


def _values(table: str, i: int) -> tuple[Any, ...]:
    return {
        "tickets": (i, f"ticket {i}", "open" if i % 2 else "solved", 1 + i % 3),
        "users": (i, f"user {i}", f"user{i}@example.com"),
        "invoices": (i, 1 + i % 3, i * 10 + 0.5, "paid"),
        "customers": (i, f"customer {i}"),
    }[table]


def write_tables(conn: Any, engine: str, loader: str, schema: str, hours_ago: float) -> None:
    """(Re)create the loader's tables in ``schema``, each row stamped ``hours_ago`` hours ago.

    Args:
        conn: a DB-API connection (duckdb or psycopg).
        engine: ``duckdb`` or ``postgres``.
        loader: ``airbyte`` or ``fivetran``.
        schema: where the loader writes.
        hours_ago: how long ago the loader last wrote the rows.
    """
    at = datetime.now(UTC) - timedelta(hours=hours_ago)
    json_type = "json" if engine == "duckdb" else "jsonb"
    param = "?" if engine == "duckdb" else "%s"
    cur = conn.cursor()
    cur.execute(f'create schema if not exists "{schema}"')
    tables = AIRBYTE if loader == "airbyte" else FIVETRAN
    for table, (columns, rows) in tables.items():
        if loader == "airbyte":
            extra = (
                f"_airbyte_raw_id varchar, _airbyte_extracted_at timestamp with time zone, "
                f"_airbyte_meta {json_type}, _airbyte_generation_id bigint, "
                "_ab_cdc_deleted_at timestamp with time zone"
            )
        else:
            extra = "_fivetran_deleted boolean, _fivetran_synced timestamp with time zone"
        cur.execute(f'drop table if exists "{schema}"."{table}"')
        cur.execute(f'create table "{schema}"."{table}" ({columns}, {extra})')
        for i in range(1, rows + 1):
            deleted = i == rows
            if loader == "airbyte":
                meta = '{"changes": [], "sync_id": 1}'
                stamps: tuple[Any, ...] = (str(uuid.uuid4()), at, meta, 1, at if deleted else None)
            else:
                stamps = (deleted, at)
            values = (*_values(table, i), *stamps)
            marks = ", ".join([param] * len(values))
            cur.execute(f'insert into "{schema}"."{table}" values ({marks})', values)
    conn.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--duckdb", help="path of the DuckDB file")
    where.add_argument("--postgres", help="Postgres connection string")
    parser.add_argument("--loader", choices=("airbyte", "fivetran"), required=True)
    parser.add_argument("--schema", required=True)
    parser.add_argument("--hours-ago", type=float, default=1.0)
    args = parser.parse_args()
    if args.duckdb:
        import duckdb

        Path(args.duckdb).parent.mkdir(parents=True, exist_ok=True)
        conn: Any = duckdb.connect(args.duckdb)
        engine = "duckdb"
    else:
        import psycopg

        conn = psycopg.connect(args.postgres)
        engine = "postgres"
    try:
        write_tables(conn, engine, args.loader, args.schema, args.hours_ago)
    finally:
        conn.close()


if __name__ == "__main__":
    main()
