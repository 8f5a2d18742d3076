"""One module per warehouse, all behind :class:`~stackyard.warehouse.base.Warehouse`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stackyard.config.secrets import Secrets
from stackyard.warehouse.base import QueryResult, Warehouse

# kind (a target's ``type``) → "module:class"; imported only when a target of it is used.
_WAREHOUSES: dict[str, str] = {
    "duckdb": "stackyard.warehouse.duckdb:DuckDBWarehouse",
    "postgres": "stackyard.warehouse.postgres:PostgresWarehouse",
    "snowflake": "stackyard.warehouse.cloud:SnowflakeWarehouse",
    "bigquery": "stackyard.warehouse.cloud:BigQueryWarehouse",
    "spark": "stackyard.warehouse.spark:SparkWarehouse",
}


def warehouse_class(kind: str) -> type[Warehouse]:
    """The warehouse module's class for a target ``type`` (its capability flags, its SQL)."""
    import importlib

    module, _, name = _WAREHOUSES[kind].partition(":")
    found: type[Warehouse] = getattr(importlib.import_module(module), name)
    return found


def open_warehouse(target_name: str, config: Any, project_dir: Path, secrets: Secrets) -> Warehouse:
    """The warehouse module for a target's ``type``, not yet connected."""
    return warehouse_class(config.type)(target_name, config, project_dir, secrets)


__all__ = ["QueryResult", "Warehouse", "open_warehouse", "warehouse_class"]
