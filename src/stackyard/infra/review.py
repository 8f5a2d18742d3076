"""Access review: who can do what, read from the warehouse itself.

For each user (a login role on Postgres), every privilege it holds directly or through the
role hierarchy, with the path of roles it comes through; the users the warehouse reports as
inactive; and the grants outside the declaration (kept because they belong to others, or
pending revocation because they are on declared roles).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass

from stackyard.infra.plan import Plan
from stackyard.infra.state import InactiveUser, Principal, State


@dataclass(frozen=True, order=True)
class EffectivePrivilege:
    """One privilege a user holds, and through which roles (``via``: nearest first).

    ``blocked``: why the privilege does not work although it is granted (e.g. ``no USAGE on
    schema secret``: Postgres refuses every table of a schema its reader may not use);
    empty when it works.
    """

    user: str
    privilege: str
    object_kind: str
    object_name: str
    via: str
    blocked: str = ""

    @property
    def effective(self) -> bool:
        """Whether the user can use the privilege as granted."""
        return not self.blocked


@dataclass(frozen=True)
class AccessReview:
    """The result of ``stackyard access review``."""

    target: str
    privileges: tuple[EffectivePrivilege, ...]
    inactive: tuple[InactiveUser, ...]
    outside_declaration: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        """The review as ``--json`` prints it."""
        return {
            "target": self.target,
            "privileges": [
                {
                    "user": p.user,
                    "privilege": p.privilege,
                    "object_kind": p.object_kind,
                    "object": p.object_name,
                    "via": p.via,
                    "effective": p.effective,
                    "blocked": p.blocked,
                }
                for p in self.privileges
            ],
            "inactive": [{"user": u.name, "reason": u.reason} for u in self.inactive],
            "outside_declaration": list(self.outside_declaration),
        }

    def to_csv(self) -> str:
        """One row per effective privilege, for a spreadsheet or an auditor."""
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["user", "privilege", "object_kind", "object", "via", "blocked"])
        for p in self.privileges:
            writer.writerow([p.user, p.privilege, p.object_kind, p.object_name, p.via, p.blocked])
        return buffer.getvalue()


def _is_user(state: State, principal: Principal) -> bool:
    account = state.account(principal)
    if account is None:
        return False
    return principal.kind == "user" or account.attr("login") == "true"


def owned_beyond_declaration(live: State, desired: State, appliers: set[str]) -> list[str]:
    """Tables and views in declared schemas owned by a declared user whom the declaration
    gives no ``CREATE`` on the schema. An owner may change, empty or drop its table whatever
    is granted, and Postgres shows no grant for it: a reader made owner by hand could delete
    every row while plan, review and security check all read "nothing found".

    Args:
        live: the live state (who owns what).
        desired: the declared state.
        appliers: the users plans and runs are applied as (their tables are theirs).
    """
    declared = {a.principal for a in desired.accounts if _is_user(desired, a.principal)}
    held: dict[Principal, set[Principal]] = {}
    for m in desired.memberships:
        held.setdefault(m.member, set()).add(m.role)
    schemas = {c.name for c in desired.containers if c.kind == "schema"}
    found = []
    for table in sorted(live.tables):
        owner = next((p for p in declared if p.name == table.owner), None)
        if owner is None or table.owner in appliers or table.schema not in schemas:
            continue
        reach, queue = {owner}, [owner]
        while queue:
            for role in held.get(queue.pop(), set()) - reach:
                reach.add(role)
                queue.append(role)
        creates = any(
            g.privilege == "CREATE" and g.on_kind == "SCHEMA" and g.on == table.schema
            for g in desired.grants
            if g.grantee in reach
        )
        if not creates:
            found.append(
                f"owner: {owner.label} owns {table.kind.lower()} {'.'.join(table.path)}, "
                "with no CREATE on its schema declared (an owner may change, empty or drop it)"
            )
    return found


def _usable_schemas(live: State, held: set[Principal]) -> set[tuple[str, ...]]:
    """The schemas a user holding the roles ``held`` (itself among them) may use: USAGE on
    them through those roles or PUBLIC, or owning them."""
    names = {p.name for p in held}
    usable = {
        g.on
        for g in live.grants
        if g.on_kind == "SCHEMA"
        and g.privilege == "USAGE"
        and (g.grantee in held or g.grantee.kind == "public")
    }
    return usable | {
        c.name
        for c in live.containers
        if c.kind == "schema" and dict(c.attrs).get("owner") in names
    }


def _blocked(
    kind: str, on: tuple[str, ...], usable: set[tuple[str, ...]] | None, superuser: bool
) -> str:
    """Why a privilege on ``on`` does not work for its holder ('' when it does).

    >>> _blocked("TABLE", ("secret", "pay"), {("marts",)}, False)
    'no USAGE on schema secret'
    >>> _blocked("TABLE", ("marts", "orders"), {("marts",)}, False)
    ''
    """
    depth = {"TABLE": 1, "COLUMN": 2}.get(kind)
    if usable is None or superuser or depth is None or on[:-depth] in usable:
        return ""
    return f"no USAGE on schema {'.'.join(on[:-depth])}"


def _parents(live: State) -> dict[Principal, list[Principal]]:
    """The roles each member holds directly."""
    parents: dict[Principal, list[Principal]] = {}
    for m in live.memberships:
        parents.setdefault(m.member, []).append(m.role)
    return parents


def role_paths(live: State, member: Principal, role: Principal) -> list[tuple[Principal, ...]]:
    """Every way ``member`` holds ``role`` in the live state: each chain of memberships from
    it, the roles on the way nearest first and ``role`` last (a NOINHERIT role on the way
    counts: its member takes on what lies beyond with SET ROLE). Taking one membership back
    leaves the others.

    >>> from stackyard.infra.state import Membership
    >>> a, w, u = Principal("role", "a"), Principal("role", "w"), Principal("role", "u")
    >>> live = State(memberships=frozenset({Membership(w, u), Membership(a, u),
    ...     Membership(w, a)}))
    >>> [[p.label for p in path] for path in role_paths(live, u, w)]
    [['w'], ['a', 'w']]
    """
    parents = _parents(live)
    found: list[tuple[Principal, ...]] = []
    # Postgres refuses a membership that would make a loop, but a recorded state may hold
    # one: a role already on the way is not followed again.
    todo: list[tuple[Principal, tuple[Principal, ...]]] = [(member, ())]
    while todo:
        current, path = todo.pop()
        for held in sorted(parents.get(current, []), reverse=True):
            if held == role:
                found.append((*path, held))
            elif held != member and held not in path:
                todo.append((held, (*path, held)))
    return sorted(found, key=lambda path: (len(path), path))


def _reach(
    live: State, user: Principal, parents: dict[Principal, list[Principal]]
) -> tuple[set[Principal], dict[Principal, tuple[tuple[Principal, ...], str]]]:
    """The roles whose privileges ``user`` uses (itself among them), and every role it reaches
    through the hierarchy with its path (nearest first, empty for ``user`` itself) and why it
    does not use that role's privileges ('' when it does).

    A NOINHERIT member does not use the privileges of the roles granted to it, only after SET
    ROLE (https://www.postgresql.org/docs/15/role-membership.html). Breadth first, through
    inheriting members before the others, so each role is reported through its shortest path
    that works.
    """
    reached: dict[Principal, tuple[tuple[Principal, ...], str]] = {}
    inherited: set[Principal] = set()
    for through_noinherit in (False, True):
        seen = {user}
        queue: list[tuple[Principal, tuple[Principal, ...], str]] = [(user, (), "")]
        while queue:
            current, path, why = queue.pop(0)
            if not why:
                inherited.add(current)
            reached.setdefault(current, (path, why))
            account = live.account(current)
            if account is not None and account.attr("inherit") == "false" and not why:
                if not through_noinherit:
                    continue
                why = (
                    f"{current.label} is NOINHERIT: it uses its roles' privileges only after "
                    "SET ROLE"
                )
            for role in sorted(parents.get(current, [])):
                if role not in seen:
                    seen.add(role)
                    queue.append((role, (*path, role), why))
    return inherited, reached


def review(
    live: State,
    plan: Plan,
    *,
    scope: set[Principal] | None = None,
    owned: Sequence[str] = (),
    schema_usage: bool = False,
) -> AccessReview:
    """Effective privileges of every user, inactive users, and grants outside the declaration.

    Args:
        live: the live state.
        plan: the plan against the declaration (its ``unmanaged`` grants and revocations are
            what lies outside the declaration).
        scope: only these users; default every user that holds any role or grant.
        owned: tables owned beyond the declaration (:func:`owned_beyond_declaration`).
        schema_usage: a table's privileges work only for a user that may use its schema (the
            engine's ``TABLES_NEED_SCHEMA_USAGE``); those that do not are marked ``blocked``.

    Returns:
        The review.
    """
    parents = _parents(live)
    grants: dict[Principal, list[tuple[str, str, tuple[str, ...]]]] = {}
    for g in live.grants:
        grants.setdefault(g.grantee, []).append((g.privilege, g.on_kind, g.on))
    rows: set[EffectivePrivilege] = set()
    users = [p for p in live.principals() if _is_user(live, p)]
    for user in sorted(users):
        if scope is not None and user not in scope:
            continue
        inherited, reached = _reach(live, user, parents)
        found = [
            (privilege, kind, on, " → ".join(p.label for p in path) or "(direct)", blocked)
            for holder, (path, blocked) in reached.items()
            for privilege, kind, on in grants.get(holder, [])
        ]
        usable = _usable_schemas(live, inherited) if schema_usage else None
        account = live.account(user)
        superuser = account is not None and "SUPERUSER" in account.attr("powers").split(",")
        for privilege, kind, on, via, not_inherited in found:
            blocked = "" if superuser else not_inherited or _blocked(kind, on, usable, superuser)
            rows.add(EffectivePrivilege(user.label, privilege, kind, ".".join(on), via, blocked))
    best: dict[tuple[str, str, str, str], EffectivePrivilege] = {}
    for row in sorted(rows, key=lambda r: (r.blocked != "", r.via.count("→"), r)):
        best.setdefault((row.user, row.privilege, row.object_kind, row.object_name), row)
    outside = (
        list(plan.unmanaged)
        + list(owned)
        + [f"{s.description} (pending: on a declared role)" for s in plan.steps if s.destructive]
    )
    return AccessReview(
        target=plan.target,
        privileges=tuple(sorted(best.values())),
        inactive=live.inactive_users,
        outside_declaration=tuple(outside),
    )
