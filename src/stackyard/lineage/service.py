"""The lineage façade the Context hands out: ``Context(...).lineage().impact("orders.id")``.

It makes sure dbt's manifest holds every model's compiled SQL (compiling in process when a
model file changed since), reads the warehouse's columns, and builds the column graph once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stackyard.lineage.graph import ColumnGraph, Columns, build_graph, load_manifest
from stackyard.lineage.impact import ImpactResult, LineageResult, impact, lineage
from stackyard.warehouse.base import Warehouse

# Folders of a dbt project whose files change what it compiles to.
_SOURCES = ("models", "macros", "seeds", "snapshots", "tests", "analyses")
_SKIP_SCHEMAS = ("information_schema", "pg_catalog", "stackyard")


class LineageService:
    """Column lineage, impact and the graph behind them, for one project and target.

    Args:
        transform_dir: the dbt project.
        warehouse: the target's warehouse (its columns expand ``SELECT *``).
        make_dbt: builds a dbt runner for the target (to compile when needed).
    """

    def __init__(
        self, transform_dir: Path, warehouse: Warehouse, make_dbt: Callable[[], Any]
    ) -> None:
        self.transform_dir = transform_dir
        self.warehouse = warehouse
        self.make_dbt = make_dbt
        self._graph: ColumnGraph | None = None

    def graph(self) -> ColumnGraph:
        """The project's column lineage (compiled first when the manifest is stale)."""
        if self._graph is None:
            manifest = self.compiled_manifest()
            columns = warehouse_columns(self.warehouse)
            self.warehouse.close()  # nothing else needs it; DuckDB locks the file while open
            catalog_path = self.transform_dir / "target" / "catalog.json"
            catalog = (
                json.loads(catalog_path.read_text(encoding="utf-8"))
                if catalog_path.is_file()
                else None
            )
            self._graph = build_graph(
                manifest, columns, self.warehouse.DIALECT, catalog, self.transform_dir
            )
        return self._graph

    def compiled_manifest(self) -> dict[str, Any]:
        """dbt's manifest with compiled SQL for every model; compiles when it is stale."""
        manifest = load_manifest(self.transform_dir)
        if not manifest or _stale(self.transform_dir, manifest):
            # dbt opens the warehouse itself: release ours first (DuckDB holds a file lock).
            self.warehouse.close()
            self.make_dbt().compile()
            manifest = load_manifest(self.transform_dir)
        return manifest

    def lineage(self, spec: str, direction: str = "both") -> LineageResult:
        """Columns upstream and/or downstream of ``NODE[.COLUMN]``."""
        return lineage(self.graph(), spec, direction)

    def impact(self, spec: str) -> ImpactResult:
        """What a change to ``NODE.COLUMN`` reaches downstream."""
        return impact(self.graph(), spec)


def warehouse_columns(warehouse: Warehouse) -> Columns:
    """``{(database, schema, table): {column: type}}`` of every table and view, one query."""
    p = warehouse.param()
    skip = ", ".join([p] * len(_SKIP_SCHEMAS))
    result = warehouse.query(
        "SELECT table_catalog, table_schema, table_name, column_name, data_type "
        f"FROM information_schema.columns WHERE table_schema NOT IN ({skip}) "
        "ORDER BY table_catalog, table_schema, table_name, ordinal_position",
        _SKIP_SCHEMAS,
    )
    out: Columns = {}
    for catalog, schema, table, column, data_type in result.rows:
        key = (str(catalog).lower(), str(schema).lower(), str(table).lower())
        out.setdefault(key, {})[str(column)] = str(data_type)
    return out


def _stale(transform_dir: Path, manifest: dict[str, Any]) -> bool:
    nodes = (manifest.get("nodes") or {}).values()
    if any(n.get("resource_type") == "model" and not n.get("compiled_code") for n in nodes):
        return True
    path = transform_dir / "target" / "manifest.json"
    built = path.stat().st_mtime
    files = [transform_dir / "dbt_project.yml"]
    for folder in _SOURCES:
        if (transform_dir / folder).is_dir():
            files.extend(f for f in (transform_dir / folder).rglob("*") if f.is_file())
    return any(f.exists() and f.stat().st_mtime > built for f in files)
