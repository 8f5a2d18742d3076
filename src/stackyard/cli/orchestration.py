"""``stackyard deploy prefect``, ``stackyard serve --orchestrator …`` and ``stackyard ci github``:
the project's schedules on an orchestrator, and its checks in CI."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from stackyard.cli.common import JsonOpt, ProjectOpt, _context, _guard, _print_json, out

Orchestrator = Literal["prefect", "dagster"]


def register(app: typer.Typer) -> None:
    """Add ``deploy``, ``serve``, ``ci`` and ``dbt-manifest`` to the CLI."""
    deploy = typer.Typer(
        help="Write the project's schedules as an orchestrator's deployments.",
        no_args_is_help=True,
    )
    app.add_typer(deploy, name="deploy")

    @deploy.command("prefect")
    def deploy_prefect(project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
        """Write prefect.yaml (one deployment per source with its cron, plus the
        transformation's) and prefect_flows.py into the project."""
        context = _guard(lambda: _context(project))
        result = _guard(context.deploy_prefect)
        if as_json:
            _print_json(result.to_dict())
            return
        for d in result.deployments:
            when = f"{d.cron} ({d.timezone}, catch_up {d.catch_up})" if d.cron else "after loads"
            out.print(
                f"  {d.name}: {when}; {d.retries} retries, deadline {d.deadline_seconds:g}s",
                highlight=False,
            )
        out.print(
            f"wrote {', '.join(result.files)} ({len(result.deployments)} deployments on work "
            f"pool '{result.work_pool}'); next: prefect deploy --all",
            highlight=False,
        )

    ci = typer.Typer(help="Write a CI workflow for the project.", no_args_is_help=True)
    app.add_typer(ci, name="ci")

    @ci.command("github")
    def ci_github(project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
        """Write .github/workflows/stackyard.yml: on a pull request policy check, plan
        --detailed-exitcode and a run on a fresh DuckDB copy; on main apply and run."""
        context = _guard(lambda: _context(project))
        result = _guard(context.ci_github)
        if as_json:
            _print_json(result.to_dict())
            return
        out.print(
            f"wrote {result.path}: pull requests run {len(result.pull_request_steps) - 2} "
            f"checks; main applies and runs on '{result.production_target}'",
            highlight=False,
        )

    @app.command("dbt-manifest")
    def dbt_manifest(
        out_dir: Annotated[Path, typer.Option("--out", help="Folder to write manifest.json into.")],
        project: ProjectOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Parse the dbt project and write its manifest.json into a folder: the base that
        `stackyard run --state DIR --select state:modified+` compares with."""
        context = _guard(lambda: _context(project))
        path = _guard(lambda: context.dbt_manifest(out_dir))
        if as_json:
            _print_json({"path": str(path)})
            return
        out.print(f"wrote {path}", highlight=False)

    @app.command()
    def serve(
        orchestrator: Annotated[
            str, typer.Option("--orchestrator", help="prefect or dagster.")
        ] = "prefect",
        project: ProjectOpt = None,
        port: Annotated[
            int | None,
            typer.Option(
                "--port", min=1, max=65535, help="dagster: the webserver's port on 127.0.0.1."
            ),
        ] = None,
    ) -> None:
        """Run the project's schedules locally on an orchestrator until stopped (Ctrl-C)."""
        from stackyard.errors import UsageError

        context = _guard(lambda: _context(project))
        root = context.project_dir
        if orchestrator == "prefect" and port is not None:
            _guard(
                lambda: _usage(
                    UsageError("--port is for dagster; Prefect's API is in PREFECT_API_URL")
                )
            )
        if orchestrator == "prefect":
            from stackyard.integrations.prefect import serve as serve_prefect

            _guard(lambda: serve_prefect(root))
        elif orchestrator == "dagster":
            from stackyard.integrations.dagster import serve as serve_dagster

            raise typer.Exit(_guard(lambda: serve_dagster(root, port)))
        else:
            _guard(
                lambda: _usage(
                    UsageError(f"--orchestrator is prefect or dagster, not '{orchestrator}'")
                )
            )


def _usage(error: Exception) -> None:
    raise error
