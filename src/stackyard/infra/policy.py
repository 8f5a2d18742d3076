"""Policy checks: built-in rules and the project's own, for CI to gate on.

Built-in rules (ids as reported):

* ``no-unmanaged-revocation``: the plan revokes nothing from a role or user the project does
  not declare (the ``enable_multiple_grants`` problem), except the declared roles it holds;
* ``service-key-pair-only``: service accounts log in with key pairs only: on Snowflake each
  has a public key and no password;
* ``no-public-grants``: nothing is granted to PUBLIC, in the declaration or in the warehouse
  (on a table or column of any schema the live state holds, declared or not, on a declared
  schema, as a default privilege), and PUBLIC holds no role (a role granted to PUBLIC is held
  by every user);
* ``no-person-loader-writer-in-prod``: on a production target no person holds a loader
  database's WRITER role, directly or through other roles, declared or (with a target)
  granted in the warehouse by hand;
* ``read-chain``: ANALYTICS_SOURCES_READER holds every loader database's READER;
* ``naming``: service accounts are SVC_<NAME> (SVC_<LOADER> for a loader), loader schemas are
  lower-case snake case (what dlt writes), no role name imitates a database role.

Project rules live in ``policies/*.py``: every function named ``check`` or ``check_*`` is
called as ``check(declaration, plan)`` (``plan`` is ``None`` when no target was read) and
returns the violations as strings (or nothing). An exception in it is reported as a
:class:`~stackyard.errors.UserCodeError` naming the file and function.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from stackyard.errors import UserCodeError
from stackyard.infra.declaration import (
    PUBLIC,
    SOURCES_READER,
    Declaration,
    is_service_account_name,
    looks_like_service_account,
    service_account_name,
)
from stackyard.infra.engine import Engine
from stackyard.infra.plan import Plan, Step
from stackyard.infra.public_grants import public_data_grants
from stackyard.infra.review import role_paths
from stackyard.infra.state import Membership, Principal, State
from stackyard.warehouse import warehouse_class

POLICIES_DIR = "policies"
_SNAKE = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class Violation:
    """One broken rule: which rule, what is wrong and what to do.

    ``found_in``: ``declaration`` when stackyard.yml (or a policy) asks for it, ``warehouse``
    when it was made by hand in the warehouse, which no edit of stackyard.yml takes back;
    ``taken_back``: the plan applied with ``--allow-destructive`` takes it back.
    """

    rule: str
    message: str
    source: str = "built-in"
    found_in: Literal["declaration", "warehouse"] = "declaration"
    taken_back: bool = False


@dataclass(frozen=True)
class Drift:
    """What a rule yields for a violation in the warehouse's live state, not the declaration."""

    message: str
    taken_back: bool = False  # by the plan, applied with --allow-destructive


@dataclass(frozen=True)
class PolicyReport:
    """The result of ``stackyard policy check``."""

    target: str | None
    production: bool
    rules: tuple[str, ...]
    violations: tuple[Violation, ...]
    plan: Plan | None = None

    @property
    def ok(self) -> bool:
        """No rule was broken."""
        return not self.violations

    def fix(self) -> str:
        """What to do about the violations, by where each was found: one made by hand in the
        warehouse is taken back there (stackyard.yml leaves it out already: editing it fixes
        nothing), one the declaration asks for in stackyard.yml.

        >>> drift = Violation("no-public-grants", "…", found_in="warehouse")
        >>> PolicyReport(None, True, (), (drift,)).fix()
        'the violations in the warehouse were made there by hand, not in stackyard.yml: revoke \
each by hand, as its line says; then plan again'
        >>> PolicyReport(None, True, (), (Violation("naming", "…"),)).fix()
        'fix stackyard.yml (or policies/*.py) until the check passes, then plan again'
        """
        said = []
        if self.plan is not None and any(v.taken_back for v in self.violations):
            said.append(
                f"`stackyard apply -t {self.plan.target} --allow-destructive` takes back the "
                "grants made by hand in the warehouse that its plan revokes"
            )
        if any(v.found_in == "warehouse" and not v.taken_back for v in self.violations):
            said.append(
                "the violations in the warehouse were made there by hand, not in "
                "stackyard.yml: revoke each by hand, as its line says"
            )
        if not said:
            return "fix stackyard.yml (or policies/*.py) until the check passes, then plan again"
        if any(v.found_in == "declaration" for v in self.violations):
            said.append("fix stackyard.yml (or policies/*.py) for the others")
        return "; ".join(said) + "; then plan again"


@dataclass(frozen=True)
class PolicyInput:
    """What the rules look at."""

    declaration: Declaration
    plan: Plan | None
    production: bool
    engines: frozenset[str]
    live: State | None = None
    managed: frozenset[str] = field(default_factory=frozenset)
    engine: Engine | None = None  # the target's, naming declared roles as the live state does
    # Checked before applying ``plan``: what the plan takes back is not held against it.
    applying: bool = False


Rule = Callable[[PolicyInput], Iterable[str | Drift]]


def _no_unmanaged_revocation(data: PolicyInput) -> Iterable[str]:
    if data.plan is None:
        return
    for step in data.plan.steps:
        if _takes_back_declared_role(step, data.managed):
            continue
        if step.kind.startswith("revoke") and step.grantee not in data.managed:
            yield (
                f"the plan revokes from {step.grantee}, which this project does not declare "
                f"({step.statement}): declare it, or leave its grants alone"
            )


def _takes_back_declared_role(step: Step, managed: frozenset[str]) -> bool:
    """A membership revocation that takes back only roles the project declares: who holds a
    declared role is the declaration's to say, whoever the holder is.

    >>> _takes_back_declared_role(Step("revoke_role", "…", "…", True, "bob",
    ...     loses=("role reader",)), frozenset({"reader"}))
    True
    """
    held = {item.removeprefix("role ") for item in step.loses if item.startswith("role ")}
    return (
        step.kind == "revoke_role"
        and bool(held)
        and len(held) == len(step.loses)
        and held <= managed
    )


def _service_key_pair_only(data: PolicyInput) -> Iterable[str | Drift]:
    if any(warehouse_class(kind).SUPPORTS_KEY_PAIR_AUTH for kind in data.engines):
        for user in data.declaration.users:
            if user.kind == "service" and not (user.rsa_public_key or user.rsa_public_key_2):
                yield (
                    f"service account {user.name} has no RSA public key, so it could only log "
                    f"in with a password: run `stackyard user rotate-key {user.name}`"
                )
    if data.live is not None:
        for account in data.live.accounts:
            if (
                account.principal.kind == "user"
                and account.attr("type") == "SERVICE"
                and account.attr("has_password") == "true"
            ):
                yield Drift(
                    f"service user {account.principal.name} has a password in the warehouse: "
                    "apply with --allow-destructive to unset it (key pairs only)",
                    taken_back=True,
                )


def _no_public_grants(data: PolicyInput) -> Iterable[str | Drift]:
    decl = data.declaration
    for access in decl.access:
        if access.role == PUBLIC:
            yield (
                f"access.grants gives PUBLIC {access.level} on {access.database}.{access.schema}:"
                " grant it to a functional role instead"
            )
    for wa in decl.warehouse_access:
        if wa.role == PUBLIC:
            yield f"access.grants gives PUBLIC usage of warehouse {wa.warehouse}"
    for membership in decl.memberships:
        if membership.member.upper() == PUBLIC:
            yield (
                f"the declaration grants role {membership.role} to PUBLIC, so every user holds "
                "it: grant it to a functional role instead"
            )
    if data.live is not None:
        # Each REVOKE is the target's engine's own (Snowflake's REVOKE ROLE … FROM ROLE
        # PUBLIC is a syntax error on Postgres); none when no engine was read.
        engine = data.engine
        for held in sorted(data.live.memberships):
            if held.member.kind == "public" or held.member.name.upper() == PUBLIC:
                revoke = f" ({engine.revoke_membership(held)})" if engine else ""
                yield Drift(
                    f"PUBLIC holds role {held.role.label} in the warehouse, so every user "
                    f"holds it: revoke it{revoke}"
                )
        yield from (Drift(m) for m in public_data_grants(data.live, decl, engine))


def _no_person_loader_writer(data: PolicyInput) -> Iterable[str | Drift]:
    if not data.production:
        return
    decl = data.declaration
    writers = {db.writer: db.name for db in decl.loader_databases()}
    # The memberships the declaration gives, read once: a hand-made one is revoked, not these.
    given = (
        data.engine.desired(data.live).memberships
        if data.live is not None and data.engine is not None
        else frozenset()
    )
    for user in decl.users:
        if user.kind != "person":
            continue
        declared = decl.roles_held(user.name) & set(writers)
        by_hand = set(writers) - declared
        yield from _writers_granted_by_hand(data, given, user.name, by_hand, writers)
        for role in sorted(declared):
            direct = role in user.roles
            how = (
                "directly"
                if direct
                else "through " + ", ".join(r for r in user.roles if role in decl.roles_held(r))
            )
            yield (
                f"person {user.name.lower()} holds {role} ({how}) in production: only the "
                f"loader's service account may write database {writers[role]}; give the "
                "person a reader role instead"
            )


def _writers_granted_by_hand(
    data: PolicyInput,
    declared: frozenset[Membership],
    person: str,
    roles: set[str],
    writers: dict[str, str],
) -> Iterable[Drift]:
    """The loader WRITER roles among ``roles`` that a person holds in the live state although
    the declaration does not give them (a GRANT made by hand, directly or to a role the
    person holds): the memberships plan, access review and security check read too.

    Each way the person holds one is named with its own REVOKE: one message per membership
    to take back, so that the user's fix is whole at once (taking back one way leaves the
    others, and the next check would fail again).

    What to revoke is a membership on the way that the declaration does not have (the person's
    own grant of the loader's service account, say), never one it does (the service account's
    WRITER role: taking that back would stop the loader)."""
    if data.live is None or data.engine is None:
        return
    engine = data.engine
    member = engine.principal(person)
    planned = data.plan.statements() if data.plan is not None else []
    for role in sorted(roles):
        paths = role_paths(data.live, member, engine.principal(role))
        ways: dict[tuple[str, bool], list[str]] = {}  # (the fix, the plan's) → the ways
        for path in paths:
            holders = (member, *path[:-1])
            by_hand = [
                engine.revoke_membership(m)
                for m in (Membership(r, h) for h, r in zip(holders, path, strict=True))
                if m not in declared
            ]
            taken_back = [revoke for revoke in by_hand if revoke in planned]
            if data.applying and taken_back:
                continue  # the plan being applied takes it back
            if taken_back and data.plan is not None:
                fix = (
                    f"`stackyard apply -t {data.plan.target} --allow-destructive` revokes it "
                    f"({taken_back[-1]})"
                )
            elif by_hand:
                fix = f"revoke it by hand ({by_hand[-1]})"
            else:
                fix = "revoke the grant made by hand on the way"
            ways.setdefault((fix, bool(taken_back)), []).append(
                "directly"
                if len(path) == 1
                else "through " + " → ".join(_declared_name(data, p) for p in path[:-1])
            )
        for (fix, planned_fix), how in ways.items():
            part = "one" if len(how) == 1 else str(len(how))
            several = f", {part} of {len(paths)} ways" if len(paths) > 1 else ""
            yield Drift(
                f"person {person.lower()} holds {role} ({', '.join(how)}{several}) in the "
                "warehouse, granted outside the declaration, in production: only the loader's "
                f"service account may write database {writers[role]}; {fix}",
                taken_back=planned_fix,
            )


def _declared_name(data: PolicyInput, principal: Principal) -> str:
    """A role or user of the live state as the declaration names it (``SVC_DLT``, ``alice``),
    so that one message does not name the same role two ways; its name in the warehouse when
    the project does not declare it. Only the SQL to run names it as the warehouse does."""
    if data.engine is not None:
        decl = data.declaration
        for role in decl.roles:
            if data.engine.principal(role.name) == principal:
                return role.name
        for user in decl.users:
            if data.engine.principal(user.name) == principal:
                return user.name.lower() if user.kind == "person" else user.name
    return principal.label


def _read_chain(data: PolicyInput) -> Iterable[str]:
    decl = data.declaration
    loaders = decl.loader_databases()
    if not loaders:
        return
    if decl.role(SOURCES_READER) is None:
        yield f"{SOURCES_READER} is not declared, so nobody reads raw data through the chain"
        return
    held = decl.roles_held(SOURCES_READER)
    for db in loaders:
        if db.reader not in held:
            yield (
                f"{SOURCES_READER} does not hold {db.reader}: developers and the transformer "
                f"cannot read database {db.name}; add it to access.roles."
                f"{SOURCES_READER}.member_of"
            )


def _naming(data: PolicyInput) -> Iterable[str]:
    decl = data.declaration
    for user in decl.users:
        if user.kind == "service" and not is_service_account_name(user.name):
            yield f"service account {user.name} should be named SVC_<NAME>"
        if user.kind == "service" and user.loader:
            expected = service_account_name(user.loader)
            if user.name != expected:
                yield f"the service account of loader {user.loader} should be {expected}"
        if user.kind == "person" and looks_like_service_account(user.name):
            yield f"person {user.name} has a service account's name (SVC_…)"
    for role in decl.roles:
        if role.database is None and role.name.endswith(("_DB_READER", "_DB_WRITER")):
            yield f"role {role.name} looks like a database role but is an account role"
    for db in decl.loader_databases():
        for schema in db.schemas:
            if not _SNAKE.match(schema):
                yield (
                    f"schema '{schema}' in loader database {db.name} is not lower-case snake "
                    "case: dlt would load into a differently named schema"
                )


BUILT_IN_RULES: dict[str, Rule] = {
    "no-unmanaged-revocation": _no_unmanaged_revocation,
    "service-key-pair-only": _service_key_pair_only,
    "no-public-grants": _no_public_grants,
    "no-person-loader-writer-in-prod": _no_person_loader_writer,
    "read-chain": _read_chain,
    "naming": _naming,
}


def project_rules(project_dir: Path) -> list[tuple[str, Callable[..., Any]]]:
    """The ``check`` / ``check_*`` functions in ``policies/*.py``, as ``(id, function)``.

    Raises:
        UserCodeError: a policy file fails to import.
    """
    folder = project_dir / POLICIES_DIR
    rules: list[tuple[str, Callable[..., Any]]] = []
    if not folder.is_dir():
        return rules
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        spec = importlib.util.spec_from_file_location(f"stackyard_policy_{path.stem}", path)
        if spec is None or spec.loader is None:
            continue
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as exc:  # the user's code: reported as theirs
            raise UserCodeError(
                f"{POLICIES_DIR}/{path.name} failed to import: {type(exc).__name__}: {exc}",
                hint="fix the policy file; run with --debug for the traceback",
            ) from exc
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if function.__module__ == module.__name__ and (
                name == "check" or name.startswith("check_")
            ):
                rules.append((f"{path.stem}.{name}", function))
    return rules


def evaluate(data: PolicyInput, project_dir: Path, target: str | None) -> PolicyReport:
    """Run every built-in and project rule.

    Args:
        data: the declaration, the plan (if a target was read) and facts about the target.
        project_dir: where ``policies/`` is.
        target: the target checked, for the report.

    Returns:
        The report; ``report.ok`` is ``False`` when any rule is broken.

    Raises:
        UserCodeError: a project rule raised or returned something that is not strings.
    """
    violations: list[Violation] = []
    names: list[str] = []
    for name, rule in BUILT_IN_RULES.items():
        names.append(name)
        for found in rule(data):
            if isinstance(found, Drift):
                violations.append(
                    Violation(
                        name, found.message, found_in="warehouse", taken_back=found.taken_back
                    )
                )
            else:
                violations.append(Violation(name, found))
    for name, function in project_rules(project_dir):
        names.append(name)
        source = f"{POLICIES_DIR}/{name.split('.')[0]}.py"
        try:
            result = function(data.declaration, data.plan)
            messages = [] if result is None else list(result)
        except Exception as exc:  # the user's code: reported as theirs
            raise UserCodeError(
                f"{source}: {name.split('.')[1]} raised {type(exc).__name__}: {exc}",
                hint="fix the policy function; run with --debug for the traceback",
            ) from exc
        for message in messages:
            if not isinstance(message, str):
                raise UserCodeError(
                    f"{source}: {name.split('.')[1]} returned {message!r}; a check returns "
                    "violations as strings",
                    hint="return a list of strings (empty when the policy holds)",
                )
            violations.append(Violation(name, message, source))
    return PolicyReport(target, data.production, tuple(names), tuple(violations), data.plan)
