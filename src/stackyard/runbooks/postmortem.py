"""The post-mortem of an incident, as Markdown: the playbook's sections, filled in from the
incident's record, its trace, and the run history around it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from stackyard.errors import counted
from stackyard.metadata.history import History
from stackyard.metadata.incidents import IncidentRecord
from stackyard.runbooks.incidents import TraceResult
from stackyard.warehouse.base import Warehouse


def timeline(warehouse: Warehouse, record: IncidentRecord) -> list[tuple[datetime, str]]:
    """Runs from a day before the incident until it was resolved (or now), and the
    incident's own events, oldest first."""
    since = record.opened_at - timedelta(days=1)
    until = record.resolved_at or datetime.max.replace(tzinfo=record.opened_at.tzinfo)
    rows = History(warehouse).runs_since(since)
    entries: list[tuple[datetime, str]] = []
    seen: dict[str, int] = {}
    for run_id, status, started, step, detail in rows:
        if started > until:
            continue
        if run_id in seen:
            if step:
                entries[seen[run_id]] = (started, entries[seen[run_id]][1] + f"; {step}: {detail}")
            continue
        text = f"run {run_id} {status}" + (f" — {step}: {detail}" if step else "")
        seen[run_id] = len(entries)
        entries.append((started, text))
    for event in record.events:
        if event.kind == "postmortem":  # the document itself, written again and again
            continue
        entries.append((event.at, f"incident {event.kind}: {event.detail.splitlines()[0]}"))
    return sorted(entries, key=lambda e: e[0])


def render(record: IncidentRecord, trace: TraceResult, entries: list[tuple[datetime, str]]) -> str:
    """The post-mortem document."""
    impact: dict[str, Any] = record.impact
    downstream = impact.get("downstream") or []
    end = record.resolved_at
    duration = f"{(end - record.opened_at).total_seconds() / 3600:.1f} h" if end else "ongoing"
    lines = [
        f"# Post-mortem {record.incident_id}: {record.title}",
        "",
        f"- **Severity:** {record.severity} ({impact.get('severity_why', '')})",
        f"- **Status:** {record.status}" + (f" — {record.resolution}" if record.resolution else ""),
        f"- **Opened:** {record.opened_at:%Y-%m-%d %H:%M} UTC",
        f"- **Resolved:** {end:%Y-%m-%d %H:%M} UTC" if end else "- **Resolved:** not yet",
        f"- **Duration:** {duration}",
        "",
        "## Summary",
        "",
        f"{trace.first_bad} (`{trace.relation}`) went bad first; "
        f"{counted(len(downstream), 'downstream model')} "
        f"{'was' if len(downstream) == 1 else 'were'} affected.",
        "",
        "## Impact",
        "",
        *([f"- {n}" for n in downstream] or ["- nothing downstream"]),
        "",
        "## Root cause",
        "",
        _walk(trace),
        "",
        "What changed there:",
        "",
        *(
            [
                f"- **{c.kind}**{' ' + c.at if c.at else ''}: {c.detail.splitlines()[0]}"
                for c in trace.changes
            ]
            or ["- no change recorded (no failed load, commit or stale freshness)"]
        ),
        "",
        "## Timeline (UTC)",
        "",
        "| time | what happened |",
        "|---|---|",
        *[f"| {at:%Y-%m-%d %H:%M:%S} | {text.replace('|', '/')} |" for at, text in entries],
        "",
        "## Resolution",
        "",
        record.resolution or "Not resolved yet.",
        "",
        "## Action items",
        "",
        *_actions(trace),
        "",
    ]
    return "\n".join(lines)


def _walk(trace: TraceResult) -> str:
    """How lineage led from the node reported to the one that went bad first.

    >>> t = TraceResult("INC-0001", "model.a", "model.a", "marts.a", ("model.a",))
    >>> _walk(t)
    '`model.a` went bad itself: nothing upstream of it did.'
    >>> _walk(TraceResult("INC-0001", "model.b", "model.a", "marts.a", ("model.b", "model.a")))
    'Lineage walked upstream from `model.b` to `model.a`: `model.b` → `model.a`'
    """
    if trace.root_cause == trace.first_bad:
        return f"`{trace.first_bad}` went bad itself: nothing upstream of it did."
    return (
        f"Lineage walked upstream from `{trace.root_cause}` to `{trace.first_bad}`: "
        + " → ".join(f"`{n}`" for n in trace.path)
    )


def _actions(trace: TraceResult) -> list[str]:
    kinds = {c.kind for c in trace.changes}
    items = []
    if "schema_change" in kinds:
        items.append(
            f"- [ ] Agree schema changes of `{trace.relation}` with its owner before they ship; "
            "phase renames with `stackyard evolve rename`."
        )
    if "commit" in kinds:
        items.append("- [ ] Review the commits above; gate CI on `stackyard schema diff --check`.")
    if "freshness" in kinds:
        items.append(f"- [ ] Check the freshness thresholds of `{trace.relation}`.")
    items.append(
        f"- [ ] Add a test or monitor on `{trace.first_bad}` that fails before people notice."
    )
    return items
