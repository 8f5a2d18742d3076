"""Schema-evolution commands: ``evolve rename`` and ``evolve retype``.

Exit codes: 0 the phases asked for were applied (or had been: said so, not run again; or
explained with ``--dry-run``), 1 a phase failed and was rolled back, or a type change was
refused for too many cast failures, 2 usage (an unknown phase, a phase asked for before the
one it needs, a rollback that cannot be done now): nothing was run.
"""

from __future__ import annotations

from datetime import date
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

evolve_app = typer.Typer(
    name="evolve",
    help="Rename or retype a model's column in phases: expand, migrate, contract.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

PhaseOpt = Annotated[
    list[str] | None,
    typer.Option("--phase", help="expand, migrate or contract (repeatable; default: all due)."),
]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Explain each phase's steps; change nothing.")
]
FullRefreshOpt = Annotated[
    bool,
    typer.Option(
        "--full-refresh",
        help="Rebuild incremental models whole from what they read (dbt adds no column to "
        "the table an incremental model has).",
    ),
]
RollbackOpt = Annotated[
    str | None,
    typer.Option(
        "--rollback", help="Undo one applied phase and rebuild (with --dry-run: explain only)."
    ),
]


def register(app: typer.Typer) -> None:
    """Add the ``evolve`` group to the ``stackyard`` app."""
    app.add_typer(evolve_app)


@evolve_app.command("rename")
def rename(
    spec: Annotated[str, typer.Argument(help="MODEL.OLD_COLUMN")],
    new: Annotated[str, typer.Argument(help="The new column name.")],
    phase: PhaseOpt = None,
    dry_run: DryRunOpt = False,
    rollback: RollbackOpt = None,
    full_refresh: FullRefreshOpt = False,
    contract_after: Annotated[
        str | None,
        typer.Option(
            "--contract-after",
            help="Deprecation date (YYYY-MM-DD): contract refuses to run before it.",
        ),
    ] = None,
    project: ProjectOpt = None,
    target: TargetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Rename a model's column: expand (both names), migrate (readers switched, checked by
    lineage), contract (old name dropped, after the deprecation date)."""

    def act(context: Any) -> Any:
        day = _day(contract_after) if contract_after else None
        return context.evolve(target, full_refresh=full_refresh).change(
            "rename",
            spec,
            new,
            phases=phase or (),
            rollback=rollback,
            dry_run=dry_run,
            contract_after=day,
        )

    _show(_with_context(project, act), as_json)


@evolve_app.command("retype")
def retype(
    spec: Annotated[str, typer.Argument(help="MODEL.COLUMN")],
    data_type: Annotated[str, typer.Argument(help="The new SQL type, e.g. BIGINT.")],
    max_failure_rate: Annotated[
        float,
        typer.Option(
            "--max-failure-rate", help="Refuse when more values than this share do not cast."
        ),
    ] = 0.001,
    phase: PhaseOpt = None,
    dry_run: DryRunOpt = False,
    rollback: RollbackOpt = None,
    full_refresh: FullRefreshOpt = False,
    project: ProjectOpt = None,
    target: TargetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a model column's type: count the values that do not cast (refused above the
    threshold), expand with a typed column beside it, then contract it in place."""

    def act(context: Any) -> Any:
        return context.evolve(target, full_refresh=full_refresh).change(
            "retype",
            spec,
            data_type,
            phases=phase or (),
            rollback=rollback,
            dry_run=dry_run,
            max_failure_rate=max_failure_rate,
        )

    _show(_with_context(project, act), as_json)


def _show(result: Any, as_json: bool) -> None:
    if as_json:
        _print_json(result.to_dict())
        raise typer.Exit(result.exit_code)
    title = f"{result.action} {result.node}.{result.column} → {result.to}"
    out.print(f"[bold]{title}[/]" + (" (dry run)" if result.dry_run else ""), highlight=False)
    if result.cast_failures:
        f = result.cast_failures
        out.print(
            f"cast check: {f['failed']} of {f['non_null']} values do not cast "
            f"({f['rate']:.4%}); examples: {', '.join(f['examples']) or '-'}",
            highlight=False,
        )
    for p in result.phases:
        why = f" ({p.why})" if p.why else ""
        out.print(f"  [bold]{p.name}[/]: {p.status}{why}", highlight=False)
        for s in p.steps:
            out.print(f"    - {s.kind}: {s.description}", highlight=False, soft_wrap=True)
        if p.rollback:  # a phase not applied, or just rolled back, has none to show
            out.print(f"    rollback: {p.rollback}", highlight=False, soft_wrap=True)
    for message in result.messages:
        out.print(message, highlight=False, soft_wrap=True)
    raise typer.Exit(result.exit_code)


def _day(value: str) -> date:
    from stackyard.errors import UsageError

    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"'{value}' is not a date", hint="write it as YYYY-MM-DD") from None
