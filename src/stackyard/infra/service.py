"""The access-control façade the Context hands out: ``Context(...).access().plan(...)``.

Every CLI command of issue 4 (``plan``, ``apply``, ``policy check``, ``user …``, ``access
review``) calls one method here and renders what it returns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from stackyard.config.model import ProjectConfig
from stackyard.errors import UsageError, did_you_mean
from stackyard.infra.declaration import Declaration, build_declaration
from stackyard.infra.engine import Engine
from stackyard.infra.plan import Plan, diff
from stackyard.infra.policy import PolicyInput, PolicyReport, evaluate
from stackyard.infra.review import AccessReview, review
from stackyard.infra.state import State, marker
from stackyard.warehouse.base import Warehouse


class Project(Protocol):
    """What access control needs from the loaded project; :class:`stackyard.context.Context`
    is one (a protocol, so this layer does not import the one above it)."""

    config: ProjectConfig
    config_file: Path
    project_dir: Path

    def target_name(self, target: str | None) -> str:
        """The target to use, validated."""
        ...

    def warehouse(self, target: str | None = None) -> Warehouse:
        """The warehouse of a target."""
        ...


@dataclass(frozen=True)
class ApplyResult:
    """What an apply did."""

    plan: Plan
    statements_run: int


@dataclass(frozen=True)
class UserChange:
    """The result of ``user add``, ``user rotate-key`` and ``user remove``.

    Attributes:
        name: the user, as declared.
        kind: ``service`` or ``person``.
        action: ``added``, ``rotation started``, ``rotation finished`` or ``removed``.
        key_file: where the new private key was written, if one was.
        private_key: the new private key, only when asked to print it instead of saving it.
        plan: the plan applied (or to apply) on the target, if one was computed.
        applied: whether that plan was applied.
        next_step: what the user does next, in words.
    """

    name: str
    kind: str
    action: str
    key_file: Path | None = None
    private_key: str | None = None
    plan: Plan | None = None
    applied: bool = False
    next_step: str = ""


class AccessControl:
    """Plans, applies, checks and reviews a project's warehouse access control.

    Args:
        context: the loaded project.
    """

    def __init__(self, context: Project) -> None:
        self.context = context

    # ------------------------------------------------------------------ building blocks

    def declaration(self) -> Declaration:
        """The declared state, expanded and validated.

        Raises:
            ConfigError: the declaration is inconsistent (the message says where).
        """
        return build_declaration(self.context.config)

    def engine(self, target: str | None = None, declaration: Declaration | None = None) -> Engine:
        """The access-control compiler for a target's engine."""
        name = self.context.target_name(target)
        config = self.context.config.targets[name]
        decl = declaration or self.declaration()
        if config.type == "postgres":
            from stackyard.infra.postgres import PostgresEngine

            return PostgresEngine(decl, admin_user=config.user)
        if config.type == "snowflake":
            from stackyard.infra.snowflake import SnowflakeEngine

            return SnowflakeEngine(decl, admin_user=config.user)
        if config.type == "duckdb":
            from stackyard.infra.duckdb import DuckDBEngine

            return DuckDBEngine(decl)
        raise UsageError(
            f"access control is not implemented for {config.type} targets (target '{name}')",
            hint="BigQuery access is IAM, managed outside the warehouse; use a Postgres, "
            "Snowflake or DuckDB target",
        )

    def live_state(self, target: str | None = None, recorded: Path | None = None) -> State:
        """The live state of a target.

        Args:
            target: target name; default ``defaults.target``.
            recorded: a JSON file of recorded SHOW output (Snowflake), read instead of the
                warehouse.

        Raises:
            WarehouseUnreachableError: the target cannot be reached.
        """
        name = self.context.target_name(target)
        config = self.context.config.targets[name]
        if recorded is not None:
            from stackyard.infra.state import snowflake_state

            try:
                data = json.loads(recorded.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise UsageError(f"cannot read recorded SHOW output {recorded}: {exc}") from None
            return snowflake_state(data)
        warehouse = self.context.warehouse(name)
        if config.type == "postgres":
            from stackyard.infra.state import read_postgres_state

            return read_postgres_state(warehouse.raw_connection())  # type: ignore[attr-defined]
        if config.type == "duckdb":
            from stackyard.infra.state import Container

            result = warehouse.query(
                "SELECT schema_name FROM information_schema.schemata "
                "WHERE catalog_name = current_database()"
            )
            return State(containers=frozenset(Container("schema", (r[0],)) for r in result.rows))
        return State()

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
        name = self.context.target_name(target)
        declaration = self.declaration()
        engine = self.engine(name, declaration)
        warehouse = self.context.warehouse(name)
        known = live_state is not None or warehouse.REACHABLE_HERE
        live = self.live_state(name, live_state)
        return diff(
            engine,
            live,
            project=self.context.config.name,
            target=name,
            declaration_hash=declaration.digest(),
            live_known=known,
        )

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
            target: target name when planning now (a saved plan names its own).
            allow_destructive: permit REVOKE, DROP and key removal steps.

        Returns:
            The plan applied and how many statements ran.

        Raises:
            UsageError: the plan file is edited, foreign or stale, or holds destructive steps
                without ``allow_destructive``.
            WarehouseError: a statement failed; nothing was applied.
        """
        from stackyard.infra.executor import execute

        plan = self._checked_saved_plan(plan_file) if plan_file else self.plan(target)
        if not plan.live_known:
            raise UsageError(
                f"the plan for '{plan.target}' was made without reading the live state",
                hint="apply needs a target stackyard can connect to",
            )
        self._check_destructive(plan, allow_destructive)
        warehouse = self.context.warehouse(plan.target)
        return ApplyResult(plan, execute(plan, warehouse))

    def _checked_saved_plan(self, path: Path) -> Plan:
        saved = Plan.load(path)
        hint = "run `stackyard plan --out FILE` again, review it, and apply the new file"
        if saved.project != self.context.config.name:
            raise UsageError(
                f"{path} was planned for project '{saved.project}', not "
                f"'{self.context.config.name}': nothing applied",
                hint=hint,
            )
        if saved.target not in self.context.config.targets:
            raise UsageError(
                f"{path} names target '{saved.target}', which this project lacks", hint=hint
            )
        fresh = self.plan(saved.target)
        if fresh.declaration_hash != saved.declaration_hash:
            raise UsageError(
                f"the declaration in {self.context.config_file.name} changed since {path} was "
                "planned: nothing applied",
                hint=hint,
            )
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

    @staticmethod
    def _check_destructive(plan: Plan, allowed: bool) -> None:
        steps = plan.destructive_steps
        if steps and not allowed:
            listed = "\n".join(f"  ! {s.statement}" for s in steps[:20])
            more = f"\n  … and {len(steps) - 20} more" if len(steps) > 20 else ""
            raise UsageError(
                f"the plan has {len(steps)} destructive steps (revoke, drop, key removal); "
                f"nothing applied:\n{listed}{more}",
                hint="review them, then run again with --allow-destructive",
            )

    # ------------------------------------------------------------------ policy

    def policy_check(
        self, target: str | None = None, *, live_state: Path | None = None
    ) -> PolicyReport:
        """Evaluate the built-in and project rules.

        Without a target only the declaration is checked (no connection: fit for CI), with
        the production rules on when the project has a production target. With a target the
        live state is read and the plan is checked too.

        Returns:
            The report; ``report.ok`` is ``False`` when any rule is broken.

        Raises:
            UserCodeError: a rule in policies/*.py failed.
        """
        config = self.context.config
        declaration = self.declaration()
        engines = frozenset(t.type for t in config.targets.values())
        plan = live = None
        managed: frozenset[str] = frozenset()
        if target is None:
            production = any(t in config.targets for t in declaration.production_targets)
        else:
            name = self.context.target_name(target)
            production = name in declaration.production_targets
            engines = frozenset({config.targets[name].type})
            if config.targets[name].type != "bigquery":
                engine = self.engine(name, declaration)
                live = self.live_state(name, live_state)
                plan = diff(
                    engine,
                    live,
                    project=config.name,
                    target=name,
                    declaration_hash=declaration.digest(),
                    live_known=live_state is not None
                    or self.context.warehouse(name).REACHABLE_HERE,
                )
                managed = frozenset(a.principal.label for a in engine.desired(live).accounts)
                managed |= frozenset(
                    a.principal.label for a in live.accounts if marker(config.name) in a.comment
                )
        data = PolicyInput(declaration, plan, production, engines, live, managed)
        return evaluate(data, self.context.project_dir, target)

    # ------------------------------------------------------------------ review

    def review(self, target: str | None = None, *, live_state: Path | None = None) -> AccessReview:
        """Effective privileges per user, inactive users and grants outside the declaration."""
        name = self.context.target_name(target)
        declaration = self.declaration()
        engine = self.engine(name, declaration)
        live = self.live_state(name, live_state)
        plan = diff(
            engine,
            live,
            project=self.context.config.name,
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
        return review(live, plan, scope=scope)

    # ------------------------------------------------------------------ users

    def user_add(
        self,
        name: str,
        *,
        service: bool = False,
        roles: list[str] | None = None,
        loader: str | None = None,
        print_key: bool = False,
    ) -> UserChange:
        """Declare a person, or a service account with a new key pair, in stackyard.yml.

        Args:
            name: the user's name (a person: ``alice``; a service: ``SVC_FIVETRAN``).
            service: declare a service account (key-pair authentication).
            roles: roles to grant (a person's default: ANALYTICS_DEVELOPER).
            loader: for a service account, the loader whose database it writes.
            print_key: return the private key instead of writing it to .stackyard/keys.

        Returns:
            What changed; the plan is left to ``stackyard plan`` / ``apply``.

        Raises:
            UsageError: the name is already declared, or reserved (PUBLIC, SYSADMIN, pg_* …).
            ConfigError: the change would make stackyard.yml invalid (nothing is written).
        """
        from stackyard.config.names import reserved_reason
        from stackyard.infra.users import ProjectFile, generate_key_pair, write_private_key

        reserved = reserved_reason(name)
        if reserved:
            raise UsageError(
                f"cannot add user {reserved}",
                hint="pick another name; nothing was written",
            )
        file = ProjectFile(self.context.config_file)
        declaration = self.declaration()
        existing = declaration.user(name) or declaration.role(name)
        explicit = file.key_of("service_accounts", name) or file.key_of("people", name)
        derived_service = (
            service
            and existing is not None
            and declaration.user(name) is not None
            and declaration.user(name).kind == "service"  # type: ignore[union-attr]
            and explicit is None
        )
        if existing is not None and not derived_service:
            raise UsageError(
                f"'{name}' is already declared as a {'user' if declaration.user(name) else 'role'}",
                hint="pick another name, or `stackyard user remove` it first",
            )
        if not service:
            entry: dict[str, Any] = {}
            if roles:
                entry["roles"] = list(roles)
            file.section("people")[name.lower()] = entry
            file.save()
            return UserChange(
                name.lower(),
                "person",
                "added",
                next_step="run `stackyard plan`, then `stackyard apply`",
            )
        user = declaration.user(name)
        entry = {}
        loader = loader or (user.loader if user else None)
        if loader:
            entry["loader"] = loader
        if roles:
            entry["roles"] = list(roles)
        pair = generate_key_pair()
        entry["rsa_public_key"] = _key_text(pair.public_pem)
        file.section("service_accounts")[name.upper()] = entry
        file.validate()
        key_file = None if print_key else write_private_key(self.context.project_dir, name, pair)
        file.save()
        return UserChange(
            name.upper(),
            "service",
            "added",
            key_file=key_file,
            private_key=pair.private_pem if print_key else None,
            next_step="store the private key in your secret manager, then run `stackyard plan` "
            "and `stackyard apply`",
        )

    def rotate_key(
        self,
        name: str,
        *,
        finish: bool = False,
        target: str | None = None,
        print_key: bool = False,
    ) -> UserChange:
        """Rotate a service account's key without downtime, and apply on the target.

        Without ``finish``: a new key pair goes into the second slot (RSA_PUBLIC_KEY_2) and is
        applied; both keys work. With ``finish``: the new key moves to the first slot and the
        old one is removed, which is applied too (the only destructive step allowed).

        Raises:
            UsageError: not a service account, a rotation already in progress, or none to
                finish.
        """
        from stackyard.infra.users import ProjectFile, generate_key_pair, write_private_key

        declaration = self.declaration()
        user = declaration.user(name)
        if user is None or user.kind != "service":
            known = [u.name for u in declaration.users if u.kind == "service"]
            raise UsageError(
                f"'{name}' is not a declared service account{did_you_mean(name.upper(), known)}",
                hint=f"service accounts: {', '.join(known) or '(none)'}; add one with "
                "`stackyard user add NAME --service`",
            )
        file = ProjectFile(self.context.config_file)
        key = file.key_of("service_accounts", user.name) or user.name
        entry = file.section("service_accounts", key)
        if user.loader and "loader" not in entry:
            entry["loader"] = user.loader
        key_file = None
        private = None
        if finish:
            if not user.rsa_public_key_2:
                raise UsageError(
                    f"no rotation to finish for {user.name}: its second key slot is empty",
                    hint=f"start one with `stackyard user rotate-key {user.name}`",
                )
            entry["rsa_public_key"] = entry["rsa_public_key_2"]
            del entry["rsa_public_key_2"]
            action = "rotation finished"
        else:
            if user.rsa_public_key and user.rsa_public_key_2:
                raise UsageError(
                    f"a rotation of {user.name}'s key is in progress (both slots hold keys)",
                    hint=f"finish it first: `stackyard user rotate-key {user.name} --finish`",
                )
            pair = generate_key_pair()
            slot = "rsa_public_key_2" if user.rsa_public_key else "rsa_public_key"
            entry[slot] = _key_text(pair.public_pem)
            file.validate()
            if print_key:
                private = pair.private_pem
            else:
                key_file = write_private_key(self.context.project_dir, user.name, pair)
            action = "rotation started"
        file.save()
        self.context.config = _reload(self.context)
        plan = self.plan(target)
        allowed = all(
            s.kind == "alter_user" and s.grantee.upper().endswith(user.name)
            for s in plan.destructive_steps
        )
        applied = False
        next_step = ""
        warehouse = self.context.warehouse(plan.target)
        if not warehouse.REACHABLE_HERE:
            next_step = (
                f"run the plan's statements on '{plan.target}' (`stackyard plan -t "
                f"{plan.target} --sql FILE`)"
            )
        elif not allowed:
            next_step = (
                "the plan holds other destructive steps: review `stackyard plan`, then "
                "`stackyard apply --allow-destructive`"
            )
        else:
            self.apply(target=plan.target, allow_destructive=finish)
            applied = True
        if not finish:
            next_step = next_step or (
                "deploy the new private key to every client, then run "
                f"`stackyard user rotate-key {user.name} --finish`"
            )
        return UserChange(user.name, "service", action, key_file, private, plan, applied, next_step)

    def user_remove(self, name: str) -> UserChange:
        """Remove a person or service account from stackyard.yml.

        The next plan drops the user (a destructive step: ``apply --allow-destructive``).

        Raises:
            UsageError: the user is not declared, or is derived from the sources.
        """
        from stackyard.infra.users import ProjectFile

        file = ProjectFile(self.context.config_file)
        for section, kind in (("people", "person"), ("service_accounts", "service")):
            key = file.key_of(section, name)
            if key is not None:
                del file.section(section)[key]
                file.save()
                return UserChange(
                    name,
                    kind,
                    "removed",
                    next_step="run `stackyard plan` to review, then `stackyard apply "
                    "--allow-destructive` (its key files in .stackyard/keys are kept)",
                )
        declaration = self.declaration()
        user = declaration.user(name)
        if user is not None and user.loader:
            raise UsageError(
                f"{user.name} is derived from the sources (the service account of loader "
                f"{user.loader}), not written in stackyard.yml",
                hint=f"it goes away with the last source loaded by {user.loader}",
            )
        known = [u.name for u in declaration.users]
        raise UsageError(
            f"no user '{name}' is declared{did_you_mean(name.upper(), known)}",
            hint=f"declared users: {', '.join(known) or '(none)'}",
        )


def _key_text(pem: str) -> str:
    from stackyard.infra.snowflake import key_body

    return key_body(pem)


def _reload(context: Project) -> Any:
    from stackyard.config.loader import load_project_config

    return load_project_config(context.config_file)
