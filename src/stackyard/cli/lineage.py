"""Lineage commands: ``lineage``, ``impact``.

Exit codes: 0 when the answer was computed (unresolved columns are listed, not an error),
2 for an unknown node or column or a project that does not compile.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from stackyard.cli.common import JsonOpt, ProjectOpt, TargetOpt, _context, _guard, _print_json, out

Spec = Annotated[
    str, typer.Argument(help="NODE or NODE.COLUMN: a model, SOURCE.TABLE or schema.table.")
]


def register(app: typer.Typer) -> None:
    """Add the lineage commands to the ``stackyard`` app."""
    app.command("lineage")(lineage_command)
    app.command("impact")(impact_command)


def lineage_command(
    spec: Spec,
    upstream: Annotated[
        bool, typer.Option("--upstream", help="Only what it is computed from.")
    ] = False,
    downstream: Annotated[
        bool, typer.Option("--downstream", help="Only what is computed from it.")
    ] = False,
    project: ProjectOpt = None,
    target: TargetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Column lineage of a model, a source table or one column, through every dbt model."""
    direction = "both" if upstream == downstream else ("upstream" if upstream else "downstream")
    result = _guard(lambda: _context(project).lineage(target).lineage(spec, direction))
    if as_json:
        _print_json(result.to_dict())
        return
    subject = f"{result.node}.{result.column}" if result.column else result.node
    for label, refs in (("upstream", result.upstream), ("downstream", result.downstream)):
        if refs is None:
            continue
        out.print(f"[bold]{label} of {subject}[/] ({len(refs)} columns)", highlight=False)
        _print_refs(refs)
    _print_unresolved(result.unresolved)


def impact_command(
    spec: Spec,
    project: ProjectOpt = None,
    target: TargetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Everything a change to a column reaches: models and columns, their tests, the models
    people read and their owners, and a suggested severity."""
    result = _guard(lambda: _context(project).lineage(target).impact(spec))
    if as_json:
        _print_json(result.to_dict())
        return
    subject = f"{result.node}.{result.column}" if result.column else result.node
    out.print(
        f"[bold]{subject}[/] reaches {len(result.downstream)} columns in "
        f"{len(result.models)} models · severity {result.severity} ({result.why})",
        highlight=False,
    )
    _print_refs(result.downstream)
    if result.tests:
        out.print(f"[bold]tests on them[/] ({len(result.tests)})", highlight=False)
        for t in result.tests:
            where = f"{t.node}.{t.column}" if t.column else t.node
            out.print(f"  {t.name}  on {where}", highlight=False)
    if result.exposed:
        out.print("[bold]read by people[/]", highlight=False)
        for e in result.exposed:
            owner = e.owner or "no owner (set meta.owner in the model's YAML)"
            extra = f" via {', '.join(e.exposures)}" if e.exposures else ""
            out.print(f"  {e.node} ({e.layer}){extra}: {owner}", highlight=False)
    _print_unresolved(result.unresolved)


def _print_refs(refs: Any) -> None:
    by_node: dict[str, list[str]] = {}
    for ref in refs:
        by_node.setdefault(ref.node, []).append(ref.column)
    for node, columns in by_node.items():
        out.print(f"  {node}: {', '.join(columns)}", highlight=False)


def _print_unresolved(items: Any) -> None:
    if not items:
        return
    out.print(f"[yellow]unresolved[/] ({len(items)}): these may hide more lineage", highlight=False)
    for u in items:
        out.print(f"  {u.node}.{u.column}: {u.reason}", highlight=False)
