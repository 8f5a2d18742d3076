"""``stackyard security check``: the Security Hardening runbook's checks as one command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stackyard.cli.common import JsonOpt, ProjectOpt, TargetOpt, _guard, _print_json, out
from stackyard.errors import counted

security_app = typer.Typer(
    name="security",
    help="Security checks: secrets at rest and in history, access, keys, network deadlines.",
    no_args_is_help=True,
)


@security_app.command("check")
def check(
    project: ProjectOpt = None,
    target: TargetOpt = None,
    rotation_days: Annotated[
        int, typer.Option("--rotation-days", min=1, help="Report keys older than this (days).")
    ] = 90,
    live_state: Annotated[
        Path | None,
        typer.Option(
            "--live-state",
            help="Read the target's access state from recorded SHOW output instead of "
            "connecting (Snowflake).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check file permissions, secrets in stackyard.yml and git history, roles with more
    than declared, PUBLIC access, password logins, key ages and network deadlines.
    Exit 1 when anything is found. Without -t the warehouse is not read."""
    from stackyard.context import check_security

    report = _guard(
        lambda: check_security(project, target, rotation_days=rotation_days, live_state=live_state)
    )
    if as_json:
        _print_json(report.to_dict())
        raise typer.Exit(0 if report.ok else 1)
    from rich.text import Text

    for finding in report.findings:
        out.print(
            Text.assemble(
                ("✘ ", "red"), (f"{finding.check} ", "bold"), f"{finding.where}: ", finding.message
            ),
            soft_wrap=True,
        )
        out.print(Text(f"  → {finding.hint}"), soft_wrap=True)
    for name, reason in report.skipped.items():
        out.print(Text(f"– {name} skipped: {reason}"), soft_wrap=True)
    checked = len(report.checks) - len(report.skipped)
    if report.ok:
        out.print(Text.assemble(("✔ ", "green"), f"{counted(checked, 'check')}, nothing found"))
    else:
        out.print(
            Text.assemble(
                ("✘ ", "red"),
                f"{counted(len(report.findings), 'finding')} in {counted(checked, 'check')}",
            )
        )
    raise typer.Exit(0 if report.ok else 1)


def register(app: typer.Typer) -> None:
    """Add the ``security`` command group to the ``stackyard`` app."""
    app.add_typer(security_app)
