"""The ownership boundary: which parts of the live state a project answers for.

There is no state file, so what a project may take away is read from the live state and the
declaration alone:

* a role or user is dropped only when it is no longer declared *and* carries the project's
  marker (the project created it) and, where roles are shared by a whole server, its prefix;
* a privilege is revoked only when its grantee is declared and its object is declared;
* a membership is revoked when the role held is declared and so is its holder, or when the
  holder is a role the engine says the project answers for (:meth:`Engine.takes_back_from`):
  who holds a declared role is the declaration's to say, whether the holder was never
  declared or was adopted and is declared no longer;
* a grant or membership the declaration gives loses a grant or admin option added by hand:
  the declaration gives the privilege, never the right to pass it on.
"""

from __future__ import annotations

from collections.abc import Callable

from stackyard.infra.engine import Engine
from stackyard.infra.state import Membership, Principal, State, created_by, marker


def droppable(
    live: State, declared: set[Principal], project: str, prefix: str
) -> frozenset[Principal]:
    """Live roles and users this project created and declares no longer.

    Args:
        live: the live state.
        declared: the principals the declaration has.
        project: the project's name (its marker).
        prefix: ``access.role_prefix``: two projects of the same name on one Postgres cluster
            (roles are cluster-wide) are told apart by it, even when one prefix starts with
            the other (:func:`created_by`).

    Returns:
        The principals a plan drops.
    """
    return frozenset(
        a.principal
        for a in live.accounts
        if a.principal not in declared and created_by(a.comment, a.principal.name, project, prefix)
    )


def elsewhere(live: State, declared: set[Principal], project: str, prefix: str) -> list[str]:
    """Roles carrying the project's marker that :func:`droppable` leaves alone for their
    prefix: a same-named project's, or this project's before its ``role_prefix`` changed
    (those kept every grant, and nothing said so)."""
    return sorted(
        a.principal.label
        for a in live.accounts
        if a.principal not in declared
        and marker(project) in a.comment
        and not created_by(a.comment, a.principal.name, project, prefix)
    )


def membership_changes(
    engine: Engine,
    live: State,
    desired: State,
    dropped: frozenset[Principal],
) -> tuple[frozenset[Membership], tuple[Membership, ...]]:
    """The live memberships a plan revokes, and those it keeps that hold a declared role.

    A dropped role loses its memberships with it, so none of its are revoked one by one.

    Args:
        engine: the target's engine (what it answers for beyond the declaration).
        live: the live state.
        desired: the declared state.
        dropped: what the plan drops (:func:`droppable`).

    Returns:
        ``(revoked, kept)``: ``kept`` are declared roles held by roles outside the project's
        reach (another project's, the applying user's), listed, never revoked.
    """
    declared = desired.principals()
    revoked: set[Membership] = set()
    kept: list[Membership] = []
    for m in sorted(live.memberships - desired.memberships):
        if m.role not in declared or m.member in dropped:
            continue
        if m.member in declared or engine.takes_back_from(m.member, live):
            revoked.add(m)
        elif not _is_applier(engine, live, m.member):
            kept.append(m)
    return frozenset(revoked), tuple(kept)


def _is_applier(engine: Engine, live: State, principal: Principal) -> bool:
    """The user plans are applied as holds roles to apply them: its own business."""
    names = {engine.admin_user, live.applier.name if live.applier else ""} - {""}
    return principal.name in names


def in_scope(
    live: State,
    principals: set[Principal],
    schemas: set[tuple[str, ...]],
    is_managed_object: Callable[[str, tuple[str, ...]], bool],
) -> State:
    """The part of the live state a plan depends on, for its fingerprint.

    Roles are cluster-wide on Postgres and accounts are account-wide on Snowflake: a role
    created or granted by another team (or another project on the same server) between plan
    and apply must not make a saved plan stale. Kept: its declared and droppable principals,
    memberships and grants touching them, and every grant on the objects it declares. The
    applying user is left out (projects may share it, and each apply grants it roles): what
    a plan needs from it is in the plan's statements, which apply compares as well.
    """

    def ours(p: Principal) -> bool:
        return p in principals

    return State(
        containers=frozenset(
            c for c in live.containers if is_managed_object(c.kind.upper(), c.name)
        ),
        accounts=frozenset(a for a in live.accounts if ours(a.principal)),
        memberships=frozenset(m for m in live.memberships if ours(m.role) or ours(m.member)),
        grants=frozenset(
            g for g in live.grants if ours(g.grantee) or is_managed_object(g.on_kind, g.on)
        ),
        future_grants=frozenset(
            f for f in live.future_grants if ours(f.grantee) or f.schema in schemas or not f.schema
        ),
        tables=frozenset(t for t in live.tables if t.schema in schemas),
        grant_options=frozenset(
            g for g in live.grant_options if ours(g.grantee) or is_managed_object(g.on_kind, g.on)
        ),
        admin_options=frozenset(m for m in live.admin_options if ours(m.role) or ours(m.member)),
    )


def holdings(state: State, principal: Principal) -> tuple[str, ...]:
    """What a principal holds, in the words of a plan's ``loses``."""
    held = [f"role {m.role.label}" for m in sorted(state.memberships) if m.member == principal]
    held += [
        f"{g.privilege} on {g.on_kind.lower()} {'.'.join(g.on)}"
        for g in sorted(state.grants)
        if g.grantee == principal
    ]
    return tuple(held) or ("login",)
