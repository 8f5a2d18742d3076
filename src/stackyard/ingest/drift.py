"""Schema drift that would silently turn into NULLs, caught before anything is loaded.

The seeds' post-mortem: a column was renamed upstream, the load carried on, the old column
filled with NULLs and the staging model selected them for hours. stackyard knows which columns
each staging model selects (from dbt's compiled SQL, parsed with sqlglot); when the new data
lacks one of them, the source's load fails before dlt writes anything, naming the table, the
column and the models. A column that changes type is caught by the source's schema contract
(types are frozen) and reported the same way.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stackyard.errors import LoadError, StackyardError

if TYPE_CHECKING:
    from stackyard.warehouse.base import Warehouse

# Columns stackyard and dlt add themselves; never "missing upstream".
_OWN_COLUMNS = ("_dlt_", "_loaded_at")


class SchemaDriftError(LoadError):
    """A column a model needs disappeared, or changed type, in a source's new data."""


def required_columns(
    transform_dir: Path,
    dbt_sources: Iterable[str],
    known: Mapping[str, Iterable[str]],
    dialect: str,
) -> dict[str, dict[str, list[str]]]:
    """Which loaded columns each model selects, per source table.

    Args:
        transform_dir: the dbt project (its ``target/manifest.json`` is read).
        dbt_sources: the dbt source names of the stackyard source (``dlt_<name>`` …).
        known: ``{table: columns}`` the warehouse has for the source.
        dialect: sqlglot dialect of the compiled SQL.

    Returns:
        ``{table: {column: [model, …]}}``; empty when dbt has not run yet.
    """
    manifest_path = transform_dir / "target" / "manifest.json"
    if not manifest_path.is_file():
        return {}
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    wanted = set(dbt_sources)
    sources = {
        uid: node["name"]
        for uid, node in manifest.get("sources", {}).items()
        if node.get("source_name") in wanted
    }
    out: dict[str, dict[str, list[str]]] = {}
    for node in manifest.get("nodes", {}).values():
        if node.get("resource_type") != "model":
            continue
        tables = [sources[d] for d in node.get("depends_on", {}).get("nodes", []) if d in sources]
        if not tables or _edited_since_compiled(transform_dir, node):
            # A model changed since dbt last compiled it (e.g. fixed after a rename): its
            # old SQL says nothing about what it selects now; dbt build checks the new one.
            continue
        # A model dbt skipped (its source failed, as on a drift) has no compiled SQL in the
        # manifest that run wrote: its own SQL, templating left out, names the same columns.
        # Without it the next run would find nothing required and load the NULLs.
        code = node.get("compiled_code") or _without_templating(node.get("raw_code") or "")
        referenced = _referenced_columns(code, dialect)
        for table in tables:
            columns = {c.lower() for c in known.get(table, ()) if not c.startswith(_OWN_COLUMNS)}
            for column in sorted(columns & referenced):
                out.setdefault(table, {}).setdefault(column, []).append(node["name"])
    return out


def _edited_since_compiled(transform_dir: Path, node: Mapping[str, Any]) -> bool:
    """The model file differs from the one the manifest was compiled from (dbt's own
    checksum: the sha256 of the file's text, stripped of surrounding whitespace)."""
    import hashlib

    path = transform_dir / str(node.get("original_file_path") or "")
    checksum = (node.get("checksum") or {}).get("checksum")
    if not path.is_file() or not checksum or (node.get("checksum") or {}).get("name") != "sha256":
        return False
    text = path.read_text(encoding="utf-8", errors="replace").strip()
    return hashlib.sha256(text.encode("utf-8")).hexdigest() != checksum


def _without_templating(sql: str) -> str:
    """A model's SQL with its Jinja taken out: ``{{ source(…) }}`` and ``{{ ref(…) }}`` become
    a table name, blocks and comments go.

    >>> _without_templating("select id, name from {{ source('dlt_shop', 'customers') }}")
    'select id, name from jinja_relation'
    """
    import re

    sql = re.sub(r"\{#.*?#\}", " ", sql, flags=re.S)
    sql = re.sub(r"\{%.*?%\}", " ", sql, flags=re.S)
    return re.sub(r"\{\{.*?\}\}", "jinja_relation", sql, flags=re.S)


def _referenced_columns(sql: str, dialect: str) -> set[str]:
    if not sql.strip():
        return set()
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except sqlglot.errors.ParseError:
        return set()
    return {c.name.lower() for c in tree.find_all(exp.Column)}


def check_item(
    source: str,
    table: str,
    item: Any,
    required: Mapping[str, list[str]],
    from_json: bool = False,
    optional: Callable[[str, list[str]], set[str]] | None = None,
    known: Iterable[str] = (),
    read_once: bool = False,
) -> None:
    """Fail when an extracted batch lacks a column a model selects.

    Arrow batches read from a table or a file with a header carry every column, so a missing
    one was dropped or renamed upstream. JSON leaves a key out where its value is empty, so a
    page of rows lacks only what no row of it has; that is taken as empty, not as drift, when
    ``optional`` (``(table, columns)`` → the columns already holding a NULL in the warehouse)
    says the field is empty now and then and the batch brings no column the table lacks
    (``known``: a renamed field's new name). The lines of JSONL files (``from_json``: an Arrow
    batch of a load's files, which has every field any of them has) are records that leave
    out what they do not have: a field none of them has is NULL for their rows, unless the
    batch brings a column the table lacks.

    A source that reads its data once (``read_once``: a stream) cannot be reloaded; its
    batch is not acknowledged, so the advice is to fix the model and run again.

    Raises:
        SchemaDriftError: naming the table, the columns and the models that use them.
    """
    if not required:
        return
    seen = _columns_of(item)
    if seen is None:
        return
    present, emptied = seen
    # A nested object that is null in some row stands for every column under it.
    missing = sorted(
        c for c in required if c not in present and not any(c.startswith(p) for p in emptied)
    )
    columns = set(known or required)
    # An object's own name is no column where the table keeps its keys flattened (meta__k).
    new = sorted(
        c
        for c in present - columns - {"_loaded_at"}
        if not any(h.startswith(c + "__") for h in columns)
    )
    if missing and not new and from_json:
        # Sparse records: a file's lines may all leave out a field earlier files had (a
        # load of such a file failed, "Nothing was loaded", until the field came back).
        missing = []
    elif missing and optional is not None and not new and isinstance(item, dict | list):
        held = optional(table, missing)
        missing = [c for c in missing if c not in held]
    if missing:
        models = sorted({m for c in missing for m in required[c]})
        then = (
            "then `stackyard run`: none of these events was acknowledged, so it reads them "
            "again (a stream cannot be reloaded; rows loaded before keep NULL in the new column)"
            if read_once
            else f"then `stackyard reload {source}.{table} --yes` so every row has it"
        )
        raise SchemaDriftError(
            f"source '{source}', table '{table}': column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)} {'are' if len(missing) > 1 else 'is'} missing from the new "
            f"data, and {', '.join(models)} select{'s' if len(models) == 1 else ''} "
            f"{'them' if len(missing) > 1 else 'it'}. Nothing was loaded for this source"
            + (f" (columns not seen before: {', '.join(new[:5])})" if new else ""),
            hint="if the column was renamed upstream, point the staging model at the new "
            f"name (or ask the source's owner), {then}",
        )


def nulls_held(warehouse: Warehouse, dataset: str) -> Callable[[str, list[str]], set[str]]:
    """For :func:`check_item`: which of a table's columns hold a NULL in the warehouse, asked
    only when a batch lacks them, once per column and run (loads run in threads)."""
    lock = threading.Lock()
    known: dict[tuple[str, str], bool] = {}

    def held(table: str, columns: list[str]) -> set[str]:
        from dlt.common.normalizers.naming.snake_case import NamingConvention

        relation = warehouse.quote(dataset, NamingConvention().normalize_table_identifier(table))
        with lock:
            for column in columns:
                if (table, column) not in known:
                    sql = f"SELECT 1 FROM {relation} WHERE {warehouse.quote(column)} IS NULL"
                    try:
                        found = warehouse.query(sql + " LIMIT 1").rows
                    except StackyardError:  # cannot tell: the column counts as always filled
                        found = ()
                    known[(table, column)] = bool(found)
        return {c for c in columns if known[(table, c)]}

    return held


def _columns_of(item: Any) -> tuple[set[str], set[str]] | None:
    """The columns a batch fills, as dlt names them (a nested object's keys flattened to
    ``parent__child``; a list is a child table, not a column), and the prefixes of nested
    objects that are null in some row (``parent__``); ``None`` when it cannot tell."""
    from dlt.common.normalizers.naming.snake_case import NamingConvention

    naming = NamingConvention()
    present: set[str] = set()
    emptied: set[str] = set()

    def walk(row: Mapping[str, Any], prefix: str) -> None:
        for key, value in row.items():
            name = prefix + naming.normalize_path(str(key)).lower()
            if isinstance(value, dict):
                present.add(name)  # a column of its own where the table keeps JSON
                walk(value, name + "__")
            elif isinstance(value, list):
                continue
            else:
                present.add(name)
                if value is None:
                    emptied.add(name + "__")

    if hasattr(item, "column_names"):
        return {naming.normalize_path(n).lower() for n in item.column_names}, set()
    if isinstance(item, dict):
        walk(item, "")
    elif isinstance(item, list) and item and all(isinstance(r, dict) for r in item):
        for row in item:
            walk(row, "")
    else:
        return None
    return present, emptied


def describe_contract_violation(
    source: str, exc: BaseException, required: Mapping[str, Mapping[str, list[str]]]
) -> str | None:
    """A clear message for dlt's data-type contract failure, or None for other errors."""
    seen: set[int] = set()
    inner: BaseException | None = exc
    pipe = None
    while inner is not None and id(inner) not in seen:
        seen.add(id(inner))
        pipe = pipe or getattr(inner, "pipe_name", None)
        emptied = (
            _NOT_NULL_EMPTIED.search(str(inner)) if type(inner).__name__ == "ArrowInvalid" else None
        )
        if emptied:
            return _emptied(source, pipe, emptied.group(1))
        if type(inner).__name__ == "DataValidationError":
            table = getattr(inner, "table_name", None) or "?"
            column = getattr(inner, "column_name", None) or "?"
            models = required.get(table, {}).get(str(column).lower(), [])
            used = f"; {', '.join(models)} select it" if models else ""
            return (
                f"source '{source}', table '{table}': column '{column}' changed type upstream "
                f"and the contract freezes data types{used}. Nothing was loaded for this source; "
                f"if the new type is right (a decimal widened, say), `stackyard reload "
                f"{source}.{table} --yes` loads the table again with it"
            )
        inner = getattr(inner, "exception", None) or inner.__cause__ or inner.__context__
    return None


# pyarrow's words when a batch has no value for a column the table declares NOT NULL.
_NOT_NULL_EMPTIED = re.compile(r"Column '([^']+)' is declared non-nullable but contains nulls")


def _emptied(source: str, table: str | None, column: str) -> str:
    """The message for a NOT NULL column the new data leaves empty: what dlt's Arrow check
    said was only "ArrowInvalid: Column 'name' is declared non-nullable", after a renamed
    column's staging model had been pointed at the new name, and every run failed so."""
    where = f", table '{table}'" if table else ""
    reload = f"{source}.{table}" if table else f"{source}.TABLE (the table with {column})"
    return (
        f"source '{source}'{where}: column '{column}' is NOT NULL in the warehouse and the "
        "new data has no value for it: it was dropped or renamed upstream. Nothing was loaded "
        f"for this source; `stackyard reload {reload} --yes` loads the table again with the "
        "columns the source has now"
    )
