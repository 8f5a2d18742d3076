"""A keyed table's first load appends (a merge into a table that does not exist yet only costs
a staging copy); when the source holds a declared key more than once, the copies are then
collapsed as every later merge collapses them: the row with the highest cursor is kept and
the run counts the others. Before, the first load kept every copy and later merges never
went back to them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FirstLoad:
    """A table loaded by appending, though it merges on ``key`` from its next load on."""

    key: str | list[str]
    cursor: str

    @property
    def columns(self) -> list[str]:
        """The key's columns."""
        return [self.key] if isinstance(self.key, str) else list(self.key)


def collapse_repeated_keys(
    pipeline: Any, tables: Mapping[str, FirstLoad], load_ids: Sequence[str]
) -> dict[str, int]:
    """Keep one row per key, the one with the highest cursor, of what these loads appended.

    Args:
        pipeline: the dlt pipeline that ran the loads.
        tables: the first-loaded tables by their name in stackyard.yml.
        load_ids: the loads' ids.

    Returns:
        Rows removed per table, by its name in dlt's schema (only tables that had a key more
        than once).
    """
    if not tables or not load_ids or not pipeline.default_schema_name:
        return {}
    schema = pipeline.default_schema
    naming = schema.naming
    ids = ", ".join("'" + i.replace("'", "''") + "'" for i in load_ids)
    removed: dict[str, int] = {}
    with pipeline.sql_client() as client:
        for configured, first in sorted(tables.items()):
            name = naming.normalize_table_identifier(configured)
            columns = list(schema.get_table_columns(name)) if name in schema.tables else []
            if not columns or "_dlt_load_id" not in columns:
                continue  # nothing loaded into it
            q = client.escape_column_name
            table = client.make_qualified_table_name(name)
            mine = f"{q('_dlt_load_id')} IN ({ids})"
            key = ", ".join(q(naming.normalize_identifier(c)) for c in first.columns)
            cursor = q(naming.normalize_identifier(first.cursor))
            repeated = (
                f"SELECT 1 FROM {table} WHERE {mine} GROUP BY {key} HAVING count(*) > 1 LIMIT 1"
            )
            if not client.execute_sql(repeated):
                continue
            listed = ", ".join(q(c) for c in columns)
            before = int(client.execute_sql(f"SELECT count(*) FROM {table} WHERE {mine}")[0][0])
            with client.begin_transaction():
                # NULLS LAST: a row without a cursor value is not "the latest".
                client.execute_sql(
                    f"CREATE TEMP TABLE stackyard_latest AS SELECT {listed} FROM (SELECT "
                    f"{listed}, ROW_NUMBER() OVER (PARTITION BY {key} ORDER BY "
                    f"{cursor} DESC NULLS LAST) AS stackyard_n FROM {table} "
                    f"WHERE {mine}) AS numbered WHERE stackyard_n = 1"
                )
                client.execute_sql(f"DELETE FROM {table} WHERE {mine}")
                client.execute_sql(
                    f"INSERT INTO {table} ({listed}) SELECT {listed} FROM stackyard_latest"
                )
                client.execute_sql("DROP TABLE stackyard_latest")
            after = int(client.execute_sql(f"SELECT count(*) FROM {table} WHERE {mine}")[0][0])
            removed[name] = before - after
    return removed
