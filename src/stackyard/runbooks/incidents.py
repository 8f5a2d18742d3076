"""The incident-response runbook as commands: open, list, show, trace, resolve, postmortem.

``open`` reads what is failing — the latest run's failed loads, models, tests and stale
sources, and the latest monitor pass's anomalies — and groups it by root cause with column
lineage: a failure whose upstream is also failing belongs to the upstream one, and every
table of one failed source load belongs to that load. One incident per root cause; a new
alert whose root cause already has an open incident is added to its timeline instead.
Severity is suggested from what the root cause reaches: models an exposure or a named owner
reads (P0), reporting models and marts (P1), internal models only (P2), nothing (P3).

``trace`` walks lineage upstream from the root cause to the first node that went bad and
lists what changed there: the monitors' findings, the load error (a dlt schema change is
named by it), git commits touching its files, and source freshness. ``postmortem`` writes the
playbook's post-mortem as Markdown, its timeline filled in from run history and the
incident's events.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from textwrap import shorten
from typing import Any

from stackyard.errors import UsageError, did_you_mean
from stackyard.lineage.graph import ColumnGraph
from stackyard.lineage.impact import suggest_severity
from stackyard.metadata.history import History
from stackyard.metadata.incidents import IncidentEvent, IncidentRecord, IncidentStore
from stackyard.session import Session

_TABLE_IN_ERROR = re.compile(r"table '([^']+)'")
_LOAD_REASON = re.compile(r"the load of source '([^']+)' failed")


@dataclass(frozen=True)
class Signal:
    """Something failing now, tied to a node of the lineage."""

    node: str
    kind: str  # load | model | test | freshness | monitor
    detail: str
    group: str = ""  # one failure unit (a source's load) whose signals share a root

    def line(self) -> str:
        """One line for a timeline."""
        first = self.detail.strip().splitlines()[0] if self.detail.strip() else ""
        return f"{self.kind} on {self.node}: {first}"


@dataclass(frozen=True)
class OpenResult:
    """What ``incident open`` did."""

    opened: tuple[IncidentRecord, ...] = ()
    updated: tuple[IncidentRecord, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; ``id`` is the first incident's, for scripts."""
        every = [*self.opened, *self.updated]
        return {
            "id": every[0].incident_id if every else None,
            "opened": [r.incident_id for r in self.opened],
            "updated": [r.incident_id for r in self.updated],
            "incidents": [r.to_dict() for r in every],
        }


@dataclass(frozen=True)
class Change:
    """Something that changed at the first bad node."""

    kind: str  # monitor | load_error | schema_change | commit | freshness
    detail: str
    at: str = ""

    def to_dict(self) -> dict[str, str]:
        """A JSON-ready dict."""
        return {"kind": self.kind, "detail": self.detail, "at": self.at}


@dataclass(frozen=True)
class TraceResult:
    """Where an incident started and what changed there."""

    incident_id: str
    root_cause: str
    first_bad: str
    relation: str
    path: tuple[str, ...]
    changes: tuple[Change, ...] = ()
    bad_nodes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "id": self.incident_id,
            "root_cause": self.root_cause,
            "first_bad": self.first_bad,
            "table": self.relation,
            "path": list(self.path),
            "bad_nodes": list(self.bad_nodes),
            "changes": [c.to_dict() for c in self.changes],
        }


class IncidentRunbook:
    """Incident response on one target.

    Args:
        session: the target's session (history, monitors and incidents live in its
            warehouse; git history and post-mortems in its project folder).
        graph: builds the project's lineage.
    """

    def __init__(self, session: Session, graph: Callable[[], ColumnGraph]) -> None:
        warehouse = session.warehouse
        self.warehouse = warehouse
        self.graph = graph
        self.config = session.project.config
        self.project_dir = session.project.project_dir
        self.transform_dir = session.project.transform_dir
        self.store = IncidentStore(warehouse)
        self.history = History(warehouse)

    # ------------------------------------------------------------------ open

    def open(
        self,
        *,
        run_id: str | None = None,
        use_run: bool = True,
        use_monitors: bool = True,
        node: str | None = None,
        title: str = "",
        severity: str | None = None,
    ) -> OpenResult:
        """Open an incident per root cause of what is failing (or on a node given).

        Returns:
            What was opened and updated; nothing when nothing fails and no node was given.

        Raises:
            UsageError: no run or monitor pass to read yet and no node was given, or the
                run is unknown.
        """
        run = self._run(run_id) if use_run or run_id else None
        if node is None and run is None and not self._monitor_pass_seen():
            raise UsageError(
                "nothing to read failures from: no run or monitor pass on this target yet",
                hint="`stackyard run` first, or give --node NODE to open an incident by hand",
            )
        graph = self.graph()
        self.store.ensure()
        signals: list[Signal] = []
        if run is not None:
            signals += self._run_signals(graph, run["run_id"])
        if use_monitors:
            signals += self._monitor_signals(graph)
        if node is not None:
            name, _ = graph.resolve(node)
            signals.append(Signal(name, "manual", title or "opened by hand"))
        if not signals:
            return OpenResult()
        now = datetime.now(UTC)
        opened: list[IncidentRecord] = []
        updated: list[IncidentRecord] = []
        existing = {r.root_cause: r for r in self.store.all("open")}
        for root, group in _by_root(graph, signals).items():
            if root in existing:
                record = existing[root]
                seen = {e.detail for e in record.events}
                for s in group:
                    if s.line() not in seen:
                        self.store.add_event(
                            record.incident_id, IncidentEvent(now, "alert", s.line())
                        )
                if severity and severity != record.severity:  # asked for: not dropped unsaid
                    self.store.set_severity(record.incident_id, now, record.severity, severity)
                updated.append(self._get(record.incident_id))
                continue
            downstream = self._impact(graph, root, group)
            level, why = suggest_severity(graph, downstream)
            record = IncidentRecord(
                incident_id=self.store.next_id(),
                opened_at=now,
                status="open",
                severity=severity or level,
                root_cause=root,
                title=title or shorten(f"{root}: {group[0].line()}", 160, placeholder=" …"),
                source_run=run["run_id"] if run else "",
                impact={"downstream": sorted(downstream), "severity_why": why},
                events=(
                    IncidentEvent(now, "opened", f"severity {severity or level} ({why})"),
                    *(IncidentEvent(now, "alert", s.line()) for s in group),
                ),
            )
            self.store.add(record)
            opened.append(self._get(record.incident_id))
        return OpenResult(tuple(opened), tuple(updated))

    def _impact(self, graph: ColumnGraph, root: str, group: list[Signal]) -> set[str]:
        """Every node downstream of the root, of each failing node in its group and, for a
        failed load, of every table of that source: what the failed run skipped
        (``source:NAME+`` of each dbt source the load feeds), not only the root's share."""
        from stackyard.transform.inventory import source_dbt_names

        starts = {root, *(s.node for s in group)}
        for source in {s.group.removeprefix("load:") for s in group if s.group.startswith("load:")}:
            names = set(source_dbt_names(self.config, source, graph.manifest))
            starts |= {
                f"{t['source_name']}.{t['name']}"
                for t in (graph.manifest.get("sources") or {}).values()
                if t.get("source_name") in names
            }
        # An ephemeral model is never built: nothing of it is skipped, or stale, in the warehouse.
        return {
            n
            for start in starts
            if start in graph.nodes
            for n in graph.nodes_downstream(start)
            if graph.nodes[n].materialized != "ephemeral"
        }

    # ------------------------------------------------------------------ read

    def all(self, include_resolved: bool = False) -> list[IncidentRecord]:
        """Open incidents (or every incident), newest first."""
        records = self.store.all(None if include_resolved else "open")
        return records

    def show(self, incident_id: str) -> IncidentRecord:
        """One incident with its timeline.

        Raises:
            UsageError: no incident has that id.
        """
        record = self._get(incident_id)
        return record

    def resolve(self, incident_id: str, note: str) -> IncidentRecord:
        """Mark an incident resolved, with what fixed it."""
        record = self._get(incident_id)
        if record.status == "resolved":
            raise UsageError(
                f"{record.incident_id} is already resolved ({record.resolution})",
                hint=f"`stackyard incident show {record.incident_id}` shows its timeline; "
                "`stackyard incident open` opens a new one if it broke again",
            )
        self.store.resolve(incident_id, datetime.now(UTC), note or "resolved")
        record = self._get(incident_id)
        return record

    # ------------------------------------------------------------------ trace

    def trace(self, incident_id: str, *, note: bool = True) -> TraceResult:
        """Walk lineage upstream from the incident's root cause to the first bad node, and
        list what changed there (noted on the incident's timeline when ``note``)."""
        record = self._get(incident_id)
        graph = self.graph()
        monitors = self._monitor_signals(graph)
        bad = {s.node for s in monitors}
        run = self._run(record.source_run or None)
        if run is not None:
            bad |= {s.node for s in self._run_signals(graph, run["run_id"])}
        start = record.root_cause
        ancestors = graph.nodes_upstream(start) if start in graph.nodes else set()
        candidates = (ancestors | {start}) & bad or {start}
        firsts = sorted(c for c in candidates if not (graph.nodes_upstream(c) & bad))
        first = firsts[0] if firsts else start
        path = [first]
        current = first
        while current != start:
            nxt = sorted(
                n
                for n in graph.nodes
                if current in graph.table_parents.get(n, set())
                and (n == start or start in graph.nodes_downstream(n))
            )
            if not nxt:
                break
            current = nxt[0]
            path.append(current)
        info = graph.nodes.get(first)
        relation = f"{info.relation[1]}.{info.relation[2]}" if info and info.relation else first
        # What the monitors found there first: with no load failing (an outage upstream),
        # the volume anomaly that opened the incident is the only sign of it.
        changes = [Change("monitor", s.detail) for s in monitors if s.node == first]
        changes += self._changes(graph, first, relation, record)
        result = TraceResult(
            incident_id, start, first, relation, tuple(path), tuple(changes), tuple(sorted(bad))
        )
        summary = f"first bad node {first} ({relation}); " + "; ".join(
            c.detail.splitlines()[0] for c in changes[:3]
        )
        if note:
            self.store.add_event(incident_id, IncidentEvent(datetime.now(UTC), "trace", summary))
        return result

    def postmortem(self, incident_id: str, out: Path | None = None) -> Path:
        """Write the incident's post-mortem as Markdown (default
        ``postmortems/<ID>.md`` in the project) and return its path."""
        from stackyard.runbooks.postmortem import render, timeline

        # Writing it again must not add to the timeline it shows: the trace it reads is not
        # recorded, and the post-mortem is noted once per file.
        trace = self.trace(incident_id, note=False)
        record = self._get(incident_id)
        text = render(record, trace, timeline(self.warehouse, record))
        path = out or self.project_dir / "postmortems" / f"{record.incident_id}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        if not any(e.kind == "postmortem" and e.detail == str(path) for e in record.events):
            self.store.add_event(
                record.incident_id, IncidentEvent(datetime.now(UTC), "postmortem", str(path))
            )
        return path

    def _changes(
        self, graph: ColumnGraph, node: str, relation: str, record: IncidentRecord
    ) -> list[Change]:
        changes: list[Change] = []
        info = graph.nodes.get(node)
        schema, _, table = relation.partition(".")
        if info is not None and info.kind == "source":
            for run_id, error, started in self.history.failed_loads(schema):
                named = _TABLE_IN_ERROR.search(error or "")
                if named and named.group(1) != table:
                    continue
                kind = "schema_change" if "column" in (error or "") else "load_error"
                changes.append(Change(kind, f"run {run_id}: {error}", _iso(started)))
            fresh = self.history.latest_freshness(node.split(".")[0], table)
            if fresh is not None:
                status, max_loaded, age, started = fresh
                changes.append(
                    Change(
                        "freshness",
                        f"{status}: last load {max_loaded} ({age} h old)",
                        _iso(started),
                    )
                )
        from stackyard.runbooks.incident_commits import recent_commits

        commits = recent_commits(graph, node, self.transform_dir, self.project_dir)
        changes += [Change("commit", detail, at) for detail, at in commits]
        return changes

    # ------------------------------------------------------------------ helpers

    def _get(self, incident_id: str) -> IncidentRecord:
        self.store.ensure()
        records = {r.incident_id.lower(): r for r in self.store.all()}
        if incident_id.lower() not in records:
            known = sorted(r.incident_id for r in records.values())
            raise UsageError(
                f"no incident '{incident_id}'{did_you_mean(incident_id, known)}",
                hint="`stackyard incident list --all` lists them",
            )
        return records[incident_id.lower()]

    def _run(self, run_id: str | None) -> dict[str, Any] | None:
        run = self.history.run(run_id)
        if run_id and run is None:
            raise UsageError(f"no run '{run_id}' on this target", hint="`stackyard status`")
        return run

    def _run_signals(self, graph: ColumnGraph, run_id: str) -> list[Signal]:
        failures = self.history.failures(run_id)
        aliases = _aliases(graph)
        signals: list[Signal] = []
        for source, error in failures["loads"]:
            named = _TABLE_IN_ERROR.search(error or "")
            tables = [named.group(1)] if named else _tables_of(graph, source)
            for table in tables:
                node = aliases.get(f"{source}.{table}".lower())
                if node:
                    signals.append(Signal(node, "load", error or "", f"load:{source}"))
        by_uid = {i.unique_id: n for n, i in graph.nodes.items()}
        tests = {
            uid: t.get("attached_node")
            or next(iter((t.get("depends_on") or {}).get("nodes", [])), "")
            for uid, t in (graph.manifest.get("nodes") or {}).items()
            if t.get("resource_type") == "test"
        }
        for uid, name, kind, message in failures["nodes"]:
            if kind == "test" and tests.get(uid) in by_uid:
                signals.append(Signal(by_uid[tests[uid]], "test", f"{name}: {message}"))
            elif uid in by_uid:
                signals.append(Signal(by_uid[uid], "model", f"{name}: {message}"))
        for source, table, status in failures["freshness"]:
            node = aliases.get(f"{source}.{table}".lower())
            if node:
                signals.append(Signal(node, "freshness", f"{source}.{table} is {status}"))
        return signals

    def _monitor_pass_seen(self) -> bool:
        from stackyard.metadata.monitors import MetricStore

        store = MetricStore(self.warehouse)
        return store.exists() and store.latest_findings()[0] is not None

    def _monitor_signals(self, graph: ColumnGraph) -> list[Signal]:
        from stackyard.metadata.monitors import MetricStore

        store = MetricStore(self.warehouse)
        if not store.exists():
            return []
        _, rows = store.latest_findings()
        aliases = _aliases(graph)
        signals = []
        for row in rows:
            if row.get("status") not in ("anomaly", "missing"):
                continue
            node = aliases.get(str(row["table_name"]).lower()) or aliases.get(
                str(row.get("node") or "").lower()
            )
            if node is None:
                continue
            reason = str(row.get("reason") or "")
            load = _LOAD_REASON.search(reason)
            signals.append(
                Signal(
                    node,
                    "monitor",
                    f"{row['check_name']}: {reason}",
                    f"load:{load.group(1)}" if load else "",
                )
            )
        return signals


def _by_root(graph: ColumnGraph, signals: list[Signal]) -> dict[str, list[Signal]]:
    """Signals grouped by root cause: the most upstream failing node, one per failed load."""
    bad = {s.node for s in signals}
    group_root: dict[str, str] = {}
    for s in signals:
        # The table a load error names is that load's only signal; an error naming none has
        # one per table, and its first is the root (it was the last: a load failing on
        # customers was rooted at orders, and opened a second incident beside the first).
        if s.group and s.group not in group_root:
            group_root[s.group] = s.node
    out: dict[str, list[Signal]] = {}
    for s in signals:
        if s.group:
            root = group_root[s.group]
        else:
            above = graph.nodes_upstream(s.node) & bad if s.node in graph.nodes else set()
            tops = sorted(a for a in above if not (graph.nodes_upstream(a) & bad))
            root = tops[0] if tops else s.node
            for grp, grp_root in group_root.items():
                if root in {x.node for x in signals if x.group == grp}:
                    root = grp_root
        out.setdefault(root, []).append(s)
    return out


def _aliases(graph: ColumnGraph) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, info in graph.nodes.items():
        out[name.lower()] = name
        if info.relation:
            out[f"{info.relation[1]}.{info.relation[2]}".lower()] = name
    return out


def _tables_of(graph: ColumnGraph, schema: str) -> list[str]:
    return sorted(
        i.relation[2]
        for i in graph.nodes.values()
        if i.kind == "source" and i.relation and i.relation[1] == schema.lower()
    )


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value or "")
