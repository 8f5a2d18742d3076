"""A plan: the ordered, typed steps that take the live state to the declared one.

The diff is the same for every engine, and it keeps the ownership boundary
(:mod:`stackyard.infra.ownership`):

* a privilege is revoked only when its grantee is a role or user the project declares, and
  its object is one the project declares; grants made by others to anyone else survive, and
  are listed as ``unmanaged``;
* a membership is revoked when the role held is declared and its holder is declared too, or
  is a role the project answers for although it does not declare it (on Postgres, one of its
  prefix): who holds a declared role is the declaration's to say. Other holders are listed as
  ``unmanaged``;
* a role or user is dropped only when it is no longer declared *and* carries this project's
  marker in its comment, i.e. this project created it;
* schemas and databases are never dropped (they hold data): an undeclared one is left alone;
* a grant or membership the declaration gives, held WITH GRANT OPTION or WITH ADMIN OPTION
  (added by hand), keeps the grant and loses the option: a declaration never gives one;
* every REVOKE, DROP, key removal or login removal is marked ``destructive``; applying such a
  plan needs ``--allow-destructive``.

A saved plan records the project, target, a hash of the declaration and a fingerprint of the
part of the live state it depends on (see :func:`~stackyard.infra.ownership.in_scope`), plus
a checksum of the whole file; see :meth:`Plan.load`.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from stackyard.errors import UsageError
from stackyard.infra.engine import Engine
from stackyard.infra.ownership import droppable, elsewhere, holdings, in_scope, membership_changes
from stackyard.infra.state import FutureGrant, Grant, State, marker, prefix_marker

PLAN_FORMAT = "stackyard.access-plan/1"
K = TypeVar("K")
F = TypeVar("F")


@dataclass(frozen=True)
class Step:
    """One statement of a plan, with what it means for whom.

    Attributes:
        kind: ``create_schema``, ``create_role``, ``grant``, ``revoke``, ``drop_role`` …
        statement: the SQL, ready to run.
        description: the change in words.
        destructive: it removes access or objects; needs ``--allow-destructive``.
        grantee: whose access changes, if anyone's.
        gains: what the grantee gains.
        loses: what the grantee loses.
    """

    kind: str
    statement: str
    description: str
    destructive: bool = False
    grantee: str = ""
    gains: tuple[str, ...] = ()
    loses: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Step:
        """The step saved by :func:`dataclasses.asdict`."""
        return cls(
            kind=str(data["kind"]),
            statement=str(data["statement"]),
            description=str(data["description"]),
            destructive=bool(data["destructive"]),
            grantee=str(data.get("grantee", "")),
            gains=tuple(data.get("gains", ())),
            loses=tuple(data.get("loses", ())),
        )


@dataclass(frozen=True)
class Plan:
    """What an apply would do on one target.

    Attributes:
        project: the project's name.
        target: the target's name.
        engine: the target's type.
        steps: the statements, in the order they run.
        notes: what the declaration asks for that this engine does not do.
        unmanaged: grants on declared objects to roles the project does not declare: kept.
        declaration_hash: :meth:`Declaration.digest` of the declaration planned from.
        live_fingerprint: :meth:`State.fingerprint` of the live state planned from.
        live_known: ``False`` when the live state could not be read (a Snowflake target
            without recorded SHOW output): the plan then creates everything.
    """

    project: str
    target: str
    engine: str
    steps: tuple[Step, ...]
    notes: tuple[str, ...] = ()
    unmanaged: tuple[str, ...] = ()
    declaration_hash: str = ""
    live_fingerprint: str = ""
    live_known: bool = True

    @property
    def has_changes(self) -> bool:
        """Whether applying would change anything."""
        return bool(self.steps)

    @property
    def destructive_steps(self) -> tuple[Step, ...]:
        """The steps that remove access or objects."""
        return tuple(s for s in self.steps if s.destructive)

    def statements(self) -> list[str]:
        """The SQL, in order."""
        return [s.statement for s in self.steps]

    def to_dict(self) -> dict[str, Any]:
        """The plan as JSON-ready data, with its checksum."""
        data: dict[str, Any] = {
            "format": PLAN_FORMAT,
            "project": self.project,
            "target": self.target,
            "engine": self.engine,
            "declaration_hash": self.declaration_hash,
            "live_fingerprint": self.live_fingerprint,
            "live_known": self.live_known,
            "notes": list(self.notes),
            "unmanaged": list(self.unmanaged),
            "steps": [asdict(s) for s in self.steps],
        }
        data["checksum"] = _checksum(data)
        return data

    def save(self, path: Path) -> None:
        """Write the plan as JSON."""
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Plan:
        """Read a saved plan, refusing one that is not intact.

        Raises:
            UsageError: the file is missing, not a stackyard plan, or was edited (its
                checksum no longer matches); nothing is applied.
        """
        hint = "run `stackyard plan --out FILE` again and apply that file unedited"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UsageError(f"no plan file at {path}", hint=hint) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UsageError(f"{path} is not a plan file: {exc}", hint=hint) from None
        if not isinstance(data, dict) or data.get("format") != PLAN_FORMAT:
            raise UsageError(
                f"{path} is not a stackyard access plan (expected format {PLAN_FORMAT})",
                hint=hint,
            )
        if data.get("checksum") != _checksum({k: v for k, v in data.items() if k != "checksum"}):
            raise UsageError(
                f"{path} was edited after `stackyard plan` wrote it (its checksum does not "
                "match): nothing applied",
                hint=hint,
            )
        try:
            return cls(
                project=str(data["project"]),
                target=str(data["target"]),
                engine=str(data["engine"]),
                steps=tuple(Step.from_dict(s) for s in data["steps"]),
                notes=tuple(data["notes"]),
                unmanaged=tuple(data["unmanaged"]),
                declaration_hash=str(data["declaration_hash"]),
                live_fingerprint=str(data["live_fingerprint"]),
                live_known=bool(data["live_known"]),
            )
        except (KeyError, TypeError) as exc:
            raise UsageError(f"{path} is missing {exc} : not a complete plan", hint=hint) from None


def _checksum(data: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


# ---------------------------------------------------------------------- diff


def _path(name: tuple[str, ...]) -> str:
    return ".".join(name)


def _where(schema: tuple[str, ...]) -> str:
    """Where a future grant applies: a schema, or (no schema) the whole database.

    >>> _where(("marts",)), _where(())
    ('marts', 'every schema')
    """
    return _path(schema) if schema else "every schema"


def future_grant_text(f: FutureGrant) -> str:
    """A live default privilege in words, as plans and imports list one they leave alone.

    >>> from stackyard.infra.state import Principal
    >>> future_grant_text(FutureGrant("SELECT", "TABLES", (), Principal("role", "r"), "admin"))
    'SELECT on future tables in every schema created by admin to r'
    """
    what = f"{f.privilege} on future {f.on_kind.lower()} in {_where(f.schema)}"
    by = f" created by {f.creator}" if f.creator else ""
    return f"{what}{by} to {f.grantee.label}"


def outside_declared_schemas(f: FutureGrant, declared_schemas: set[tuple[str, ...]]) -> bool:
    """Whether a live default privilege is on a schema the declaration does not have, so a
    plan leaves it alone whoever holds it. One set without a schema (no IN SCHEMA) covers
    every schema, the declared ones among them: a plan takes it back from a declared role.

    >>> from stackyard.infra.state import Principal
    >>> r = Principal("role", "r")
    >>> [outside_declared_schemas(FutureGrant("SELECT", "TABLES", s, r), {("marts",)})
    ...  for s in (("raw",), ("marts",), ())]
    [True, False, False]
    """
    return bool(f.schema) and f.schema not in declared_schemas


def _group(facts: Iterable[F], key: Callable[[F], K]) -> list[list[F]]:
    groups: dict[K, list[F]] = defaultdict(list)
    for fact in facts:
        groups[key(fact)].append(fact)
    return [sorted(groups[k]) for k in sorted(groups)]  # type: ignore[type-var]


_CONTAINER_ORDER = {"database": 0, "warehouse": 1, "schema": 2}
_ACCOUNT_ORDER = {"database_role": 0, "role": 1, "user": 2, "public": 3}
_GRANT_ORDER = {"DATABASE": 0, "WAREHOUSE": 1, "SCHEMA": 2, "TABLE": 3, "COLUMN": 4}


def _revoking(kind: str, statement: str, what: str, who: str) -> Step:
    """A step that takes ``what`` away from ``who``: destructive, as every revocation is.

    >>> _revoking("revoke_role", "REVOKE r FROM bob", "role r", "bob").description
    'revoke role r from bob'
    """
    return Step(kind, statement, f"revoke {what} from {who}", True, who, loses=(what,))


def _differs(old: tuple[tuple[str, str], ...], new: tuple[tuple[str, str], ...]) -> bool:
    before = dict(old)
    return any(before.get(k, "") != v for k, v in new)


def diff(
    engine: Engine,
    live: State,
    *,
    project: str,
    target: str,
    declaration_hash: str,
    live_known: bool = True,
) -> Plan:
    """The plan that takes ``live`` to what ``engine``'s declaration asks for.

    Args:
        engine: the compiler for the target's engine, holding the declaration.
        live: the live state read from the target.
        project: project name (its marker tags what this project creates).
        target: target name, recorded in the plan.
        declaration_hash: the declaration's digest, recorded in the plan.
        live_known: whether ``live`` was really read.

    Returns:
        The plan; empty when live already matches.
    """
    desired = engine.desired(live)
    tag = f"{marker(project)} {prefix_marker(engine.declaration.role_prefix)}".strip()
    steps: list[Step] = []

    # -- containers: created or altered, never dropped
    live_containers = {(c.kind, c.name): c for c in live.containers}
    for c in sorted(desired.containers, key=lambda c: (_CONTAINER_ORDER[c.kind], c.name)):
        live_c = live_containers.get((c.kind, c.name))
        label = f"{c.kind} {_path(c.name)}"
        if live_c is None:
            steps += [
                Step(f"create_{c.kind}", s, f"create {label}") for s in engine.create_container(c)
            ]
        elif _differs(live_c.attrs, c.attrs):
            steps += [
                Step(f"alter_{c.kind}", s, f"change {label} to {dict(c.attrs)}")
                for s in engine.alter_container(live_c, c)
            ]

    # -- accounts
    live_accounts = {a.principal: a for a in live.accounts}
    declared = {a.principal for a in desired.accounts}
    dropped = droppable(live, declared, project, engine.declaration.role_prefix)
    managed = declared | dropped
    for account in sorted(
        desired.accounts, key=lambda a: (_ACCOUNT_ORDER[a.principal.kind], a.principal)
    ):
        p = account.principal
        old = live_accounts.get(p)
        kind = "user" if p.kind == "user" or account.attr("login") == "true" else "role"
        if old is None:
            steps += [
                Step(f"create_{kind}", s, f"create {kind} {p.label}", grantee=p.label)
                for s in engine.create_account(account, tag)
            ]
        elif _differs(old.attrs, account.attrs):
            for statement, destructive in engine.alter_account(old, account):
                steps.append(
                    Step(
                        f"alter_{kind}", statement, f"change {kind} {p.label}", destructive, p.label
                    )
                )

    # -- memberships
    for m in sorted(desired.memberships - live.memberships):
        steps.append(
            Step(
                "grant_role",
                engine.grant_membership(m),
                f"grant role {m.role.label} to {m.member.label}",
                grantee=m.member.label,
                gains=(f"role {m.role.label}",),
            )
        )
    revocable, kept_memberships = membership_changes(engine, live, desired, dropped)
    revoke_steps: list[Step] = []
    for m in sorted(revocable):
        revoke_steps.append(
            _revoking(
                "revoke_role", engine.revoke_membership(m), f"role {m.role.label}", m.member.label
            )
        )

    # -- privileges on objects
    declared_objects = {(c.kind.upper(), c.name) for c in desired.containers}
    declared_schemas = {c.name for c in desired.containers if c.kind == "schema"}

    def is_managed_object(on_kind: str, on: tuple[str, ...]) -> bool:
        if on_kind in ("TABLE", "COLUMN"):
            return on[: -1 if on_kind == "TABLE" else -2] in declared_schemas
        return (on_kind, on) in declared_objects

    def describe(g: list[Grant]) -> str:
        privileges = ", ".join(sorted({x.privilege for x in g}))
        return f"{privileges} on {g[0].on_kind.lower()} {_path(g[0].on)}"

    def grant_key(g: Grant) -> tuple[Any, ...]:
        return (_GRANT_ORDER.get(g.on_kind, 9), g.on, g.grantee)

    for group in _group(desired.grants - live.grants, grant_key):
        what = describe(group)
        who = group[0].grantee.label
        steps.append(
            Step("grant", engine.grant(group), f"grant {what} to {who}", grantee=who, gains=(what,))
        )
    unmanaged = [f"role {m.role.label} to {m.member.label}" for m in kept_memberships]
    revoke_grants: list[Grant] = []
    for g in sorted(live.grants - desired.grants):
        if not is_managed_object(g.on_kind, g.on):
            continue
        if g.grantee in managed:
            if g.grantee not in dropped:
                revoke_grants.append(g)
        else:
            unmanaged.append(
                f"{g.privilege} on {g.on_kind.lower()} {_path(g.on)} to {g.grantee.label}"
            )

    def future_key(f: FutureGrant) -> tuple[Any, ...]:
        return (f.schema, f.on_kind, f.creator, f.grantee)

    def describe_future(f: list[FutureGrant]) -> str:
        privileges = ", ".join(sorted({x.privilege for x in f}))
        by = f" created by {f[0].creator}" if f[0].creator else ""
        return f"{privileges} on future {f[0].on_kind.lower()} in {_where(f[0].schema)}{by}"

    revoke_future: list[FutureGrant] = []
    for f in sorted(live.future_grants - desired.future_grants):
        if outside_declared_schemas(f, declared_schemas):
            continue
        if f.grantee in managed:
            if f.grantee not in dropped:
                revoke_future.append(f)
        else:
            unmanaged.append(future_grant_text(f))
    # -- options a declared role was given by hand on what the declaration gives it: with
    #    them it may pass the privilege or role on. The grant or membership itself stays.
    grant_options = sorted(live.grant_options & desired.grants)
    admin_options = sorted(live.admin_options & desired.memberships)
    # -- what the applying user needs first (Postgres: membership in the roles it sets
    #    default privileges for or drops, when it is not a superuser)
    acts_as = {f.creator for f in desired.future_grants - live.future_grants}
    acts_as |= {f.creator for f in revoke_future} | {p.name for p in dropped}
    touched = {m.role.name for m in desired.memberships - live.memberships}
    touched |= {m.role.name for m in revocable | set(admin_options)} | {p.name for p in dropped}
    touched |= {
        a.principal.name
        for a in desired.accounts
        if a.principal in live_accounts and _differs(live_accounts[a.principal].attrs, a.attrs)
    }
    for statement, why in engine.applier_grants(live, acts_as, touched):
        steps.append(Step("grant_role", statement, why))
    for fgroup in _group(desired.future_grants - live.future_grants, future_key):
        what = describe_future(fgroup)
        who = fgroup[0].grantee.label
        steps.append(
            Step(
                "grant_future",
                engine.grant_future(fgroup),
                f"grant {what} to {who}",
                grantee=who,
                gains=(what,),
            )
        )

    for fgroup in _group(revoke_future, future_key):
        statement = engine.grant_future(fgroup, revoke=True)
        steps.append(
            _revoking("revoke_future", statement, describe_future(fgroup), fgroup[0].grantee.label)
        )
    for group in _group(revoke_grants, grant_key):
        statement = engine.grant(group, revoke=True)
        steps.append(_revoking("revoke", statement, describe(group), group[0].grantee.label))
    for group in _group(grant_options, grant_key):
        what = f"grant option for {describe(group)}"
        statement = engine.revoke_grant_option(group)
        steps.append(_revoking("revoke_grant_option", statement, what, group[0].grantee.label))
    for m in admin_options:
        what = f"admin option on role {m.role.label}"
        statement = engine.revoke_admin_option(m)
        steps.append(_revoking("revoke_admin_option", statement, what, m.member.label))
    steps += revoke_steps

    # -- drops, last: users before roles, so nothing still holds a role being dropped
    notes = list(engine.notes())
    for p in sorted(dropped, key=lambda p: (-_ACCOUNT_ORDER[p.kind], p)):
        account = live_accounts[p]
        statements = engine.drop_account(account)
        if not statements:
            notes.append(f"{p.label} is no longer declared; it is removed with its database")
            continue
        loses = holdings(live, p)
        kind = "user" if p.kind == "user" or account.attr("login") == "true" else "role"
        for statement in statements:
            steps.append(
                Step(
                    f"drop_{kind}",
                    statement,
                    f"remove {kind} {p.label} (no longer declared)",
                    True,
                    p.label,
                    loses=loses,
                )
            )
            loses = ()
    if others := elsewhere(live, declared, project, engine.declaration.role_prefix):
        notes.append(
            f"kept: {len(others)} role(s) marked as made by a project named {project} under "
            f"another role_prefix ({', '.join(others[:5])}{' …' if len(others) > 5 else ''}): "
            "another project's, or this one's before its prefix changed (drop those by hand)"
        )
    return Plan(
        project=project,
        target=target,
        engine=engine.KIND,
        steps=tuple(steps),
        notes=tuple(notes),
        unmanaged=tuple(unmanaged),
        declaration_hash=declaration_hash,
        live_fingerprint=in_scope(live, managed, declared_schemas, is_managed_object).fingerprint(),
        live_known=live_known,
    )
