"""``--engine sql`` refused before a run loads a row, for what is known without compiling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stackyard.runner.sql_plan import project_reason


def refuse_sql_build_early(warehouse: Any, transform_dir: Path) -> None:
    """Refuse ``--engine sql`` before a run loads anything, for what is known without
    compiling: the warehouse's kind and the project's hooks. (Nodes only dbt builds are
    found once the project compiles; a run refused then is recorded with what it loaded.)

    Raises:
        EngineRefusedError: the SQL build cannot run on this warehouse or project.
    """
    from stackyard.errors import EngineRefusedError

    reason = None
    if not warehouse.SQL_BUILD:
        reason = f"{warehouse.describe()} is {warehouse.KIND} (the SQL build runs on DuckDB "
        reason += "and Postgres)"
    reason = reason or hooks_reason(transform_dir) or project_reason(transform_dir)
    if reason:
        raise EngineRefusedError(
            f"--engine sql cannot build this project: {reason}",
            hint="run with --engine auto (or dbt), which lets dbt build it",
        )


def hooks_reason(transform_dir: Path) -> str | None:
    """:func:`whole_build_reason`'s hooks, read from ``dbt_project.yml`` before anything is
    compiled (or loaded): ``--engine sql`` is refused before a run loads a row."""
    import yaml

    path = transform_dir / "dbt_project.yml"
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None
    except yaml.YAMLError:
        return None  # dbt's own parse says what is wrong with it
    if isinstance(config, dict) and (config.get("on-run-start") or config.get("on-run-end")):
        return "the project has on-run-start/on-run-end hooks"
    return None
