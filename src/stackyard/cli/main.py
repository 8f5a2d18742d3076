"""The ``stackyard`` command. Each command parses options, calls one Context method, renders
the result and maps it to an exit code: 0 success, 1 a load or test failed, 2 usage or
configuration. Tracebacks appear only with ``--debug``."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from stackyard.cli import access as _access_commands
from stackyard.cli import adopt as _adopt_commands
from stackyard.cli import backfill as _backfill_commands
from stackyard.cli import evolve as _evolve_commands
from stackyard.cli import incidents as _incident_commands
from stackyard.cli import lineage as _lineage_commands
from stackyard.cli import monitors as _monitor_commands
from stackyard.cli import orchestration as _orchestration_commands
from stackyard.cli import recovery as _recovery_commands
from stackyard.cli import reload as _reload_commands
from stackyard.cli import security as _security_commands
from stackyard.cli import sources as _source_commands
from stackyard.cli.common import (
    RUN_STOPPED,
    JsonOpt,
    ProjectOpt,
    TargetOpt,
    _context,
    _given,
    _guard,
    _print_json,
    _state,
    _with_context,
    close_opened,
    err,
    out,
)
from stackyard.errors import EXIT_INTERRUPTED, EXIT_USAGE, UsageError, counted

app = typer.Typer(
    name="stackyard",
    help="A whole data platform as one project: load with dlt, transform with dbt, on DuckDB, "
    "Postgres, Snowflake, BigQuery or Spark.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _print_version(value: bool) -> None:
    if value:
        from stackyard import __version__

        out.print(f"stackyard {__version__}", highlight=False)
        raise typer.Exit(0)


@app.callback()
def _main(
    command: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    _state["debug"] = debug
    _state["json"] = False  # set again by a command's --json
    _given["target"] = None  # and by its --target
    command.call_on_close(close_opened)  # however the command ends
    if debug:  # dlt's own log of a failed job (loads keep it to CRITICAL otherwise)
        os.environ.setdefault("RUNTIME__LOG_LEVEL", "ERROR")


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Folder to create (must be new or empty).")],
    example: Annotated[
        str | None,
        typer.Option(help="Create a working example with data: jaffle_shop."),
    ] = None,
    scale: Annotated[int, typer.Option(help="Multiply the example's data volume.")] = 1,
    seed: Annotated[int, typer.Option(help="Random seed of the example data.")] = 42,
) -> None:
    """Create a new project; with --example, one that runs end to end."""
    from stackyard.project import init_project

    result = _guard(lambda: init_project(directory, example=example, scale=scale, seed=seed))
    out.print(f"[green]✔[/] created {escape(str(result.path))}", highlight=False, soft_wrap=True)
    for table, rows in result.rows.items():
        out.print(f"  {table}: {rows:,} rows of example data", highlight=False)
    # a line to copy into a shell: quoted for it, and never folded by the terminal's width
    out.print(
        f"next: cd {_shell_path(result.path)} && stackyard run",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


def _shell_path(path: Path) -> str:
    """``path`` as a shell word ``cd`` takes as it is.

    >>> _shell_path(Path("bad name!"))
    "'bad name!'"
    >>> _shell_path(Path("-x"))
    './-x'
    """
    import shlex

    text = str(path)
    return shlex.quote(f"./{text}" if text.startswith("-") else text)


def _dbt_vars(text: str | None) -> dict[str, Any]:
    """``--vars`` as a mapping.

    >>> _dbt_vars("{load_source_data: true}")
    {'load_source_data': True}

    Raises:
        UsageError: not a YAML/JSON mapping.
    """
    if not text:
        return {}
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UsageError(
            f"--vars is not YAML or JSON: {exc}",
            hint="pass one mapping, quoted for the shell: --vars '{load_source_data: true}'",
        ) from None
    if not isinstance(value, dict):
        raise UsageError(
            f"--vars takes a mapping such as '{{name: value}}', got {text!r}",
            hint="quote it for the shell: --vars '{load_source_data: true}'",
        )
    return {str(k): v for k, v in value.items()}


@app.command()
def run(
    project: ProjectOpt = None,
    target: TargetOpt = None,
    select: Annotated[
        list[str] | None,
        typer.Option(
            "--select",
            "-s",
            help="A source name (with everything downstream of it) or a dbt selector; repeatable.",
        ),
    ] = None,
    force_build: Annotated[
        bool,
        typer.Option(
            "--force-build",
            help="Build and test even when nothing changed since the last successful run.",
        ),
    ] = False,
    full_refresh: Annotated[
        bool,
        typer.Option(
            "--full-refresh",
            help="Start the selected sources over (dlt state reset, tables replaced) and "
            "rebuild dbt models with --full-refresh.",
        ),
    ] = False,
    variables: Annotated[
        str | None,
        typer.Option(
            "--vars",
            help="dbt vars as YAML or JSON, e.g. '{load_source_data: true}', over "
            "transform.vars in stackyard.yml.",
        ),
    ] = None,
    as_json: JsonOpt = False,
    state: Annotated[
        Path | None,
        typer.Option(
            "--state",
            help="A folder holding another version's dbt manifest.json (`stackyard "
            "dbt-manifest --out DIR`): --select state:modified+ builds what changed, loading "
            "only the sources those models read.",
        ),
    ] = None,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="How the build runs: auto (the default: table and view models and data "
            "tests run as their compiled SQL on DuckDB/Postgres, dbt builds the rest); dbt "
            "(plain `dbt build` for every node); sql (as auto, but refuse with exit 2 when a "
            "node needs dbt).",
        ),
    ] = "auto",
    wait: Annotated[
        float,
        typer.Option(
            "--wait",
            min=0,
            metavar="SECONDS",
            help="Wait up to this long for another run of the same sources or the "
            "transformation (or one holding the DuckDB file) to end, instead of refusing "
            "with exit 1.",
        ),
    ] = 0.0,
) -> None:
    """Load every source, build and test the dbt project, check freshness, record the run."""
    from stackyard.cli.render import RichConsole, run_summary, run_verdict

    extra = _guard(lambda: _dbt_vars(variables))

    def call(context: Any) -> Any:
        return context.run(
            target=target,
            select=select or (),
            force_build=force_build,
            full_refresh=full_refresh,
            variables=extra,
            state=state,
            engine=engine,
            lease_wait=wait,
        )

    if as_json:
        with _guard(lambda: _context(project)) as context:
            result = _guard(lambda: call(context), RUN_STOPPED)
        _print_json(result.to_dict())
        raise typer.Exit(result.exit_code)
    with _guard(lambda: _context(project)) as context:
        console = RichConsole(out, redact=context.secrets.redact)
        context.console = console
        with console:
            result = _guard(lambda: call(context), RUN_STOPPED)
    out.print()
    out.print(run_summary(result))
    out.print(run_verdict(result), soft_wrap=True)
    if _state["debug"]:
        for load in result.loads:
            if load.traceback:
                err.print(f"traceback of source {load.source}:", markup=False)
                err.print(load.traceback, markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(result.exit_code)


@app.command()
def status(
    project: ProjectOpt = None,
    target: TargetOpt = None,
    limit: Annotated[int, typer.Option(min=1, help="How many runs to show.")] = 10,
    as_json: JsonOpt = False,
) -> None:
    """Show recent runs, read from the warehouse's stackyard schema."""
    from dataclasses import asdict

    from stackyard.cli.render import lease_table, status_table

    runs, leases = _with_context(
        project,
        lambda context: (
            context.status(target=target, limit=limit),
            context.leases(target=target),
        ),
    )
    if as_json:
        _print_json([asdict(r) for r in runs])
        return
    if leases:
        out.print(lease_table(leases))
    if not runs:
        out.print("no runs yet on this target: `stackyard run` makes the first")
        return
    out.print(status_table(runs))


@app.command()
def sql(
    query: Annotated[
        str,
        typer.Argument(help="SQL, quoted; of several statements, the last one's rows print."),
    ],
    project: ProjectOpt = None,
    target: TargetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a query against a target and print the result."""
    from stackyard.cli.render import query_table

    result = _with_context(project, lambda context: context.sql(query, target=target))
    if as_json:
        # A name the query gives twice is told apart (a_2): a JSON object keeps one value a key
        _print_json({"columns": list(result.keys()), "rows": result.as_dicts()})
        return
    out.print(query_table(result))
    if result.statements > 1:
        out.print(
            f"[dim]{counted(result.statements, 'statement')} ran; the rows are the last one's[/]"
        )


# The runbook command groups, after the core commands so `--help` lists those first.
_access_commands.register(app)
_source_commands.register(app)
_monitor_commands.register(app)
_recovery_commands.register(app)
_lineage_commands.register(app)
_evolve_commands.register(app)
_incident_commands.register(app)
_backfill_commands.register(app)
_security_commands.register(app)
_reload_commands.register(app)
_adopt_commands.register(app)
_orchestration_commands.register(app)


def _stop_as_ctrl_c(signum: int, frame: object) -> None:
    # kill, systemd and container runtimes stop a process with SIGTERM: taken as Ctrl-C, so a
    # run records what it kept (`interrupted`) and gives its leases back instead of vanishing
    # from `stackyard status` with its leases held.
    raise KeyboardInterrupt


def main() -> None:
    """Entry point for the ``stackyard`` script."""
    import signal

    signal.signal(signal.SIGTERM, _stop_as_ctrl_c)
    try:
        code = _run_app()
    except SystemExit as exc:
        # click reports usage errors with exit code 2 already; keep every code as is.
        code = exc.code if exc.code is not None else 0
    _leave_abandoned_work(code)
    raise SystemExit(code)


def _run_app() -> object:
    """Run the CLI; its exit code. A command line click cannot read (an unknown option, a
    missing argument) is reported as click does, and with ``--json`` also as the JSON error
    every other refusal prints on stdout: a script reading the output got nothing before."""
    import typer
    from typer import rich_utils

    try:
        code = app(standalone_mode=False)
    except typer.TyperException as exc:  # click's errors (typer ships its own click)
        if not hasattr(exc, "format_message"):
            raise
        rich_utils.rich_format_error(exc)  # type: ignore[arg-type]
        if "--json" in sys.argv[1:]:
            from stackyard.cli.common import _print_json

            where = getattr(getattr(exc, "ctx", None), "command_path", None) or "stackyard"
            _print_json(
                {
                    "ok": False,
                    "error": f"usage error: {exc.format_message()}",
                    "hint": f"`{where} --help` lists what it takes",
                    "exit_code": int(getattr(exc, "exit_code", 2)),
                }
            )
        return int(getattr(exc, "exit_code", 2))
    except typer.Abort:
        rich_utils.rich_abort_error()
        return 1
    return code if isinstance(code, int) else 0


def _leave_abandoned_work(code: object) -> None:
    """Exit now when work given up on (a source stuck in its own code after a second
    Ctrl-C) still runs in a thread: the interpreter's teardown under it printed dozens of
    lines of native-extension leak reports after the command's own message. So does any
    interrupted command: DuckDB's own threads (a backfill's workers had queries running when
    Ctrl-C came) were torn down under native code at exit, which aborted the process after its
    own message ("terminate called … FATAL: exception not rethrown", signal 6 instead of
    130). What the command kept is committed by then; logs are flushed here."""
    import logging
    import threading

    given_up = any(
        t.name.startswith("stackyard-step") and t.is_alive() for t in threading.enumerate()
    )
    if not given_up and code != EXIT_INTERRUPTED:
        return
    logging.shutdown()
    _release_named_semaphores()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else 1)


def _release_named_semaphores() -> None:
    """Unlink the named semaphores of this process's multiprocessing locks, as a normal exit
    does: dbt makes its locks from a spawn context (the manifest's, the adapter's
    connections'), which are named semaphores only multiprocessing's exit handler unlinks.
    ``os._exit`` skips it, so a run with a source given up at its deadline left them in
    /dev/shm and its resource tracker warned of "leaked semaphore objects" after the run.

    Only finalizers with an exit priority run (locks, queues, pools being closed); joining
    child processes, which work given up on may have started, is left out: it could hang."""
    util = sys.modules.get("multiprocessing.util")
    if util is not None:
        util._run_finalizers(0)  # what its atexit handler runs first


if __name__ == "__main__":  # pragma: no cover
    main()

__all__ = ["EXIT_USAGE", "app", "main"]
