"""Freshness of the dbt sources a run does not check before its build, checked after it:
the ones stackyard loaded, and the dbt project's own that other tools load."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from stackyard.results import FreshnessResult
from stackyard.transform.state import manifest_freshness

if TYPE_CHECKING:
    from stackyard.runner.run import RunJob


def declares_freshness(manifest: dict[str, Any] | None, names: Iterable[str]) -> bool:
    """Whether one of these dbt sources declares ``loaded_at_field`` and a threshold.

    >>> fresh = {"loaded_at_field": "at", "freshness": {"warn_after": {"count": 1}}}
    >>> declares_freshness({"sources": {"s": {"source_name": "raw", **fresh}}}, ["raw"])
    True
    >>> declares_freshness({"sources": {"s": {"source_name": "raw"}}}, ["raw"])
    False
    """
    wanted = set(names)
    for source in (manifest or {}).get("sources", {}).values():
        limits = source.get("freshness") or {}
        if source.get("source_name") not in wanted or not source.get("loaded_at_field"):
            continue
        if limits.get("warn_after") or limits.get("error_after"):
            return True
    return False


def check_sources(
    job: RunJob,
    dbt: Any,
    names: Sequence[str] | None,
    failed: Sequence[str],
    checked: set[str],
    freshness: list[FreshnessResult],
) -> str:
    """Check the dbt sources ``names`` (``None``: every one), less those whose load
    ``failed`` (their tables may be gone, and the load's own error says what to do) and
    those ``checked`` before the build; the results are added to ``freshness``."""
    found = manifest_freshness(job.transform_dir, job.warehouse, names, failed)
    if found is None:
        found = dbt.freshness(
            [f"source:{n}" for n in names] if names is not None else (),
            [f"source:{n}" for n in failed],
        )
        job.session.release()
    freshness.extend(f for f in found if f.source not in checked)
    late = [f for f in freshness if f.status != "pass"]
    return f"{len(freshness) - len(late)}/{len(freshness)} source tables fresh"
