"""``stackyard source add | remove | list | show``: the Adding Data Sources runbook."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from stackyard.cli.common import (
    JsonOpt,
    ProjectOpt,
    TargetOpt,
    _confirm_or_stop,
    _context,
    _guard,
    _print_json,
    _with_context,
    out,
)
from stackyard.cli.render import whole_values_table
from stackyard.errors import UsageError, counted
from stackyard.runbooks.steps import RunbookPlan, explain

if TYPE_CHECKING:
    from stackyard.context import Context

ListOpt = Annotated[list[str] | None, typer.Option()]
DryRunOpt = Annotated[
    bool,
    typer.Option("--dry-run", help="Print the runbook's steps (and their undo); change nothing."),
]


def _auth(value: str | None) -> dict[str, Any] | None:
    """``bearer:SECRET``, ``api_key:HEADER:SECRET`` or ``basic:USER:SECRET``.

    >>> _auth("bearer:CRM_TOKEN")
    {'type': 'bearer', 'token': {'secret': 'CRM_TOKEN'}}
    """
    if not value:
        return None
    parts = value.split(":")
    if parts[0] == "bearer" and len(parts) == 2:
        return {"type": "bearer", "token": {"secret": parts[1]}}
    if parts[0] == "api_key" and len(parts) == 3:
        return {"type": "api_key", "name": parts[1], "api_key": {"secret": parts[2]}}
    if parts[0] == "basic" and len(parts) == 3:
        return {"type": "http_basic", "username": parts[1], "password": {"secret": parts[2]}}
    raise UsageError(
        f"--auth '{value}' is not understood",
        hint="use bearer:SECRET_NAME, api_key:HEADER:SECRET_NAME or basic:USER:SECRET_NAME "
        "(secret values come from the environment or .stackyard/secrets.toml)",
    )


def _paginator(value: str | None) -> dict[str, Any] | None:
    """``TYPE`` or ``TYPE:key=value,key=value``.

    >>> _paginator("page_number:page_param=page,total_path=total_pages")
    {'type': 'page_number', 'page_param': 'page', 'total_path': 'total_pages'}
    """
    if not value:
        return None
    kind, _, rest = value.partition(":")
    out: dict[str, Any] = {"type": kind}
    for item in filter(None, rest.split(",")):
        key, sep, raw = item.partition("=")
        if not sep:
            raise UsageError(f"--paginator option '{item}' should be key=value")
        out[key] = int(raw) if raw.isdigit() else raw
    return out


def _options(kind: str, **flags: Any) -> dict[str, Any]:
    """The stackyard.yml keys for a source from the command line, by the kind's own rules."""
    from stackyard.config.source_options import pairs
    from stackyard.config.sources import source_kinds

    common = {k: flags[k] for k in ("schema", "schedule", "contract", "owner")}
    kind_class = source_kinds().get(kind)
    if kind_class is None:
        return common  # the runbook says the kind is unknown, with the known ones
    options = dict(flags)
    options["primary_key"] = pairs(flags["primary_key"], "--primary-key", bare=kind_class.BARE_KEY)
    options["cursor"] = pairs(flags["cursor"], "--cursor")
    options["auth"] = _auth(flags["auth"])
    options["paginator"] = _paginator(flags["paginator"])
    return {**common, **kind_class.entry_from_options(options)}


def _print_plan(plan: RunbookPlan, as_json: bool) -> None:
    """A runbook's steps, before anything runs (``--dry-run``)."""
    if as_json:
        _print_json(plan.to_dict())
        return
    for line in explain(plan):
        out.print(line, markup=False, highlight=False, soft_wrap=True)


def _kinds_help() -> str:
    from stackyard.config.sources import source_kinds

    return "Source kind: " + ", ".join(source_kinds()) + "."


def register(app: typer.Typer) -> None:
    """Add the ``source`` commands to the CLI."""
    source_app = typer.Typer(
        help="Add, remove, list and show data sources (the Adding Data Sources runbook).",
        no_args_is_help=True,
    )
    app.add_typer(source_app, name="source")

    @source_app.command("add")
    def add(
        name: Annotated[str, typer.Argument(help="Name of the new source (schema name too).")],
        kind: Annotated[str, typer.Option(help=_kinds_help())],
        connection: Annotated[
            str | None, typer.Option(help="sql_database: SQLAlchemy URL without a password.")
        ] = None,
        connection_secret: Annotated[
            str | None,
            typer.Option(
                help="sql_database: name of the secret holding the URL (with its password)."
            ),
        ] = None,
        source_schema: Annotated[
            str | None, typer.Option(help="sql_database: schema to read in the source database.")
        ] = None,
        table: Annotated[
            list[str] | None,
            typer.Option(
                help="sql_database: a table to load (default: all), or NAME=SOURCE_TABLE to load "
                "it under another name. filesystem: TABLE=GLOB. external: a table the loader "
                "writes (default: all in --schema); snowpipe: TABLE=GLOB."
            ),
        ] = None,
        primary_key: Annotated[
            list[str] | None,
            typer.Option(
                help="TABLE=COLUMN: the table's key (else read from the source or the data); "
                "stream: COLUMN."
            ),
        ] = None,
        cursor: Annotated[
            list[str] | None, typer.Option(help="TABLE=COLUMN: load incrementally on this column.")
        ] = None,
        url: Annotated[
            str | None,
            typer.Option(
                help="filesystem: folder (relative to the project) or fsspec URL. "
                "stream: the server, e.g. nats://127.0.0.1:4222."
            ),
        ] = None,
        subject: Annotated[
            str | None, typer.Option(help="stream: subject filter, e.g. 'orders.>'.")
        ] = None,
        base_url: Annotated[str | None, typer.Option(help="rest_api: the API's base URL.")] = None,
        endpoint: Annotated[
            list[str] | None, typer.Option(help="rest_api: TABLE=/path, repeatable.")
        ] = None,
        auth: Annotated[
            str | None,
            typer.Option(
                help="rest_api: bearer:SECRET, api_key:HEADER:SECRET or basic:USER:SECRET."
            ),
        ] = None,
        paginator: Annotated[
            str | None,
            typer.Option(help="rest_api: page_number|offset|cursor|header_link[:key=value,…]."),
        ] = None,
        data_selector: Annotated[
            str | None, typer.Option(help="rest_api: JSON path to the rows, e.g. data.")
        ] = None,
        cursor_param: Annotated[
            str | None,
            typer.Option(help="rest_api: query parameter that sends the last cursor value."),
        ] = None,
        initial_value: Annotated[
            str | None, typer.Option(help="rest_api: first cursor value.")
        ] = None,
        loader: Annotated[
            str | None,
            typer.Option(help="external: the tool that loads it (airbyte, fivetran, snowpipe …)."),
        ] = None,
        loaded_at: Annotated[
            str | None,
            typer.Option(help="external: the column the loader stamps each row's load time in."),
        ] = None,
        stage_url: Annotated[
            str | None, typer.Option(help="external, snowpipe: the files' URL (s3://…).")
        ] = None,
        delimiter: Annotated[
            str | None,
            typer.Option(help="filesystem, snowpipe: the CSV files' field separator (default ,)."),
        ] = None,
        path: Annotated[str | None, typer.Option(help="python: sources/<file>.py.")] = None,
        function: Annotated[str | None, typer.Option(help="python: the @dlt.source.")] = None,
        schema: Annotated[
            str | None, typer.Option(help="Warehouse schema (default: the source name).")
        ] = None,
        schedule: Annotated[str | None, typer.Option(help="Cron, UTC (default 0 7 * * *).")] = None,
        contract: Annotated[
            str | None, typer.Option(help="evolve (default), freeze, discard_row or discard_value.")
        ] = None,
        owner: Annotated[str | None, typer.Option(help="Who is told when it breaks.")] = None,
        append: Annotated[
            bool,
            typer.Option(
                "--append",
                help="A table with --cursor and no key: append each load's new rows "
                "(else refused, since a changed row would appear twice).",
            ),
        ] = False,
        no_load: Annotated[
            bool, typer.Option("--no-load", help="Only add the config; no first load, no models.")
        ] = False,
        project: ProjectOpt = None,
        target: TargetOpt = None,
        as_json: JsonOpt = False,
        dry_run: DryRunOpt = False,
    ) -> None:
        """Add a source: config, first load, dbt source + staging models, verification."""
        flags = dict(locals())
        flags.pop("kind")
        flags.pop("dry_run")
        options = _guard(lambda: _options(kind, **flags))
        if dry_run:

            def plan_add(context: Context) -> RunbookPlan:
                runbook = context.sources(target)
                return runbook.plan_add(name, runbook.entry(name, kind, options), load=not no_load)

            _print_plan(_with_context(project, plan_add), as_json)
            return
        with _guard(lambda: _context(project)) as context:
            result = _guard(
                lambda: context.source_add(name, kind, options, load=not no_load, target=target)
            )
        if as_json:
            data = asdict(result)
            if data.get("load"):
                data["load"].pop("traceback", None)  # for --debug on a terminal only
            _print_json(data | {"ok": result.ok})
            raise typer.Exit(result.exit_code)
        if result.load is not None and result.load.status == "failed":
            verb = "not added"
        else:
            verb = "added" if result.config_changed else "already in stackyard.yml"
        out.print(f"source [bold]{name}[/] ({kind}): {verb}")
        if result.load and result.load.tables:
            for t in result.load.tables:
                # As `stackyard run` reports them: rows that shared a key were merged into one.
                collapsed = (
                    f", {counted(t.duplicates, 'row')} sharing a key collapsed "
                    f"({result.kept_of_a_key})"
                    if t.duplicates
                    else ""
                )
                out.print(
                    f"  loaded {t.table}: {counted(t.rows, 'row')}{collapsed}", highlight=False
                )
        for f in result.files_written:
            out.print(f"  wrote {f}", highlight=False)
        for f in result.files_unchanged:
            out.print(f"  unchanged {f}", highlight=False)
        if result.checks:
            out.print("Verification:")
            for check in result.checks:
                mark = Text("✔", style="green") if check.ok else Text("✘", style="red")
                out.print(Text.assemble("  ", mark, f" {check.name}: {check.detail}"))
        for note in result.notes:
            out.print(Text(f"note: {note}", style="yellow"))
        raise typer.Exit(result.exit_code)

    @source_app.command("remove")
    def remove(
        name: Annotated[str, typer.Argument(help="The source to remove.")],
        drop_data: Annotated[
            bool, typer.Option("--drop-data", help="Also drop the loaded schema (asks first).")
        ] = False,
        yes: Annotated[bool, typer.Option("--yes", help="Do not ask (for scripts).")] = False,
        force: Annotated[
            bool, typer.Option("--force", help="Delete generated files even if you edited them.")
        ] = False,
        project: ProjectOpt = None,
        target: TargetOpt = None,
        as_json: JsonOpt = False,
        dry_run: DryRunOpt = False,
    ) -> None:
        """Roll back `source add`: its files and config entry (and, with --drop-data, data)."""
        if dry_run:
            plan = _with_context(
                project,
                lambda context: context.sources(target).plan_remove(name, drop_data=drop_data),
            )
            _print_plan(plan, as_json)
            return
        with _guard(lambda: _context(project)) as context:
            if drop_data and not yes:
                schemas = _guard(lambda: context.sources(target).schemas_to_drop(name))
                which = (
                    f"schema '{schemas[0]}'"
                    if len(schemas) == 1
                    else "schemas " + ", ".join(f"'{s}'" for s in schemas)
                )
                _confirm_or_stop(
                    f"Drop {which} and every table in {'it' if len(schemas) == 1 else 'them'} "
                    f"on target '{context.target_name(target)}'? This cannot be undone."
                )
            result = _guard(
                lambda: context.sources(target).remove(name, drop_data=drop_data, force=force)
            )
        if as_json:
            _print_json(asdict(result))
            return
        out.print(f"source [bold]{name}[/] removed")
        for f in result.files_removed:
            out.print(f"  deleted {f}", highlight=False)
        for model in result.dropped_models:
            out.print(f"  dropped {model} (built from a deleted model)", highlight=False)
        for schema in result.dropped_schemas:
            out.print(f"  dropped schema {schema}", highlight=False)
        for state in result.state_removed:  # dlt's folders, a stream's consumers
            said = state if state.startswith("stream consumer") else f"deleted {state}"
            out.print(f"  {said}", markup=False, highlight=False, soft_wrap=True)
        if result.dropped_schemas and result.other_targets:
            # The source's entry is gone now: another target's copy is dropped by hand.
            out.print(
                Text(
                    f"note: dropped on target '{result.target}' only; "
                    f"{', '.join(result.other_targets)} may still hold the data: drop it there with"
                ),
                soft_wrap=True,
            )
            for other in result.other_targets:
                for schema in result.dropped_schemas:
                    out.print(
                        f'  stackyard sql -t {other} "DROP SCHEMA IF EXISTS {schema} CASCADE"',
                        markup=False,
                        highlight=False,
                        soft_wrap=True,
                    )
        for model in result.kept_models:
            out.print(
                Text(f"note: kept {model}, which reads this source: the next run fails on it")
            )

    @source_app.command("list")
    def list_(
        project: ProjectOpt = None, target: TargetOpt = None, as_json: JsonOpt = False
    ) -> None:
        """Every source: kind, tables, rows, last load and freshness."""
        sources = _with_context(project, lambda context: context.sources(target).status())
        if as_json:
            _print_json([asdict(s) for s in sources])
            return
        rows = []
        for s in sources:
            total = sum(t.rows or 0 for t in s.tables)
            fresh = {t.freshness for t in s.tables if t.freshness} or {"–"}
            when = s.last_loaded_at.strftime("%m-%d %H:%M") if s.last_loaded_at else "never"
            rows.append(
                [
                    s.name,
                    s.kind,
                    s.schema,
                    str(len(s.tables)),
                    f"{total:,}",
                    when,
                    ", ".join(sorted(fresh)),
                ]
            )
        table = whole_values_table(
            ["source", "kind", "schema", "tables", "rows", "last load", "freshness"],
            rows,
            right=("tables", "rows"),
        )
        out.print(table if sources else "no sources yet: `stackyard source add NAME --kind …`")

    @source_app.command("show")
    def show(
        name: Annotated[str, typer.Argument(help="The source.")],
        project: ProjectOpt = None,
        target: TargetOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """One source in detail: each table's rows, last load, freshness and model."""
        status = _with_context(project, lambda context: context.sources(target).status([name]))[0]
        if as_json:
            _print_json(asdict(status))
            return
        out.print(
            f"[bold]{status.name}[/] ({status.kind}) → schema {status.schema}; "
            f"schedule {status.schedule}; contract {status.contract}"
            + ("" if status.enabled else "; disabled")
        )
        table = whole_values_table(
            ["table", "rows", "last load rows", "freshness", "age (h)", "model"],
            [
                [
                    t.table,
                    "missing" if t.rows is None else f"{t.rows:,}",
                    "–" if t.last_load_rows is None else f"{t.last_load_rows:,}",
                    t.freshness or "–",
                    "–" if t.age_hours is None else f"{t.age_hours:.1f}",
                    t.model or "–",
                ]
                for t in status.tables
            ],
            right=("rows", "last load rows", "age (h)"),
        )
        out.print(table)


__all__ = ["Path", "register"]
