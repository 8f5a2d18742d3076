"""``stackyard backfill``: re-run a date range of a source table or a dbt model.

    stackyard backfill TARGET --start D --end D [--grain day] [--workers N] [--json] …
    stackyard backfill status [ID] [--json]
    stackyard backfill rollback ID [--dry-run] [--force]
    stackyard backfill prune [ID] [--json]

Exit codes: 0 every partition succeeded and validation passed, 1 otherwise, 2 usage or
configuration (nothing attempted).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from stackyard.cli.common import (
    STOPPED,
    JsonOpt,
    ProjectOpt,
    TargetOpt,
    _context,
    _guard,
    _print_json,
    _with_context,
    out,
)
from stackyard.errors import EXIT_USAGE, counted

BACKFILL_STOPPED: tuple[str, str | None] = (
    "the backfill was stopped; the partitions that finished are kept",
    "run the same command again: it resumes with the partitions not yet done",
)


def register(app: typer.Typer) -> None:
    """Add ``backfill`` to the ``stackyard`` app."""
    app.command(
        help="Re-run a date range of a source table (SOURCE.TABLE) or an incremental dbt "
        "model, partition by partition, resumably. Also: `backfill status [ID]`, "
        "`backfill rollback ID`, `backfill prune [ID]` (drop expired pre-images, or one "
        "backfill's)."
    )(backfill)


def backfill(
    target_name: Annotated[
        str,
        typer.Argument(
            metavar="TARGET",
            help="A dbt model (incremental/microbatch), SOURCE.TABLE, or `status` / `rollback` / "
            "`prune`.",
        ),
    ],
    backfill_id: Annotated[
        str | None,
        typer.Argument(metavar="[ID]", help="For status, rollback and prune: a backfill id."),
    ] = None,
    start: Annotated[str | None, typer.Option(help="First day, YYYY-MM-DD (included).")] = None,
    end: Annotated[
        str | None, typer.Option(help="Day after the last, YYYY-MM-DD (excluded).")
    ] = None,
    grain: Annotated[str, typer.Option(help="Partition size: hour, day or month.")] = "day",
    tz: Annotated[str, typer.Option("--tz", help="Time zone whose calendar cuts days.")] = "UTC",
    workers: Annotated[int, typer.Option(help="Partitions run at once.")] = 1,
    cascade: Annotated[
        bool, typer.Option(help="Then re-run models downstream, for the same windows.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show partitions, models, rows and time; run nothing.")
    ] = False,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Resume and re-run partitions that failed.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Start afresh: re-run partitions that succeeded. With rollback: put "
            "back the copies even over rows loaded since the backfill (a reload), or over "
            "a model built since (a run).",
        ),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Go ahead when over --budget-rows.")] = False,
    budget_rows: Annotated[
        int | None, typer.Option(help="Refuse (without --yes) when more rows would be written.")
    ] = None,
    tolerance: Annotated[
        float, typer.Option(help="Allowed relative difference of source vs target counts.")
    ] = 0.0,
    stale_after: Annotated[
        float, typer.Option(help="Seconds without a heartbeat before a lease is taken over.")
    ] = 30.0,
    run_size: Annotated[
        int | None,
        typer.Option(
            help="Most partitions one dbt invocation or dlt pipeline run covers "
            "(default: spread over the workers, at most 31)."
        ),
    ] = None,
    engine: Annotated[
        str,
        typer.Option(
            help="How a dbt model's partitions run: auto (plain SQL compiled once by dbt "
            "where the model allows it, else dbt), sql (fail if it cannot), or dbt (one dbt "
            "invocation per run of partitions)."
        ),
    ] = "auto",
    project: ProjectOpt = None,
    target: TargetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Backfill a date range; see the module docstring for the forms."""
    if target_name == "status":
        _status(project, target, backfill_id, as_json)
        return
    if target_name == "rollback":
        _rollback(project, target, backfill_id, as_json, dry_run, force)
        return
    if target_name == "prune":
        _prune(project, target, backfill_id, as_json)
        return
    if backfill_id is not None:
        _usage(
            f"unexpected argument '{backfill_id}'", "stackyard backfill TARGET --start … --end …"
        )
    if not start or not end:
        _usage("--start and --end are required", "e.g. --start 2024-01-01 --end 2024-02-01")
    if run_size is not None and run_size < 1:
        _usage("--run-size must be 1 or more", "e.g. --run-size 7 for a week per dbt run")
    if grain not in ("hour", "day", "month"):
        _usage(f"unknown grain '{grain}'", "use hour, day or month")
    if engine not in ("auto", "sql", "dbt"):
        _usage(f"unknown engine '{engine}'", "use auto, sql or dbt")
    from stackyard.runbooks.backfill.job import BackfillOptions

    options = BackfillOptions(
        target=target_name,
        start=start or "",
        end=end or "",
        grain=grain,  # type: ignore[arg-type]
        tz=tz,
        workers=workers,
        cascade=cascade,
        dry_run=dry_run,
        retry_failed=retry_failed,
        force=force,
        yes=yes,
        budget_rows=budget_rows,
        tolerance=tolerance,
        stale_after=stale_after,
        run_size=run_size,
        engine=engine,
    )
    if as_json:
        result = _with_context(project, lambda c: c.backfill(target).run(options))
        _print_json(result.to_dict())
        raise typer.Exit(result.exit_code)
    from stackyard.cli.render import RichConsole

    # Partitions that finished are in the ledger: "nothing further was done" was untrue.
    stopped = STOPPED if dry_run else BACKFILL_STOPPED
    if force and not dry_run:
        # --force starts a backfill over: run again with it, the stopped one would not resume.
        stopped = (BACKFILL_STOPPED[0], "run the same command again without --force: it resumes")
    with _guard(lambda: _context(project)) as context:
        console = RichConsole(out, redact=context.secrets.redact)
        context.console = console
        with console:
            result = _guard(lambda: context.backfill(target).run(options), stopped)
    out.print()
    _render_result(result)
    raise typer.Exit(result.exit_code)


def _usage(message: str, hint: str) -> None:
    from stackyard.cli.common import _error

    _error("error: ", message, hint, EXIT_USAGE)
    raise typer.Exit(EXIT_USAGE)


def _render_result(result: Any) -> None:
    from rich.markup import escape

    for r in (result, *result.cascaded):
        record = r.record
        if r.dry_run:
            out.print(
                f"dry run: backfill {record.target} ({record.target_kind}), "
                f"{counted(len(record.partitions), 'partition')} of "
                f"{'an' if record.grain == 'hour' else 'a'} {record.grain}",
                highlight=False,
            )
            est = r.estimate
            for p in record.partitions:
                note = "already done, skipped" if p.status == "skipped" else "would run"
                out.print(
                    f"  {p.window_start} → {p.window_end}  {note}  "
                    f"~{p.rows_source if p.rows_source is not None else '?'} rows",
                    highlight=False,
                )
            if est.get("models"):
                out.print(f"models: {', '.join(est['models'])}", highlight=False)
            projected = est.get("projected_seconds")
            how = _HOW.get(est.get("rows_method", ""), "")
            scanned = est.get("bytes_scanned")
            out.print(
                f"estimated rows: {est.get('rows', 0):,} ({how})"
                + (f"; bytes scanned: {scanned:,} (EXPLAIN)" if scanned is not None else "")
                + "; projected time: "
                + (f"{projected} s" if projected is not None else "unknown (no past partitions)"),
                highlight=False,
            )
            if est.get("refused"):
                out.print(
                    f"[yellow]![/] would be refused: {est['refused']} (pass --yes to go ahead)",
                    highlight=False,
                )
            continue
        if r.widened:
            out.print(f"{record.target}: {r.widened}", highlight=False, soft_wrap=True)
        _status_table(record.to_dict())
    for m in result.rebuilt:
        mark = {"success": "[green]✔[/] rebuilt", "error": "[red]✘[/] failed to rebuild"}
        out.print(
            f"{mark.get(m['status'], '[yellow]![/] not rebuilt:')} {m['model']}"
            + (f": {escape(m['message'])}" if m["message"] else ""),
            highlight=False,
        )
    if not result.dry_run:
        out.print(
            f"backfill id: {result.record.backfill_id}" + (" (resumed)" if result.resumed else ""),
            highlight=False,
        )


_HOW = {
    "explain": "the engine's EXPLAIN estimate",
    "count": "counted upstream just now",
    "guess": "a guess: the average of past partitions",
    "unknown": "unknown: upstream cannot be counted and nothing ran before",
}


def _status_table(data: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.progress_bar import ProgressBar
    from rich.table import Table

    progress = data["progress"]
    done = progress["success"] + progress["skipped"]
    grid = Table.grid(padding=(0, 1))
    grid.add_row(
        # Escaped: "[success]" or "[rolled_back]" would otherwise be read as Rich markup and
        # vanish, leaving the status line without its status.
        escape(f"{data['backfill_id']}  {data['target']}  [{data['status']}]"),
        ProgressBar(total=max(progress["total"], 1), completed=done, width=30),
        f"{done}/{progress['total']}",
    )
    out.print(grid)
    out.print(
        "  "
        + ", ".join(
            f"{k} {progress[k]}" for k in ("success", "running", "pending", "failed", "skipped")
        ),
        highlight=False,
    )
    if data.get("stopped"):
        out.print(
            f"  [yellow]![/] stopped: its process is gone ({escape(str(data['holder']))}); run "
            "the same `stackyard backfill` command again to resume it (partitions that "
            "succeeded are not run again)",
            highlight=False,
        )
    if data.get("status") == "superseded":
        out.print(
            "  [yellow]![/] superseded: a later backfill of the same range started over; "
            "nothing resumes this one, and `stackyard backfill prune "
            f"{escape(str(data['backfill_id']))}` drops its pre-images",
            highlight=False,
        )
    engines = sorted({str(p["engine"]) for p in data["partitions"] if p.get("engine")})
    if engines:
        out.print(f"  run by: {', '.join(engines)}", highlight=False)
    for p in data["partitions"]:
        if p["status"] == "failed":
            out.print(f"  [red]✘[/] {p['window_start']}: {p['error']}", highlight=False)
    if data.get("preimage_dropped_at"):
        out.print(
            f"  pre-images dropped {data['preimage_dropped_at'][:19]}: no rollback",
            highlight=False,
        )
    elif data.get("preimage_expires_at") and data["status"] == "rolled_back":
        out.print(
            f"  rolled back; its pre-images are kept until {data['preimage_expires_at'][:19]}",
            highlight=False,
        )
    elif data.get("preimage_expires_at"):
        out.print(
            f"  pre-images kept until {data['preimage_expires_at'][:19]} "
            f"(`stackyard backfill rollback {data['backfill_id']}` until then)",
            highlight=False,
        )
    validation = data.get("validation")
    if validation:
        verdict = "[green]passed[/]" if validation.get("ok") else "[red]failed[/]"
        out.print(
            f"  validation {verdict}: {counted(validation.get('rows_actual', 0), 'row')}, expected "
            f"{validation.get('rows_expected', 0):,}; missing {len(validation.get('missing_partitions', []))}, "
            f"mismatched {len(validation.get('count_mismatches', []))}, duplicate keys "
            f"{validation.get('duplicate_keys', 0)}",
            highlight=False,
        )
    if validation and not validation.get("ok"):
        _validation_failures(data, validation)
    if validation and validation.get("keys_removed"):
        keys = ", ".join(validation["keys_removed"]) + (
            ", …" if validation.get("keys_removed_more") else ""
        )
        out.print(
            f"  [yellow]![/] rows taken out and not put back (key {escape(keys)}): the source "
            "no longer has them (an API source's row may also have moved out of the range: "
            "backfill the days it moved to)",
            highlight=False,
            soft_wrap=True,
        )


def _validation_failures(data: dict[str, Any], validation: dict[str, Any]) -> None:
    """Name the partitions that failed validation, and the way forward (only ``--json``
    had them)."""
    from rich.markup import escape

    if validation.get("error"):
        out.print(f"  [red]✘[/] {escape(str(validation['error']))}", highlight=False)
    mismatched = {str(m["start"]) for m in validation.get("count_mismatches", [])}
    for m in validation.get("count_mismatches", []):
        out.print(
            f"  [red]✘[/] {m['start']}: {counted(m['actual'], 'row')}, expected {m['expected']:,} "
            "(upstream changed since it ran?)",
            highlight=False,
        )
    for start in validation.get("empty_partitions", []):
        if str(start) not in mismatched:
            out.print(f"  [red]✘[/] {start}: empty, upstream has rows", highlight=False)
    if data.get("status") == "failed" and (mismatched or validation.get("empty_partitions")):
        out.print(
            "  run the same command with --retry-failed to run these partitions (and any "
            "that failed) again",
            highlight=False,
        )


def _status(project: Any, target: str | None, backfill_id: str | None, as_json: bool) -> None:
    rows = _with_context(project, lambda c: c.backfill(target).status(backfill_id))
    if as_json:
        _print_json(rows[0] if backfill_id else rows)
        return
    if not rows:
        out.print("no backfills yet on this target")
        return
    for data in rows:
        _status_table(data)


def _rollback(
    project: Any,
    target: str | None,
    backfill_id: str | None,
    as_json: bool,
    dry_run: bool,
    force: bool,
) -> None:
    if not backfill_id:
        _usage(
            "rollback needs a backfill id", "stackyard backfill rollback ID (see backfill status)"
        )
    result = _with_context(
        project,
        lambda c: c.backfill(target).rollback(backfill_id or "", dry_run=dry_run, force=force),
    )
    if as_json:
        _print_json(result)
        return
    if dry_run:
        out.print(
            f"dry run: rolling back {result['backfill_id']} on {result['target']} would put "
            f"back {counted(result['partitions'], 'partition')}, "
            f"{counted(result['rows_restored'], 'row')}; "
            "nothing changed",
            highlight=False,
        )
        return
    out.print(
        f"rolled back {result['backfill_id']} on {result['target']}: "
        f"{counted(result['partitions'], 'partition')}, "
        f"{counted(result['rows_restored'], 'row')} restored",
        highlight=False,
    )


def _prune(project: Any, target: str | None, backfill_id: str | None, as_json: bool) -> None:
    pruned = _with_context(project, lambda c: c.backfill(target).prune(backfill_id))
    if as_json:
        _print_json({"pruned": pruned})
        return
    if not pruned:
        out.print("no pre-images to drop", highlight=False)
    for p in pruned:
        out.print(
            f"dropped the pre-images of {p['backfill_id']} ({p['target']}): "
            f"{counted(p['rows_dropped'], 'row')}; it can no longer be rolled back",
            highlight=False,
        )
