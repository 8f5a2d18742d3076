"""The typed pieces of the schema-evolution runbook: steps, phases, results, and the SQL
rewrites each phase writes (see :mod:`stackyard.runbooks.evolve`)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from stackyard.errors import UsageError, WarehouseError
from stackyard.lineage.graph import ColumnGraph

PHASES = ("expand", "migrate", "contract")
_BEGIN = "-- >>> original model (kept as written; stackyard evolve wraps it)"
_END = "-- <<< original model"


@dataclass(frozen=True)
class Step:
    """One step of a phase.

    Attributes:
        kind: ``check_casts``, ``write_model``, ``build``, ``verify``, ``approve``, or
            (undoing a phase) ``restore_file``.
        description: what it does, in words.
        path: the model file a ``write_model`` step writes (relative to the dbt project), or
            the file a ``restore_file`` step puts back (relative to the project).
        text: the file's new text.
        select: the dbt selection a ``build`` step builds and tests.
    """

    kind: str
    description: str
    path: str = ""
    text: str = ""
    select: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (file texts left out)."""
        return {
            "kind": self.kind,
            "description": self.description,
            "path": self.path,
            "select": list(self.select),
        }


@dataclass(frozen=True)
class Phase:
    """One phase: its steps and how it is undone."""

    name: str
    steps: tuple[Step, ...]
    rollback: str
    status: str = "pending"  # pending | applied | blocked
    why: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "phase": self.name,
            "status": self.status,
            "why": self.why,
            "steps": [s.to_dict() for s in self.steps],
            "rollback": self.rollback,
        }


@dataclass(frozen=True)
class EvolveResult:
    """What ``evolve`` planned, and what it did."""

    action: str
    node: str
    column: str
    to: str
    phases: tuple[Phase, ...]
    applied: tuple[str, ...] = ()
    rolled_back: tuple[str, ...] = ()
    messages: tuple[str, ...] = ()
    failed: bool = False
    dry_run: bool = False
    cast_failures: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """1 when a phase failed (and was rolled back) or was refused, else 0."""
        return 1 if self.failed else 0

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``stackyard evolve … --json``."""
        return {
            "action": self.action,
            "node": self.node,
            "column": self.column,
            "to": self.to,
            "dry_run": self.dry_run,
            "phases": [p.to_dict() for p in self.phases],
            "applied": list(self.applied),
            "rolled_back": list(self.rolled_back),
            "failed": self.failed,
            "messages": list(self.messages),
            "cast_failures": self.cast_failures,
        }


def check_phases(phases: Sequence[str], rollback: str | None = None) -> None:
    """Refuse a name that is no phase.

    Raises:
        UsageError: an unknown phase (nothing is run).
    """
    for name in (*phases, *([rollback] if rollback else [])):
        if name not in PHASES:
            raise UsageError(f"unknown phase '{name}'", hint="phases: expand, migrate, contract")


def model_column(graph: ColumnGraph, spec: str) -> tuple[str, str]:
    node, column = graph.resolve(spec)
    if column is None:
        raise UsageError(f"'{spec}' names no column", hint="give MODEL.COLUMN, e.g. orders.amount")
    info = graph.nodes[node]
    if info.kind != "model" or not info.path:
        raise UsageError(
            f"{node} is a {info.kind}, not a model: evolve changes models' SQL",
            hint="rename a source column where it comes from; its staging model is then the "
            "place to keep the old name",
        )
    return node, column


def check_name(name: str, exact_case: bool = False) -> None:
    """Refuse a new name that is not a plain identifier, or one with capitals where the
    warehouse tells cases apart: expand writes the name quoted and a reader's SQL unquoted,
    and Postgres folds an unquoted name to lower case, so migrate failed on "column
    email_address does not exist" after expand had made "Email_Address"."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise UsageError(f"'{name}' is not a plain column name", hint="use letters, digits and _")
    if exact_case and name != name.lower():
        raise UsageError(
            f"'{name}' has capitals, and this warehouse reads a name without quotes in one case",
            hint=f"name it {name.lower()}; nothing was changed",
        )


def check_new_name(graph: ColumnGraph, node: str, old: str, new: str, *, in_progress: bool) -> None:
    """Refuse a new name that is the old one, or a column the model already has (its own,
    not the copy expand added), or one a model built on it has: two columns of one name
    would be built, and readers migrated to the wrong one."""
    columns = list(graph.nodes[node].columns)
    if new.lower() == old.lower():
        raise UsageError(
            f"{node}.{old} is already called {new}: nothing to rename",
            hint="give the new name as the second argument",
        )
    if not in_progress and any(c.lower() == new.lower() for c in columns):
        raise UsageError(
            f"{node} already has a column {new}: renaming {old} to it would give two "
            "columns one name",
            hint=f"pick a name none of its columns has ({', '.join(columns)})",
        )
    # A model that selects * from this one gets the new column beside its own of that name
    # once expand adds it: the engine renames one of them (full_name_1), the wrong values
    # take the name, and every build and test still passes.
    children = sorted(
        m for m, parents in graph.table_parents.items() if node in parents and m in graph.nodes
    )
    taken = [m for m in children if any(c.lower() == new.lower() for c in graph.nodes[m].columns)]
    if not in_progress and taken:
        raise UsageError(
            f"{', '.join(taken)} already has a column {new} and is built on {node}: a "
            f"`select *` would give it two columns {new} once {node} has one",
            hint=f"pick a name none of the models built on {node} has, or rename theirs first",
        )


def check_type(data_type: str) -> None:
    from sqlglot import exp
    from sqlglot.errors import ParseError

    try:
        exp.DataType.build(data_type)
    except (ParseError, ValueError):
        raise UsageError(f"'{data_type}' is not a SQL type", hint="e.g. BIGINT, DATE") from None


def wrap(original: str, projection: str, what: str) -> str:
    """The model's SQL as a subquery, with a new projection over it."""
    return (
        f"-- stackyard evolve: {what}. Generated; see docs/runbooks/schema-evolution.md.\n"
        f"SELECT {projection}\nFROM (\n{_BEGIN}\n{original.rstrip()}\n{_END}\n) AS evolved\n"
    )


def original_sql(text: str) -> str:
    """The model's own SQL, unwrapping an earlier phase's wrapper."""
    if _BEGIN in text and _END in text:
        return text.split(_BEGIN + "\n", 1)[1].rsplit("\n" + _END, 1)[0] + "\n"
    return text


def migrated(
    graph: ColumnGraph,
    model: str,
    node: str,
    old: str,
    new: str,
    q: Callable[..., str],
    dialect: str | None = None,
) -> str:
    """A reader's SQL reading ``node.new`` instead of ``node.old``, wrapped to keep its own
    output names; same-named columns of other relations are left alone.

    Raises:
        UsageError: the reader's SQL cannot be analysed (see
            :func:`stackyard.runbooks.evolve_readers.rewrite_reader`).
    """
    from stackyard.runbooks.evolve_readers import rewrite_reader

    info = graph.nodes[model]
    raw = str((graph.manifest.get("nodes") or {}).get(info.unique_id, {}).get("raw_code") or "")
    relations = {name: n.columns for name, n in graph.nodes.items()}
    done = rewrite_reader(original_sql(raw), node, old, new, relations, dialect, info.path, model)
    projection = ", ".join(
        f"{q(new)} AS {q(c)}" if c.lower() in done.renamed_outputs else q(c) for c in info.columns
    )
    return wrap(done.text, projection, f"reads {node}.{new} (was {old})")


def as_date(value: Any) -> date | None:
    return date.fromisoformat(value) if value else None


def cast_failures(
    query: Callable[[str], list[tuple[Any, ...]]], relation: str, column: str, data_type: str
) -> dict[str, Any]:
    """How many non-NULL values of ``column`` do not cast to ``data_type`` unchanged (the
    cast fails, or its value is not equal to the original: ``5.25`` to ``INTEGER`` is 5, a
    timestamp to ``DATE`` loses its time), and examples. Where the engine cannot compare the
    two types, only failed casts count.

    Raises:
        UsageError: the engine has no ``TRY_CAST`` to count them with (Postgres): nothing
            was changed.
    """
    cast = f"TRY_CAST({column} AS {data_type})"
    changed = f"{column} IS NOT NULL AND ({cast} IS NULL OR NOT ({cast} = {column}))"
    count = f"SELECT count(*), count({column}), count(*) FILTER (WHERE {{}}) FROM {relation}"
    try:
        try:
            rows = query(count.format(changed))
        except WarehouseError:
            # Types the engine cannot compare ('placed' and an integer): failed casts only.
            changed = f"{column} IS NOT NULL AND {cast} IS NULL"
            rows = query(count.format(changed))
    except WarehouseError as exc:
        if "TRY_CAST" not in str(exc) and "try_cast" not in str(exc):
            raise
        raise UsageError(
            "evolve retype checks the casts, and its expand phase writes them, with TRY_CAST, "
            "which this target's engine does not have; nothing was changed",
            hint="on this engine change the type in the model itself and run `stackyard run`; "
            "evolve retype works on DuckDB targets",
        ) from None
    total, non_null, failed = (int(v or 0) for v in rows[0])
    examples = query(
        f"SELECT DISTINCT CAST({column} AS VARCHAR) FROM {relation} WHERE {changed} LIMIT 5"
    )
    return {
        "rows": total,
        "non_null": non_null,
        "failed": failed,
        "rate": (failed / non_null) if non_null else 0.0,
        "examples": [str(r[0]) for r in examples],
    }


def narrows(
    query: Callable[[str], list[tuple[Any, ...]]],
    relation: tuple[str, ...],
    column: str,
    data_type: str,
) -> bool:
    """Whether ``data_type`` narrows the column's type in the warehouse now (a type not
    found counts as narrowing, to be approved)."""
    from stackyard.lineage.diff import classify_type_change

    schema, table, name = (x.replace("'", "''") for x in (relation[-2], relation[-1], column))
    found = query(
        "SELECT data_type FROM information_schema.columns WHERE "
        f"table_schema = '{schema}' AND table_name = '{table}' AND column_name = '{name}'"
    )
    if not found:
        return True
    return classify_type_change(str(found[0][0]), data_type) == "type_narrowing"
