"""What ``evolve`` checks after a phase's builds: the lineage, and the warehouse itself.

dbt builds an incremental model by merging new rows into the table it has, and by default
(``on_schema_change: ignore``) leaves that table's columns as they are: the model's SQL
outputs the new column, dbt reports success, and the warehouse never gets it. Checked only
against the lineage, expand then read "applied" on such a model while readers of the new
name would fail, so the relation's columns are read from the warehouse too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stackyard.errors import Interrupted
from stackyard.lineage.graph import ColumnGraph, ColumnRef
from stackyard.runbooks.evolve_steps import EvolveResult


def verify(
    plan: EvolveResult, phase: str, graph: ColumnGraph, query: Callable[[str], list[Any]]
) -> str:
    """What is wrong after ``phase`` was built, or ``""``."""
    if plan.action != "rename":
        return ""
    columns = {c.lower() for c in graph.nodes[plan.node].columns}
    wanted = {plan.column.lower(), plan.to.lower()}
    if phase == "expand":
        if not wanted <= columns:
            return f"{plan.node} does not output both {plan.column} and {plan.to}"
        return _in_warehouse(plan, phase, graph, query)
    readers = [m for m, _ in graph.readers([ColumnRef(plan.node, plan.column)])]
    readers = [m for m in readers if m != plan.node]
    if readers:
        return f"{', '.join(sorted(set(readers)))} still read {plan.node}.{plan.column}"
    broken = [
        f"{u.node}.{u.column}"
        for problems in graph.unresolved.values()
        for u in problems
        if "does not exist" in u.reason
    ]
    if broken:
        return f"broken references: {', '.join(broken)}"
    return _in_warehouse(plan, phase, graph, query) if phase == "contract" else ""


def _in_warehouse(
    plan: EvolveResult, phase: str, graph: ColumnGraph, query: Callable[[str], list[Any]]
) -> str:
    """Whether the model's table has the columns ``phase`` gives it (after expand, the new
    name; after contract, not the old one)."""
    node = graph.nodes[plan.node]
    if node.relation is None:
        return ""
    _database, schema, name = node.relation
    rows = query(
        "select lower(column_name) from information_schema.columns "
        f"where lower(table_schema) = {_literal(schema.lower())} "
        f"and lower(table_name) = {_literal(name.lower())}"
    )
    found = {str(row[0]) for row in rows}
    if not found:
        return ""
    if phase == "expand" and plan.to.lower() not in found:
        what = f"has no column {plan.to}"
    elif phase == "contract" and plan.column.lower() in found:
        what = f"still has the column {plan.column}"
    else:
        return ""
    kind = f"an {node.materialized} model" if node.materialized else "a model"
    return f"{plan.node}'s table {what} after its build: it is {kind}, {_whole(plan, phase)}"


def build_failed(plan: EvolveResult, phase: str, graph: ColumnGraph, failures: list[str]) -> str:
    """Why a phase's build failed, with what to do when the model is incremental (its
    table keeps the columns it has, so dbt's merge then fails on the old name)."""
    problem = f"dbt build failed on {', '.join(failures)}"
    node = graph.nodes.get(plan.node)
    incremental = node is not None and node.materialized == "incremental"
    if not incremental or not any(f.split(" (")[0] == plan.node for f in failures):
        return problem
    return f"{problem}; {plan.node} is an incremental model, {_whole(plan, phase)}"


def _whole(plan: EvolveResult, phase: str) -> str:
    return (
        "and dbt leaves the columns of the table an incremental model has as they are. Apply "
        f"the phase again with `stackyard evolve {plan.action} {plan.node}.{plan.column} "
        f"{plan.to} --phase {phase} --full-refresh` to rebuild it whole from what it reads "
        "(rows its sources no longer hold are lost)"
    )


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def cut_short(plan: EvolveResult, phase: str, exc: BaseException) -> BaseException:
    """What a phase stopped by Ctrl-C says: its files were put back, but its build may have
    rebuilt models from the files it wrote already. "Nothing further was done" read as if the
    warehouse was untouched while a contracted view had lost the old column."""
    if not isinstance(exc, KeyboardInterrupt) or isinstance(exc, Interrupted):
        return exc
    return Interrupted(
        f"{phase} was cut short and its files were put back; models its build had reached "
        "may already be built from the files it wrote",
        hint=f"`stackyard run --select {plan.node}+` rebuilds them from the files as they "
        f"are now, or apply {phase} again",
    )
