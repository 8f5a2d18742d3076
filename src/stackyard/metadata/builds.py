"""Which runs built a dbt model, and when, read from the run history.

A model's rows carry nothing of the run that wrote them (a source table's carry their dlt load
id), so whether a model was rebuilt after some moment — by ``stackyard run``, a
``--full-refresh``, a ``reload`` or ``source add`` — is read from the runs that recorded
building it (``runs`` and ``node_results``, written by :mod:`.history`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from stackyard.metadata.schema import existing_tables, relation
from stackyard.warehouse.base import Warehouse


@dataclass(frozen=True)
class ModelBuild:
    """A run that built a model: its id and when it ended."""

    run_id: str
    finished_at: datetime


def builds_since(warehouse: Warehouse, unique_id: str, since: datetime) -> list[ModelBuild]:
    """The runs that built the dbt model ``unique_id`` successfully and ended after
    ``since``, oldest first; empty before any run.

    A run's nodes carry no time of their own: a run that ended after ``since`` may have built
    the model after it, and is listed.

    Args:
        warehouse: the target's warehouse.
        unique_id: the model's dbt unique id (``model.shop.fct_daily_orders``).
        since: the moment (timezone-aware).

    Returns:
        One :class:`ModelBuild` per run.
    """
    if not {"runs", "node_results"} <= existing_tables(warehouse):
        return []
    p = warehouse.param()
    ended = "COALESCE(finished_at, started_at)"
    rows = warehouse.query(
        f"SELECT run_id, {ended} FROM {relation(warehouse, 'runs')} "
        f"WHERE {ended} > {p} AND run_id IN (SELECT run_id FROM "
        f"{relation(warehouse, 'node_results')} WHERE resource_type = 'model' "
        f"AND status = 'success' AND unique_id = {p}) ORDER BY {ended}",
        (since, unique_id),
    ).rows
    return [ModelBuild(str(r[0]), r[1]) for r in rows]
