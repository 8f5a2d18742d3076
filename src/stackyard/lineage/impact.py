"""Answers over a :class:`~stackyard.lineage.graph.ColumnGraph`: lineage and impact.

``stackyard lineage`` walks columns upstream or downstream; ``stackyard impact`` adds what a
person deciding on a change needs: the tests on every affected column, the models people read
(reporting models, marts, anything an exposure names) with their owners, and a severity.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from stackyard.lineage.graph import ColumnGraph, ColumnRef, UnresolvedColumn

# Layers whose models people read: a break there is seen by someone.
READ_BY_PEOPLE = ("reporting", "marts")


@dataclass(frozen=True)
class LineageResult:
    """The columns upstream and/or downstream of a node or column."""

    node: str
    column: str | None
    upstream: tuple[ColumnRef, ...] | None
    downstream: tuple[ColumnRef, ...] | None
    unresolved: tuple[UnresolvedColumn, ...]

    @property
    def columns(self) -> list[ColumnRef]:
        """Both directions together, sorted."""
        return sorted({*(self.upstream or ()), *(self.downstream or ())})

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape: lists of ``{"node", "column"}`` plus ``unresolved``."""
        out: dict[str, Any] = {"node": self.node, "column": self.column}
        if self.upstream is not None:
            out["upstream"] = [c.to_dict() for c in self.upstream]
        if self.downstream is not None:
            out["downstream"] = [c.to_dict() for c in self.downstream]
        out["columns"] = [c.to_dict() for c in self.columns]
        out["unresolved"] = [u.to_dict() for u in self.unresolved]
        return out


@dataclass(frozen=True)
class TestRef:
    """A dbt test on an affected column (``column`` empty for a test on a whole model)."""

    name: str
    node: str
    column: str

    def to_dict(self) -> dict[str, str]:
        """A JSON-ready dict."""
        return {"test": self.name, "node": self.node, "column": self.column}


@dataclass(frozen=True)
class ExposedModel:
    """An affected model that people read, and who owns it."""

    node: str
    layer: str
    owner: str
    exposures: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "node": self.node,
            "layer": self.layer,
            "owner": self.owner,
            "exposures": list(self.exposures),
            "columns": list(self.columns),
        }


@dataclass(frozen=True)
class ImpactResult:
    """What changing or breaking one column affects downstream."""

    node: str
    column: str | None
    downstream: tuple[ColumnRef, ...]
    tests: tuple[TestRef, ...]
    exposed: tuple[ExposedModel, ...]
    unresolved: tuple[UnresolvedColumn, ...]
    severity: str
    why: str
    models: tuple[str, ...] = field(default=())
    readers: tuple[tuple[str, ColumnRef], ...] = field(default=())
    # The readers none of whose columns come from what they read: joins, filters, GROUP BY.
    only_read: tuple[tuple[str, ColumnRef], ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``stackyard impact --json``."""
        return {
            "node": self.node,
            "column": self.column,
            "downstream": [c.to_dict() for c in self.downstream],
            "columns": [c.to_dict() for c in self.downstream],
            "models": list(self.models),
            "referenced_in": [{"node": m, "reads": r.to_dict()} for m, r in self.readers],
            "tests": [t.to_dict() for t in self.tests],
            "exposed": [e.to_dict() for e in self.exposed],
            "severity": self.severity,
            "why": self.why,
            "unresolved": [u.to_dict() for u in self.unresolved],
        }


def lineage(graph: ColumnGraph, spec: str, direction: str = "both") -> LineageResult:
    """Columns upstream and/or downstream of ``NODE[.COLUMN]``.

    Args:
        graph: the project's column lineage.
        spec: a node, or a node and a column.
        direction: ``upstream``, ``downstream`` or ``both``.

    Raises:
        UsageError: the node or column is unknown.
    """
    node, column = graph.resolve(spec)
    start = [ColumnRef(node, column)] if column else graph.columns(node)
    up = down = None
    touched: set[str] = {node}
    if direction in ("upstream", "both"):
        up = tuple(graph.upstream(start))
        touched |= graph.nodes_upstream(node)
    if direction in ("downstream", "both"):
        down = tuple(graph.downstream(start))
        touched |= graph.nodes_downstream(node)
    return LineageResult(node, column, up, down, tuple(graph.unresolved_in(touched)))


def impact(graph: ColumnGraph, spec: str) -> ImpactResult:
    """Everything downstream of a column (or a whole node), with tests, readers and owners.

    Raises:
        UsageError: the node or column is unknown.
    """
    node, column = graph.resolve(spec)
    start = [ColumnRef(node, column)] if column else graph.columns(node)
    downstream = tuple(graph.downstream(start))
    hit = {*start, *downstream}
    # A model that joins, filters or groups on an affected column breaks on a rename too.
    readers = tuple(r for r in graph.readers(hit) if r[0] != r[1].node)
    fed = {
        (ref.node, ref.column.lower(), child.node)
        for ref, children in graph.children().items()
        for child in children
    }
    only_read = tuple(
        (model, ref) for model, ref in readers if (ref.node, ref.column.lower(), model) not in fed
    )
    affected = {c.node for c in downstream} | {m for m, _ in readers}
    tests = _tests(graph, hit, affected)
    exposed = _exposed(graph, downstream, {m for m, _ in readers})
    severity, why = suggest_severity(graph, affected)
    unresolved = graph.unresolved_in({node, *graph.nodes_downstream(node)})
    return ImpactResult(
        node=node,
        column=column,
        downstream=downstream,
        tests=tests,
        exposed=exposed,
        unresolved=tuple(unresolved),
        severity=severity,
        why=why,
        models=tuple(sorted(affected)),
        readers=readers,
        only_read=only_read,
    )


def suggest_severity(graph: ColumnGraph, affected: set[str]) -> tuple[str, str]:
    """P0–P3 from what a break reaches: people's reports, marts, or only internal models.

    P0: a model an exposure (a dashboard, an application) reads, or a reporting model with an
    owner; P1: reporting models or marts; P2: staging or intermediate models only; P3: nothing.
    """
    exposures = _exposures_by_node(graph)
    infos = [graph.nodes[n] for n in sorted(affected) if n in graph.nodes]
    critical = [
        i.name for i in infos if i.name in exposures or (i.layer == "reporting" and i.owner)
    ]
    if critical:
        return "P0", f"read by people through {', '.join(critical)}"
    read = [i.name for i in infos if i.layer in READ_BY_PEOPLE]
    if read:
        return "P1", f"reaches models people read: {', '.join(read)}"
    if infos:
        return "P2", f"reaches internal models only: {', '.join(i.name for i in infos)}"
    return "P3", "nothing downstream reads it"


def _tests(graph: ColumnGraph, hit: set[ColumnRef], affected: set[str]) -> tuple[TestRef, ...]:
    by_uid = {info.unique_id: name for name, info in graph.nodes.items()}
    lowered = {(c.node, c.column.lower()) for c in hit}
    found: set[TestRef] = set()
    for test in (graph.manifest.get("nodes") or {}).values():
        if test.get("resource_type") != "test":
            continue
        kwargs = (test.get("test_metadata") or {}).get("kwargs") or {}
        column = test.get("column_name") or kwargs.get("column_name")
        if column:
            column = str(column).strip('"`[]')  # `quote: true` columns arrive quoted
        deps = [by_uid[d] for d in (test.get("depends_on") or {}).get("nodes", []) if d in by_uid]
        attached = by_uid.get(test.get("attached_node") or "")
        if column and attached:
            on_hit = (attached, str(column).lower()) in lowered
            # A relationships test also reads the column it points to (`field`).
            field = str(kwargs.get("field") or "").lower()
            points_at_hit = bool(field) and any((d, field) in lowered for d in deps)
            if on_hit or points_at_hit:
                found.add(
                    TestRef(str(test["name"]), attached, graph.column_of_or(attached, column))
                )
        else:
            for dep in deps:
                if dep in affected:
                    found.add(TestRef(str(test["name"]), dep, ""))
    return tuple(sorted(found, key=lambda t: (t.node, t.column, t.name)))


def _exposures_by_node(graph: ColumnGraph) -> dict[str, list[tuple[str, str]]]:
    by_uid = {info.unique_id: name for name, info in graph.nodes.items()}
    out: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for exposure in (graph.manifest.get("exposures") or {}).values():
        owner = exposure.get("owner") or {}
        who = str(owner.get("email") or owner.get("name") or "")
        for dep in (exposure.get("depends_on") or {}).get("nodes", []):
            if dep in by_uid:
                out[by_uid[dep]].append((str(exposure.get("name")), who))
    return out


def _exposed(
    graph: ColumnGraph, downstream: tuple[ColumnRef, ...], readers: set[str]
) -> tuple[ExposedModel, ...]:
    """The affected models people read: those a column flows into, and those that read one
    in a join or filter (``readers``; they were left out, the severity still naming them)."""
    exposures = _exposures_by_node(graph)
    columns: dict[str, list[str]] = defaultdict(list)
    for ref in downstream:
        columns[ref.node].append(ref.column)
    out = []
    for name in sorted(set(columns) | readers):
        info = graph.nodes.get(name)
        if info is None:
            continue
        if info.layer not in READ_BY_PEOPLE and name not in exposures:
            continue
        owner = info.owner or next((who for _, who in exposures.get(name, []) if who), "")
        out.append(
            ExposedModel(
                node=name,
                layer=info.layer,
                owner=owner,
                exposures=tuple(sorted(e for e, _ in exposures.get(name, []))),
                columns=tuple(columns[name]),
            )
        )
    return tuple(out)
