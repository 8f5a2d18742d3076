"""Incident commands beside ``incident mark``: open, list, show, trace, resolve, postmortem.

Exit codes: 0 done (``open`` with nothing failing too: it opens nothing and says so), 2 usage
(an unknown incident or run; no run or monitor pass to read yet and no --node).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from stackyard.cli.common import (
    JsonOpt,
    ProjectOpt,
    TargetOpt,
    _print_json,
    _with_context,
    out,
)

IdArg = Annotated[str, typer.Argument(help="The incident's id, e.g. INC-0001.")]


def register(app: typer.Typer) -> None:
    """Add the commands to the ``incident`` group (created by the monitoring commands)."""
    group = next(
        (
            g.typer_instance
            for g in app.registered_groups
            if g.typer_instance is not None and (g.name or g.typer_instance.info.name) == "incident"
        ),
        None,
    )
    if group is None:
        group = typer.Typer(name="incident", help="Incidents.", rich_markup_mode=None)
        app.add_typer(group)
    group.command("open")(incident_open)
    group.command("list")(incident_list)
    group.command("show")(incident_show)
    group.command("trace")(incident_trace)
    group.command("resolve")(incident_resolve)
    group.command("postmortem")(incident_postmortem)


def incident_open(
    run: Annotated[
        str | None, typer.Option("--run", help="A run id (default: the latest run).")
    ] = None,
    source: Annotated[
        str, typer.Option("--from", help="What to read: run, monitor or both.")
    ] = "both",
    node: Annotated[
        str | None, typer.Option("--node", help="Open on this node even if nothing fails.")
    ] = None,
    title: Annotated[str, typer.Option("--title", help="A title instead of the first alert.")] = "",
    severity: Annotated[
        str | None, typer.Option("--severity", help="P0–P3 instead of the suggested one.")
    ] = None,
    project: ProjectOpt = None,
    target: TargetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Open one incident per root cause of what fails now (failed loads, models, tests,
    stale sources, monitor anomalies); alerts whose root cause has an open incident join it.
    With --node, open one by hand (a table someone reports that no monitor flagged)."""

    def act(context: Any) -> Any:
        from stackyard.errors import UsageError

        if source not in ("run", "monitor", "both"):
            raise UsageError(f"--from {source}: expected run, monitor or both")
        if severity is not None and severity not in ("P0", "P1", "P2", "P3"):
            raise UsageError(f"--severity {severity}: expected P0, P1, P2 or P3")
        return context.incidents(target).open(
            run_id=run,
            use_run=source in ("run", "both"),
            use_monitors=source in ("monitor", "both"),
            node=node,
            title=title,
            severity=severity,
        )

    result = _with_context(project, act)
    if as_json:
        _print_json(result.to_dict())
        return
    if not result.opened and not result.updated:
        read = {"run": "latest run is", "monitor": "latest monitor pass is"}.get(
            source, "latest run and monitor pass are"
        )
        out.print(f"nothing is failing: the {read} clean; no incident opened", highlight=False)
        out.print(
            "  → to open one by hand (someone reports a table no monitor flagged): "
            "stackyard incident open --node TABLE --title TEXT",
            markup=False,
            highlight=False,
        )
        return
    for record in result.opened:
        out.print(f"[bold red]opened[/] {_line(record)}", highlight=False)
    for record in result.updated:
        out.print(f"[yellow]updated[/] {_line(record)} (same root cause)", highlight=False)
    out.print("next: stackyard incident trace ID", highlight=False)


def incident_list(
    include_all: Annotated[bool, typer.Option("--all", help="Resolved ones too.")] = False,
    project: ProjectOpt = None,
    target: TargetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Open incidents (or all of them), newest first."""
    records = _with_context(project, lambda c: c.incidents(target).all(include_all))
    if as_json:
        _print_json([r.to_dict() for r in records])
        return
    if not records:
        out.print("no open incidents" if not include_all else "no incidents yet")
    for record in records:
        out.print(_line(record), highlight=False)


def incident_show(
    incident_id: IdArg,
    project: ProjectOpt = None,
    target: TargetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One incident with its timeline."""
    record = _with_context(project, lambda c: c.incidents(target).show(incident_id))
    if as_json:
        _print_json(record.to_dict())
        return
    out.print(_line(record), highlight=False)
    downstream = record.impact.get("downstream") or []
    out.print(f"affects: {', '.join(downstream) or 'nothing downstream'}", highlight=False)
    for event in record.events:
        out.print(f"  {event.at:%Y-%m-%d %H:%M} {event.kind}: {event.detail}", highlight=False)


def incident_trace(
    incident_id: IdArg,
    project: ProjectOpt = None,
    target: TargetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Walk lineage upstream to the first node that went bad; list what changed there (the
    monitors' findings, load errors and schema changes, git commits, freshness)."""
    result = _with_context(project, lambda c: c.incidents(target).trace(incident_id))
    if as_json:
        _print_json(result.to_dict())
        return
    out.print(
        f"[bold]{result.incident_id}[/]: first bad node [bold]{result.first_bad}[/] "
        f"({result.relation})",
        highlight=False,
    )
    out.print(f"path: {' → '.join(result.path)}", highlight=False)
    for change in result.changes:
        when = f" {change.at}" if change.at else ""
        out.print(f"  {change.kind}{when}: {change.detail}", highlight=False)
    if not result.changes:
        out.print("  no change recorded there (no failed load, commit or stale freshness)")


def incident_resolve(
    incident_id: IdArg,
    note: Annotated[str, typer.Option("--note", help="What fixed it.")] = "",
    project: ProjectOpt = None,
    target: TargetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Mark an incident resolved."""
    record = _with_context(project, lambda c: c.incidents(target).resolve(incident_id, note))
    if as_json:
        _print_json(record.to_dict())
        return
    out.print(f"[green]✔[/] resolved {_line(record)}", highlight=False)


def incident_postmortem(
    incident_id: IdArg,
    out_file: Annotated[
        Path | None, typer.Option("--out", "-o", help="Default: postmortems/ID.md.")
    ] = None,
    project: ProjectOpt = None,
    target: TargetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the post-mortem as Markdown, the timeline filled in from run history."""
    path = _with_context(project, lambda c: c.incidents(target).postmortem(incident_id, out_file))
    if as_json:
        _print_json({"id": incident_id, "path": str(path)})
        return
    out.print(f"[green]✔[/] wrote {path}", highlight=False)


def _line(record: Any) -> str:
    return (
        f"{record.incident_id} [{record.severity}] {record.status} · root cause "
        f"{record.root_cause} · {record.title}"
    )
