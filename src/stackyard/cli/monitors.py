"""Monitoring commands: ``monitor``, ``health``, ``incident mark`` and ``report``.

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
    app.command()(health)
    app.command()(report)
    app.add_typer(incident_app)


def monitor(project: ProjectOpt = None, target: TargetOpt = None, as_json: JsonOpt = False) -> None:
    """Run every monitor now (as at the end of `stackyard run`), alert, and show the result.

    Exits 1 when a table is anomalous or missing.
    """
    result = _with_context(project, lambda context: context.monitoring().run_now(target))
    if as_json:
        _print_json(result.to_dict())
    else:
        _render_tables(result.tables)
        out.print(result.summary, highlight=False)
        for note in result.notes:
            out.print(f"note: {note}", highlight=False)
        for problem in result.alert_errors:
            out.print(f"[yellow]alert failed:[/] {problem}", highlight=False)
    raise typer.Exit(1 if result.status == "anomaly" else 0)


def health(project: ProjectOpt = None, target: TargetOpt = None, as_json: JsonOpt = False) -> None:
    """Every monitored table: status, last value, expected band and why (from the latest
    monitor pass).

    Exits 1 when a table is anomalous or missing, 0 otherwise.
    """
    result = _with_context(project, lambda context: context.monitoring().health(target))
    if as_json:
        _print_json(result.to_dict())
        raise typer.Exit(result.exit_code)
    if result.measured_at is None:
        out.print("no monitor pass yet on this target: `stackyard run` or `stackyard monitor`")
        raise typer.Exit(0)
    _render_tables(result.tables)
    out.print(f"as of {result.measured_at:%Y-%m-%d %H:%M} UTC", highlight=False)
    raise typer.Exit(result.exit_code)


def report(
    project: ProjectOpt = None,
    target: TargetOpt = None,
    out_file: Annotated[
        Path, typer.Option("--out", "-o", help="HTML file to write (self-contained).")
    ] = Path("report.html"),
) -> None:
    """Write one self-contained HTML report: health, lineage, volume, freshness, nulls,
    tests and runs. Works offline."""
    path = _with_context(project, lambda context: context.monitoring().report(target, out_file))
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
            }
        )
        return
    out.print(
        f"[green]✔[/] incident on {incident.table} from {incident.start} to {incident.end} "
        "recorded: those days are kept out of its baselines from now on",
        highlight=False,
    )


def _render_tables(tables: Any) -> None:
    from rich.table import Table

    if not tables:
        out.print("no tables monitored")
        return
    grid = Table(show_edge=False, pad_edge=False)
    for name in ("table", "status", "last value", "expected band", "why"):
        grid.add_column(name, overflow="fold")
    for t in tables:
        volume = t.volume
        band = "–"
        if volume is not None and volume.lower is not None and volume.upper is not None:
            band = f"{volume.lower:,.0f}–{volume.upper:,.0f}"
        last = f"{volume.value:,.0f}" if volume is not None and volume.value is not None else "–"
        grid.add_row(t.table, f"[{_STYLE.get(t.status, '')}]{t.status}[/]", last, band, t.why)
    out.print(grid)
