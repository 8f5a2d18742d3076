"""``stackyard deploy prefect``, ``stackyard serve --orchestrator …`` and ``stackyard ci github``:
the project's schedules on an orchestrator, and its checks in CI."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from stackyard.cli.common import JsonOpt, ProjectOpt, _context, _guard, _print_json, out
from stackyard.errors import counted

if TYPE_CHECKING:
    from collections.abc import Sequence

    from stackyard.generated import FileChange

Orchestrator = Literal["prefect", "dagster"]

ForceOpt = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Overwrite a file edited by hand (or not written by stackyard), keeping "
        "its old text as <file>.bak.",
    ),
]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Show what would change; write nothing.")
]


def register(app: typer.Typer) -> None:
    """Add ``deploy``, ``serve``, ``ci`` and ``dbt-manifest`` to the CLI."""
    deploy = typer.Typer(
        help="Write the project's schedules as an orchestrator's deployments.",
        no_args_is_help=True,
    )
    app.add_typer(deploy, name="deploy")

    @deploy.command("prefect")
    def deploy_prefect(
        project: ProjectOpt = None,
        as_json: JsonOpt = False,
        force: ForceOpt = False,
        dry_run: DryRunOpt = False,
    ) -> None:
        """Write prefect.yaml (one deployment per source with its cron, plus the
        transformation's) and prefect_flows.py into the project; a file edited by hand
        since is left alone (exit 2) unless --force."""
        context = _guard(lambda: _context(project))
        result = _guard(lambda: context.deploy_prefect(force=force, dry_run=dry_run))
        if as_json:
            _print_json(result.to_dict())
            _dry_run_exit(result.changes, force, as_json)
            return
        if result.dry_run:
            _print_dry_run(result.changes, force, "deploy")
            _dry_run_exit(result.changes, force, as_json)
            return
        for d in result.deployments:
            when = f"{d.cron} ({d.timezone}, catch_up {d.catch_up})" if d.cron else "after loads"
            out.print(
                f"  {d.name}: {when}; {counted(d.retries, 'retry', 'retries')}, "
                f"deadline {d.deadline_seconds:g}s",
                highlight=False,
            )
        _print_backups(result.changes)
        out.print(
            f"wrote {', '.join(result.files)} "
            f"({counted(len(result.deployments), 'deployment')} on work "
            f"pool '{result.work_pool}'); next: prefect deploy --all",
            highlight=False,
        )

    ci = typer.Typer(help="Write a CI workflow for the project.", no_args_is_help=True)
    app.add_typer(ci, name="ci")

    @ci.command("github")
    def ci_github(
        project: ProjectOpt = None,
        as_json: JsonOpt = False,
        force: ForceOpt = False,
        dry_run: DryRunOpt = False,
    ) -> None:
        """Write .github/workflows/stackyard.yml: on a pull request policy check, plan
        --detailed-exitcode and a run on a fresh DuckDB copy; on main apply and run. A
        workflow edited by hand since is left alone (exit 2) unless --force."""
        context = _guard(lambda: _context(project))
        result = _guard(lambda: context.ci_github(force=force, dry_run=dry_run))
        if as_json:
            _print_json(result.to_dict())
            _dry_run_exit(result.changes, force, as_json)
            return
        if result.dry_run:
            _print_dry_run(result.changes, force, "ci github")
            _dry_run_exit(result.changes, force, as_json)
            return
        _print_backups(result.changes)
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


_DRY_RUN_STATES = {
    "new": "would be written",
    "unchanged": "unchanged",
    "regenerated": "would be rewritten (nobody edited it since stackyard wrote it)",
    "edited": "edited by hand since stackyard wrote it",
    "not written by stackyard": "has no stackyard checksum (hand-made, or an older stackyard's)",
}


def _print_dry_run(changes: Sequence[FileChange], force: bool, command: str) -> None:
    """Each file's state and diff; a file ``command`` would refuse says so, and what --force
    does."""
    for change in changes:
        line = f"{change.file}: {_DRY_RUN_STATES[change.state]}"
        if change.backup:
            line += f"; --force keeps it as {change.backup}, then rewrites it"
        elif change.state in ("edited", "not written by stackyard") and not force:
            line += f"; {command} refuses to overwrite it without --force"
        out.print(line, highlight=False, soft_wrap=True)
        if change.diff:
            # Whole lines, whatever the terminal's width: a diff is read back, or applied.
            out.print(change.diff, end="", markup=False, highlight=False, soft_wrap=True)
    out.print("dry run: nothing written", highlight=False)


def _dry_run_exit(changes: Sequence[FileChange], force: bool, as_json: bool) -> None:
    """Exit 2, as the command itself would, when it would refuse a file (a dry run that
    exited 0 there told a script the real command would go through)."""
    from stackyard.generated import REFUSED

    if force or not any(c.state in REFUSED for c in changes):
        return
    if not as_json:
        out.print(
            "without --force the command would refuse and write nothing (exit 2)", highlight=False
        )
    raise typer.Exit(2)


def _print_backups(changes: Sequence[FileChange]) -> None:
    for change in changes:
        if change.backup:
            out.print(f"  kept the old {change.file} as {change.backup}", highlight=False)


def _usage(error: Exception) -> None:
    raise error
