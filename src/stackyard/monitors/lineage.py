"""Table-level lineage from dbt's manifest: sources → staging → marts → reporting.

dbt writes ``transform/target/manifest.json`` on every parse; its ``parent_map`` says which
sources and models each model reads. stackyard uses it three ways: to find the relation
(schema and name) of each model it monitors, to group alerts by root cause (an anomaly in a
mart whose source is anomalous is reported under the source), and to draw the report's
lineage graph.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

# Layers in the order the report draws them, left to right.
LAYERS = ("sources", "staging", "intermediate", "marts", "reporting", "other")


@dataclass(frozen=True)
class LineageNode:
    """A source table or a model.

    Attributes:
        unique_id: dbt's id, e.g. ``model.shop.stg_orders`` or ``source.shop.dlt_app.orders``.
        name: the model's name, or ``source.table`` for a source table.
        kind: ``source`` or ``model``.
        schema: the warehouse schema.
        relation_name: the relation's name in that schema.
        layer: one of :data:`LAYERS`.
        parents: unique ids of the sources and models it reads.
        key: a column its dbt ``unique`` test checks (empty when it has none).
        source_name: for a source table, its dbt source name (``dlt_app``).
        materialized: a model's materialization (``ephemeral``: no relation of its own).
    """

    unique_id: str
    name: str
    kind: str
    schema: str
    relation_name: str
    layer: str
    parents: tuple[str, ...] = ()
    key: tuple[str, ...] = ()
    source_name: str = ""
    materialized: str = ""

    @property
    def relation(self) -> str:
        """``schema.name`` in the warehouse."""
        return f"{self.schema}.{self.relation_name}"


@dataclass(frozen=True)
class Lineage:
    """The graph of one dbt project (empty when it has never been parsed)."""

    nodes: dict[str, LineageNode] = field(default_factory=dict)
    tests: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, transform_dir: Path, target: str | None = None) -> Lineage:
        """Read the manifest dbt last wrote for ``target`` (the last one it wrote when there
        is none for it yet); an empty lineage when there is none at all.

        Args:
            transform_dir: the dbt project folder.
            target: the target whose relations (schemas) are wanted.

        Returns:
            The lineage of every source table and model.
        """
        from stackyard.transform.state import read_manifest

        try:
            manifest = (read_manifest(transform_dir, target) if target else None) or (
                read_manifest(transform_dir)
            )
        except (OSError, ValueError):
            # A manifest half-written by a dbt run that was killed: lineage is a nicety for
            # monitors (grouping, the report), never a reason to fail them.
            return cls()
        if manifest is None:
            return cls()
        return cls.from_manifest(manifest, project_dir=transform_dir)

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any], project_dir: Path | None = None) -> Lineage:
        """Build the lineage from a parsed manifest.

        Args:
            manifest: dbt's parsed ``manifest.json``.
            project_dir: the dbt project folder. When given, the project's own models, seeds,
                snapshots, sources and tests whose file is no longer there are left out: the
                project no longer declares them. The manifest is the one of the last parse,
                and ``source remove`` (or a model deleted by hand) leaves it naming them until
                the next run; read as still declared, a model dropped with its file was
                watched and reported missing ("dropped or renamed?") on every pass before
                that run. A table dropped by hand whose model file is still there is still
                watched, and missing.

        >>> m = {"sources": {"source.p.s.t": {"schema": "raw", "identifier": "t",
        ...       "source_name": "s", "name": "t"}},
        ...      "nodes": {"model.p.m": {"resource_type": "model", "schema": "marts",
        ...       "alias": "m", "name": "m", "fqn": ["p", "marts", "m"]}},
        ...      "parent_map": {"model.p.m": ["source.p.s.t"]}}
        >>> lin = Lineage.from_manifest(m)
        >>> lin.by_relation()["marts.m"].parents, lin.nodes["source.p.s.t"].layer
        (('source.p.s.t',), 'sources')
        """
        parent_map: dict[str, list[str]] = manifest.get("parent_map") or {}
        declared = _declared(manifest, project_dir)
        keys: dict[str, list[str]] = {}
        tests: dict[str, str] = {}
        for uid, node in (manifest.get("nodes") or {}).items():
            if node.get("resource_type") != "test" or not declared(node):
                continue
            attached = node.get("attached_node") or next(iter(parent_map.get(uid, [])), None)
            if attached:
                tests[uid] = attached
            meta = node.get("test_metadata") or {}
            column = node.get("column_name") or (meta.get("kwargs") or {}).get("column_name")
            if meta.get("name") == "unique" and attached and column:
                keys.setdefault(attached, [str(column)])
        nodes: dict[str, LineageNode] = {}
        kinds: dict[str, str] = {}
        for uid, source in (manifest.get("sources") or {}).items():
            if not declared(source):
                continue
            nodes[uid] = LineageNode(
                unique_id=uid,
                name=f"{source.get('source_name')}.{source.get('name')}",
                kind="source",
                schema=str(source.get("schema")),
                relation_name=str(source.get("identifier") or source.get("name")),
                layer="sources",
                source_name=str(source.get("source_name")),
            )
        for uid, node in (manifest.get("nodes") or {}).items():
            if node.get("resource_type") not in ("model", "seed", "snapshot") or not declared(node):
                continue
            parents = tuple(
                p for p in parent_map.get(uid, []) if p.startswith(("model.", "source.", "seed."))
            )
            nodes[uid] = LineageNode(
                unique_id=uid,
                name=str(node.get("name")),
                kind="model",
                schema=str(node.get("schema")),
                relation_name=str(node.get("alias") or node.get("name")),
                layer=_layer(node),
                parents=parents,
                key=tuple(keys.get(uid, ())),
                materialized=str((node.get("config") or {}).get("materialized") or ""),
            )
            kinds[uid] = str(node.get("resource_type"))
        return cls(nodes=_place_by_position(nodes, kinds), tests=tests)

    def by_relation(self) -> dict[str, LineageNode]:
        """Nodes by ``schema.name``."""
        return {n.relation: n for n in self.nodes.values()}

    def ancestors(self, unique_id: str) -> set[str]:
        """Every source and model upstream of a node."""
        seen: set[str] = set()
        stack = list(self.nodes[unique_id].parents) if unique_id in self.nodes else []
        while stack:
            uid = stack.pop()
            if uid in seen:
                continue
            seen.add(uid)
            if uid in self.nodes:
                stack.extend(self.nodes[uid].parents)
        return seen

    def with_upstream_marks(self, marks: Mapping[str, set[date]]) -> dict[str, set[date]]:
        """Each table's marked incident days, with the days marked on any table upstream of
        it: a view or model built from a table whose outage is known shows the same outage,
        and it is the same incident (no second alert, kept out of its baselines too).

        Args:
            marks: marked days by ``schema.table``.

        Returns:
            Marked days by ``schema.table``, inherited ones included.
        """
        result = {table: set(days) for table, days in marks.items()}
        for relation, node in self.by_relation().items():
            for uid in self.ancestors(node.unique_id):
                parent = self.nodes.get(uid)
                if parent is not None and parent.relation in marks:
                    result.setdefault(relation, set()).update(marks[parent.relation])
        return result

    def root_cause(self, unique_id: str | None, broken: set[str]) -> str | None:
        """The most upstream broken node a broken node descends from (itself if none).

        Args:
            unique_id: the node.
            broken: unique ids of every node with an anomaly.

        Returns:
            The unique id of the root cause, or ``None`` when the node is not in the graph.
        """
        if unique_id is None or unique_id not in self.nodes:
            return None
        upstream = sorted(self.ancestors(unique_id) & broken)
        # The root is a broken ancestor with no broken ancestor of its own.
        roots = [u for u in upstream if not (self.ancestors(u) & broken)]
        return roots[0] if roots else unique_id


def _declared(
    manifest: Mapping[str, Any], project_dir: Path | None
) -> Callable[[Mapping[str, Any]], bool]:
    """Whether a manifest node is still declared: a node of the dbt project itself whose
    file (``original_file_path``, relative to the project folder) is gone is not. Nodes of
    installed packages (their files live under ``dbt_packages/``) are always declared.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "kept.sql").write_text("select 1")
    >>> declared = _declared({"metadata": {"project_name": "p"}}, folder)
    >>> [declared({"package_name": "p", "original_file_path": f}) for f in ("kept.sql", "gone.sql")]
    [True, False]
    >>> declared({"package_name": "dbt_utils", "original_file_path": "gone.sql"})
    True
    """
    project = (manifest.get("metadata") or {}).get("project_name")
    if project_dir is None or not project:
        return lambda node: True
    seen: dict[str, bool] = {}

    def declared(node: Mapping[str, Any]) -> bool:
        path = node.get("original_file_path")
        if node.get("package_name") != project or not path:
            return True
        if path not in seen:
            seen[path] = (project_dir / path).is_file()
        return seen[path]

    return declared


def _place_by_position(
    nodes: dict[str, LineageNode], kinds: dict[str, str]
) -> dict[str, LineageNode]:
    """Layers for nodes whose folders and schema name none (a project laid out its own way),
    from dbt's resource types and where a node sits in the graph: seeds are raw inputs, a
    model reading only raw inputs is staging, one nothing reads is a mart, the rest are
    intermediate.

    >>> n = {u: LineageNode(u, u, "model", "main", u, "other", p) for u, p in
    ...      [("seed.p.raw", ()), ("model.p.base", ("seed.p.raw",)),
    ...       ("model.p.mid", ("model.p.base",)), ("model.p.top", ("model.p.mid",))]}
    >>> placed = _place_by_position(n, {"seed.p.raw": "seed"})
    >>> [placed[u].layer for u in ("seed.p.raw", "model.p.base", "model.p.mid", "model.p.top")]
    ['sources', 'staging', 'intermediate', 'marts']
    """
    read = {p for node in nodes.values() for p in node.parents}

    def raw(uid: str) -> bool:
        return uid.startswith("source.") or kinds.get(uid) == "seed"

    placed = dict(nodes)
    for uid, node in nodes.items():
        if node.layer != "other":
            continue
        if kinds.get(uid) == "seed":
            layer = "sources"
        elif all(raw(p) for p in node.parents):
            layer = "staging"
        elif uid not in read:
            layer = "marts"
        else:
            layer = "intermediate"
        placed[uid] = replace(node, layer=layer)
    return placed


def _layer(node: dict[str, Any]) -> str:
    # The folder under models/ (fqn[1]) names the layer in the dbt convention the example
    # follows; the schema is the fallback for projects that put everything in one folder.
    candidates = [*(node.get("fqn") or [])[1:-1], str(node.get("schema") or "")]
    for part in candidates:
        lowered = part.lower()
        for layer in LAYERS[1:-1]:
            if lowered == layer or lowered.startswith(layer[:4]):
                return layer
    return "other"
