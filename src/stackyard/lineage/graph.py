"""Column lineage of a whole dbt project: sources → models → models, column by column.

Built from dbt's manifest (each model's compiled SQL and its ``depends_on``) and the columns
the warehouse has (``information_schema``), with dbt's ``catalog.json`` and the columns the
project declares in YAML as fallbacks. Models are analysed in dependency order, so a model's
``SELECT *`` over another model expands to the columns that model *now* compiles to, not to
what the warehouse last built.

Node names are what a user types: the model name, or ``SOURCE.TABLE`` with dbt's source
name. Columns keep the spelling the warehouse (or the SQL) gives them; lookups ignore case.
"""

from __future__ import annotations

import json
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stackyard.errors import UsageError, did_you_mean
from stackyard.lineage.columns import TableRef, nested_schema, query_lineage

Columns = dict[tuple[str, str, str], dict[str, str]]


@dataclass(frozen=True, order=True)
class ColumnRef:
    """One column of one node (a model or a source table)."""

    node: str
    column: str

    def to_dict(self) -> dict[str, str]:
        """``{"node": …, "column": …}``."""
        return {"node": self.node, "column": self.column}


@dataclass(frozen=True)
class NodeInfo:
    """What the lineage knows of a node."""

    name: str
    unique_id: str
    kind: str  # model | source | seed | snapshot | external
    relation: tuple[str, str, str] | None
    columns: tuple[str, ...]
    layer: str = "other"
    owner: str = ""
    materialized: str = ""
    path: str = ""


@dataclass(frozen=True)
class UnresolvedColumn:
    """A column (or ``*``) of a node whose upstream could not be traced, and why."""

    node: str
    column: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        """A JSON-ready dict."""
        return {"node": self.node, "column": self.column, "reason": self.reason}


@dataclass
class ColumnGraph:
    """Column-level lineage of one project.

    Attributes:
        nodes: every node by name.
        parents: column → the upstream columns it is computed from.
        unresolved: per node, what could not be traced.
        table_parents: node → the nodes it reads (from dbt's ``depends_on``).
        reads: model → every upstream column its SQL mentions anywhere (joins, filters …).
        manifest: the manifest it was built from.
    """

    nodes: dict[str, NodeInfo] = field(default_factory=dict)
    parents: dict[ColumnRef, set[ColumnRef]] = field(default_factory=dict)
    unresolved: dict[str, list[UnresolvedColumn]] = field(default_factory=dict)
    table_parents: dict[str, set[str]] = field(default_factory=dict)
    reads: dict[str, set[ColumnRef]] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ lookups

    def resolve(self, text: str) -> tuple[str, str | None]:
        """Split ``NODE[.COLUMN]`` into a known node name and an optional column.

        Accepts a model name, ``SOURCE.TABLE`` (dbt's source name), ``schema.table`` as in the
        warehouse, or a unique id, each optionally followed by ``.column``.

        Raises:
            UsageError: no node or column by that name (with the closest names).
        """
        aliases = self._aliases()
        parts = text.split(".")
        for cut in range(len(parts), 0, -1):
            head, rest = ".".join(parts[:cut]), parts[cut:]
            node = aliases.get(head.lower())
            if node is None or len(rest) > 1:
                continue
            if not rest:
                return node, None
            return node, self.column_of(node, rest[0])
        raise UsageError(
            f"'{text}' is neither a model nor a source table{did_you_mean(parts[0], aliases)}",
            hint="give a model name (orders), SOURCE.TABLE (my_source.orders) or "
            "schema.table, optionally followed by .column",
        )

    def column_of(self, node: str, column: str) -> str:
        """A node's column as spelled in the lineage (case ignored).

        Raises:
            UsageError: the node has no such column.
        """
        known = self.nodes[node].columns
        for name in known:
            if name.lower() == column.lower():
                return name
        raise UsageError(
            f"{node} has no column '{column}'{did_you_mean(column, known)}",
            hint=f"its columns: {', '.join(known) or '(none known)'}",
        )

    def column_of_or(self, node: str, column: str) -> str:
        """A node's column as spelled in the lineage, or as given when unknown."""
        lowered = column.lower()
        return next((c for c in self.nodes[node].columns if c.lower() == lowered), column)

    def _aliases(self) -> dict[str, str]:
        aliases: dict[str, str] = {}
        for name, info in self.nodes.items():
            aliases[info.unique_id.lower()] = name
            if info.relation:
                aliases[f"{info.relation[1]}.{info.relation[2]}".lower()] = name
        for name in self.nodes:
            aliases[name.lower()] = name
        return aliases

    # ------------------------------------------------------------------ walks

    def children(self) -> dict[ColumnRef, set[ColumnRef]]:
        """The reverse of :attr:`parents`."""
        out: dict[ColumnRef, set[ColumnRef]] = defaultdict(set)
        for child, ups in self.parents.items():
            for up in ups:
                out[up].add(child)
        return out

    def upstream(self, start: Iterable[ColumnRef]) -> list[ColumnRef]:
        """Every column the given ones are computed from, transitively (sorted)."""
        return sorted(_walk(start, self.parents))

    def downstream(self, start: Iterable[ColumnRef]) -> list[ColumnRef]:
        """Every column computed from the given ones, transitively (sorted)."""
        return sorted(_walk(start, self.children()))

    def nodes_upstream(self, node: str) -> set[str]:
        """Every node a node reads, transitively (table level, from dbt's graph)."""
        return _walk([node], self.table_parents)

    def nodes_downstream(self, node: str) -> set[str]:
        """Every node that reads a node, transitively (table level)."""
        reverse: dict[str, set[str]] = defaultdict(set)
        for child, ups in self.table_parents.items():
            for up in ups:
                reverse[up].add(child)
        return _walk([node], reverse)

    def readers(self, columns: Iterable[ColumnRef]) -> list[tuple[str, ColumnRef]]:
        """``(model, column)`` for each model whose SQL mentions one of the columns."""
        wanted = {(c.node, c.column.lower()) for c in columns}
        return sorted(
            (model, ref)
            for model, refs in self.reads.items()
            for ref in refs
            if (ref.node, ref.column.lower()) in wanted
        )

    def unresolved_in(self, nodes: Iterable[str]) -> list[UnresolvedColumn]:
        """What could not be traced in these nodes (each may hide an edge)."""
        return [u for n in sorted(set(nodes)) for u in self.unresolved.get(n, [])]

    def columns(self, node: str) -> list[ColumnRef]:
        """Every column of a node."""
        return [ColumnRef(node, c) for c in self.nodes[node].columns]


def build_graph(
    manifest: Mapping[str, Any],
    warehouse_columns: Columns,
    dialect: str | None,
    catalog: Mapping[str, Any] | None = None,
    project_dir: Path | None = None,
) -> ColumnGraph:
    """Build the column lineage of a compiled dbt project.

    Args:
        manifest: dbt's ``manifest.json`` after ``dbt compile`` (or a build).
        warehouse_columns: ``{(database, schema, table): {column: type}}`` from the warehouse.
        dialect: sqlglot dialect of the compiled SQL.
        catalog: dbt's ``catalog.json`` when there is one (``dbt docs generate``).
        project_dir: the dbt project folder, to read seed files' headers.

    Returns:
        The graph; every column it could not trace is in ``unresolved``.
    """
    from stackyard.monitors.lineage import _layer

    known: Columns = {k: dict(v) for k, v in _lower_keys(warehouse_columns).items()}
    for cat_key, cat_cols in _catalog_columns(catalog).items():
        known.setdefault(cat_key, cat_cols)
    graph = ColumnGraph(manifest=dict(manifest))
    by_relation: dict[tuple[str, str, str], str] = {}
    names: dict[str, str] = {}  # unique id → node name
    for uid, src in (manifest.get("sources") or {}).items():
        name = f"{src.get('source_name')}.{src.get('name')}"
        src_key = _key(src.get("database"), src.get("schema"), src.get("identifier") or src["name"])
        declared = {c: (v.get("data_type") or "UNKNOWN") for c, v in src.get("columns", {}).items()}
        cols = known.get(src_key) or declared
        known.setdefault(src_key, cols)
        graph.nodes[name] = NodeInfo(
            name, uid, "source", src_key, tuple(cols), "sources", _owner(src), "", ""
        )
        by_relation[src_key] = name
        names[uid] = name
    models = {
        uid: n
        for uid, n in (manifest.get("nodes") or {}).items()
        if n.get("resource_type") in ("model", "seed", "snapshot")
    }
    for uid, node in models.items():
        names[uid] = str(node["name"])
        if (node.get("config") or {}).get("materialized") != "ephemeral":
            by_relation[_key(node.get("database"), node.get("schema"), _alias(node))] = node["name"]
    for uid in _topological(models):
        node = models[uid]
        name = str(node["name"])
        materialized = str((node.get("config") or {}).get("materialized") or "")
        ephemeral = materialized == "ephemeral"
        key: tuple[str, str, str] | None = (
            None if ephemeral else _key(node.get("database"), node.get("schema"), _alias(node))
        )
        graph.table_parents[name] = {
            names[d] for d in (node.get("depends_on") or {}).get("nodes", []) if d in names
        }
        problems: list[UnresolvedColumn] = []
        if node["resource_type"] == "seed":
            out = _seed_columns(node, known.get(key) if key else None, project_dir)
        else:
            sql = node.get("compiled_code")
            if not sql:
                problems.append(UnresolvedColumn(name, "*", "dbt has not compiled this model"))
                out = list((known.get(key) or {}) if key else {})
            else:
                out = _analyse(graph, name, sql, known, by_relation, dialect, problems)
        inherited = {
            c.lower(): c
            for parent in graph.table_parents[name]
            if parent in graph.nodes
            for c in graph.nodes[parent].columns
        }
        spelled = _spelling(out, known.get(key) if key else None, inherited)
        graph.nodes[name] = NodeInfo(
            name=name,
            unique_id=uid,
            kind=str(node["resource_type"]),
            relation=key,
            columns=tuple(spelled.values()),
            layer=_layer(node),
            owner=_owner(node),
            materialized=materialized,
            path=str(node.get("original_file_path") or ""),
        )
        _respell(graph, name, spelled)
        if key is not None:
            old = known.get(key, {})
            lowered = {k.lower(): v for k, v in old.items()}
            known[key] = {c: lowered.get(c.lower(), "UNKNOWN") for c in spelled.values()}
        if problems:
            graph.unresolved[name] = [
                UnresolvedColumn(p.node, spelled.get(p.column.lower(), p.column), p.reason)
                for p in problems
            ]
    return graph


def _analyse(
    graph: ColumnGraph,
    name: str,
    sql: str,
    known: Columns,
    by_relation: Mapping[tuple[str, str, str], str],
    dialect: str | None,
    problems: list[UnresolvedColumn],
) -> list[str]:
    schema = nested_schema(known)
    result = query_lineage(sql, schema, dialect)
    for item in result.unresolved:
        problems.append(UnresolvedColumn(name, item.column, item.reason))
    for column, sources in result.columns.items():
        ups: set[ColumnRef] = set()
        for table, up_column in sources:
            up_node = by_relation.get(table.key) or _external(graph, table)
            ups.add(ColumnRef(up_node, up_column))
        for model, up_column in result.ephemeral.get(column, set()):
            ups.add(ColumnRef(model, up_column))
        graph.parents[ColumnRef(name, column)] = ups
    reads = {
        ColumnRef(by_relation.get(t.key) or _external(graph, t), c) for t, c in result.references
    }
    reads |= {ColumnRef(m, c) for m, c in result.ephemeral_references}
    graph.reads[name] = {_respelled(graph, r) for r in reads}
    _check_parents(graph, name, problems)
    return list(result.columns)


def _check_parents(graph: ColumnGraph, name: str, problems: list[UnresolvedColumn]) -> None:
    """Edges to a column its parent does not have are reported, and kept."""
    for child, ups in graph.parents.items():
        if child.node != name:
            continue
        for up in ups:
            info = graph.nodes.get(up.node)
            if info is None or not info.columns:
                continue
            if up.column.lower() not in {c.lower() for c in info.columns}:
                problems.append(
                    UnresolvedColumn(
                        name, child.column, f"reads {up.node}.{up.column}, which does not exist"
                    )
                )


def _external(graph: ColumnGraph, table: TableRef) -> str:
    name = f"{table.db}.{table.name}" if table.db else table.name
    if name not in graph.nodes:
        graph.nodes[name] = NodeInfo(name, name, "external", table.key, (), "other")
    return name


def _spelling(
    columns: Iterable[str], warehouse: Mapping[str, str] | None, inherited: Mapping[str, str]
) -> dict[str, str]:
    """lower-case name → the warehouse's spelling, else the SQL's quoted one, else the
    spelling of a parent's column of that name (a ``SELECT *`` passes it through)."""
    existing = {c.lower(): c for c in (warehouse or {})}
    out = {}
    for c in columns:
        low = c.lower()
        out[low] = existing.get(low) or (c if c != low else inherited.get(low, c))
    return out


def _respell(graph: ColumnGraph, name: str, spelled: Mapping[str, str]) -> None:
    for ref in [r for r in graph.parents if r.node == name]:
        proper = spelled.get(ref.column.lower(), ref.column)
        if proper != ref.column:
            graph.parents[ColumnRef(name, proper)] = graph.parents.pop(ref)
    for child, ups in graph.parents.items():
        if child.node == name:
            fixed = {_respelled(graph, u) for u in ups}
            ups.clear()
            ups.update(fixed)


def _respelled(graph: ColumnGraph, ref: ColumnRef) -> ColumnRef:
    info = graph.nodes.get(ref.node)
    if info is None:
        return ref
    for c in info.columns:
        if c.lower() == ref.column.lower():
            return ColumnRef(ref.node, c)
    return ref


def _walk(start: Iterable[Any], edges: Mapping[Any, set[Any]]) -> set[Any]:
    seen: set[Any] = set()
    queue = deque(start)
    while queue:
        item = queue.popleft()
        for nxt in edges.get(item, ()):
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return seen


def _topological(models: Mapping[str, Any]) -> list[str]:
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(uid: str) -> None:
        stack = [(uid, iter(_deps(models[uid], models)))]
        state[uid] = 1
        while stack:
            current, deps = stack[-1]
            nxt = next(deps, None)
            if nxt is None:
                stack.pop()
                state[current] = 2
                order.append(current)
            elif state.get(nxt, 0) == 0:
                state[nxt] = 1
                stack.append((nxt, iter(_deps(models[nxt], models))))

    for uid in sorted(models):
        if state.get(uid, 0) == 0:
            visit(uid)
    return order


def _deps(node: Mapping[str, Any], models: Mapping[str, Any]) -> list[str]:
    return [d for d in (node.get("depends_on") or {}).get("nodes", []) if d in models]


def _key(database: Any, schema: Any, name: Any) -> tuple[str, str, str]:
    return (str(database or "").lower(), str(schema or "").lower(), str(name or "").lower())


def _alias(node: Mapping[str, Any]) -> str:
    return str(node.get("alias") or node.get("name"))


def _lower_keys(columns: Columns) -> Columns:
    return {_key(*k): v for k, v in columns.items()}


def _owner(node: Mapping[str, Any]) -> str:
    for meta in (node.get("meta") or {}, (node.get("config") or {}).get("meta") or {}):
        owner = meta.get("owner")
        if owner:
            return str(owner)
    return ""


def _catalog_columns(catalog: Mapping[str, Any] | None) -> Columns:
    out: Columns = {}
    for group in ("nodes", "sources"):
        for entry in ((catalog or {}).get(group) or {}).values():
            meta = entry.get("metadata") or {}
            cols = sorted((entry.get("columns") or {}).values(), key=lambda c: c.get("index", 0))
            out[_key(meta.get("database"), meta.get("schema"), meta.get("name"))] = {
                str(c["name"]): str(c.get("type") or "UNKNOWN") for c in cols
            }
    return out


def _seed_columns(
    node: Mapping[str, Any], existing: Mapping[str, str] | None, project_dir: Path | None
) -> list[str]:
    if existing:
        return list(existing)
    path = Path(str(node.get("root_path") or project_dir or ".")) / str(
        node.get("original_file_path") or ""
    )
    if path.is_file():
        import csv

        with path.open(encoding="utf-8", newline="") as handle:
            return next(csv.reader(handle), [])
    return list(node.get("columns") or {})


def load_manifest(transform_dir: Path, target: str | None = None) -> dict[str, Any]:
    """dbt's ``target/manifest.json``, or the last one dbt wrote for ``target`` (empty when
    there is none, or when a killed dbt left it half written: it is compiled again)."""
    from stackyard.transform.state import target_manifest_path

    try:
        return dict(json.loads(target_manifest_path(transform_dir, target).read_text("utf-8")))
    except (OSError, ValueError):
        return {}
