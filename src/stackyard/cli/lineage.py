"""Lineage commands: ``lineage``, ``impact``.

Exit codes: 0 when the answer was computed (unresolved columns are listed, not an error),
2 for an unknown node or column or a project that does not compile.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from stackyard.cli.common import (
    JsonOpt,
    ProjectOpt,
    TargetOpt,
    _print_json,
    _with_context,
    out,
)
from stackyard.errors import counted

Spec = Annotated[
    str, typer.Argument(help="NODE or NODE.COLUMN: a model, SOURCE.TABLE or schema.table.")
]


def register(app: typer.Typer) -> None:
    """Add the lineage commands to the ``stackyard`` app."""
    app.command("lineage")(lineage_command)
    app.command("impact")(impact_command)
    app.add_typer(schema_app)


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
    result = _with_context(project, lambda c: c.lineage(target).lineage(spec, direction))
    if as_json:
        _print_json(result.to_dict())
        return
    subject = f"{result.node}.{result.column}" if result.column else result.node
    for label, refs in (("upstream", result.upstream), ("downstream", result.downstream)):
        if refs is None:
            continue
        out.print(
            f"[bold]{label} of {subject}[/] ({counted(len(refs), 'column')})", highlight=False
        )
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
    result = _with_context(project, lambda c: c.lineage(target).impact(spec))
    if as_json:
        _print_json(result.to_dict())
        return
    subject = f"{result.node}.{result.column}" if result.column else result.node
    out.print(
        f"[bold]{subject}[/] reaches {counted(len(result.downstream), 'column')} in "
        f"{counted(len(result.models), 'model')} · severity {result.severity} ({result.why})",
        highlight=False,
    )
    _print_refs(result.downstream)
    if result.only_read:
        # A model that joins, filters or groups on it breaks on a rename as well; one whose
        # columns come from it is listed above already.
        out.print(f"[bold]read in joins or filters[/] ({len(result.only_read)})", highlight=False)
        for model, ref in result.only_read:
            out.print(f"  {model}: reads {ref.node}.{ref.column}", highlight=False)
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


schema_app = typer.Typer(
    name="schema",
    help="Schema changes: what the project now does to every model's and source's columns.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@schema_app.command("diff")
def schema_diff(
    against: Annotated[
        str | None,
        typer.Option(
            "--against",
            help="A target (compare with what it has built) or a git ref (compare with the "
            "project there). Default: what --target has built.",
        ),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 on a breaking change nobody approved.")
    ] = False,
    project: ProjectOpt = None,
    target: TargetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Classify each change to models and sources: additive, rename, type widening or
    narrowing, drop, partitioning, broken reference."""
    result = _with_context(project, lambda c: c.schema_diff(target, against))
    if as_json:
        _print_json(result.to_dict())
    else:
        _render_diff(result)
    raise typer.Exit(result.exit_code if check else 0)


@schema_app.command("approve")
def schema_approve(
    spec: Annotated[str, typer.Argument(help="NODE.COLUMN (the old name), or NODE for all.")],
    change: Annotated[
        str,
        typer.Option(
            "--change",
            help="rename, drop, type_narrowing, partitioning or broken_reference.",
        ),
    ],
    reason: Annotated[str, typer.Option("--reason", help="Why it is fine; who was told.")],
    project: ProjectOpt = None,
    target: TargetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Approve a breaking change in stackyard.yml so `schema diff --check` passes (the node
    and column are checked against the project and the warehouse first)."""
    entry = _with_context(project, lambda c: c.schema_approve(spec, change, reason, target))
    already = entry.pop("already", None)
    if as_json:
        _print_json(entry)
        return
    if already:
        out.print(
            f"[green]✔[/] {change} of {entry['node']}.{entry['column']} is already approved in "
            "stackyard.yml (schema_changes.approved); nothing written",
            highlight=False,
        )
        return
    out.print(
        f"[green]✔[/] approved {change} of {entry['node']}.{entry['column']} in stackyard.yml "
        "(schema_changes.approved)",
        highlight=False,
    )


def _render_diff(result: Any) -> None:
    from rich.table import Table

    if not result.changes:
        out.print(f"no schema changes against {result.against}", highlight=False)
    else:
        grid = Table(show_edge=False, pad_edge=False)
        for name in ("node", "column", "change", "before", "after", "readers", ""):
            grid.add_column(name, overflow="fold")
        for c in result.changes:
            flag = "approved" if c.approved else ("[bold red]breaking[/]" if c.breaking else "")
            grid.add_row(c.node, c.column, c.change, c.before, c.after, ", ".join(c.readers), flag)
        out.print(grid)
    for note in result.notes:
        out.print(f"note: {note}", highlight=False)
    if result.unapproved:
        out.print(
            f"[bold red]{len(result.unapproved)} breaking change(s) not approved[/] against "
            f"{result.against}: use `stackyard evolve` to phase them in, or approve one with "
            "`stackyard schema approve NODE.COLUMN --change KIND --reason ...`",
            highlight=False,
        )
