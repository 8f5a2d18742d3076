"""The access-control façade the Context hands out: ``Context(...).access().plan(...)``.

Every CLI command of issue 4 (``plan``, ``apply``, ``policy check``, ``user …``, ``access
review``) calls one method here and renders what it returns.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from stackyard.config.project import Project
from stackyard.errors import PolicyViolationError, UsageError, counted
from stackyard.infra.declaration import Declaration
from stackyard.infra.engine import Engine
from stackyard.infra.engines import engine_class, has_engine
from stackyard.infra.importer import AccessImport
from stackyard.infra.layout import build_declaration
from stackyard.infra.plan import Plan, diff
from stackyard.infra.policy import PolicyInput, PolicyReport, evaluate
from stackyard.infra.review import AccessReview, owned_beyond_declaration, review
from stackyard.infra.state import State, created_by
from stackyard.session import Sessions


@dataclass(frozen=True)
class ApplyResult:
    """What an apply did."""

    plan: Plan
    statements_run: int


class AccessControl:
    """Plans, applies, checks and reviews a project's warehouse access control.

    Args:
        project: the loaded project.
        sessions: its sessions, one per target (their owner closes them).
    """

    def __init__(self, project: Project, sessions: Sessions) -> None:
        self.project = project
        self.sessions = sessions

    # ------------------------------------------------------------------ building blocks

    def declaration(self) -> Declaration:
        """The declared state, expanded and validated.

        Raises:
            ConfigError: the declaration is inconsistent (the message says where).
        """
        return build_declaration(self.project.config)

    def engine(self, target: str | None = None, declaration: Declaration | None = None) -> Engine:
        """The access-control compiler for a target's engine."""
        name = self.project.target_name(target)
        config = self.project.config.targets[name]
        engine = engine_class(config.type, name)
        return engine.for_target(declaration or self.declaration(), config)

    def live_state(self, target: str | None = None, recorded: Path | None = None) -> State:
        """The live state of a target.

        Args:
            target: target name; default ``defaults.target``.
            recorded: a JSON file of recorded SHOW output (Snowflake), read instead of the
                warehouse.

        Raises:
            WarehouseUnreachableError: the target cannot be reached.
        """
        name = self.project.target_name(target)
        if recorded is not None:
            from stackyard.infra.state import snowflake_state

            try:
                data = json.loads(recorded.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise UsageError(f"cannot read recorded SHOW output {recorded}: {exc}") from None
            return snowflake_state(data)
        return self.engine(name).read_state(self.sessions.get(name).warehouse)

    # ------------------------------------------------------------------ plan and apply

    def plan(self, target: str | None = None, *, live_state: Path | None = None) -> Plan:
        """Read the live state of a target and diff it against the declaration.

        Args:
            target: target name; default ``defaults.target``.
            live_state: recorded SHOW output (Snowflake); without it a Snowflake plan is made
                against an empty account and marked so.

        Returns:
            The plan (possibly empty).

        Raises:
            ConfigError: the declaration is inconsistent.
            WarehouseUnreachableError: the target cannot be reached.
        """
        name = self.project.target_name(target)
        declaration = self.declaration()
        engine = self.engine(name, declaration)
        warehouse = self.sessions.get(name).warehouse
        known = live_state is not None or warehouse.REACHABLE_HERE
        live = self.live_state(name, live_state)
        engine.check_can_apply(live)
        plan = diff(
            engine,
            live,
            project=self.project.config.name,
            target=name,
            declaration_hash=declaration.digest(),
            live_known=known,
        )
        from stackyard.infra.snowpipe import with_snowpipes

        config = self.project.config
        schemas = {n: config.dataset_for(n) for n in config.sources}
        return with_snowpipes(plan, config.sources, schemas, warehouse.SNOWPIPE)

    def apply(
        self,
        plan_file: Path | None = None,
        *,
        target: str | None = None,
        allow_destructive: bool = False,
    ) -> ApplyResult:
        """Apply a saved plan, or plan and apply now.

        A saved plan is applied only if it is intact, was made for this project and target,
        the declaration has not changed, and the live state is still what it was planned
        against; otherwise nothing is applied.

        Args:
            plan_file: a file written by ``stackyard plan --out``; ``None`` to plan now.
            target: target name when planning now; with a saved plan, it must be the plan's.
            allow_destructive: permit REVOKE, DROP and key removal steps.

        Returns:
            The plan applied and how many statements ran.

        Raises:
            UsageError: the plan file is edited, foreign or stale, or holds destructive steps
                without ``allow_destructive``.
            WarehouseError: a statement failed; nothing was applied.
        """
        from stackyard.infra.executor import execute

        plan = self._checked_saved_plan(plan_file, target) if plan_file else self.plan(target)
        if not plan.live_known:
            raise UsageError(
                f"the plan for '{plan.target}' was made without reading the live state",
                hint="apply needs a target stackyard can connect to",
            )
        self._check_destructive(plan, allow_destructive)
        self._check_policies(plan.target)
        warehouse = self.sessions.get(plan.target).warehouse
        return ApplyResult(plan, execute(plan, warehouse))

    def _checked_saved_plan(self, path: Path, target: str | None = None) -> Plan:
        saved = Plan.load(path)
        hint = "run `stackyard plan --out FILE` again, review it, and apply the new file"
        if target is not None and self.project.target_name(target) != saved.target:
            raise UsageError(
                f"{path} was planned for target '{saved.target}', not '{target}': nothing applied",
                hint=f"drop --target, or plan '{target}' with `stackyard plan -t {target} --out "
                "FILE` and apply that file",
            )
        if saved.project != self.project.config.name:
            raise UsageError(
                f"{path} was planned for project '{saved.project}', not "
                f"'{self.project.config.name}': nothing applied",
                hint=hint,
            )
        if saved.target not in self.project.config.targets:
            raise UsageError(
                f"{path} names target '{saved.target}', which this project lacks", hint=hint
            )
        fresh = self.plan(saved.target)
        if fresh.declaration_hash != saved.declaration_hash:
            raise UsageError(
                f"the declaration in {self.project.config_file.name} changed since {path} was "
                "planned: nothing applied",
                hint=hint,
            )
        if fresh.live_fingerprint != saved.live_fingerprint and not fresh.steps:
            # Applied already (this file, or an apply of the same declaration): the live state
            # is the declared one. It read as if someone had changed the target since.
            return fresh
        if fresh.live_fingerprint != saved.live_fingerprint:
            raise UsageError(
                f"the live state of target '{saved.target}' changed since {path} was planned "
                "(someone granted, revoked or created something): nothing applied",
                hint=hint,
            )
        if fresh.steps != saved.steps:
            raise UsageError(
                f"the statements in {path} are not the ones stackyard plans: nothing applied",
                hint=hint,
            )
        return saved

    def _check_policies(self, target: str) -> None:
        """Apply follows policy: a plan that `policy check -t TARGET` fails is not applied,
        on any target (CI may not run the check before every apply)."""
        report = self.policy_check(target, applying=True)
        if report.ok:
            return
        listed = "\n".join(f"  [{v.rule}] {v.message}" for v in report.violations[:20])
        more = (
            f"\n  … and {len(report.violations) - 20} more" if len(report.violations) > 20 else ""
        )
        raise PolicyViolationError(
            f"`stackyard policy check -t {target}` fails with "
            f"{counted(len(report.violations), 'violation')}; nothing applied:\n{listed}{more}",
            hint=report.fix(),
        )

    @staticmethod
    def _check_destructive(plan: Plan, allowed: bool) -> None:
        steps = plan.destructive_steps
        if steps and not allowed:
            listed = "\n".join(f"  ! {s.statement}" for s in steps[:20])
            more = f"\n  … and {len(steps) - 20} more" if len(steps) > 20 else ""
            raise UsageError(
                f"the plan has {counted(len(steps), 'destructive step')} (revoke, drop, key "
                f"removal); nothing applied:\n{listed}{more}",
                hint="review them, then run again with --allow-destructive",
            )

    # ------------------------------------------------------------------ import

    def import_access(
        self,
        target: str | None = None,
        *,
        live_state: Path | None = None,
        replace: bool = False,
        dry_run: bool = False,
    ) -> AccessImport:
        """Declare the target's current roles, users, memberships and grants in stackyard.yml,
        so that the next plan is empty.

        Args:
            target: target name; default ``defaults.target``.
            live_state: recorded SHOW output (Snowflake), read instead of the warehouse.
            replace: replace the roles, people, grants … already declared under ``access:``.
            dry_run: compute and return the declaration; write nothing.

        Returns:
            What was declared, what could not be (kept as it is) and whether it was written.

        Raises:
            UsageError: ``access:`` declares entries already and ``replace`` is not set, or a
                Snowflake target without recorded SHOW output; nothing is written.
        """
        from dataclasses import replace as with_

        from stackyard.config.access import AccessConfig
        from stackyard.config.edit import ProjectFile
        from stackyard.infra.import_derive import derive
        from stackyard.infra.import_scope import Naming
        from stackyard.infra.importer import ENTRY_SECTIONS, kept_as_is, settle

        config = self.project.config
        name = self.project.target_name(target)
        declared = [s for s in ENTRY_SECTIONS if getattr(config.access, s)]
        if declared and not replace and not dry_run:
            raise UsageError(
                f"access: in {self.project.config_file.name} declares {', '.join(declared)} "
                "already: nothing was imported",
                hint="run with --dry-run to see what would be written, and with --replace to "
                "replace those entries with the warehouse's current access",
            )
        target_config = config.targets[name]
        engine_type = engine_class(target_config.type, name)
        warehouse = self.sessions.get(name).warehouse
        if not warehouse.SUPPORTS_ROLES:
            raise UsageError(
                f"target '{name}' ({target_config.type}) has no roles, users or grants to "
                "import: nothing was imported",
                hint="import from a Postgres or Snowflake target: `stackyard import access -t "
                "TARGET`",
            )
        if live_state is None and not warehouse.REACHABLE_HERE:
            raise UsageError(
                f"target '{name}' ({target_config.type}) cannot be read from here: nothing "
                "was imported",
                hint="record its SHOW output as JSON and pass it with --live-state FILE "
                "(docs/access-control.md)",
            )
        # The applier's rights do not matter to what is declared; the plan of an import is
        # made without them, as a reader's.
        live = with_(self.live_state(name, live_state), applier=None)
        naming = Naming(
            engine_type.USERS_ARE_ROLES,
            engine_type.DATABASE_ROLES,
            prefix=config.access.role_prefix if engine_type.USERS_ARE_ROLES else "",
            admin=str(getattr(target_config, "user", "") or ""),
            project=config.name,
        )
        database = str(getattr(target_config, "database", "") or "").upper()
        if not re.match(r"^[A-Z][A-Z0-9_]{0,62}$", database):
            database = config.access.analytics_database.upper()
        base = config.access.model_dump(
            include={
                "role_prefix",
                "production_targets",
                "analytics_database",
                "dev_database",
                "analytics_schemas",
                "reporting_schemas",
            },
            exclude_defaults=True,
        )

        def plan_for(access: dict[str, object]) -> Plan:
            checked = config.model_copy(update={"access": AccessConfig.model_validate(access)})
            declaration = build_declaration(checked)
            engine = engine_type.for_target(declaration, target_config)
            return diff(
                engine,
                live,
                project=config.name,
                target=name,
                declaration_hash=declaration.digest(),
            )

        previous = build_declaration(config)
        access, skipped = derive(live, naming, database, base, previous)
        access, taken, plan = settle(access, plan_for, naming)
        checked = config.model_copy(update={"access": AccessConfig.model_validate(access)})
        engine = engine_type.for_target(build_declaration(checked), target_config)
        managed = engine.desired(live).principals()
        entries = {k: v for k, v in access.items() if k in (*ENTRY_SECTIONS, "defaults")}
        if not dry_run:
            file = ProjectFile(self.project.config_file)
            file.set_access(entries, ENTRY_SECTIONS)
            file.save()
        return AccessImport(
            target=name,
            engine=target_config.type,
            access=entries,
            not_imported=tuple(
                [*skipped, *taken, *kept_as_is(live, engine.desired(live), managed)]
            ),
            unmanaged=plan.unmanaged,
            written=not dry_run,
            path=str(self.project.config_file),
            plan_steps=len(plan.steps),
        )

    # ------------------------------------------------------------------ policy

    def policy_check(
        self, target: str | None = None, *, live_state: Path | None = None, applying: bool = False
    ) -> PolicyReport:
        """Evaluate the built-in and project rules.

        Without a target only the declaration is checked (no connection: fit for CI), with
        the production rules on when the project has a production target. With a target the
        live state is read and the plan is checked too.

        Args:
            target: the target whose live state and plan are checked; ``None``: the
                declaration only.
            live_state: recorded SHOW output (Snowflake), read instead of the warehouse.
            applying: the check before applying the plan: what the plan takes back from the
                live state is not reported.

        Returns:
            The report; ``report.ok`` is ``False`` when any rule is broken.

        Raises:
            UserCodeError: a rule in policies/*.py failed.
        """
        config = self.project.config
        declaration = self.declaration()
        engines = frozenset(t.type for t in config.targets.values())
        plan = live = engine = None
        managed: frozenset[str] = frozenset()
        if target is None:
            production = any(t in config.targets for t in declaration.production_targets)
        else:
            name = self.project.target_name(target)
            production = name in declaration.production_targets
            engines = frozenset({config.targets[name].type})
            if has_engine(config.targets[name].type):
                engine = self.engine(name, declaration)
                live = self.live_state(name, live_state)
                plan = diff(
                    engine,
                    live,
                    project=config.name,
                    target=name,
                    declaration_hash=declaration.digest(),
                    live_known=live_state is not None
                    or self.sessions.get(name).warehouse.REACHABLE_HERE,
                )
                managed = frozenset(a.principal.label for a in engine.desired(live).accounts)
                managed |= frozenset(
                    a.principal.label
                    for a in live.accounts
                    if created_by(a.comment, a.principal.name, config.name, declaration.role_prefix)
                )
        data = PolicyInput(
            declaration, plan, production, engines, live, managed, engine, applying=applying
        )
        return evaluate(data, self.project.project_dir, target)

    # ------------------------------------------------------------------ review

    def review(self, target: str | None = None, *, live_state: Path | None = None) -> AccessReview:
        """Effective privileges per user, inactive users and grants outside the declaration."""
        name = self.project.target_name(target)
        declaration = self.declaration()
        engine = self.engine(name, declaration)
        live = self.live_state(name, live_state)
        plan = diff(
            engine,
            live,
            project=self.project.config.name,
            target=name,
            declaration_hash=declaration.digest(),
        )
        desired = engine.desired(live)
        declared = desired.principals()
        scope = (
            {m.member for m in live.memberships if m.role in declared}
            | declared
            | {g.grantee for g in live.grants if g.grantee in declared}
        )
        appliers = {engine.admin_user, live.applier.name if live.applier else ""} - {""}
        owned = owned_beyond_declaration(live, desired, appliers)
        return review(
            live,
            plan,
            scope=scope,
            owned=owned,
            schema_usage=engine.TABLES_NEED_SCHEMA_USAGE,
        )
