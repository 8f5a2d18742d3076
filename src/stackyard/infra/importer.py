"""Taking over a warehouse's existing access control: the live state written as a declaration.

``stackyard import access`` reads the roles, users, memberships and grants a warehouse has
now and writes the ``access:`` section that declares them, so that the next ``stackyard plan``
is empty and the project can tighten access one reviewed plan at a time.

It works in two passes:

1. :func:`stackyard.infra.import_derive.derive` turns the live
   :class:`~stackyard.infra.state.State` into an ``access:`` mapping (which roles and users are
   the target's and what each one is: :mod:`stackyard.infra.import_scope`);
2. :func:`settle` plans that mapping against the same live state and, while the plan is not
   empty, takes out each role or user whose live access the declaration cannot say exactly
   (a ``GRANT ALL`` with ``TRIGGER``, ``SELECT`` on some tables of a schema only, a missing
   default privilege …), and each role held by a role left undeclared (the plan would take
   it back). What is taken out is listed, never dropped silently; it is left undeclared, and
   the plan never revokes the access of a role the project does not declare.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stackyard.errors import UsageError
from stackyard.infra.declaration import reader_role, writer_role
from stackyard.infra.import_derive import holders
from stackyard.infra.import_scope import Naming
from stackyard.infra.plan import Plan, Step, future_grant_text, outside_declared_schemas
from stackyard.infra.state import Grant, Principal, State

# The sections of ``access:`` an import writes; the others (role_prefix …) are kept.
ENTRY_SECTIONS = ("databases", "warehouses", "roles", "service_accounts", "people", "grants")


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


def settle(
    access: dict[str, Any], plan_for: Callable[[dict[str, Any]], Plan], naming: Naming
) -> tuple[dict[str, Any], list[str], Plan]:
    """Take out what the declaration cannot say until its plan against the live state is
    empty.

    Args:
        access: the mapping from :func:`~stackyard.infra.import_derive.derive`, changed in
            place.
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
            if not (name and _remove(access, name, dry=True)):
                # A declared role held by a role left undeclared would be taken back from it:
                # the declaration cannot say who holds that role, so it is left out instead.
                name = _held_role(step, naming)
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


def _held_role(step: Step, naming: Naming) -> str | None:
    """The declared name of the role a membership revocation takes back, if it is one."""
    held = [item.removeprefix("role ") for item in step.loses if item.startswith("role ")]
    if step.kind != "revoke_role" or len(held) != 1:
        return None
    return _declared_label(held[0], naming)


def _remove(access: dict[str, Any], name: str, dry: bool = False) -> bool:
    """Take a role or user (or a database's READER/WRITER pair) out of the mapping."""
    db = _database_of(access, name)
    if db is not None:
        if not dry:
            access["databases"][db]["database_roles"] = False
            gone = {reader_role(db), writer_role(db)}
            for held in holders(access):
                held[:] = [r for r in held if r not in gone]
        return True
    found = any(name in access[s] for s in ("roles", "service_accounts", "people"))
    if dry or not found:
        return found
    for section in ("roles", "service_accounts", "people"):
        access[section].pop(name, None)
    for held in holders(access):
        held[:] = [r for r in held if r != name]
    for person in access["people"].values():
        if person.get("default_role") == name:
            person.pop("default_role")
    access["grants"] = [g for g in access["grants"] if g["role"] != name]
    return True


def _database_of(access: dict[str, Any], name: str) -> str | None:
    """The declared database whose READER or WRITER role ``name`` is: ``DB.NAME`` (a
    Snowflake database role) or ``DB_DB_READER`` (declared with ``database_roles``)."""
    if "." in name:
        db = name.partition(".")[0]
    else:
        suffixes = (reader_role(""), writer_role(""))
        db = next((name[: -len(s)] for s in suffixes if name.endswith(s)), "")
    entry = access["databases"].get(db)
    return db if entry is not None and entry.get("database_roles") else None


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
    not declare): kept, since the plan only revokes on declared objects, and listed.

    A default privilege set without IN SCHEMA covers every schema, the declared ones among
    them, so the plan takes it back from a declared role: it is never kept, and
    :func:`settle` leaves a role holding one undeclared, saying so in the plan's words.
    """
    out = []
    for g in sorted(live.grants - desired.grants):
        if g.grantee in managed:
            out.append(f"{_grant_text(g)}: kept as it is, not declared (its schema is not)")
    schemas = {c.name for c in desired.containers if c.kind == "schema"}
    for f in sorted(live.future_grants - desired.future_grants):
        if f.grantee in managed and outside_declared_schemas(f, schemas):
            out.append(f"{future_grant_text(f)}: kept as it is, not declared (its schema is not)")
    for m in sorted(live.memberships - desired.memberships):
        if m.member in managed and m.role not in managed and m.role.kind != "public":
            out.append(
                f"role {m.role.label} held by {m.member.label}: kept as it is, not declared "
                "(that role is not imported)"
            )
    return out


def _grant_text(g: Grant) -> str:
    return f"{g.privilege} on {g.on_kind.lower()} {'.'.join(g.on)} to {g.grantee.label}"
