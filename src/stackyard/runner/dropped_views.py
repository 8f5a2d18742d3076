"""Views a build left dropped, created again.

Postgres replaces a table by dropping the old one with CASCADE (dbt-postgres does so), which
drops every view reading it; dbt then creates those views again as it goes. When a test of
the table fails, ``dbt build`` skips everything downstream, the views included: they stayed
dropped until the next run that passed, and whoever read them met "relation does not
exist". The table they read already holds the new rows (a view shows nothing a query of the
table would not), so the views that existed before the build and are gone after it are
created again, each alone, and said so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from stackyard.results import NodeResult
from stackyard.runner.build_skip import missing_models
from stackyard.warehouse.base import Warehouse

AGAIN = "created again: the table it reads was rebuilt (Postgres dropped the view with it) "
AGAIN += "and dbt skipped it after a failure upstream"


def views_again(
    dbt: Any,
    warehouse: Warehouse,
    manifest: dict[str, Any] | None,
    nodes: list[NodeResult],
    missing_before: set[str],
    release: Callable[[], None],
) -> list[NodeResult]:
    """``nodes`` with each skipped view that the build left dropped created again.

    Args:
        dbt: the project's dbt runner.
        warehouse: the target.
        manifest: the target's manifest from this build.
        nodes: the build's results.
        missing_before: models missing before the build (``schema.name``), left alone.
        release: lets go of the session's connection (dbt opens its own).
    """
    skipped = {
        n.unique_id: n for n in nodes if n.resource_type == "model" and n.status == "skipped"
    }
    if not skipped or not manifest:
        return nodes
    gone = set(missing_models(warehouse, manifest)) - missing_before
    views = []
    for unique_id in skipped:
        node = manifest.get("nodes", {}).get(unique_id, {})
        where = f"{node.get('schema')}.{node.get('alias') or node.get('name')}"
        if node.get("config", {}).get("materialized") == "view" and where in gone:
            views.append(node["name"])
    if not views:
        return nodes
    release()
    made = {r.name: r for r in dbt.run_window(views)}
    out = []
    for n in nodes:
        again = made.get(n.name) if n.unique_id in skipped else None
        if again is None:
            out.append(n)
        elif again.failed:
            out.append(replace(again, message=f"could not be created again: {again.message}"))
        else:
            out.append(replace(again, status="success", message=AGAIN))
    return out
