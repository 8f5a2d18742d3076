"""One module per warehouse, all behind :class:`~stackyard.warehouse.base.Warehouse`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stackyard.config.secrets import Secrets
from stackyard.warehouse.base import QueryResult, Warehouse


def open_warehouse(target_name: str, config: Any, project_dir: Path, secrets: Secrets) -> Warehouse:
    """The warehouse module for a target's ``type``, not yet connected."""
    from stackyard.warehouse.cloud import BigQueryWarehouse, SnowflakeWarehouse
    from stackyard.warehouse.duckdb import DuckDBWarehouse
    from stackyard.warehouse.postgres import PostgresWarehouse

    classes: dict[str, type[Warehouse]] = {
        "duckdb": DuckDBWarehouse,
        "postgres": PostgresWarehouse,
        "snowflake": SnowflakeWarehouse,
        "bigquery": BigQueryWarehouse,
    }
    return classes[config.type](target_name, config, project_dir, secrets)


__all__ = ["QueryResult", "Warehouse", "open_warehouse"]
