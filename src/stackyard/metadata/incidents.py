"""Incidents, kept beside the run and monitor history in the ``stackyard`` schema.

* ``incidents`` — one row per incident: its root cause (a node), severity, status, title;
* ``incident_events`` — its timeline: opened, each alert collapsed into it, trace, resolved.

Every query on these two tables is here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from stackyard.metadata.schema import ensure_tables, existing_tables, insert_rows, relation
from stackyard.warehouse.base import Warehouse

INCIDENT_TABLES = {
    "incidents": "incident_id VARCHAR NOT NULL, opened_at TIMESTAMPTZ, status VARCHAR, "
    "severity VARCHAR, root_cause VARCHAR, title VARCHAR, source_run VARCHAR, "
    "resolved_at TIMESTAMPTZ, resolution VARCHAR, impact VARCHAR",
    "incident_events": "incident_id VARCHAR NOT NULL, event_at TIMESTAMPTZ, kind VARCHAR, detail VARCHAR",
}


@dataclass(frozen=True)
class IncidentEvent:
    """One entry of an incident's timeline."""

    at: datetime
    kind: str
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"at": self.at.isoformat(), "kind": self.kind, "detail": self.detail}


@dataclass(frozen=True)
class IncidentRecord:
    """An incident as stored."""

    incident_id: str
    opened_at: datetime
    status: str
    severity: str
    root_cause: str
    title: str
    source_run: str = ""
    resolved_at: datetime | None = None
    resolution: str = ""
    impact: dict[str, Any] = field(default_factory=dict)
    events: tuple[IncidentEvent, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "id": self.incident_id,
            "opened_at": self.opened_at.isoformat(),
            "status": self.status,
            "severity": self.severity,
            "root_cause": self.root_cause,
            "title": self.title,
            "run": self.source_run,
            "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
            "resolution": self.resolution,
            "impact": self.impact,
            "events": [e.to_dict() for e in self.events],
        }


class IncidentStore:
    """Reads and writes the incident tables of one warehouse."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse

    def ensure(self) -> None:
        """Create the tables when missing."""
        ensure_tables(self.warehouse, INCIDENT_TABLES)

    def next_id(self) -> str:
        """``INC-0001``, ``INC-0002`` … in the order incidents were opened."""
        rows = self.warehouse.query(f"SELECT count(*) FROM {self._name('incidents')}").rows
        return f"INC-{int(rows[0][0]) + 1:04d}"

    def add(self, record: IncidentRecord) -> None:
        """Insert a new incident and its events."""
        self._insert(
            "incidents",
            (
                record.incident_id,
                record.opened_at,
                record.status,
                record.severity,
                record.root_cause,
                record.title,
                record.source_run,
                None,
                "",
                json.dumps(record.impact),
            ),
        )
        for event in record.events:
            self.add_event(record.incident_id, event)

    def add_event(self, incident_id: str, event: IncidentEvent) -> None:
        """Append one event to an incident's timeline."""
        self._insert("incident_events", (incident_id, event.at, event.kind, event.detail))

    def set_severity(self, incident_id: str, at: datetime, old: str, new: str) -> None:
        """Change an open incident's severity, the change on its timeline."""
        p = self.warehouse.param()
        self.warehouse.execute(
            f"UPDATE {self._name('incidents')} SET severity = {p} WHERE incident_id = {p}",
            (new, incident_id),
        )
        self.add_event(incident_id, IncidentEvent(at, "severity", f"severity {old} → {new}"))

    def resolve(self, incident_id: str, at: datetime, resolution: str) -> None:
        """Mark an incident resolved."""
        w = self.warehouse
        p = w.param()
        w.execute(
            f"UPDATE {self._name('incidents')} SET status = 'resolved', resolved_at = {p}, "
            f"resolution = {p} WHERE incident_id = {p}",
            (at, resolution, incident_id),
        )
        self.add_event(incident_id, IncidentEvent(at, "resolved", resolution))

    def all(self, status: str | None = None) -> list[IncidentRecord]:
        """Every incident (or those with a status), newest first, with their events."""
        w = self.warehouse
        if "incidents" not in existing_tables(w):
            return []
        rows = w.query(
            "SELECT incident_id, opened_at, status, severity, root_cause, title, source_run, "
            f"resolved_at, resolution, impact FROM {self._name('incidents')} "
            "ORDER BY opened_at DESC, incident_id DESC"
        ).rows
        events: dict[str, list[IncidentEvent]] = {}
        for incident_id, at, kind, detail in w.query(
            f"SELECT incident_id, event_at, kind, detail FROM {self._name('incident_events')} ORDER BY event_at"
        ).rows:
            events.setdefault(incident_id, []).append(IncidentEvent(at, kind, detail or ""))
        out = [
            IncidentRecord(
                incident_id=r[0],
                opened_at=r[1],
                status=r[2],
                severity=r[3],
                root_cause=r[4],
                title=r[5],
                source_run=r[6] or "",
                resolved_at=r[7],
                resolution=r[8] or "",
                impact=json.loads(r[9]) if r[9] else {},
                events=tuple(events.get(r[0], ())),
            )
            for r in rows
        ]
        return [r for r in out if status is None or r.status == status]

    def _name(self, table: str) -> str:
        return relation(self.warehouse, table)

    def _insert(self, table: str, row: tuple[Any, ...]) -> None:
        insert_rows(self.warehouse, table, [row])
