"""When ``stackyard run`` may skip ``dbt build``: nothing loaded, nothing changed."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from stackyard.config.model import ProjectConfig
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


def built_anyway(
    warehouse: Warehouse, config: ProjectConfig, manifest: dict[str, Any] | None
) -> str | None:
    """Why a build that ``unchanged_since`` lets this run skip must run all the same, or
    ``None``: the skip holds only while stackyard knows every input of the last build.

    Args:
        warehouse: the target.
        config: the project (its sources are the tables stackyard loads).
        manifest: the target's manifest from the last build (``None``: nothing is known).
    """
    if manifest is None:
        return "no manifest of this target's last build"
    elsewhere = sources_loaded_elsewhere(config, manifest)
    if elsewhere:
        # Another tool loads them: new rows there leave no trace in this run's loads.
        # (A stackyard source linked to it, --kind external for another tool's, has a signal.)
        return f"dbt source {', '.join(elsewhere)} is loaded outside stackyard: built every run"
    missing = missing_models(warehouse, manifest)
    return f"missing since the last build: {', '.join(missing)}" if missing else None


def sources_loaded_elsewhere(
    config: ProjectConfig, manifest: dict[str, Any] | None, among: Iterable[str] | None = None
) -> list[str]:
    """The dbt sources the project's nodes (or the nodes ``among``, by unique id, and those
    upstream of them) read that no stackyard source is (by name, ``dbt_source:`` or schema): the adopted project's own,
    loaded by other tools.

    >>> manifest = {
    ...     "sources": {"source.p.raw.t": {"source_name": "raw", "schema": "raw"}},
    ...     "nodes": {"model.p.m": {"depends_on": {"nodes": ["source.p.raw.t"]}}},
    ... }
    >>> sources_loaded_elsewhere(ProjectConfig(name="p"), manifest)
    ['raw']
    """
    from stackyard.transform.inventory import source_dbt_names

    if manifest is None:
        return []
    ours = {n for s in config.sources for n in source_dbt_names(config, s, manifest)}
    nodes = manifest.get("nodes", {})
    if among is None:
        read = {
            p for node in nodes.values() for p in (node.get("depends_on") or {}).get("nodes", [])
        }
    else:
        # Upstream all the way: a model built on a view of a stale table is stale too.
        read, todo = set(), list(among)
        while todo:
            for parent in (nodes.get(todo.pop(), {}).get("depends_on") or {}).get("nodes", []):
                if parent not in read:
                    read.add(parent)
                    todo.append(parent)
    return sorted(
        {
            str(source["source_name"])
            for unique_id, source in manifest.get("sources", {}).items()
            if unique_id in read and source["source_name"] not in ours
        }
    )


def unloaded_tables_hint(
    warehouse: Warehouse, config: ProjectConfig, manifest: dict[str, Any] | None
) -> str:
    """After a failed build: the tables of dbt sources loaded outside stackyard that are not
    on the target, and what to do (empty when all are there). An adopted project's first
    target is a new, empty DuckDB file: its raw tables are in the warehouse it really runs on.
    """
    from stackyard.config.model import DuckDBTarget

    wanted = set(sources_loaded_elsewhere(config, manifest))
    missing: list[str] = []
    present: dict[str, set[str]] = {}
    for source in (manifest or {}).get("sources", {}).values():
        if source["source_name"] not in wanted:
            continue
        schema, name = source["schema"], source["identifier"]
        if schema not in present:
            present[schema] = {t.lower() for t in warehouse.tables_in(schema)}
        if name.lower() not in present[schema]:
            missing.append(f"{schema}.{name}")
    if not missing:
        return ""
    target = warehouse.target_name
    what = f"target '{target}'"
    if isinstance(warehouse.config, DuckDBTarget):
        what += f" ({warehouse.config.path}, a DuckDB file stackyard made, empty until loaded)"
    return (
        f"{', '.join(sorted(missing))} not on {what}: add the warehouse the dbt project runs "
        "on under targets: in stackyard.yml and run with -t NAME "
        "(docs/runbooks/adopting-an-existing-stack.md)"
    )
