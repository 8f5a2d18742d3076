"""Staging models written from what was actually loaded.

For each table of a source, one ``stg_<loader>__<table>.sql`` in the runbook's CTE style
(``id`` renamed to ``<entity>_id``, timestamps cast, dlt's bookkeeping columns left out
except the load time) and its YAML with ``unique`` + ``not_null`` on the primary key.

Every generated file carries a marker with the hash of its body. stackyard rewrites or deletes
a file only while the marker still matches: an edited file is the user's from then on.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOADER = "dlt"
# Where dbt reads a stackyard source's raw tables (set by the warehouse for dbt).
RAW_DATABASE = "{{ env_var('STACKYARD_RAW_DATABASE', target.database) }}"
MARKER = "stackyard:generated"
_MARKER_RE = re.compile(r"stackyard:generated source=(\S+) sha256=([0-9a-f]{16})")

# Words no engine accepts as a bare column name. DuckDB's and BigQuery's lists come from
# sqlglot; Postgres's fully reserved words are within DuckDB's (it uses Postgres's grammar);
# Snowflake's are listed at https://docs.snowflake.com/en/sql-reference/reserved-keywords.
_SNOWFLAKE_RESERVED = [
    "account",
    "all",
    "alter",
    "and",
    "any",
    "as",
    "between",
    "by",
    "case",
    "cast",
    "check",
    "column",
    "connect",
    "connection",
    "constraint",
    "create",
    "cross",
    "current",
    "current_date",
    "current_time",
    "current_timestamp",
    "current_user",
    "database",
    "delete",
    "distinct",
    "drop",
    "else",
    "exists",
    "false",
    "following",
    "for",
    "from",
    "full",
    "grant",
    "group",
    "gscluster",
    "having",
    "ilike",
    "in",
    "increment",
    "inner",
    "insert",
    "intersect",
    "into",
    "is",
    "issue",
    "join",
    "lateral",
    "left",
    "like",
    "localtime",
    "localtimestamp",
    "minus",
    "natural",
    "not",
    "null",
    "of",
    "on",
    "or",
    "order",
    "organization",
    "qualify",
    "regexp",
    "revoke",
    "right",
    "rlike",
    "row",
    "rows",
    "sample",
    "schema",
    "select",
    "set",
    "some",
    "start",
    "table",
    "tablesample",
    "then",
    "to",
    "trigger",
    "true",
    "try_cast",
    "union",
    "unique",
    "update",
    "using",
    "values",
    "view",
    "when",
    "whenever",
    "where",
    "window",
    "with",
]
# Dialects that fold unquoted names to upper case, so a quoted name keeps that case
# (https://docs.snowflake.com/en/sql-reference/identifiers-syntax).
UPPER_CASE_DIALECTS = frozenset({"snowflake"})

_SAFE_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")

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


@functools.cache
def _reserved_words() -> frozenset[str]:
    from sqlglot.dialects.dialect import Dialect

    words = set(_SNOWFLAKE_RESERVED)
    for dialect in ("duckdb", "bigquery", "postgres", "snowflake"):
        words |= {
            w.lower() for w in Dialect.get_or_raise(dialect).generator_class.RESERVED_KEYWORDS
        }
    return frozenset(words)


def quote_column(name: str, dialect: str = "duckdb") -> str:
    """A column name as written in a generated model: bare when every engine reads it as
    itself, else quoted with sqlglot for the dialect (reserved words, capitals, spaces).

    Snowflake folds bare names to upper case and dlt creates its columns that way, so a
    name quoted there is quoted in upper case.

    >>> [quote_column(n) for n in ("amount", "select", "order", "Total Due")]
    ['amount', '"select"', '"order"', '"Total Due"']
    >>> quote_column("group", "snowflake"), quote_column("group", "bigquery")
    ('"GROUP"', '`group`')
    """
    from sqlglot import exp

    if _SAFE_NAME.match(name) and name not in _reserved_words():
        return name
    if dialect in UPPER_CASE_DIALECTS and _SAFE_NAME.match(name):
        name = name.upper()
    return exp.to_identifier(name, quoted=True).sql(dialect=dialect)


def needs_quotes(name: str) -> bool:
    """Whether a column name must be quoted in generated SQL and YAML tests.

    >>> needs_quotes("select"), needs_quotes("customer_id")
    (True, False)
    """
    return quote_column(name) != name


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


def model_name(table: str, loader: str = LOADER) -> str:
    """The staging model for a table.

    >>> model_name("customers"), model_name("accounts", "fivetran")
    ('stg_dlt__customers', 'stg_fivetran__accounts')
    """
    return f"stg_{loader}__{table}"


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


def staging_files(
    source: str, tables: Sequence[LoadedTable], dialect: str = "duckdb"
) -> list[GeneratedFile]:
    """The staging model and its YAML for each table, with column names quoted for
    ``dialect`` (the target's sqlglot dialect) where they need it."""
    folder = Path("models") / "staging" / LOADER
    files = []
    for table in tables:
        name = model_name(table.name)
        files.append(GeneratedFile(folder / f"{name}.sql", _model_sql(source, table, dialect)))
        files.append(GeneratedFile(folder / f"{name}.yml", _model_yml(source, table, dialect)))
    return files


def sources_entry(
    source: str,
    schema: str,
    kind: str,
    tables: Sequence[str],
    freshness: Mapping[str, int],
    *,
    loader: str = LOADER,
    loaded_at: str = "_loaded_at",
) -> dict[str, object]:
    """The source's entry in ``_sources.yml`` (``loader``: who writes its tables, and the
    column it stamps each row's load time in)."""
    by = "by stackyard" if loader == LOADER else f"by {loader}"
    return {
        "name": f"{loader}_{source}",
        "description": f"Loaded {by} from the {source} source ({kind}) with {loader}.",
        # The loader's database: the target's own unless the warehouse keeps raw data in
        # another one (Snowflake: dlt loads into DLT while dbt builds into ANALYTICS).
        "database": RAW_DATABASE,
        "schema": schema,
        "loaded_at_field": loaded_at,
        "freshness": {
            "warn_after": {"count": freshness["warn_after_hours"], "period": "hour"},
            "error_after": {"count": freshness["error_after_hours"], "period": "hour"},
        },
        "meta": {"stackyard_source": source},
        "tables": [{"name": t} for t in tables],
    }


def _renamed(table: LoadedTable, column: Column) -> str:
    """``id`` as ``<entity>_id``, unless the table has a column of that name already (its
    own ``item_id`` would be renamed by the database, or the model would not build)."""
    if column.name == "id":
        wanted = f"{entity_name(table.name)}_id"
        if all(c.name != wanted for c in table.columns):
            return wanted
    return column.name


def column_groups(
    table: LoadedTable, dialect: str, skip: Callable[[Any], bool]
) -> tuple[list[str], list[str], list[str]]:
    """A staging model's select list in three groups — identifiers, other columns, and dates
    and timestamps cast to their type — each column renamed as the naming rules say; columns
    ``skip`` names (and dlt's own) are left out. Shared by every loader's staging models."""
    identifiers: list[str] = []
    dimensions: list[str] = []
    timestamps: list[str] = []
    for column in table.columns:
        if column.name.startswith("_dlt_") or skip(column):
            continue
        new = _renamed(table, column)
        name = quote_column(column.name, dialect)
        alias = f" as {quote_column(new, dialect)}" if new != column.name else ""
        as_itself = alias or f" as {name}"
        if column.data_type in _TIMESTAMP_TYPES:
            timestamps.append(f"cast({name} as timestamp){as_itself}")
        elif column.data_type in _DATE_TYPES:
            timestamps.append(f"cast({name} as date){as_itself}")
        elif column.name == "id" or column.name.endswith("_id") or column.primary_key:
            identifiers.append(f"{name}{alias}")
        else:
            dimensions.append(f"{name}{alias}")
    return identifiers, dimensions, timestamps


def _model_sql(source: str, table: LoadedTable, dialect: str = "duckdb") -> str:
    identifiers, dimensions, timestamps = column_groups(
        table, dialect, lambda column: column.name == "_loaded_at"
    )
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


def _model_yml(
    source: str, table: LoadedTable, dialect: str = "duckdb", loader: str = LOADER
) -> str:
    name = model_name(table.name, loader)
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
            f"cast({quote_column(renamed.get(k, k), dialect)} as varchar)"
            for k in table.primary_key
        )
        lines += [
            "    data_tests:",
            "      - unique:",
            f'          column_name: "{combined}"',
            "    columns:",
        ]
        for key in table.primary_key:
            lines += [
                f"      - name: {_yml_name(renamed.get(key, key), dialect)}",
                *_quote_line(renamed.get(key, key)),
                f"        description: Part of the primary key ({table.key_origin}).",
                "        data_tests:",
                "          - not_null",
            ]
    elif table.primary_key:
        key = table.primary_key[0]
        lines += [
            "    columns:",
            f"      - name: {_yml_name(renamed.get(key, key), dialect)}",
            *_quote_line(renamed.get(key, key)),
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


def _yml_name(column: str, dialect: str) -> str:
    """The column's name in YAML: as dbt quotes it with ``quote: true`` (Snowflake: upper)."""
    return column.upper() if dialect in UPPER_CASE_DIALECTS and needs_quotes(column) else column


def _quote_line(column: str) -> list[str]:
    """dbt's ``quote: true`` for a column whose name must be quoted in its tests."""
    return ["        quote: true"] if needs_quotes(column) else []
