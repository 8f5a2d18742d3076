"""``stackyard adopt dbt PATH``: take over an existing dbt project without editing it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from stackyard.cli.common import JsonOpt, ProjectOpt, _context, _guard, _print_json, out

if TYPE_CHECKING:
    from stackyard.runbooks.adopt_dlt import DltAdoptReport
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
        profiles_dir: Annotated[
            Path | None,
            typer.Option(
                "--profiles-dir",
                help="The folder of the team's profiles.yml (default: as dbt finds it); its "
                "outputs become targets.",
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

        report = _guard(
            lambda: adopt_and_report(
                path, project, inspect, in_place=in_place, profiles_dir=profiles_dir
            )
        )
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
        team = adopted.profile_targets
        if team.targets:
            out.print(
                f"  targets from {team.found_in}: {', '.join(team.targets)} (the default stays "
                f"{adopted.sandbox}, a new DuckDB file)",
                highlight=False,
            )
        for line in team.left_out_lines():
            out.print(f"  not adopted: {line}", highlight=False, markup=False, soft_wrap=True)
        if adopted.secrets_written:
            out.print(
                f"  secrets written out in {team.found_in} went to .stackyard/secrets.toml: "
                f"{', '.join(adopted.secrets_written)}",
                highlight=False,
                soft_wrap=True,
            )
        if adopted.secrets_kept:
            out.print(
                "  [yellow]![/] already in .stackyard/secrets.toml, kept as they are there (the "
                f"profile's values were not written): {', '.join(adopted.secrets_kept)}",
                highlight=False,
                soft_wrap=True,
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
        if report.dbt_wrote:
            # Not stackyard's files, but new in the user's repository all the same.
            wrote = ", ".join(
                f"{n}/" if (adopted.dbt_dir / n).is_dir() else n for n in report.dbt_wrote
            )
            out.print(
                f"  dbt wrote there, as `dbt parse` does: {wrote} (git-ignore them, or commit "
                "package-lock.yml to pin the packages)"
                if "package-lock.yml" in report.dbt_wrote
                else f"  dbt wrote there, as `dbt parse` does: {wrote} (git-ignore them)",
                highlight=False,
                markup=False,
            )
        if problem is not None:
            out.print(f"[red]✘[/] {escape(str(problem))}", highlight=False)
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

    @adopt_app.command("dlt")
    def adopt_dlt(
        module: Annotated[
            str,
            typer.Argument(
                metavar="MODULE[:FUNCTION]",
                help="A .py file (or a dotted module under the project) with @dlt.source "
                "functions; :FUNCTION adopts one of them.",
            ),
        ],
        name: Annotated[
            str | None, typer.Option("--name", help="The source's name in stackyard.yml.")
        ] = None,
        project: ProjectOpt = None,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Report what would be registered; write nothing.")
        ] = False,
        as_json: JsonOpt = False,
    ) -> None:
        """Register existing @dlt.source functions as python sources, unchanged: each runs as
        the source object, with its own settings, .dlt/ secrets and config, and the pipeline
        (name, dataset, state) the team already loaded it with."""

        def adopt() -> DltAdoptReport:
            with _context(project) as context:
                return context.adopt_dlt(module, name=name, dry_run=dry_run)

        report = _guard(adopt)
        if as_json:
            _print_json(report.to_dict())
            raise typer.Exit(report.exit_code)
        _render_dlt(report)
        raise typer.Exit(report.exit_code)


def _render_dlt(report: DltAdoptReport) -> None:
    verb = "would register" if not report.written else "registered"
    for source in report.sources:
        out.print(
            f"{verb} source [bold]{source.name}[/] ← {report.path}:{source.function} "
            f"(dlt source '{source.dlt_name}', config section '{source.section}')",
            highlight=False,
        )
        selected = set(source.selected)
        names = [
            (r if r in selected else f"{r} (not selected)")
            + (f" [incremental on {source.incremental[r]}]" if r in source.incremental else "")
            for r in source.resources
        ]
        out.print(f"  resources: {', '.join(names) or '-'}", highlight=False, markup=False)
        for key, value in source.settings.items():
            out.print(f"  {key}: {value}", highlight=False, markup=False)
        for argument in source.arguments:
            if argument.kind == "optional":
                continue
            state = "set" if argument.set else "NOT SET"
            out.print(f"  {argument.kind} {argument.name}: {state}", highlight=False)
        if source.pipeline is not None:
            out.print(
                f"  pipeline '{source.pipeline.name}', dataset '{source.pipeline.dataset}' "
                f"(found in {source.pipeline.found_in}): its state and cursors carry on",
                highlight=False,
                markup=False,
            )
        else:
            out.print("  no earlier pipeline found: the first run loads in full", highlight=False)
        if source.problem:
            out.print(f"  [yellow]![/] {escape(source.problem)}", highlight=False)
    for folder in report.dlt_folders:
        out.print(f"  dlt settings read from {folder}", highlight=False)
    out.print(
        f"  {report.path}: unchanged" if report.unchanged else f"  [red]{report.path} changed[/]",
        highlight=False,
    )
    if report.written:
        out.print(f"next: stackyard run --select {report.sources[0].name}", highlight=False)
