"""``stackyard plan | apply | policy check | user … | access review``: access control as code.

Each command parses its options, calls one method of
:class:`~stackyard.infra.service.AccessControl` (``Context.access()``), renders the result and
maps it to an exit code: 0 ok, 1 a policy violation or a failed statement, 2 usage or
configuration. ``plan --detailed-exitcode``: 0 no changes, 2 changes present, 1 error.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

from stackyard.cli.common import (
    JsonOpt,
    ProjectOpt,
    TargetOpt,
    _print_json,
    _with_context,
    err,
    out,
)
from stackyard.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, counted
from stackyard.runbooks.steps import explain

LiveStateOpt = Annotated[
    Path | None,
    typer.Option(
        "--live-state",
        help="Recorded SHOW output (JSON) to plan a Snowflake target against, instead of "
        "connecting (docs/access-control.md).",
    ),
]

policy_app = typer.Typer(
    help="Check the access declaration and plan against policies.", no_args_is_help=True
)
KeyBackendOpt = Annotated[
    str | None,
    typer.Option(
        "--key-backend",
        help="Store the new private key in this secret manager (aws, vault) instead of a file.",
    ),
]
KeyNameOpt = Annotated[
    str | None,
    typer.Option(
        "--key-name", help="With --key-backend: the secret's name (default stackyard/PROJECT/USER)."
    ),
]

user_app = typer.Typer(
    help="Declare people and service accounts; rotate keys.", no_args_is_help=True
)
access_app = typer.Typer(help="Review who can access what.", no_args_is_help=True)


def plan(
    project: ProjectOpt = None,
    target: TargetOpt = None,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Save the plan as JSON for `stackyard apply`.")
    ] = None,
    sql_file: Annotated[
        Path | None, typer.Option("--sql", help="Also write the statements to a .sql file.")
    ] = None,
    detailed_exitcode: Annotated[
        bool,
        typer.Option("--detailed-exitcode", help="Exit 0: no changes, 2: changes, 1: error."),
    ] = False,
    live_state: LiveStateOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Diff the warehouse's live access state against the declaration and print the plan."""
    from stackyard.infra.explainer import explain

    try:
        result = _with_context(
            project, lambda context: context.access().plan(target, live_state=live_state)
        )
    except typer.Exit as exc:
        if detailed_exitcode and exc.exit_code != EXIT_OK:
            raise typer.Exit(EXIT_FAILED) from None
        raise
    if out_file is not None:
        result.save(out_file)
    if sql_file is not None:
        sql_file.write_text("".join(f"{s};\n" for s in result.statements()), encoding="utf-8")
    if as_json:
        _print_json(result.to_dict())
    else:
        out.print(explain(result), markup=False, highlight=False, soft_wrap=True)
        if out_file is not None:
            out.print(
                f"plan saved to {out_file}: apply it with `stackyard apply {out_file}`",
                markup=False,
                highlight=False,
            )
    if detailed_exitcode:
        raise typer.Exit(2 if result.has_changes else EXIT_OK)


def apply(
    plan_file: Annotated[
        Path | None, typer.Argument(help="A plan saved by `stackyard plan --out`.")
    ] = None,
    project: ProjectOpt = None,
    target: TargetOpt = None,
    allow_destructive: Annotated[
        bool, typer.Option("--allow-destructive", help="Permit REVOKE, DROP and key removal.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Apply a saved plan (refused if anything changed since), or plan and apply now."""
    from stackyard.infra.explainer import explain

    result = _with_context(
        project,
        lambda context: context.access().apply(
            plan_file, target=target, allow_destructive=allow_destructive
        ),
    )
    if as_json:
        _print_json({"statements_run": result.statements_run, "plan": result.plan.to_dict()})
        return
    if not result.plan.has_changes:
        out.print("nothing to apply: the warehouse matches the declaration")
        return
    out.print(explain(result.plan, applied=True), markup=False, highlight=False, soft_wrap=True)
    out.print(
        f"[green]✔[/] applied {counted(result.statements_run, 'statement')} in one transaction",
        highlight=False,
    )


@policy_app.command("check")
def policy_check(
    project: ProjectOpt = None,
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            "-t",
            help="Also read this target and check the plan "
            "(default: check the declaration only, without connecting).",
        ),
    ] = None,
    live_state: LiveStateOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Evaluate built-in rules and policies/*.py; exit 1 on any violation."""
    report = _with_context(
        project, lambda context: context.access().policy_check(target, live_state=live_state)
    )
    if as_json:
        _print_json(
            {
                "ok": report.ok,
                "target": report.target,
                "production": report.production,
                "rules": list(report.rules),
                "violations": [asdict(v) for v in report.violations],
            }
        )
    else:
        scope = f"target '{report.target}'" if report.target else "the declaration"
        prod = " (production rules on)" if report.production else ""
        if report.ok:
            out.print(
                f"[green]✔[/] {counted(len(report.rules), 'policy', 'policies')} "
                f"{'holds' if len(report.rules) == 1 else 'hold'} for {scope}{prod}",
                highlight=False,
            )
        else:
            err.print(
                f"[bold red]✘[/] {counted(len(report.violations), 'policy violation')} in "
                f"{scope}{prod}:",
                highlight=False,
            )
            for v in report.violations:
                err.print(
                    f"  [{v.rule}] {v.message}", markup=False, highlight=False, soft_wrap=True
                )
            err.print(f"  → {report.fix()}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_OK if report.ok else EXIT_FAILED)


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="alice for a person, SVC_<NAME> for a service.")],
    service: Annotated[
        bool, typer.Option("--service", help="A service account with a new RSA key pair.")
    ] = False,
    role: Annotated[
        list[str] | None, typer.Option("--role", help="A role to grant; repeatable.")
    ] = None,
    loader: Annotated[
        str | None, typer.Option(help="Service account: the loader whose database it writes.")
    ] = None,
    print_key: Annotated[
        bool,
        typer.Option(
            "--print-key",
            help="Print the private key once instead of saving it under .stackyard/keys.",
        ),
    ] = False,
    schema: Annotated[
        list[str] | None,
        typer.Option(
            "--schema",
            help="With --loader: a schema the loader writes in its database; repeatable.",
        ),
    ] = None,
    key_backend: KeyBackendOpt = None,
    key_name: KeyNameOpt = None,
    project: ProjectOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the runbook's steps; change nothing.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Declare a user in stackyard.yml (a service account gets a key pair; with --loader, a
    new loader also gets its database, roles and place in the read chain)."""
    schemas = tuple(schema or ())
    if dry_run:
        plan = _with_context(
            project,
            lambda context: context.users().plan_add(
                name,
                service=service,
                roles=role or [],
                loader=loader,
                print_key=print_key,
                schemas=schemas,
                key_backend=key_backend,
                key_name=key_name,
            ),
        )
        if as_json:
            _print_json(plan.to_dict())
        else:
            for line in explain(plan):
                out.print(line, markup=False, highlight=False, soft_wrap=True)
        return
    change = _with_context(
        project,
        lambda context: context.users().add(
            name,
            service=service,
            roles=role or [],
            loader=loader,
            print_key=print_key,
            schemas=schemas,
            key_backend=key_backend,
            key_name=key_name,
        ),
    )
    if as_json:
        _print_json(change.to_dict())
        return
    _render_user_change(change)


@user_app.command("rotate-key")
def user_rotate_key(
    name: Annotated[str, typer.Argument(help="The service account.")],
    finish: Annotated[
        bool, typer.Option("--finish", help="Make the new key the only key (removes the old).")
    ] = False,
    print_key: Annotated[
        bool,
        typer.Option("--print-key", help="Print the new private key once instead of saving it."),
    ] = False,
    key_backend: KeyBackendOpt = None,
    key_name: KeyNameOpt = None,
    project: ProjectOpt = None,
    target: TargetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Put a new key in the second slot and apply; --finish removes the old key."""
    change = _with_context(
        project,
        lambda context: context.users().rotate_key(
            name,
            finish=finish,
            target=target,
            print_key=print_key,
            key_backend=key_backend,
            key_name=key_name,
        ),
    )
    _render_user_change(change, as_json)


@user_app.command("remove")
def user_remove(
    name: Annotated[str, typer.Argument(help="The person or service account.")],
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove a user from stackyard.yml; the next apply (--allow-destructive) drops it."""
    change = _with_context(project, lambda context: context.users().remove(name))
    _render_user_change(change, as_json)


def _render_user_change(change: Any, as_json: bool = False) -> None:
    if as_json:
        _print_json(change.to_dict())
        return
    out.print(f"[green]✔[/] {change.kind} {change.name}: {change.action}", highlight=False)
    if change.key_file is not None:
        out.print(
            f"  private key written to {change.key_file} (mode 0600, not in git)",
            markup=False,
            highlight=False,
        )
    if change.key_stored is not None:
        out.print(f"  private key stored as {change.key_stored}", markup=False, highlight=False)
    for path in change.keys_removed:
        out.print(f"  retired private key {path} deleted", markup=False, highlight=False)
    if change.private_key is not None:
        out.print("  private key (shown once, store it now):", markup=False)
        out.print(change.private_key, markup=False, highlight=False)
    if change.plan is not None:
        state = "applied" if change.applied else "not applied"
        out.print(
            f"  plan on '{change.plan.target}': {counted(len(change.plan.steps), 'statement')}, "
            f"{state}",
            markup=False,
            highlight=False,
        )
    if change.loses:
        out.print(
            f"  {change.name} loses: {', '.join(change.loses)}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    if change.next_step:
        out.print(f"  next: {change.next_step}", markup=False, highlight=False)


@access_app.command("review")
def access_review(
    project: ProjectOpt = None,
    target: TargetOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    live_state: LiveStateOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Each user's effective privileges, inactive users, grants outside the declaration."""
    from rich.table import Table
    from rich.text import Text

    if fmt not in ("table", "csv", "json"):
        err.print(f"error: unknown --format '{fmt}'; expected table, csv or json", markup=False)
        raise typer.Exit(EXIT_USAGE)
    if as_json and fmt == "csv":
        err.print("error: --json and --format csv ask for two formats; give one", markup=False)
        raise typer.Exit(EXIT_USAGE)
    report = _with_context(
        project, lambda context: context.access().review(target, live_state=live_state)
    )
    if as_json or fmt == "json":
        _print_json(report.to_dict())
        return
    if fmt == "csv":
        out.file.write(report.to_csv())
        return
    table = Table("user", "privilege", "object", "via", title=f"access on '{report.target}'")
    for p in report.privileges:
        # Granted but refused by the warehouse: marked, not dropped, so the grant is seen.
        # Text, not markup: a schema's name may hold brackets.
        via = Text.assemble(p.via, (f"\nnot effective: {p.blocked}" if p.blocked else "", "red"))
        table.add_row(p.user, p.privilege, f"{p.object_kind.lower()} {p.object_name}", via)
    out.print(table)
    for user in report.inactive:
        out.print(f"inactive: {user.name} ({user.reason})", markup=False, highlight=False)
    for grant in report.outside_declaration:
        out.print(f"outside the declaration: {grant}", markup=False, highlight=False)


import_app = typer.Typer(
    help="Declare what a warehouse has already, so stackyard can take it over.",
    no_args_is_help=True,
)


@import_app.command("access")
def import_access(
    project: ProjectOpt = None,
    target: TargetOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print what would be written; change nothing.")
    ] = False,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace", help="Replace the roles, people and grants access: declares already."
        ),
    ] = False,
    live_state: LiveStateOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the warehouse's current roles, users, memberships and grants into access: in
    stackyard.yml, so that the next `stackyard plan` is empty; what cannot be declared is
    listed and kept as it is."""
    import yaml

    result = _with_context(
        project,
        lambda context: context.access().import_access(
            target, live_state=live_state, replace=replace, dry_run=dry_run
        ),
    )
    if as_json:
        _print_json(result.to_dict())
        return
    counts = result.counts()
    found = (
        f"{counted(counts['roles'], 'role')}, {counted(counts['people'], 'person', 'people')}, "
        f"{counted(counts['service_accounts'], 'service account')}, "
        f"{counted(counts['memberships'], 'membership')}, {counted(counts['schemas'], 'schema')}, "
        f"{counted(counts['schema_grants'], 'schema grant')}"
    )
    if result.written:
        out.print(
            f"[green]✔[/] declared {found} of target '{result.target}' in {result.path}",
            highlight=False,
        )
    else:
        out.print(f"would declare {found} of target '{result.target}' (dry run):", highlight=False)
        text = yaml.safe_dump({"access": result.access}, sort_keys=False)
        out.print(text.rstrip(), markup=False, highlight=False, soft_wrap=True)
    kept = len(result.not_imported) + len(result.unmanaged)
    if kept:
        # Both lists are what stays undeclared: the heading counts the lines under it.
        out.print(f"not declared ({kept}), kept as it is:", highlight=False)
        for line in result.not_imported:
            out.print(f"  - {line}", markup=False, highlight=False, soft_wrap=True)
    for line in result.unmanaged:
        out.print(
            f"  - {line}: granted to a role not imported, kept",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    if result.written:
        out.print(
            f"next: `stackyard plan -t {result.target}` shows no changes; tighten access: "
            "and plan again",
            markup=False,
            highlight=False,
        )


def register(app: typer.Typer) -> None:
    """Add the access-control commands to the ``stackyard`` app."""
    app.command("plan")(plan)
    app.command("apply")(apply)
    app.add_typer(policy_app, name="policy")
    app.add_typer(user_app, name="user")
    app.add_typer(access_app, name="access")
    app.add_typer(import_app, name="import")
