"""The "reload a source" runbook: load a source (or one table) again from scratch.

For when the warehouse and dlt's state no longer agree (a lost DuckDB file, a table dropped by
hand), after an upstream rename was fixed in the staging model, or whenever a table should be
exactly what the source holds now. The plan is built first, as typed steps that ``--dry-run``
explains; running it is one ``stackyard run`` of that source with dlt told to start over
(drop the tables, reset the saved cursors) and dbt rebuilding everything downstream in full.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from stackyard.config.model import ProjectConfig
from stackyard.errors import ConfigError, UsageError, did_you_mean
from stackyard.transform.staging import dbt_source_names

StepKind = Literal["drop_tables", "reset_state", "load", "rebuild"]


@dataclass(frozen=True)
class ReloadStep:
    """One step of a reload, in words."""

    kind: StepKind
    description: str
    destructive: bool = False


@dataclass(frozen=True)
class ReloadPlan:
    """What ``stackyard reload`` would do on one target."""

    source: str
    schema: str
    target: str
    tables: tuple[str, ...]  # empty: every table of the source
    steps: tuple[ReloadStep, ...]

    @property
    def refresh(self) -> dict[str, tuple[str, ...]]:
        """The run's refresh request: ``{source: tables}``."""
        return {self.source: self.tables}

    @property
    def select(self) -> tuple[str, ...]:
        """The run's selection: the source, with everything downstream of it (of the
        reloaded tables only, when some are named: see ``refresh``)."""
        return (self.source,)

    def explain(self) -> list[str]:
        """The steps as numbered lines."""
        return [f"{i}. {step.description}" for i, step in enumerate(self.steps, 1)]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return asdict(self)


def reload_plan(config: ProjectConfig, spec: str, target: str) -> ReloadPlan:
    """The plan for ``stackyard reload SOURCE[.TABLE]``.

    Raises:
        UsageError: no such source or table.
        ConfigError: the source is disabled.
    """
    name, _, table = spec.partition(".")
    if name not in config.sources:
        raise UsageError(
            f"no source named '{name}'{did_you_mean(name, config.sources)}",
            hint=f"sources: {', '.join(sorted(config.sources)) or '(none)'}",
        )
    source = config.sources[name]
    if not source.enabled:
        raise ConfigError(
            f"source '{name}' is disabled (enabled: false)", hint="set enabled: true first"
        )
    if source.kind == "stream":
        # The events were acknowledged when they were loaded: the server hands them to this
        # consumer never again, so a reload would drop the table and read nothing back.
        raise UsageError(
            f"source '{name}' is a stream: its events are read once, so a reload would drop "
            "its table and load nothing back",
            hint="bring the table back from a backup: stackyard restore-table "
            f"{config.dataset_for(name)}.{source.table_name()}",
        )
    declared = list(getattr(source, "tables", None) or getattr(source, "endpoints", None) or [])
    if table and declared and table not in declared:
        raise UsageError(
            f"source '{name}' has no table '{table}'{did_you_mean(table, declared)}",
            hint=f"its tables: {', '.join(declared)}",
        )
    schema = config.dataset_for(name)
    tables = (table,) if table else ()
    what = f"{schema}.{table}" if table else f"every table of schema {schema}"
    models = " and ".join(
        f"source:{n}.{table}+" if table else f"source:{n}+" for n in dbt_source_names(name)
    )
    steps = (
        ReloadStep(
            "drop_tables",
            f"drop {what} on target '{target}' (the rows are read again in step 3)",
            destructive=True,
        ),
        ReloadStep(
            "reset_state",
            f"reset dlt's saved state for {table or name} (incremental cursors, file lists), "
            "so nothing already loaded is skipped",
        ),
        ReloadStep("load", f"load {table or name} in full from the source into {schema}"),
        ReloadStep(
            "rebuild",
            f"rebuild the dbt models downstream ({models}) with --full-refresh, then test "
            "them and check freshness; the run is recorded in stackyard.runs",
        ),
    )
    return ReloadPlan(name, schema, target, tables, steps)
