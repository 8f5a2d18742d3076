"""``stackyard adopt dbt PATH``: take over an existing dbt project without editing it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from stackyard.cli.common import JsonOpt, _guard, _print_json, out

if TYPE_CHECKING:
    from stackyard.transform.inventory import Inventory


def register(app: typer.Typer) -> None:
    """Add the ``adopt`` commands to the CLI."""
    adopt_app = typer.Typer(
        help="Take over an existing stack without editing it (the adoption runbook).",
        no_args_is_help=True,
    )
    app.add_typer(adopt_app, name="adopt")

    @adopt_app.command("dbt")
    def adopt_dbt(
        path: Annotated[
            Path, typer.Argument(help="The dbt project (the folder of dbt_project.yml).")
        ],
        in_place: Annotated[
            bool,
            typer.Option(
                "--in-place", help="Put stackyard.yml in the dbt project's folder (the default)."
            ),
        ] = False,
        project: Annotated[
            Path | None,
            typer.Option(
                "--project", help="A new folder for the stackyard project, pointing at PATH."
            ),
        ] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Wire an existing dbt project into a stackyard project, unchanged: stackyard.yml
        points at it, stackyard's dbt profiles go to .stackyard/dbt, its packages are
        installed when missing, and what it holds is reported."""
        from stackyard.context import Context
        from stackyard.runbooks.adopt import adopt_and_report

        def inspect(folder: Path) -> Inventory:
            with Context(folder) as context:
                return context.transform_inventory()

        report = _guard(lambda: adopt_and_report(path, project, inspect, in_place=in_place))
        if as_json:
            _print_json(report.to_dict())
            raise typer.Exit(report.exit_code)
        adopted, found, problem = report.adopted, report.found, report.problem
        out.print(
            f"adopted dbt project [bold]{adopted.name}[/] ({adopted.dbt_dir})", highlight=False
        )
        out.print(f"  wrote {adopted.project_dir / 'stackyard.yml'}", highlight=False)
        if adopted.profile:
            out.print(
                f"  its profile '{adopted.profile}' is generated into .stackyard/dbt from "
                "stackyard.yml's targets; the project's own profiles are left as they are",
                highlight=False,
            )
        if adopted.vars:
            out.print(f"  vars it declares: {', '.join(adopted.vars)}", highlight=False)
        if found is not None:
            out.print(f"  found: {found.text()}", highlight=False)
            for package in found.packages:
                out.print(f"  package: {package}", highlight=False)
        out.print(
            "  its files: unchanged" if report.unchanged else "  [red]its files changed[/]",
            highlight=False,
        )
        if problem is not None:
            out.print(f"[red]✘[/] {problem}", highlight=False)
            if adopted.vars:
                out.print(
                    f"note: if the project needs its vars ({', '.join(adopted.vars)}) set to "
                    "parse, write them under transform.vars in stackyard.yml, or pass "
                    "`stackyard run --vars '{name: value}'`",
                    highlight=False,
                    markup=False,
                )
            out.print(
                "stackyard.yml is written; fix the cause and run `stackyard run` there",
                highlight=False,
            )
            raise typer.Exit(problem.exit_code)
        if not report.unchanged:
            raise typer.Exit(report.exit_code)
        out.print(f"next: cd {adopted.project_dir} && stackyard run", highlight=False)
