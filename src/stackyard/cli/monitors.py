"""Monitoring commands: ``monitor``, ``health``, ``health show``, ``incident mark`` (and
``marks``, ``unmark``), ``report``.

Exit codes: 0 when every table is healthy (or only warns), 1 when ``health`` or ``monitor``
finds a table anomalous or missing (so a CI job or cron can page on it), 2 for usage and
configuration errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from stackyard.cli.common import JsonOpt, ProjectOpt, TargetOpt, _print_json, _with_context, out

incident_app = typer.Typer(
    name="incident",
    help="Known incidents: periods kept out of every monitor's baseline.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

health_app = typer.Typer(
    name="health",
    help="Every monitored table: status, rows, expected band and why (from the latest "
    "monitor pass); `health show TABLE` for one table's every check. Exits 1 when a table is "
    "anomalous or missing, 0 otherwise.",
    invoke_without_command=True,
    rich_markup_mode=None,
)

VerboseOpt = Annotated[
    bool,
    typer.Option("--verbose", "-v", help="The full why of each table (wrapped), not one line."),
]

# Table names get at least this much room; a longer name is shortened in the middle when the
# terminal has no more (folded onto more lines with --verbose).
_NAME_WIDTH = 24
# The least room the one-line why keeps when a long name asks for more.
_WHY_WIDTH = 28
# In a narrow terminal: the least room of each, below which each table gets a block instead.
_NARROW_NAME = 12
_NARROW_WHY = 10
# With --verbose, the least room of the why (wrapped) beside names shown whole.
_VERBOSE_WHY = 24

_STYLE = {
    "ok": "green",
    "learning": "dim",
    "warn": "yellow",
    "error": "yellow",
    "anomaly": "bold red",
    "missing": "bold red",
}


def register(app: typer.Typer) -> None:
    """Add the monitoring commands to the ``stackyard`` app."""
    app.command()(monitor)
    app.add_typer(health_app)
    app.command()(report)
    app.add_typer(incident_app)


def monitor(
    project: ProjectOpt = None,
    target: TargetOpt = None,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Run every monitor now (as at the end of `stackyard run`), alert, and show the result.

    Exits 1 when a table is anomalous or missing.
    """
    result = _with_context(project, lambda context: context.monitoring().run_now(target))
    if as_json:
        _print_json(result.to_dict())
    else:
        if result.tables:  # the summary says "no tables monitored" itself
            _render_tables(result.tables, verbose=verbose)
        out.print(result.summary, highlight=False)
        # With no table, the summary already says the first note.
        for note in result.notes[0 if result.tables else 1 :]:
            out.print(f"note: {note}", highlight=False)
        for problem in result.alert_errors:
            out.print(f"[yellow]alert failed:[/] {problem}", highlight=False)
    raise typer.Exit(1 if result.status == "anomaly" else 0)


@health_app.callback(invoke_without_command=True)
def health(
    ctx: typer.Context,
    project: ProjectOpt = None,
    target: TargetOpt = None,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Every monitored table: status, rows, expected band and why (from the latest
    monitor pass). One line per table; `--verbose` or `health show TABLE` for the full why.

    Exits 1 when a table is anomalous or missing, 0 otherwise.
    """
    if ctx.invoked_subcommand is not None:
        return
    result = _with_context(project, lambda context: context.health(target))
    if as_json:
        _print_json(result.to_dict())
        raise typer.Exit(result.exit_code)
    if result.measured_at is None:
        from stackyard.monitors.health import MONITORS_DISABLED, NO_PASS_YET

        out.print(MONITORS_DISABLED if result.disabled else NO_PASS_YET, highlight=False)
        raise typer.Exit(0)
    _render_tables(result.tables, verbose=verbose)
    out.print(f"as of {result.measured_at:%Y-%m-%d %H:%M} UTC", highlight=False)
    pointer = "→ details: stackyard health show TABLE"
    if any(t.findings for t in result.tables) and len(pointer) <= out.width:
        out.print(pointer, highlight=False)
    raise typer.Exit(result.exit_code)


@health_app.command("show")
def health_show(
    ctx: typer.Context,
    table: Annotated[str, typer.Argument(help="schema.table, or the name people know it by.")],
    project: ProjectOpt = None,
    target: TargetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One table's every check from the latest monitor pass, each with its full reason.

    Exits 1 when the table is anomalous or missing, 2 when no monitored table has that name.
    """
    # `health --project demo show T` means the same as `health show T --project demo`.
    above = ctx.parent.params if ctx.parent is not None else {}
    project = project or above.get("project")
    target = target or above.get("target")
    found = _with_context(project, lambda context: context.monitoring().table_health(target, table))
    if as_json:
        _print_json(found.to_dict())
        raise typer.Exit(1 if found.alerting else 0)
    style = _STYLE.get(found.status, "")
    out.print(f"{found.table} ({found.kind}): [{style}]{found.status}[/]", highlight=False)
    if found.owners:
        out.print(f"owners: {', '.join(found.owners)}", highlight=False)
    from rich.table import Table
    from rich.text import Text

    # A grid, so a reason longer than the terminal wraps under itself, past the status column.
    grid = Table.grid(padding=(0, 1), pad_edge=True)
    grid.add_column(no_wrap=True, min_width=10)
    grid.add_column(overflow="fold")
    for check in found.checks:
        grid.add_row(
            Text(f" {check.status}", style=_STYLE.get(check.status, "")),
            Text(f"{check.label}: {check.reason}"),
        )
    out.print(grid)
    raise typer.Exit(1 if found.alerting else 0)


def report(
    project: ProjectOpt = None,
    target: TargetOpt = None,
    out_file: Annotated[
        Path, typer.Option("--out", "-o", help="HTML file to write (self-contained).")
    ] = Path("report.html"),
    as_json: JsonOpt = False,
) -> None:
    """Write one self-contained HTML report: health, lineage, volume, freshness, nulls,
    tests and runs. Works offline."""
    path = _with_context(project, lambda context: context.monitoring().report(target, out_file))
    if as_json:
        _print_json({"ok": True, "path": str(Path(path).resolve())})
        return
    out.print(f"[green]✔[/] wrote {path}", highlight=False)


@incident_app.command("mark")
def incident_mark(
    table: Annotated[str, typer.Option("--table", help="schema.table or a dbt model name.")],
    start: Annotated[str, typer.Option("--start", help="First day, YYYY-MM-DD.")],
    end: Annotated[str, typer.Option("--end", help="Last day (inclusive), YYYY-MM-DD.")],
    note: Annotated[str, typer.Option("--note", help="What happened.")] = "",
    project: ProjectOpt = None,
    target: TargetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a known incident: the table's values in these days leave every baseline."""
    incident = _with_context(
        project, lambda context: context.monitoring().mark_incident(target, table, start, end, note)
    )
    if as_json:
        _print_json(
            {
                "table": incident.table,
                "start": incident.start,
                "end": incident.end,
                "note": incident.note,
                "already_marked": incident.marked_before is not None,
            }
        )
        return
    span = f"incident on {incident.table} from {incident.start} to {incident.end}"
    if incident.marked_before is not None:
        noted = "; its note is now the one given" if incident.note else ""
        out.print(
            f"[green]✔[/] {span} was already marked (on "
            f"{incident.marked_before:%Y-%m-%d %H:%M} UTC): nothing new was recorded{noted}",
            highlight=False,
        )
        return
    out.print(
        f"[green]✔[/] {span} recorded: those days are kept out of its baselines from now on",
        highlight=False,
    )


@incident_app.command("marks")
def incident_marks(
    table: Annotated[
        str | None, typer.Option("--table", help="Only this table's (schema.table or a model).")
    ] = None,
    project: ProjectOpt = None,
    target: TargetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the incidents marked with `incident mark`: days kept out of the baselines."""
    marks = _with_context(project, lambda context: context.monitoring().marks(target, table))
    if as_json:
        _print_json([_mark_json(m) for m in marks])
        return
    if not marks:
        out.print("no incident marked" + (f" on {table}" if table else ""))
        return
    for m in marks:
        when = f"marked {m.marked_at:%Y-%m-%d %H:%M} UTC" if m.marked_at else "marked"
        note = f": {m.note}" if m.note else ""
        out.print(f"{m.table}  {m.start} to {m.end}  ({when}){note}", highlight=False)


@incident_app.command("unmark")
def incident_unmark(
    table: Annotated[str, typer.Option("--table", help="schema.table or a dbt model name.")],
    start: Annotated[str, typer.Option("--start", help="The mark's first day, YYYY-MM-DD.")],
    end: Annotated[str, typer.Option("--end", help="The mark's last day, YYYY-MM-DD.")],
    project: ProjectOpt = None,
    target: TargetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove a mark: its days join the table's baselines again from the next monitor pass."""
    removed = _with_context(
        project, lambda context: context.monitoring().unmark_incident(target, table, start, end)
    )
    if as_json:
        _print_json(_mark_json(removed))
        return
    out.print(
        f"[green]✔[/] the mark on {removed.table} from {removed.start} to {removed.end} is "
        "removed: those days count in its baselines from the next monitor pass",
        highlight=False,
    )


def _mark_json(mark: Any) -> dict[str, Any]:
    return {
        "table": mark.table,
        "start": mark.start,
        "end": mark.end,
        "note": mark.note,
        "marked_at": mark.marked_at,
    }


def _render_tables(tables: Any, *, verbose: bool = False) -> None:
    from rich.table import Table

    if not tables:
        out.print("no tables monitored")
        return
    rows = []
    for t in tables:
        volume = t.volume
        band = "–"
        if volume is not None and volume.lower is not None and volume.upper is not None:
            from stackyard.monitors.anomaly.stats import whole_rows_band

            band = whole_rows_band(volume.lower, volume.upper)
        last = f"{volume.value:,.0f}" if volume is not None and volume.value is not None else "–"
        rows.append((t.table, t.status, last, band, t.why if verbose else t.short_why))
    # One line per table that fits the terminal (80 columns included): the short columns keep
    # their width, a long name takes the room the why can spare and is shortened in the middle
    # beyond it, and the why is cut with an ellipsis; --verbose folds both instead.
    grid = Table(show_edge=False, pad_edge=False, box=None, padding=(0, 1))
    widths = [0]
    for i in (1, 2, 3):
        widths.append(max(len(("status", "rows", "band")[i - 1]), *(len(r[i]) for r in rows)))
    # Each of the four gaps between five columns is two spaces of padding.
    fixed = sum(widths) + 8
    spare = out.width - fixed - _WHY_WIDTH
    longest = max(len("table"), *(len(r[0]) for r in rows))
    widths[0] = min(longest, max(_NAME_WIDTH, spare))
    if verbose:
        # Every name whole: folded, "stg_dlt__order_i" ended one line and "tems" began the
        # next. A name with no room beside a readable why gets the blocks, its own line.
        if fixed + longest + _VERBOSE_WHY > out.width:
            _render_blocks(rows, verbose=verbose)
            return
        widths[0] = longest
    if fixed + widths[0] + _NARROW_WHY > out.width:
        # A narrow terminal: the name gives up room first, down to a readable stub.
        widths[0] = min(longest, max(_NARROW_NAME, out.width - fixed - _NARROW_WHY))
        if fixed + widths[0] + _NARROW_WHY > out.width:
            # Narrower still, five columns folded a few characters at a time made a table
            # twenty lines tall: each table gets a short block of its own instead.
            _render_blocks(rows, verbose=verbose)
            return
    grid.add_column("table", overflow="fold", no_wrap=not verbose, max_width=widths[0])
    # "rows", not "last": the numbers are the volume's whatever check the why leads with (a
    # dimension's or a column's own numbers are in its why).
    for i, name in enumerate(("status", "rows", "band"), start=1):
        grid.add_column(
            name, no_wrap=True, min_width=widths[i], justify="right" if i == 2 else "left"
        )
    room = max(out.width - sum(widths) - 8, 10)
    grid.add_column("why", overflow="fold" if verbose else "ellipsis", no_wrap=not verbose)
    for name, status, last, band, why in rows:
        if not verbose:
            name = _shorten(name, widths[0])
            if len(why) > room:
                why = why[: room - 1] + "…"
        grid.add_row(name, f"[{_STYLE.get(status, '')}]{status}[/]", last, band, why)
    out.print(grid)


def _render_blocks(rows: list[tuple[str, str, str, str, str]], *, verbose: bool) -> None:
    """Each table as a block for a terminal too narrow for the grid: its full name (folded,
    never cropped), then status, rows of the day judged and their band, then the why, indented (cut with an
    ellipsis, or wrapped in full with --verbose)."""
    import textwrap

    from rich.text import Text

    room = max(out.width - 2, 10)
    for name, status, last, band, why in rows:
        out.print(Text(name, style="bold"), overflow="fold")
        line = Text("  ")
        line.append(status, style=_STYLE.get(status, ""))
        line.append(f"  rows {last}  band {band}")
        out.print(line, overflow="fold")
        if verbose:
            for part in textwrap.wrap(why, room) or [""]:
                out.print(Text("  " + part), overflow="fold")
        else:
            out.print(Text("  " + (why if len(why) <= room else why[: room - 1] + "…")))


def _shorten(name: str, width: int) -> str:
    """A table name cut in the middle to ``width`` characters, both ends kept.

    >>> _shorten("staging.stg_dlt__order_items_with_a_long_suffix", 24)
    'staging.stg_…long_suffix'
    >>> _shorten("app.orders", 24)
    'app.orders'
    """
    if len(name) <= width:
        return name
    keep = width - 1
    return name[: (keep + 1) // 2] + "…" + name[len(name) - keep // 2 :]
