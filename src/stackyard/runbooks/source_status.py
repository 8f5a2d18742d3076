"""``stackyard source list | show``: each source's tables, rows, last load and freshness."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from stackyard.errors import StackyardError, UsageError, did_you_mean
from stackyard.metadata.history import History
from stackyard.results import FreshnessResult
from stackyard.runbooks.source_results import SourceStatus, TableStatus
from stackyard.runbooks.source_schemas import row_count, source_tables
from stackyard.transform.staging import model_name
from stackyard.transform.state import manifest_freshness

if TYPE_CHECKING:
    from stackyard.runbooks.sources import SourcesRunbook


def source_status(
    runbook: SourcesRunbook, names: Sequence[str] | None = None
) -> list[SourceStatus]:
    """Kind, tables, last load, row counts and freshness of sources."""
    config = runbook.config
    selected = list(names) if names is not None else sorted(config.sources)
    for name in selected:
        if name not in config.sources:
            raise UsageError(f"no source named '{name}'{did_you_mean(name, config.sources)}")
    freshness: dict[tuple[str, str], FreshnessResult] = {}
    try:
        found = (
            manifest_freshness(
                runbook.transform_dir,
                runbook.warehouse,
                [config.sources[n].dbt_name(n) for n in selected],
            )
            or []
        )
    except StackyardError:
        found = []  # a source table that is missing shows as "missing" rows instead
    for f in found:
        freshness[(f.source, f.table)] = f
    out = []
    for name in selected:
        source = config.sources[name]
        schema = config.dataset_for(name)
        last = History(runbook.warehouse).last_load(name)
        tables = []
        for table in source_tables(runbook.warehouse, config, name):
            fresh = freshness.get((source.dbt_name(name), table))
            loader = source.dbt_name(name).removesuffix(f"_{name}")
            stg = model_name(table, loader)
            model = runbook.transform_dir / "models/staging" / loader / f"{stg}.sql"
            tables.append(
                TableStatus(
                    table,
                    row_count(runbook.warehouse, schema, table),
                    (last or {}).get("tables", {}).get(table),
                    fresh.status if fresh else None,
                    fresh.age_hours if fresh else None,
                    stg if model.exists() else None,
                )
            )
        out.append(
            SourceStatus(
                name,
                source.kind,
                schema,
                source.schedule.cron,
                source.contract,
                source.enabled,
                tuple(tables),
                (last or {}).get("at"),
                (last or {}).get("status"),
            )
        )
    runbook.session.release()
    return out
