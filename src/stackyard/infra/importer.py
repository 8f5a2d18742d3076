"""Taking over a warehouse's existing access control: the live state written as a declaration.

``stackyard import access`` reads the roles, users, memberships and grants a warehouse has
now and writes the ``access:`` section that declares them, so that the next ``stackyard plan``
is empty and the project can tighten access one reviewed plan at a time.

It works in two passes:

1. :func:`derive` turns the live :class:`~stackyard.infra.state.State` into an ``access:``
   mapping: roles, people, service accounts, memberships, and a ``read``/``write`` grant for
   every schema a role may use (``USAGE`` → read, ``USAGE`` + ``CREATE`` → write);
2. :func:`settle` plans that mapping against the same live state and, while the plan is not
   empty, takes out each role or user whose live access the declaration cannot say exactly
   (a ``GRANT ALL`` with ``TRIGGER``, ``SELECT`` on some tables of a schema only, a missing
   default privilege …). What is taken out is listed, never dropped silently; it is left
   undeclared, and the plan never revokes the access of a role the project does not declare.

Only roles that matter to the target are taken: on Postgres, where roles are shared by every
database of the server, the roles with a grant in the target's database (and, with
``access.role_prefix``, every role with that prefix), those carrying the project's marker, and
the roles and users linked to them by memberships; never the target's own user.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, get_args

from stackyard.config.access import PRINCIPAL_PATTERN, WarehouseSize
from stackyard.config.names import reserved_reason
from stackyard.errors import UsageError
from stackyard.infra.declaration import reader_role, writer_role
from stackyard.infra.plan import Plan
from stackyard.infra.state import Grant, Principal, State, marker

_PRINCIPAL = re.compile(PRINCIPAL_PATTERN)
# The sections of ``access:`` an import writes; the others (role_prefix …) are kept.
ENTRY_SECTIONS = ("databases", "warehouses", "roles", "service_accounts", "people", "grants")
_SNOWFLAKE_WRITE = {"CREATE TABLE", "CREATE VIEW"}


@dataclass(frozen=True)
class AccessImport:
    """What ``stackyard import access`` found and wrote.

    Attributes:
        target: the target read.
        engine: its type.
        access: the ``access:`` entries written (databases, roles, people, grants …).
        not_imported: what the declaration cannot say, each with why; kept as it is.
        unmanaged: grants on declared schemas to roles left undeclared (kept, never revoked).
        written: whether stackyard.yml was changed (``False`` with ``--dry-run``).
        path: the file written.
        plan_steps: steps of the plan against the written declaration (0 when it holds).
    """

    target: str
    engine: str
    access: dict[str, Any]
    not_imported: tuple[str, ...]
    unmanaged: tuple[str, ...]
    written: bool
    path: str
    plan_steps: int = 0

    def counts(self) -> dict[str, int]:
        """How many of each kind were declared."""
        access = self.access
        return {
            "roles": len(access.get("roles", {})),
            "people": len(access.get("people", {})),
            "service_accounts": len(access.get("service_accounts", {})),
            "memberships": sum(len(r.get("member_of", [])) for r in access["roles"].values())
            + sum(len(p.get("roles", [])) for p in access["people"].values())
            + sum(len(s.get("roles", [])) for s in access["service_accounts"].values()),
            "schemas": sum(len(d.get("schemas", [])) for d in access.get("databases", {}).values()),
            "schema_grants": sum(
                len(g.get("read", [])) + len(g.get("write", [])) for g in access["grants"]
            ),
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (the ``--json`` shape)."""
        return {
            "target": self.target,
            "engine": self.engine,
            "written": self.written,
            "path": self.path,
            "counts": self.counts(),
            "access": self.access,
            "not_imported": list(self.not_imported),
            "unmanaged": list(self.unmanaged),
            "plan_steps": self.plan_steps,
        }


@dataclass
class Naming:
    """How live principals map to declared names, and which ones are the target's.

    Attributes:
        users_are_roles: the engine's ``USERS_ARE_ROLES`` (names in lower case, prefixed).
        database_roles: the engine's ``DATABASE_ROLES``.
        prefix: ``access.role_prefix`` (engines whose users are roles).
        admin: the target's own user, never imported.
        project: the project's name (its marker).
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
        if principal.kind == "public" or name == self.admin:
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


def derive(
    live: State, naming: Naming, database: str, base: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """The ``access:`` mapping that declares the live state (before :func:`settle`).

    Args:
        live: the target's live state.
        naming: how its principals are named in the declaration.
        database: on Postgres, the declared database the target's schemas go into.
        base: the ``access:`` settings to keep (role_prefix, production_targets …).

    Returns:
        The mapping, and what was left out with why.
    """
    skipped: list[str] = []
    tag = marker(naming.project)
    is_db_role = naming.database_roles
    accounts = {a.principal: a for a in live.accounts}
    names: dict[Principal, str] = {}
    for principal in accounts:
        declared = naming.declared(principal)
        if declared is not None:
            names[principal] = declared
    # The roles of this target: grantees here, the project's own, and (Postgres) the prefix.
    seeds = {g.grantee for g in live.grants} | {f.grantee for f in live.future_grants}
    seeds |= {p for p, a in accounts.items() if tag in a.comment}
    # Where roles are shared by the whole server, only a prefix says a role is this project's.
    if not naming.users_are_roles or naming.prefix:
        seeds |= set(names)
    db_roles = _database_roles(live) if is_db_role else {}
    scope = {p for p in seeds if p in names}
    linked = True
    while linked:
        linked = False
        for m in live.memberships:
            for near, far in ((m.role, m.member), (m.member, m.role)):
                if (near in scope or near in db_roles) and far in names and far not in scope:
                    scope.add(far)
                    linked = True
    for principal in sorted(seeds | {m.member for m in live.memberships if m.role in scope}):
        if principal in names or principal in db_roles or principal not in accounts:
            continue
        why = naming.why_not.get(principal.label)
        if why:
            kind = principal.kind.replace("_", " ")
            skipped.append(f"{kind} {principal.label}: not imported, {why}")

    users = {p for p in scope if _is_user(accounts[p])}
    held_by: dict[Principal, list[str]] = {p: [] for p in scope}
    for m in sorted(live.memberships):
        if m.member not in scope:
            continue
        if m.role in scope:
            held_by[m.member].append(names[m.role])
        elif m.role in db_roles:
            held_by[m.member].append(m.role.name)
    # A login role with grants of its own, or held by another role, can only be a service
    # account (a person holds roles, nothing else); so is one named SVC_….
    granted_to = {g.grantee for g in live.grants} | {m.role for m in live.memberships}
    services = {
        p for p in users if _is_service(accounts[p], p in granted_to or names[p].startswith("SVC_"))
    }

    access: dict[str, Any] = dict(base)
    access["defaults"] = False
    access["databases"] = {}
    access["warehouses"] = {}
    access["roles"] = {}
    access["service_accounts"] = {}
    access["people"] = {}
    access["grants"] = []
    for p in sorted(scope, key=lambda p: names[p]):
        name, account = names[p], accounts[p]
        comment = account.comment.replace(tag, "").strip() or None
        held = sorted(set(held_by[p]))
        entry: dict[str, Any]
        if p not in users:
            entry = {"member_of": held} if held else {}
            access["roles"][name] = _with_comment(entry, comment)
        elif p in services:
            own = [r for r in held if r != name]
            entry = {"roles": own} if own else {}
            warehouse = account.attr("default_warehouse")
            if warehouse:
                entry["default_warehouse"] = warehouse
            access["service_accounts"][name] = _with_comment(entry, comment)
        else:
            entry = {"roles": held}
            default_role = account.attr("default_role")
            if default_role and default_role in held:
                entry["default_role"] = default_role
            warehouse = account.attr("default_warehouse")
            if warehouse:
                entry["default_warehouse"] = warehouse
            access["people"][name] = _with_comment(entry, comment)

    # Schema and warehouse access of every declared role (a person holds none directly).
    grantable = {p: names[p] for p in scope if p not in users or p in services}
    levels: dict[tuple[str, str], dict[tuple[str, str], str]] = {}
    warehouses: dict[str, set[str]] = {}
    for g in sorted(live.grants):
        role = grantable.get(g.grantee) or db_roles.get(g.grantee)
        if role is None:
            continue
        if g.on_kind == "WAREHOUSE":
            warehouses.setdefault(role, set()).add(g.on[0])
            continue
        if g.on_kind != "SCHEMA":
            continue
        # One-part schema names are the target database's (Postgres); else DB.SCHEMA.
        db, schema = (database, g.on[0]) if len(g.on) == 1 else g.on
        on_schema = levels.setdefault((db, schema), {})
        current = on_schema.get((role, g.grantee.kind), "")
        if g.privilege == "USAGE" and not current:
            on_schema[(role, g.grantee.kind)] = "read"
        elif g.privilege in ("CREATE", *_SNOWFLAKE_WRITE):
            on_schema[(role, g.grantee.kind)] = "write"
    per_role: dict[str, dict[str, list[str]]] = {}
    for (db, schema), holders in sorted(levels.items()):
        databases = access["databases"]
        databases.setdefault(db, {"schemas": [], "database_roles": False})
        if schema not in databases[db]["schemas"]:
            databases[db]["schemas"].append(schema)
        for (role, kind), how in sorted(holders.items()):
            if kind == "database_role":
                databases[db]["database_roles"] = True
                continue
            per_role.setdefault(role, {"read": [], "write": []})[how].append(f"{db}.{schema}")
    for db in access["databases"]:
        if {reader_role(db), writer_role(db)} <= {p.name for p in db_roles if p.database == db}:
            access["databases"][db]["database_roles"] = True
    kept = {
        role
        for db, entry in access["databases"].items()
        if entry["database_roles"]
        for role in (reader_role(db), writer_role(db))
    }
    for held in _holders(access):
        held[:] = [r for r in held if r not in set(db_roles.values()) or r in kept]
    used_warehouses = {w for ws in warehouses.values() for w in ws}
    for section in ("service_accounts", "people"):
        for entry in access[section].values():
            if entry.get("default_warehouse"):
                used_warehouses.add(entry["default_warehouse"])
    for container in sorted(live.containers):
        if container.kind == "warehouse" and container.name[0] in used_warehouses:
            attrs = dict(container.attrs)
            size, suspend = attrs.get("size") or "XSMALL", attrs.get("auto_suspend") or "60"
            if (
                size in get_args(WarehouseSize)
                and suspend.isdigit()
                and 60 <= int(suspend) <= 86_400
            ):
                access["warehouses"][container.name[0]] = {
                    "size": size,
                    "auto_suspend_seconds": int(suspend),
                }
            else:
                skipped.append(
                    f"warehouse {container.name[0]} (size {size}, auto-suspend {suspend}): not "
                    "declared, the declaration has no such setting"
                )
    for section in ("service_accounts", "people"):
        for entry in access[section].values():
            if entry.get("default_warehouse") not in (None, *access["warehouses"]):
                entry.pop("default_warehouse")
    warehouses = {r: ws & set(access["warehouses"]) for r, ws in warehouses.items()}
    for role in sorted({*per_role, *warehouses}):
        grant: dict[str, Any] = {"role": role}
        levels_of = per_role.get(role, {"read": [], "write": []})
        for how in ("read", "write"):
            if levels_of[how]:
                grant[how] = levels_of[how]
        if warehouses.get(role):
            grant["warehouses"] = sorted(warehouses[role])
        access["grants"].append(grant)
    return access, skipped


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


def _is_user(account: Any) -> bool:
    """A user: a Snowflake user, or a role that can log in."""
    return bool(account.principal.kind == "user" or account.attr("login") == "true")


def _is_service(account: Any, looks_like_one: bool) -> bool:
    """A service account: Snowflake says so (``TYPE``); elsewhere, what it holds says so."""
    kind = account.attr("type")
    return bool(kind == "SERVICE" if kind else looks_like_one)


def _with_comment(entry: dict[str, Any], comment: str | None) -> dict[str, Any]:
    if comment:
        entry["comment"] = comment
    return entry


def _holders(access: dict[str, Any]) -> list[list[str]]:
    """Every list of held roles in the mapping, to edit in place."""
    lists = [r.setdefault("member_of", []) for r in access["roles"].values()]
    lists += [s.setdefault("roles", []) for s in access["service_accounts"].values()]
    lists += [p.setdefault("roles", []) for p in access["people"].values()]
    return lists


def settle(
    access: dict[str, Any], plan_for: Callable[[dict[str, Any]], Plan], naming: Naming
) -> tuple[dict[str, Any], list[str], Plan]:
    """Take out what the declaration cannot say until its plan against the live state is
    empty.

    Args:
        access: the mapping from :func:`derive`, changed in place.
        plan_for: plans a mapping against the live state.
        naming: how live names map to declared ones.

    Returns:
        The mapping, what was taken out (with the plan steps that show why), the empty plan.

    Raises:
        UsageError: a change is left that no role or user can be taken out for.
    """
    taken: list[str] = []
    while True:
        plan = plan_for(access)
        if not plan.steps:
            _tidy(access)
            return access, taken, plan
        why: dict[str, list[str]] = {}
        for step in plan.steps:
            name = _declared_label(step.grantee, naming)
            if name and _remove(access, name, dry=True):
                why.setdefault(name, []).append(step.description)
        if not why:
            listed = "\n".join(f"  {s.statement}" for s in plan.steps[:10])
            raise UsageError(
                "the warehouse's access could not be declared so that the plan is empty; "
                f"the plan would still run:\n{listed}",
                hint="declare what remains by hand under access:, or file a bug with this plan",
            )
        for name, reasons in sorted(why.items()):
            _remove(access, name)
            more = f" (and {len(reasons) - 3} more)" if len(reasons) > 3 else ""
            taken.append(
                f"{name}: not imported (kept as it is, undeclared), the declaration cannot say "
                f"its access exactly; declared, the plan would {'; '.join(reasons[:3])}{more}"
            )


def _declared_label(label: str, naming: Naming) -> str | None:
    if not label:
        return None
    if "." in label:  # a Snowflake database role: DB.NAME
        return label
    return naming.declared(Principal("role", label))


def _remove(access: dict[str, Any], name: str, dry: bool = False) -> bool:
    """Take a role or user (or a database's READER/WRITER pair) out of the mapping."""
    if "." in name:
        db, _, _role = name.partition(".")
        entry = access["databases"].get(db)
        if entry is None or not entry.get("database_roles"):
            return False
        if not dry:
            entry["database_roles"] = False
            gone = {reader_role(db), writer_role(db)}
            for held in _holders(access):
                held[:] = [r for r in held if r not in gone]
        return True
    found = any(name in access[s] for s in ("roles", "service_accounts", "people"))
    if dry or not found:
        return found
    for section in ("roles", "service_accounts", "people"):
        access[section].pop(name, None)
    for held in _holders(access):
        held[:] = [r for r in held if r != name]
    for person in access["people"].values():
        if person.get("default_role") == name:
            person.pop("default_role")
    access["grants"] = [g for g in access["grants"] if g["role"] != name]
    return True


def _tidy(access: dict[str, Any]) -> None:
    """Drop empty lists, and ``database_roles: true`` (the default), for a readable file."""
    for section in ("roles", "service_accounts"):
        for entry in access[section].values():
            for key in ("member_of", "roles"):
                if key in entry and not entry[key]:
                    entry.pop(key)
    for entry in access["databases"].values():
        if entry.get("database_roles"):
            entry.pop("database_roles")
    for section in ("warehouses", "databases"):
        if not access[section]:
            access.pop(section)


def kept_as_is(live: State, desired: State, managed: set[Principal]) -> list[str]:
    """Live grants of declared roles that the declaration does not say (on schemas it does
    not declare): kept, since the plan only revokes on declared objects, and listed."""
    out = []
    for g in sorted(live.grants - desired.grants):
        if g.grantee in managed:
            out.append(f"{_grant_text(g)}: kept as it is, not declared (its schema is not)")
    for f in sorted(live.future_grants - desired.future_grants):
        if f.grantee in managed:
            by = f" created by {f.creator}" if f.creator else ""
            out.append(
                f"{f.privilege} on future {f.on_kind.lower()} in {'.'.join(f.schema)}{by} to "
                f"{f.grantee.label}: kept as it is, not declared (its schema is not)"
            )
    for m in sorted(live.memberships - desired.memberships):
        if m.member in managed and m.role not in managed and m.role.kind != "public":
            out.append(
                f"role {m.role.label} held by {m.member.label}: kept as it is, not declared "
                "(that role is not imported)"
            )
    return out


def _grant_text(g: Grant) -> str:
    return f"{g.privilege} on {g.on_kind.lower()} {'.'.join(g.on)} to {g.grantee.label}"
