"""The first half of ``stackyard import access``: which live roles and users are the target's,
what each is (role, person, service account) and what it holds.

Only roles that matter to the target are taken: on Postgres, where roles are shared by every
database of the server, the roles with a grant in the target's database (and, with
``access.role_prefix``, every role with that prefix), those carrying the project's marker, and
the roles and users linked to them by memberships; never the target's own user, and never
what that user was granted to apply a plan (PostgreSQL lets it set default privileges for, or
reassign the objects of, only a role it is a member of).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from stackyard.config.access import PRINCIPAL_PATTERN
from stackyard.config.names import reserved_reason
from stackyard.infra.declaration import looks_like_service_account, reader_role, writer_role
from stackyard.infra.state import Account, Principal, State, created_by

_PRINCIPAL = re.compile(PRINCIPAL_PATTERN)


@dataclass
class Naming:
    """How live principals map to declared names, and which ones are the target's.

    Attributes:
        users_are_roles: the engine's ``USERS_ARE_ROLES`` (names in lower case, prefixed).
        database_roles: the engine's ``DATABASE_ROLES``.
        prefix: ``access.role_prefix`` (engines whose users are roles).
        admin: the target's own user, never imported.
        project: the project's name (its marker).
        why_not: live names that cannot be declared, with why (filled by :meth:`declared`).
    """

    users_are_roles: bool
    database_roles: bool = False
    prefix: str = ""
    admin: str = ""
    project: str = ""
    why_not: dict[str, str] = field(default_factory=dict)

    def declared(self, principal: Principal) -> str | None:
        """The declared name of a live role or user, or ``None`` when it cannot be declared.

        >>> Naming(True, prefix="p_").declared(Principal("role", "p_reader"))
        'READER'
        >>> Naming(True).declared(Principal("role", "MixedCase")) is None
        True
        """
        name = principal.name
        if principal.kind == "public" or self.is_admin(principal):
            return None
        if self.users_are_roles:
            if not name.startswith(self.prefix):
                return None
            rest = name[len(self.prefix) :]
            if rest != rest.lower():
                self.why_not[name] = "its name has capital letters, which a declared name folds"
                return None
            candidate = rest.upper()
        else:
            candidate = name
            if principal.kind == "database_role":
                self.why_not[principal.label] = (
                    "the declaration has no database roles but a database's "
                    f"{reader_role(principal.database)} and {writer_role(principal.database)}"
                )
                return None
            if name != name.upper():
                self.why_not[name] = "its name is not an upper-case Snowflake name"
                return None
        if not _PRINCIPAL.match(candidate):
            self.why_not[name] = "its name is not letters, digits and _ starting with a letter"
            return None
        reason = reserved_reason(candidate)
        if reason:
            self.why_not[name] = reason
            return None
        return candidate

    def is_admin(self, principal: Principal) -> bool:
        """Whether a live principal is the target's own user (the one that applies plans).

        >>> Naming(True, admin="stackyard").is_admin(Principal("role", "stackyard"))
        True
        """
        return (
            bool(self.admin)
            and principal.kind != "database_role"
            and (principal.name == self.admin)
        )


@dataclass(frozen=True)
class Scope:
    """The live roles and users of the target, as the declaration will name them.

    Attributes:
        accounts: every live account, by principal.
        names: the declared name of each principal that can be declared.
        members: the declarable principals of this target (roles and users).
        users: those that log in.
        services: those users that are service accounts.
        held_by: the declared roles (or database roles) each member holds.
        db_roles: Snowflake's ``<DB>_DB_READER``/``_DB_WRITER`` database roles.
        skipped: what was left out, with why.
    """

    accounts: dict[Principal, Account]
    names: dict[Principal, str]
    members: frozenset[Principal]
    users: frozenset[Principal]
    services: frozenset[Principal]
    held_by: dict[Principal, tuple[str, ...]]
    db_roles: dict[Principal, str]
    skipped: tuple[str, ...]


def read_scope(live: State, naming: Naming) -> Scope:
    """The target's roles and users in the live state, and what each one is.

    Args:
        live: the target's live state.
        naming: how its principals are named in the declaration.

    Returns:
        The scope: names, kinds and memberships of what the import declares.
    """
    accounts = {a.principal: a for a in live.accounts}
    names: dict[Principal, str] = {}
    for principal in accounts:
        declared = naming.declared(principal)
        if declared is not None:
            names[principal] = declared
    # What the applying user was granted to apply a plan is the applier's, not the project's.
    memberships = sorted(m for m in live.memberships if not naming.is_admin(m.member))
    # The roles of this target: grantees here, the project's own, and (Postgres) the prefix.
    seeds = {g.grantee for g in live.grants} | {f.grantee for f in live.future_grants}
    seeds |= {
        p
        for p, a in accounts.items()
        if created_by(a.comment, p.name, naming.project, naming.prefix or "")
    }
    # Where roles are shared by the whole server, only a prefix says a role is this project's.
    if not naming.users_are_roles or naming.prefix:
        seeds |= set(names)
    db_roles = _database_roles(live) if naming.database_roles else {}
    scope = {p for p in seeds if p in names}
    linked = True
    while linked:
        linked = False
        for m in memberships:
            for near, far in ((m.role, m.member), (m.member, m.role)):
                if (near in scope or near in db_roles) and far in names and far not in scope:
                    scope.add(far)
                    linked = True
    skipped = []
    for principal in sorted(seeds | {m.member for m in memberships if m.role in scope}):
        if principal in names or principal in db_roles or principal not in accounts:
            continue
        why = naming.why_not.get(principal.label)
        if why:
            kind = principal.kind.replace("_", " ")
            skipped.append(f"{kind} {principal.label}: not imported, {why}")

    users = {p for p in scope if _is_user(accounts[p])}
    held_by: dict[Principal, list[str]] = {p: [] for p in scope}
    for m in memberships:
        if m.member not in scope:
            continue
        if m.role in scope:
            held_by[m.member].append(names[m.role])
        elif m.role in db_roles:
            held_by[m.member].append(m.role.name)
    # A login role with grants of its own, or held by another role, can only be a service
    # account (a person holds roles, nothing else); so is one named SVC_….
    granted_to = {g.grantee for g in live.grants} | {m.role for m in memberships}
    services = {
        p
        for p in users
        if _is_service(accounts[p], p in granted_to or looks_like_service_account(names[p]))
    }
    return Scope(
        accounts=accounts,
        names=names,
        members=frozenset(scope),
        users=frozenset(users),
        services=frozenset(services),
        held_by={p: tuple(sorted(set(held))) for p, held in held_by.items()},
        db_roles=db_roles,
        skipped=tuple(skipped),
    )


def _database_roles(live: State) -> dict[Principal, str]:
    """Snowflake's ``<DB>_DB_READER``/``_DB_WRITER`` database roles, the only ones the
    declaration has."""
    return {
        a.principal: a.principal.name
        for a in live.accounts
        if a.principal.kind == "database_role"
        and a.principal.name
        in (reader_role(a.principal.database), writer_role(a.principal.database))
    }


def _is_user(account: Account) -> bool:
    """A user: a Snowflake user, or a role that can log in."""
    return bool(account.principal.kind == "user" or account.attr("login") == "true")


def _is_service(account: Account, looks_like_one: bool) -> bool:
    """A service account: Snowflake says so (``TYPE``); elsewhere, what it holds says so."""
    kind = account.attr("type")
    return bool(kind == "SERVICE" if kind else looks_like_one)
