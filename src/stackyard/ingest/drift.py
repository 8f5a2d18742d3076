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
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from stackyard.errors import LoadError

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
        referenced = _referenced_columns(node.get("compiled_code") or "", dialect)
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


def check_item(source: str, table: str, item: Any, required: Mapping[str, list[str]]) -> None:
    """Fail when an extracted batch lacks a column a model selects.

    Arrow batches always carry every column of the query or file, so a missing one was
    dropped or renamed upstream. For JSON rows a key may be absent when its value is null,
    so a page fails only when no row in it has the key.

    Raises:
        SchemaDriftError: naming the table, the columns and the models that use them.
    """
    if not required:
        return
    present = _columns_of(item)
    if present is None:
        return
    missing = sorted(c for c in required if c not in present)
    if missing:
        models = sorted({m for c in missing for m in required[c]})
        new = sorted(present - set(required) - {"_loaded_at"})
        raise SchemaDriftError(
            f"source '{source}', table '{table}': column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)} {'are' if len(missing) > 1 else 'is'} missing from the new "
            f"data, and {', '.join(models)} select{'s' if len(models) == 1 else ''} "
            f"{'them' if len(missing) > 1 else 'it'}. Nothing was loaded for this source"
            + (f" (columns not seen before: {', '.join(new[:5])})" if new else ""),
            hint="if the column was renamed upstream, update the staging model (or ask the "
            "source's owner); then run again",
        )


def _columns_of(item: Any) -> set[str] | None:
    from dlt.common.normalizers.naming.snake_case import NamingConvention

    naming = NamingConvention()
    names: Iterable[str]
    if hasattr(item, "column_names"):
        names = item.column_names
    elif isinstance(item, dict):
        names = item.keys()
    elif isinstance(item, list) and item and all(isinstance(r, dict) for r in item):
        names = {k for row in item for k in row}
    else:
        return None
    return {naming.normalize_identifier(n).lower() for n in names}


def describe_contract_violation(
    source: str, exc: BaseException, required: Mapping[str, Mapping[str, list[str]]]
) -> str | None:
    """A clear message for dlt's data-type contract failure, or None for other errors."""
    seen: set[int] = set()
    inner: BaseException | None = exc
    while inner is not None and id(inner) not in seen:
        seen.add(id(inner))
        if type(inner).__name__ == "DataValidationError":
            table = getattr(inner, "table_name", None) or "?"
            column = getattr(inner, "column_name", None) or "?"
            models = required.get(table, {}).get(str(column).lower(), [])
            used = f"; {', '.join(models)} select it" if models else ""
            return (
                f"source '{source}', table '{table}': column '{column}' changed type upstream "
                f"and the contract freezes data types{used}. Nothing was loaded for this source"
            )
        inner = getattr(inner, "exception", None) or inner.__cause__ or inner.__context__
    return None
