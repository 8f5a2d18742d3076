"""When ``stackyard run`` may skip ``dbt build``: nothing loaded, nothing changed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from stackyard.results import SourceLoad
from stackyard.warehouse.base import Warehouse


def unchanged_since(
    previous: dict[str, Any] | None,
    fingerprint: str,
    loads: Sequence[SourceLoad],
    folder: str,
) -> str | None:
    """Why ``dbt build`` can be skipped, or ``None`` when it must run.

    Only when this run loaded nothing and took no deleted rows out, and the last run on this target was a successful
    full run of the same dbt project: the tables and test results would be the same. (The
    caller asks only for a full run without ``--force-build`` or a refresh.)

    Args:
        previous: the last run on this target (``History.latest``), or ``None``.
        fingerprint: this dbt project's hash.
        loads: what this run loaded.
        folder: the dbt project's folder name, for the reason.
    """
    if previous is None:
        return None
    if any(load.status != "loaded" or load.rows or load.rejected for load in loads):
        return None
    if any(table.deleted for load in loads for table in load.tables):
        return None  # rows deleted upstream left the raw tables: what reads them changed
    if previous["status"] != "success" or previous["selected"]:
        return None
    if previous["transform_hash"] != fingerprint:
        return None
    return (
        f"no new rows and no change in {folder}/ since run "
        f"{previous['run_id']}, whose build passed (--force-build rebuilds)"
    )


def missing_models(warehouse: Warehouse, manifest: dict[str, Any] | None) -> list[str]:
    """The models of the last build (``schema.name``) whose table or view is not in the
    warehouse: dropped by hand, or with a table a backfill rebuilt (Postgres drops the views
    on a replaced table). With any, the build is not skipped: it was, and they stayed gone.

    Args:
        warehouse: the target.
        manifest: the target's manifest from the last build (``None``: nothing is known).
    """
    wanted: dict[str, list[str]] = {}
    for node in (manifest or {}).get("nodes", {}).values():
        config = node.get("config", {})
        if node.get("resource_type") != "model" or config.get("materialized") == "ephemeral":
            continue
        if config.get("enabled", True) and node.get("schema"):
            wanted.setdefault(node["schema"], []).append(node.get("alias") or node["name"])
    missing = []
    for schema, names in wanted.items():
        present = {t.lower() for t in warehouse.tables_in(schema)}
        missing += [f"{schema}.{n}" for n in names if n.lower() not in present]
    return missing
