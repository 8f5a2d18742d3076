"""The access-control engines, found by the warehouse's kind: the one place that maps a
target ``type`` to its engine.

An engine module (``infra/<kind>.py``) holds everything access control does on that kind of
warehouse: the SQL compiler (:class:`~stackyard.infra.engine.Engine`), its live-state reader
(:meth:`~stackyard.infra.engine.Engine.read_state`) and its executor
(:meth:`~stackyard.infra.engine.Engine.execute`). Adding one is a module plus a line here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from stackyard.errors import UsageError

if TYPE_CHECKING:
    from stackyard.infra.engine import Engine

# kind → "module:class"; imported only when a target of that kind is used.
_ENGINES: dict[str, str] = {
    "duckdb": "stackyard.infra.duckdb:DuckDBEngine",
    "postgres": "stackyard.infra.postgres:PostgresEngine",
    "snowflake": "stackyard.infra.snowflake:SnowflakeEngine",
}

# Kinds whose access control lives outside the warehouse, with what to do instead.
_ELSEWHERE: dict[str, str] = {
    "bigquery": "BigQuery access is IAM (granted on the project and datasets, outside SQL "
    "roles), which stackyard does not manage: grant it with gcloud or Terraform; `stackyard "
    "plan`/`apply` work on duckdb, postgres and snowflake targets",
    "spark": "Spark's own catalog has no roles or grants, so there is nothing to plan on a spark "
    "target: grant access in Unity Catalog or Apache Ranger in front of the cluster "
    "(docs/scaling.md), and plan the project's roles on a duckdb, postgres or snowflake target",
}


def register_engine(kind: str, path: str) -> None:
    """Make an engine known: ``path`` is ``"module:EngineClass"`` for targets of ``kind``."""
    _ENGINES[kind] = path


def has_engine(kind: str) -> bool:
    """Whether access control can be planned for targets of this kind."""
    return kind in _ENGINES


def engine_class(kind: str, target: str = "") -> type[Engine]:
    """The engine of a warehouse kind.

    Raises:
        UsageError: no engine for that kind (the hint says what to do instead).
    """
    if kind not in _ENGINES:
        where = f" (target '{target}')" if target else ""
        raise UsageError(
            f"access control (`stackyard plan`, `apply`, `policy check -t`) is not implemented "
            f"for {kind} targets{where}; it supports {', '.join(sorted(_ENGINES))} targets",
            hint=_ELSEWHERE.get(kind, f"use a target of type {', '.join(sorted(_ENGINES))}"),
        )
    module, _, name = _ENGINES[kind].partition(":")
    found: type[Engine] = getattr(importlib.import_module(module), name)
    return found
