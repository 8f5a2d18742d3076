"""Schema diff: what a change to the project does to the shape of every model and source.

Two shapes of the project are compared, column by column:

* *before*: what the warehouse has built (``information_schema``), or the project at a git
  ref, or another target's warehouse;
* *after*: what the project compiles to now. Each model's compiled SQL is described by the
  warehouse without running it (DuckDB ``DESCRIBE``, a temporary view on Postgres), so types
  are the engine's own; sources are what their YAML declares.

Each difference is classified: ``additive`` (a new column or model), ``rename`` (a column
gone and one added at the same place with the same type), ``type_widening`` /
``type_narrowing``, ``drop``, ``partitioning`` (``partition_by`` / ``cluster_by`` changed),
and ``broken_reference`` (a model reads a column its parent no longer has). All but
additive and widening are breaking, and fail ``--check`` unless approved in stackyard.yml.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from stackyard.errors import WarehouseError
from stackyard.lineage.graph import ColumnGraph, ColumnRef, Columns
from stackyard.warehouse.base import Warehouse

BREAKING = ("rename", "type_narrowing", "drop", "partitioning", "broken_reference")


@dataclass(frozen=True)
class Shape:
    """A node's columns (in order, with types; ``?`` when unknown) and partitioning."""

    node: str
    kind: str
    columns: dict[str, str]
    partitioning: str | None = None


@dataclass(frozen=True)
class Change:
    """One classified difference."""

    node: str
    column: str
    change: str
    before: str = ""
    after: str = ""
    detail: str = ""
    approved: bool = False
    readers: tuple[str, ...] = ()

    @property
    def breaking(self) -> bool:
        """Whether downstream readers can break on it."""
        return self.change in BREAKING

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "node": self.node,
            "column": self.column,
            "change": self.change,
            "before": self.before,
            "after": self.after,
            "breaking": self.breaking,
            "approved": self.approved,
            "detail": self.detail,
            "readers": list(self.readers),
        }


@dataclass(frozen=True)
class SchemaDiff:
    """Every change between two shapes of a project."""

    against: str
    changes: tuple[Change, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def unapproved(self) -> list[Change]:
        """Breaking changes nobody approved."""
        return [c for c in self.changes if c.breaking and not c.approved]

    @property
    def exit_code(self) -> int:
        """1 when a breaking change is not approved (for ``--check``), else 0."""
        return 1 if self.unapproved else 0

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``stackyard schema diff --json``."""
        return {
            "against": self.against,
            "changes": [c.to_dict() for c in self.changes],
            "breaking": len([c for c in self.changes if c.breaking]),
            "unapproved": len(self.unapproved),
            "notes": list(self.notes),
        }


# ---------------------------------------------------------------------------- shapes


def built_shapes(graph: ColumnGraph, columns: Columns) -> dict[str, Shape]:
    """What the warehouse has for each model and source of the graph."""
    shapes = {}
    for name, info in graph.nodes.items():
        if info.relation is None or info.kind == "external":
            continue
        found = columns.get(info.relation)
        if found:
            shapes[name] = Shape(name, info.kind, dict(found))
    return shapes


def gone_models(graph: ColumnGraph, columns: Columns, built: Iterable[str]) -> dict[str, Shape]:
    """The tables of models a run built (``built``: their names) that the project no longer
    has, found in the schemas its models are built in.

    >>> from stackyard.lineage.graph import NodeInfo
    >>> info = NodeInfo("m", "model.p.m", "model", ("db", "marts", "m"), ())
    >>> graph = ColumnGraph(nodes={"m": info})
    >>> cols = {("db", "marts", "old"): {"id": "INTEGER"}, ("db", "raw", "gone"): {}}
    >>> list(gone_models(graph, cols, ["m", "old", "gone"]))
    ['old']
    """
    schemas = {
        info.relation[:2]
        for info in graph.nodes.values()
        if info.kind == "model" and info.relation is not None
    }
    gone = {name.lower(): name for name in built if name not in graph.nodes}
    shapes = {}
    for (database, schema, table), found in columns.items():
        name = gone.get(table)
        if name is not None and (database, schema) in schemas:
            shapes[name] = Shape(name, "model", dict(found))
    return shapes


def project_shapes(
    graph: ColumnGraph, describe: Callable[[str], dict[str, str] | None]
) -> tuple[dict[str, Shape], list[str]]:
    """What the project compiles to now: models described by the warehouse, sources as
    declared in YAML. Returns the shapes and notes on what could not be described."""
    shapes: dict[str, Shape] = {}
    notes: list[str] = []
    manifest_nodes = graph.manifest.get("nodes") or {}
    sources = graph.manifest.get("sources") or {}
    for name, info in graph.nodes.items():
        if info.kind == "source":
            declared = (sources.get(info.unique_id) or {}).get("columns") or {}
            if declared:
                shapes[name] = Shape(
                    name,
                    "source",
                    {c: str(v.get("data_type") or "?") for c, v in declared.items()},
                )
            continue
        node = manifest_nodes.get(info.unique_id)
        if node is None or info.materialized == "ephemeral" or info.kind != "model":
            continue
        described = describe(str(node.get("compiled_code") or "")) if node else None
        if described is None:
            notes.append(f"{name}: the warehouse could not describe its SQL; types not compared")
            described = {c: "?" for c in info.columns}
        shapes[name] = Shape(name, "model", described, _partitioning(node))
    return shapes, notes


def describe_query(warehouse: Warehouse, sql: str) -> dict[str, str] | None:
    """The columns and types a query returns, without running it (``None`` when the
    engine cannot say, or the SQL does not run against the warehouse as it is)."""
    if not sql.strip():
        return None
    body = sql.strip().rstrip(";")
    try:
        return warehouse.describe_query(body)
    except WarehouseError:
        return None


def _partitioning(node: Mapping[str, Any]) -> str | None:
    config = node.get("config") or {}
    parts = {k: config.get(k) for k in ("partition_by", "cluster_by") if config.get(k)}
    return json.dumps(parts, sort_keys=True) if parts else None


# ---------------------------------------------------------------------------- diff


def diff_shapes(
    before: Mapping[str, Shape],
    after: Mapping[str, Shape],
    graph: ColumnGraph,
    approves: Callable[[str, str, str], bool],
    against: str,
    notes: tuple[str, ...] = (),
) -> SchemaDiff:
    """Classify every difference between two shapes of the project.

    Args:
        before: the shapes compared against (the warehouse, a git ref, another target).
        after: the project now.
        graph: the project's lineage now (for readers and broken references).
        approves: ``(node, column, change) → bool`` from stackyard.yml.
        against: what ``before`` is, for messages.
        notes: remarks to carry into the result.
    """
    changes: list[Change] = []
    for node in sorted(set(before) | set(after)):
        old, new = before.get(node), after.get(node)
        if old is None and new is not None:
            if new.kind == "model":
                changes.append(Change(node, "*", "additive", "", "", "a new model"))
            continue
        if new is None and old is not None:
            if old.kind == "model" and node not in graph.nodes:
                changes.append(Change(node, "*", "drop", "", "", "the model is gone"))
            continue
        assert old is not None and new is not None
        changes.extend(_column_changes(old, new))
        if old.partitioning is not None and new.partitioning != old.partitioning:
            changes.append(
                Change(node, "*", "partitioning", old.partitioning, new.partitioning or "")
            )
    for problems in graph.unresolved.values():
        for p in problems:
            if "does not exist" in p.reason:
                changes.append(Change(p.node, p.column, "broken_reference", "", "", p.reason))
    final = []
    for c in changes:
        readers = tuple(sorted({m for m, _ in graph.readers([ColumnRef(c.node, c.column)])}))
        final.append(
            Change(
                c.node,
                c.column,
                c.change,
                c.before,
                c.after,
                c.detail,
                approves(c.node, c.column, c.change),
                tuple(r for r in readers if r != c.node),
            )
        )
    return SchemaDiff(against, tuple(final), notes)


def _column_changes(old: Shape, new: Shape) -> list[Change]:
    out: list[Change] = []
    lower_new = {c.lower(): c for c in new.columns}
    lower_old = {c.lower(): c for c in old.columns}
    gone = [c for c in old.columns if c.lower() not in lower_new]
    added = [c for c in new.columns if c.lower() not in lower_old]
    old_positions = {c.lower(): i for i, c in enumerate(old.columns)}
    new_positions = {c.lower(): i for i, c in enumerate(new.columns)}
    renamed: dict[str, str] = {}
    for g in gone:
        for a in added:
            if a in renamed.values():
                continue
            same_type = _same_type(old.columns[g], new.columns[a])
            same_place = old_positions[g.lower()] == new_positions[a.lower()]
            if same_type and (same_place or (len(gone) == 1 and len(added) == 1)):
                renamed[g] = a
                break
    for g in gone:
        if g in renamed:
            out.append(Change(old.node, g, "rename", g, renamed[g], f"{g} is now {renamed[g]}"))
        else:
            out.append(Change(old.node, g, "drop", old.columns[g], "", "the column is gone"))
    for a in added:
        if a not in renamed.values():
            out.append(Change(new.node, a, "additive", "", new.columns[a], "a new column"))
    for low, name in lower_old.items():
        if low in lower_new:
            before, after = old.columns[name], new.columns[lower_new[low]]
            kind = classify_type_change(before, after)
            if kind:
                out.append(Change(old.node, name, kind, before, after, f"{before} → {after}"))
    return out


def _same_type(a: str, b: str) -> bool:
    return "?" in (a, b) or _norm(a) == _norm(b)


# ---------------------------------------------------------------------------- types

_INTEGERS = {"TINYINT": 1, "SMALLINT": 2, "INT": 3, "BIGINT": 4, "HUGEINT": 5}
_FLOATS = {"FLOAT": 1, "DOUBLE": 2}
_TEXT = ("VARCHAR", "TEXT", "CHAR", "NVARCHAR", "NCHAR", "STRING")


def classify_type_change(before: str, after: str) -> str | None:
    """``type_widening``, ``type_narrowing`` or ``None`` when the type did not change.

    Every value of a widened type still fits; anything else (a narrower type, or an
    unrelated one) is a narrowing.

    >>> classify_type_change("INTEGER", "BIGINT"), classify_type_change("DOUBLE", "INTEGER")
    ('type_widening', 'type_narrowing')
    >>> [classify_type_change(t, "DOUBLE") for t in ("DECIMAL(15,2)", "DECIMAL(16,2)", "BIGINT")]
    ['type_widening', 'type_narrowing', 'type_narrowing']
    >>> classify_type_change("varchar", "character varying") is None
    True
    """
    if "?" in (before, after):
        return None
    a, b = _parts(before), _parts(after)
    if a == b:
        return None
    return "type_widening" if _widens(a, b) else "type_narrowing"


def _norm(data_type: str) -> str:
    return repr(_parts(data_type))


def _parts(data_type: str) -> tuple[str, tuple[int, ...]]:
    from sqlglot import exp
    from sqlglot.errors import ParseError

    try:
        built = exp.DataType.build(data_type)
    except (ParseError, ValueError):
        return (data_type.upper().strip(), ())
    name = built.this.name if hasattr(built.this, "name") else str(built.this)
    name = {"INTEGER": "INT", "INT4": "INT", "INT8": "BIGINT", "INT2": "SMALLINT"}.get(name, name)
    name = {"NUMERIC": "DECIMAL", "REAL": "FLOAT", "DOUBLE PRECISION": "DOUBLE"}.get(name, name)
    if name in _TEXT:
        name = "VARCHAR"
    if name == "TIMESTAMPLTZ":
        name = "TIMESTAMPTZ"
    sizes = []
    for param in built.expressions:
        try:
            sizes.append(int(param.this.this if hasattr(param.this, "this") else param.name))
        except (TypeError, ValueError):
            continue
    return (name, tuple(sizes))


def _widens(a: tuple[str, tuple[int, ...]], b: tuple[str, tuple[int, ...]]) -> bool:
    (an, asz), (bn, bsz) = a, b
    if bn == "VARCHAR":
        # Anything can be kept as text; a bounded varchar must not get shorter.
        return an != "VARCHAR" or not bsz or (bool(asz) and bsz[0] >= asz[0])
    if an in _INTEGERS:
        if bn in _INTEGERS:
            return _INTEGERS[bn] >= _INTEGERS[an]
        if bn in _FLOATS:
            # Held exactly only within the significand: FLOAT's 24 bits, DOUBLE's 53 (a
            # BIGINT above 2^53 comes back changed).
            return _INTEGERS[an] <= (2 if bn == "FLOAT" else 3)
        if bn == "DECIMAL":
            digits = {1: 3, 2: 5, 3: 10, 4: 19, 5: 39}[_INTEGERS[an]]
            precision, scale = _precision(bsz)
            return precision - scale >= digits
    if an in _FLOATS and bn in _FLOATS:
        return _FLOATS[bn] >= _FLOATS[an]
    if an == "DECIMAL":
        if bn in _FLOATS:
            return _held_by_float(*_precision(asz), 24 if bn == "FLOAT" else 53)
        if bn == "DECIMAL":
            ap, as_ = _precision(asz)
            bp, bs = _precision(bsz)
            return bs >= as_ and bp - bs >= ap - as_
    if an == "DATE" and bn in ("TIMESTAMP", "TIMESTAMPTZ"):
        return True
    return an == "TIMESTAMP" and bn == "TIMESTAMPTZ"


def _held_by_float(precision: int, scale: int, significand: int) -> bool:
    """Whether every DECIMAL(precision, scale) value comes back from a binary float with
    ``significand`` bits: the float's spacing below 10^(precision - scale) is finer than
    the decimal's last digit. DECIMAL(16,2)'s 99999999999999.99 came back from DOUBLE as
    …98, and was called a widening.

    >>> _held_by_float(15, 2, 53), _held_by_float(16, 2, 53), _held_by_float(7, 2, 24)
    (True, False, True)
    """
    top_bit = (10 ** (precision - scale)).bit_length() - 1
    finer = significand - 1 - top_bit  # the spacing there is 2^-finer
    return finer > 0 and 10**scale < 2**finer


def _precision(sizes: tuple[int, ...]) -> tuple[int, int]:
    """``(precision, scale)`` of a DECIMAL; DuckDB's default ``DECIMAL(18,3)`` when unsaid."""
    if not sizes:
        return (18, 3)
    return (sizes[0], sizes[1] if len(sizes) > 1 else 0)
