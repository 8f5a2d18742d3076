"""Staging models for tables another tool loads (Airbyte, Fivetran, Snowpipe …).

The same CTE style and key tests as the models of dlt-loaded tables
(:mod:`stackyard.transform.staging`), with the loader's bookkeeping handled as its vendor
documents it: its columns are left out, its load-time column becomes ``_loaded_at``, and rows
it marks as deleted upstream (Fivetran's ``_fivetran_deleted``, Airbyte's CDC
``_ab_cdc_deleted_at``) or as past versions (Fivetran history mode's ``_fivetran_active``)
are filtered out, so a model shows what the source holds now.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from stackyard.config.external import LoaderColumns
from stackyard.transform.staging import (
    GeneratedFile,
    LoadedTable,
    _model_yml,
    column_groups,
    model_name,
    quote_column,
    with_marker,
)


def catalog_type(data_type: str) -> str:
    """A warehouse catalog's column type in dlt's words, which the staging models and key
    detection use.

    >>> [catalog_type(t) for t in ("TIMESTAMP WITH TIME ZONE", "DATE", "INTEGER", "VARCHAR")]
    ['timestamp', 'date', 'bigint', 'text']
    """
    lowered = data_type.lower()
    if lowered.startswith(("timestamp", "datetime")):
        return "timestamp"
    if lowered in ("integer", "bigint", "smallint", "hugeint", "int", "int4", "int8", "tinyint"):
        return "bigint"
    if lowered.startswith(("varchar", "character varying", "text", "char", "string")):
        return "text"
    if lowered.startswith(("numeric", "decimal")):
        return "decimal"
    return lowered


def external_staging_files(
    source: str,
    dbt_name: str,
    loader: str,
    columns: LoaderColumns,
    tables: Sequence[LoadedTable],
    dialect: str = "duckdb",
) -> list[GeneratedFile]:
    """The staging model and its YAML for each table a loader writes.

    Args:
        source: the stackyard source.
        dbt_name: its dbt source (``<loader>_<source>``).
        loader: the loader (the models' folder and name prefix).
        columns: the loader's bookkeeping columns.
        tables: the tables, with the columns the warehouse catalog lists.
        dialect: the target's sqlglot dialect (for quoting).
    """
    folder = Path("models") / "staging" / loader
    files = []
    for table in tables:
        name = model_name(table.name, loader)
        sql = _model_sql(source, dbt_name, columns, table, dialect)
        files.append(GeneratedFile(folder / f"{name}.sql", sql))
        yml = _model_yml(source, table, dialect, loader)
        files.append(GeneratedFile(folder / f"{name}.yml", yml))
    return files


def _filters(columns: LoaderColumns, present: set[str], dialect: str) -> list[str]:
    """The loader's soft-delete and current-version filters, for the columns the table has."""
    found = []
    if columns.deleted_flag and columns.deleted_flag in present:
        found.append(f"not coalesce({quote_column(columns.deleted_flag, dialect)}, false)")
    if columns.deleted_at and columns.deleted_at in present:
        found.append(f"{quote_column(columns.deleted_at, dialect)} is null")
    if columns.current_flag and columns.current_flag in present:
        found.append(f"coalesce({quote_column(columns.current_flag, dialect)}, true)")
    return found


def _model_sql(
    source: str, dbt_name: str, columns: LoaderColumns, table: LoadedTable, dialect: str
) -> str:
    skipped = set(columns.bookkeeping) | {columns.loaded_at}
    identifiers, dimensions, timestamps = column_groups(
        table,
        dialect,
        lambda column: column.name in skipped and column.name not in table.primary_key,
    )
    timestamps.append(
        f"cast({quote_column(columns.loaded_at, dialect)} as timestamp) as _loaded_at"
    )
    lines = []
    for title, group in (
        ("identifiers", identifiers),
        ("dimensions", dimensions),
        ("timestamps", timestamps),
    ):
        if group:
            lines.append(f"        -- {title}")
            lines.extend(f"        {item}," for item in group)
    lines[-1] = lines[-1].rstrip(",")
    filters = _filters(columns, {c.name for c in table.columns}, dialect)
    where = ""
    if filters:
        where = (
            f"    -- rows {columns.deleted_flag or columns.deleted_at or 'the loader'} marks as "
            "deleted upstream, or as past versions, are not the source's rows now\n"
            "    where " + "\n      and ".join(filters) + "\n"
        )
    body = (
        "with source as (\n\n"
        f"    select * from {{{{ source('{dbt_name}', '{table.name}') }}}}\n"
        f"{where}\n"
        "),\n\n"
        "renamed as (\n\n"
        "    select\n" + "\n".join(lines) + "\n\n"
        "    from source\n\n"
        ")\n\n"
        "select * from renamed\n"
    )
    return with_marker(source, body, "--")
