"""Freshness of the sources another tool loads (Airbyte, Fivetran …), checked before the
build: a stale source, or one whose tables are not on the target, skips what is built on it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from stackyard.results import FreshnessResult
from stackyard.transform.state import manifest_freshness

if TYPE_CHECKING:
    from stackyard.runner.run import RunJob


def check_external(
    job: RunJob,
    dbt: Any,
    external: Sequence[str],
    freshness: list[FreshnessResult],
    stale: dict[str, str],
) -> str:
    """Freshness of the sources another tool loads, by their loader's loaded-at column;
    a source past its error threshold (or whose tables cannot be read) is ``stale``."""
    names = {job.project.sources[s].dbt_name(s): s for s in external}
    found = manifest_freshness(job.transform_dir, job.warehouse, list(names))
    if found is None:
        found = dbt.freshness([f"source:{n}" for n in names])
    job.session.release()
    # No result at all for a source: its tables are not on this target (or dbt never saw
    # them). That was "0/0 fresh", then raw catalog errors from the models built on them.
    seen = {f.source for f in found}
    where = f"target '{job.warehouse.target_name}'"
    found = [
        *found,
        *(
            FreshnessResult(n, "*", "runtime error", message=f"none of its tables is on {where}")
            for n in names
            if n not in seen
        ),
    ]
    freshness.extend(found)
    for f in found:
        source = names.get(f.source)
        if source is not None and f.status in ("error", "runtime error"):
            age = f" ({f.age_hours:.1f} h since its last load)" if f.age_hours else ""
            said = f.message if f.table == "*" or " is not on " in f.message else ""
            said = said or f"{f.table} {f.status}{age}"
            # every stale table of the source, named
            stale[source] = f"{stale[source]}, {said}" if source in stale else f"is stale: {said}"
    late = [f for f in found if f.status != "pass"]
    return f"{len(found) - len(late)}/{len(found)} external source tables fresh" + (
        f"; stale: {', '.join(stale)}" if stale else ""
    )
