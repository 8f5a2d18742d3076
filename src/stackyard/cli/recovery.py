"""Keeping the platform alive: ``backup``, ``restore``, ``restore-table``, ``doctor``,
``upgrade check|test`` and ``perf``.

Exit codes: 0 success (``doctor``: healthy), 1 a step failed (``doctor``: findings;
``upgrade check``: the installed stack differs from the pinned one), 2 usage or configuration,
nothing attempted.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from stackyard.cli.common import (
    JsonOpt,
    ProjectOpt,
    TargetOpt,
    _confirm_or_stop,
    _context,
    _guard,
    _print_json,
    out,
    suggested,
)
from stackyard.errors import counted

DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Explain the steps and change nothing.")]

upgrade_app = typer.Typer(
    name="upgrade",
    help="Upgrades: compare the pinned stack with what is installed; test on a clone.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def register(app: typer.Typer) -> None:
    """Add the recovery, troubleshooting, upgrade and performance commands."""
    app.command()(backup)
    app.command()(restore)
    app.command("restore-table")(restore_table)
    app.command()(doctor)
    app.command()(perf)
    app.add_typer(upgrade_app)


def _plan_out(plan: Any, as_json: bool) -> None:
    if as_json:
        _print_json(plan.to_dict())
        return
    for line in plan.explain():
        out.print(line, highlight=False, soft_wrap=True)


def backup(
    to: Annotated[
        Path | None,
        typer.Option("--to", help="Folder to write the backup into (default: backups.dir)."),
    ] = None,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="DuckDB: read the copy back now, every block, and record each table's content "
            "hash (done anyway when older backups are deleted).",
        ),
    ] = False,
    project: ProjectOpt = None,
    target: TargetOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Back up a target's data with its dlt state, run history and dbt manifest.

    Prints the backup folder's path. The manifest in it lists every table's row count and
    content hash, which `stackyard restore` checks.
    """
    context = _guard(lambda: _context(project))
    runbook = _guard(lambda: context.backups(target))
    plan = _guard(lambda: runbook.plan(to, verify=verify))
    if dry_run:
        _plan_out(plan, as_json)
        return
    result = _guard(lambda: runbook.run(plan))
    if as_json:
        _print_json(result.to_dict())
        return
    tables = result.manifest.tables
    out.print(str(result.path), highlight=False, soft_wrap=True)
    read = any(s.kind == "read_back" for s in plan.steps)
    unread = any(s.kind == "copy_file" for s in plan.steps) and not read
    out.print(
        f"[green]✔[/] backed up {counted(len(tables), 'table')} "
        f"({counted(sum(t.rows for t in tables), 'row')}) "
        f"of target '{plan.target}' in {result.manifest.seconds:.2f}s"
        + (", read back: every block checked" if read else "")
        + (
            " (not read back yet: a restore checks every block; --verify reads it now)"
            if unread
            else ""
        ),
        highlight=False,
        soft_wrap=True,
    )
    for folder in result.pruned:
        out.print(f"  deleted old backup {folder} (backups.keep)", highlight=False)


def restore(
    backup: Annotated[
        str, typer.Argument(help="A backup folder written by `stackyard backup`, or 'latest'.")
    ],
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="Restore into a new DuckDB file or Postgres database instead of the target.",
        ),
    ] = None,
    yes: Annotated[
        bool,
        typer.Option(
            "--yes", "-y", help="Replace the existing data without asking (it is kept aside)."
        ),
    ] = False,
    project: ProjectOpt = None,
    target: TargetOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Restore a backup into the project's target, verified before anything is replaced.

    What was there is moved aside, never deleted. dlt's state comes back with the data, so the
    next `stackyard run` continues from the backup.
    """
    context = _guard(lambda: _context(project))
    runbook = _guard(lambda: context.restores(target))
    plan = _guard(lambda: runbook.plan(runbook.resolve(backup), to))
    if dry_run:
        _plan_out(plan, as_json)
        return
    # The copy replaced is renamed, never deleted (undo: rename it back), so a script runs on;
    # a person at a terminal is asked first.
    question = f"replace {plan.replaces} (it is kept aside) with the backup?"
    if plan.replaces and not yes and sys.stdin.isatty():
        _confirm_or_stop(question)
    result = _guard(lambda: runbook.run(plan))
    if as_json:
        _print_json(result.to_dict())
        return
    out.print(
        f"[green]✔[/] restored {counted(len(result.tables), 'table')} "
        f"({counted(sum(t.rows for t in result.tables), 'row')}, verified) into "
        f"{result.destination} in {result.seconds:.2f}s",
        highlight=False,
        soft_wrap=True,
    )
    for moved in result.moved_aside:
        out.print(f"  kept the previous copy: {moved}", highlight=False, soft_wrap=True)
    for note in result.notes:
        warn = note.startswith("grants")
        mark = "[yellow]![/]" if warn else " "
        out.print(f"  {mark} {escape(note)}", highlight=False, soft_wrap=True)
    if result.state_restored:
        out.print(f"  state restored: {', '.join(result.state_restored)}", highlight=False)
    _notes(plan)


def _notes(plan: Any) -> None:
    for note in plan.notes:
        out.print(f"  note: {note}", highlight=False, soft_wrap=True)


def restore_table(
    table: Annotated[str, typer.Argument(help="The table, as schema.table.")],
    as_of: Annotated[
        datetime | None,
        typer.Option("--as-of", help="The time to bring the table back to (ISO 8601, UTC)."),
    ] = None,
    from_backup: Annotated[
        str | None,
        typer.Option("--from", help="A backup folder (or 'latest') to take the table from."),
    ] = None,
    project: ProjectOpt = None,
    target: TargetOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Bring one table back beside the original, as <table>__restored, to compare and swap.

    Snowflake and BigQuery read their time travel (--as-of); DuckDB and Postgres keep no
    history, so the table comes from a backup: --from, or with --as-of the newest backup taken
    at or before that time.
    """
    context = _guard(lambda: _context(project))
    runbook = _guard(lambda: context.table_restores(target))
    plan = _guard(lambda: runbook.plan(table, as_of=as_of, backup=from_backup))
    if dry_run or plan.engine in ("snowflake", "bigquery"):
        _plan_out(plan, as_json)
        return
    result = _guard(lambda: runbook.run(plan))
    if as_json:
        _print_json(result.to_dict())
        return
    out.print(
        f"[green]✔[/] {table} restored beside the original as {result.destination} "
        f"({counted(sum(t.rows for t in result.tables), 'row')}, count and hash verified)",
        highlight=False,
        soft_wrap=True,
    )
    _notes(result)  # the swap made for the copy's columns


def doctor(
    fix: Annotated[
        bool,
        typer.Option(
            "--fix",
            help="Apply the safe repairs (move an unreadable DuckDB WAL aside, release "
            "stale leases); others are only described.",
        ),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="With --fix: say what it would repair, change nothing."),
    ] = False,
    project: ProjectOpt = None,
    target: TargetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check the project and its target; each finding says what, why, and the fix.

    Exits 0 when healthy, 1 with findings.
    """
    context = _guard(lambda: _context(project))
    report = _guard(lambda: context.doctor(target, fix=fix, dry_run=dry_run))
    if as_json:
        _print_json(report.to_dict())
        raise typer.Exit(report.exit_code)
    for check in report.passed:
        out.print(f"[green]✔[/] {check}", highlight=False, soft_wrap=True)
    for finding in report.findings:
        colour = "red" if finding.severity == "error" else "yellow"
        out.print(f"[{colour}]✘ {finding.what}[/]", highlight=False, soft_wrap=True)
        out.print(f"    why: {suggested(finding.why)}", highlight=False, soft_wrap=True)
        out.print(f"    fix: {suggested(finding.fix)}", highlight=False, soft_wrap=True)
    for repair in report.repaired:
        out.print(f"[green]repaired:[/] {repair}", highlight=False, soft_wrap=True)
    for repair in report.would_repair:
        out.print(f"[yellow]--fix would:[/] {repair}", highlight=False, soft_wrap=True)
    out.print(report.summary, highlight=False)
    raise typer.Exit(report.exit_code)


@upgrade_app.command("check")
def upgrade_check(
    constraints: Annotated[
        Path | None,
        typer.Option(
            "--constraints",
            help="A pip constraints file to compare with (default: stackyard's pinned stack).",
        ),
    ] = None,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Compare the installed stack with the pinned one and list the breaking changes that
    matter for this project. Exits 1 when they differ."""
    context = _guard(lambda: _context(project))
    report = _guard(lambda: context.upgrade_check(constraints))
    if as_json:
        _print_json(report.to_dict())
        raise typer.Exit(report.exit_code)
    for row in report.packages:
        mark = "[green]✔[/]" if row.status == "ok" else "[yellow]≠[/]"
        out.print(
            f"{mark} {row.name}: installed {row.installed or 'missing'}, pinned {row.pinned}",
            highlight=False,
        )
    for note in report.breaking:
        out.print(
            f"[yellow]breaking:[/] {note.package} {note.version}: {note.what}",
            highlight=False,
            soft_wrap=True,
        )
        out.print(f"    do: {note.action}", highlight=False, soft_wrap=True)
    out.print(report.summary, highlight=False)
    raise typer.Exit(report.exit_code)


@upgrade_app.command("test")
def upgrade_test(
    project: ProjectOpt = None,
    target: TargetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the project against a clone of the target with the installed versions, leaving
    the target itself untouched. Exits with the run's code."""
    context = _guard(lambda: _context(project))
    result = _guard(lambda: context.upgrade_test(target))
    if as_json:
        _print_json(result.to_dict())
        raise typer.Exit(result.exit_code)
    out.print(result.summary, highlight=False, soft_wrap=True)
    raise typer.Exit(result.exit_code)


def perf(
    project: ProjectOpt = None,
    target: TargetOpt = None,
    runs: Annotated[int, typer.Option(min=1, help="How many recent runs to read.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Slowest models and sources with trends, models that read far more than they write,
    and partition/cluster keys suggested by downstream filters."""
    context = _guard(lambda: _context(project))
    report = _guard(lambda: context.perf(target, runs=runs))
    if as_json:
        _print_json(report.to_dict())
        return
    _render_perf(report)


def _render_perf(report: Any) -> None:
    from rich.table import Table

    out.print(f"from the last {counted(report.runs, 'run')}", highlight=False)
    for title, rows in (
        ("slowest models", report.models[:10]),
        ("sources (last load)", report.sources),
    ):
        table = Table(title=title, title_justify="left")
        for column in ("name", "last s", "mean s", "runs", "trend"):
            table.add_column(column)
        for t in rows:
            trend = f"{t.verdict} ({t.trend:.2f}x)" if t.trend is not None else t.verdict
            table.add_row(
                t.name, f"{t.last_seconds:.2f}", f"{t.mean_seconds:.2f}", str(t.runs), trend
            )
        out.print(table)
    for scan in report.scans:
        out.print(
            f"[yellow]reads {scan.ratio:g}x what it writes:[/] {scan.model} ({scan.materialized}) "
            f"reads {counted(scan.rows_read, 'row')} from {', '.join(scan.reads)} to write "
            f"{scan.rows_written:,}: a candidate for materialized='incremental'",
            highlight=False,
            soft_wrap=True,
        )
    for key in report.keys:
        parts = []
        if key.partition_by:
            parts.append(f"partition by {key.partition_by}")
        if key.cluster_by:
            parts.append(f"cluster by {', '.join(key.cluster_by)}")
        out.print(
            f"keys for {key.table}: {'; '.join(parts)} ({key.filters} filters/joins in "
            f"{', '.join(key.used_by)})",
            highlight=False,
            soft_wrap=True,
        )
