"""``stackyard reload SOURCE[.TABLE]``: load a source or one table again from scratch."""

from __future__ import annotations

from typing import Annotated

import typer

from stackyard.cli.common import (
    JsonOpt,
    ProjectOpt,
    TargetOpt,
    _confirm_or_stop,
    _context,
    _guard,
    _print_json,
    out,
)


def register(app: typer.Typer) -> None:
    """Add the ``reload`` command to the CLI."""

    @app.command()
    def reload(
        spec: Annotated[
            str, typer.Argument(metavar="SOURCE[.TABLE]", help="The source, or one of its tables.")
        ],
        yes: Annotated[bool, typer.Option("--yes", help="Do not ask (for scripts).")] = False,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Explain the steps; change nothing.")
        ] = False,
        project: ProjectOpt = None,
        target: TargetOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Drop a source's tables (or one), reset its dlt state, load it in full, rebuild
        what depends on it. The way back from a lost warehouse or a dropped table."""
        from stackyard.cli.render import RichConsole, run_summary, run_verdict

        context = _guard(lambda: _context(project))
        plan = _guard(lambda: context.reload_plan(spec, target))
        if dry_run:
            if as_json:
                _print_json(plan.to_dict())
                return
            out.print(f"stackyard reload {spec} on target '{plan.target}' would:", highlight=False)
            for line in plan.explain():
                out.print(f"  {line}", highlight=False)
            return
        if not yes and as_json:
            from stackyard.errors import UsageError

            _guard(lambda: _raise(UsageError("--json needs --yes: reload drops tables")))
        if not yes:
            for line in plan.explain():
                out.print(f"  {line}", highlight=False)
            _confirm_or_stop(f"Reload {spec} on target '{plan.target}'?")
        if as_json:
            result = _guard(lambda: context.reload(plan))
            _print_json(result.to_dict())
            raise typer.Exit(result.exit_code)
        console = RichConsole(out, redact=context.secrets.redact)
        context.console = console
        with console:
            result = _guard(lambda: context.reload(plan))
        out.print()
        out.print(run_summary(result))
        out.print(run_verdict(result), soft_wrap=True)
        raise typer.Exit(result.exit_code)


def _raise(error: Exception) -> None:
    raise error
