"""Rows deleted upstream, for ``sql_database`` tables that declare ``deletes: detect|remove``.

An incremental load reads rows changed since the cursor; a deleted row never shows up, so a
merged table keeps it for ever. After such a table's load, stackyard reads every key the
source still has and reconciles: keys the warehouse has and the source no longer has get
``_deleted_at`` (the load's time) with ``detect``, or are deleted with ``remove``. A key that
comes back upstream is merged in again as a new row (``_deleted_at`` empty).

It costs one read of the key column(s) of the source table per load.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from stackyard.config.model import SqlDatabaseSource

DELETED_AT = "_deleted_at"
_CHUNK = 500


def reconcile_deletes(
    pipeline: Any, config: SqlDatabaseSource, url: str, at: datetime
) -> dict[str, int]:
    """Mark or remove the rows whose keys the source no longer has.

    Returns:
        ``{table: rows marked or removed}`` for tables that had any.
    """
    import sqlalchemy

    out: dict[str, int] = {}
    tables = {n: t for n, t in config.tables.items() if t.deletes != "keep" and t.primary_key}
    if not tables:
        return out
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as conn:
            source_keys = {
                name: _source_keys(conn, table.source_table or name, config.source_schema, key)
                for name, table in tables.items()
                if (key := _key(table.primary_key))
            }
    finally:
        engine.dispose()
    with pipeline.sql_client() as client:
        for name, table in tables.items():
            key = _key(table.primary_key)
            qualified = client.make_qualified_table_name(name)
            columns = ", ".join(client.escape_column_name(k) for k in key)
            if table.deletes == "detect":
                _ensure_deleted_at(client, name, qualified)
                live = f" WHERE {client.escape_column_name(DELETED_AT)} IS NULL"
            else:
                live = ""
            found = client.execute_sql(f"SELECT {columns} FROM {qualified}{live}") or []
            wanted = source_keys[name]
            gone = [tuple(r) for r in found if tuple(str(v) for v in r) not in wanted]
            for start in range(0, len(gone), _CHUNK):
                chunk = gone[start : start + _CHUNK]
                row = "(" + ", ".join(["%s"] * len(key)) + ")"
                match = f"({columns}) IN ({', '.join([row] * len(chunk))})"
                args = [v for r in chunk for v in r]
                if table.deletes == "detect":
                    client.execute_sql(
                        f"UPDATE {qualified} SET {client.escape_column_name(DELETED_AT)} = %s "
                        f"WHERE {match}",
                        at,
                        *args,
                    )
                else:
                    client.execute_sql(f"DELETE FROM {qualified} WHERE {match}", *args)
            if gone:
                out[name] = len(gone)
    return out


def _key(primary_key: str | list[str] | None) -> list[str]:
    if not primary_key:
        return []
    return [primary_key] if isinstance(primary_key, str) else list(primary_key)


def _source_keys(
    conn: Any, table: str, schema: str | None, key: Sequence[str]
) -> set[tuple[str, ...]]:
    import sqlalchemy

    reflected = sqlalchemy.Table(table, sqlalchemy.MetaData(), schema=schema, autoload_with=conn)
    query = sqlalchemy.select(*(reflected.c[k] for k in key))
    return {tuple(str(v) for v in r) for r in conn.execute(query)}


def _ensure_deleted_at(client: Any, table: str, qualified: str) -> None:
    """Add ``_deleted_at`` to the table once (dlt's merges name their columns, so a column
    dlt does not know about is left alone)."""
    with client.execute_query(f"SELECT * FROM {qualified} LIMIT 0") as cursor:
        names = [d[0] for d in cursor.description]
    if DELETED_AT not in names:
        client.execute_sql(
            f"ALTER TABLE {qualified} ADD COLUMN {client.escape_column_name(DELETED_AT)} "
            "TIMESTAMP WITH TIME ZONE"
        )
