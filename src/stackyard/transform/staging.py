"""Staging models written from what was actually loaded.

For each table of a source, one ``stg_<loader>__<table>.sql`` in the runbook's CTE style
(``id`` renamed to ``<entity>_id``, timestamps cast, dlt's bookkeeping columns left out
except the load time) and its YAML with ``unique`` + ``not_null`` on the primary key.

Every generated file carries a marker with the hash of its body. stackyard rewrites or deletes
a file only while the marker still matches: an edited file is the user's from then on.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

LOADER = "dlt"
MARKER = "stackyard:generated"
_MARKER_RE = re.compile(r"stackyard:generated source=(\S+) sha256=([0-9a-f]{16})")

_TIMESTAMP_TYPES = {"timestamp"}
_DATE_TYPES = {"date"}


@dataclass(frozen=True)
class Column:
    """A loaded column, as dlt's schema describes it."""

    name: str
    data_type: str
    primary_key: bool = False


@dataclass(frozen=True)
class LoadedTable:
    """A loaded table and the key chosen for its tests."""

    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    key_origin: str = ""  # "declared", "detected in the data" or "" (none found)


@dataclass(frozen=True)
class GeneratedFile:
    """A file to write, relative to the dbt project."""

    path: Path
    text: str


def entity_name(table: str) -> str:
    """The singular noun for a table's rows.

    >>> [entity_name(t) for t in ("customers", "order_items", "categories", "addresses", "status")]
    ['customer', 'order_item', 'category', 'address', 'status']
    """
    if table.endswith("ies") and len(table) > 4:
        return table[:-3] + "y"
    if table.endswith(("sses", "shes", "ches", "xes")):
        return table[:-2]
    if table.endswith("s") and not table.endswith(("ss", "us")):
        return table[:-1]
    return table


def dbt_source_name(source: str) -> str:
    """The dbt source a stackyard source appears as: ``<loader>_<source>``.

    >>> dbt_source_name("crm")
    'dlt_crm'
    """
    return f"{LOADER}_{source}"


def dbt_source_names(source: str) -> tuple[str, ...]:
    """Every name a stackyard source may have in dbt's sources: the convention's
    ``<loader>_<source>``, and a plain ``<source>`` in hand-written projects.

    >>> dbt_source_names("shop_db")
    ('dlt_shop_db', 'shop_db')
    """
    return (dbt_source_name(source), source)


def model_name(table: str) -> str:
    """The staging model for a table.

    >>> model_name("customers")
    'stg_dlt__customers'
    """
    return f"stg_{LOADER}__{table}"


def with_marker(source: str, body: str, comment: str) -> str:
    """``body`` with a first line marking it as generated, carrying the body's hash."""
    digest = hashlib.sha256(body.encode()).hexdigest()[:16]
    return f"{comment} {MARKER} source={source} sha256={digest}\n{body}"


def generated_by(text: str) -> tuple[str | None, bool]:
    """Which source generated a file, and whether it is still unedited.

    Returns:
        ``(source, unedited)``; ``(None, False)`` for a file stackyard did not write.
    """
    first, _, body = text.partition("\n")
    match = _MARKER_RE.search(first)
    if not match:
        return None, False
    return match.group(1), hashlib.sha256(body.encode()).hexdigest()[:16] == match.group(2)


def staging_files(source: str, tables: Sequence[LoadedTable]) -> list[GeneratedFile]:
    """The staging model and its YAML for each table."""
    folder = Path("models") / "staging" / LOADER
    files = []
    for table in tables:
        name = model_name(table.name)
        files.append(GeneratedFile(folder / f"{name}.sql", _model_sql(source, table)))
        files.append(GeneratedFile(folder / f"{name}.yml", _model_yml(source, table)))
    return files


def sources_entry(
    source: str, schema: str, kind: str, tables: Sequence[str], freshness: Mapping[str, int]
) -> dict[str, object]:
    """The source's entry in ``_sources.yml``."""
    return {
        "name": dbt_source_name(source),
        "description": f"Loaded by stackyard from the {source} source ({kind}) with dlt.",
        "schema": schema,
        "loaded_at_field": "_loaded_at",
        "freshness": {
            "warn_after": {"count": freshness["warn_after_hours"], "period": "hour"},
            "error_after": {"count": freshness["error_after_hours"], "period": "hour"},
        },
        "meta": {"stackyard_source": source},
        "tables": [{"name": t} for t in tables],
    }


def _renamed(table: LoadedTable, column: Column) -> str:
    if column.name == "id":
        return f"{entity_name(table.name)}_id"
    return column.name


def _model_sql(source: str, table: LoadedTable) -> str:
    identifiers, dimensions, timestamps = [], [], []
    for column in table.columns:
        if column.name.startswith("_dlt_") or column.name == "_loaded_at":
            continue
        new = _renamed(table, column)
        alias = f" as {new}" if new != column.name else ""
        if column.data_type in _TIMESTAMP_TYPES:
            timestamps.append(f"cast({column.name} as timestamp){alias or f' as {new}'}")
        elif column.data_type in _DATE_TYPES:
            timestamps.append(f"cast({column.name} as date){alias or f' as {new}'}")
        elif column.name == "id" or column.name.endswith("_id") or column.primary_key:
            identifiers.append(f"{column.name}{alias}")
        else:
            dimensions.append(f"{column.name}{alias}")
    timestamps.append("_loaded_at")
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
    body = (
        "with source as (\n\n"
        f"    select * from {{{{ source('{dbt_source_name(source)}', '{table.name}') }}}}\n\n"
        "),\n\n"
        "renamed as (\n\n"
        "    select\n" + "\n".join(lines) + "\n\n"
        "    from source\n\n"
        ")\n\n"
        "select * from renamed\n"
    )
    return with_marker(source, body, "--")


def _model_yml(source: str, table: LoadedTable) -> str:
    name = model_name(table.name)
    renamed = {c.name: _renamed(table, c) for c in table.columns}
    lines = [
        "version: 2",
        "",
        "models:",
        f"  - name: {name}",
        f"    description: {table.name.replace('_', ' ').capitalize()} from the {source} source, "
        f"one row per {entity_name(table.name).replace('_', ' ')}.",
    ]
    if len(table.primary_key) > 1:
        # A composite key: each part is never null, and the combination is unique.
        combined = " || '|' || ".join(
            f"cast({renamed.get(k, k)} as varchar)" for k in table.primary_key
        )
        lines += [
            "    data_tests:",
            "      - unique:",
            f'          column_name: "{combined}"',
            "    columns:",
        ]
        for key in table.primary_key:
            lines += [
                f"      - name: {renamed.get(key, key)}",
                f"        description: Part of the primary key ({table.key_origin}).",
                "        data_tests:",
                "          - not_null",
            ]
    elif table.primary_key:
        key = table.primary_key[0]
        lines += [
            "    columns:",
            f"      - name: {renamed.get(key, key)}",
            f"        description: Primary key ({table.key_origin}; {table.name}.{key} in the "
            "source).",
            "        data_tests:",
            "          - unique",
            "          - not_null",
        ]
    else:
        lines += [
            "    # No primary key was declared for this table and none was found in the data",
            "    # (no column was unique and never null). Add unique and not_null tests on",
            "    # the key once it is known.",
        ]
    return with_marker(source, "\n".join(lines) + "\n", "#")
