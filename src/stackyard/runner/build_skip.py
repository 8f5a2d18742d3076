"""When ``stackyard run`` may skip ``dbt build``: nothing loaded, nothing changed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from stackyard.results import SourceLoad


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
