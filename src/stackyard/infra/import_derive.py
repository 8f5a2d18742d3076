"""The second half of ``stackyard import access``: the ``access:`` mapping that declares what
:mod:`stackyard.infra.import_scope` found.

Roles, people, service accounts, memberships, and a ``read``/``write`` grant for every schema
a role may use (``USAGE`` → read, ``USAGE`` + ``CREATE`` → write). Where an engine has no
database roles (Postgres), a ``<DB>_DB_READER``/``<DB>_DB_WRITER`` pair that is exactly what a
declared database's roles would be is declared as that database (``database_roles: true``),
as stackyard itself applied it. What the warehouse never shows back (a public key on
Postgres, a loader's name) is kept from the declaration being replaced.
"""

from __future__ import annotations

from typing import Any, get_args

from stackyard.config.access import AccessConfig, WarehouseSize
from stackyard.infra.declaration import (
    DEVELOPER,
    Declaration,
    dev_schema,
    reader_role,
    writer_role,
)
from stackyard.infra.import_scope import Naming, Scope, read_scope
from stackyard.infra.state import State, user_comment

_SNOWFLAKE_WRITE = {"CREATE TABLE", "CREATE VIEW"}
_READER, _WRITER = reader_role(""), writer_role("")  # "_DB_READER", "_DB_WRITER"
# What the warehouse cannot show back, kept from the entry of the same name being replaced.
_KEPT_USER_KEYS = ("loader", "rsa_public_key", "rsa_public_key_2")
_KEPT_DATABASE_KEYS = ("loader", "comment")


def derive(
    live: State,
    naming: Naming,
    database: str,
    base: dict[str, Any],
    previous: Declaration | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The ``access:`` mapping that declares the live state (before settling it).

    Args:
        live: the target's live state.
        naming: how its principals are named in the declaration.
        database: on Postgres, the declared database the target's schemas go into.
        base: the ``access:`` settings to keep (role_prefix, production_targets …).
        previous: the declaration being replaced; its public keys and loaders are kept for
            the users and databases imported under the same names.

    Returns:
        The mapping, and what was left out with why.
    """
    scope = read_scope(live, naming)
    skipped = list(scope.skipped)
    access: dict[str, Any] = dict(base)
    access["defaults"] = False
    for section in ("databases", "warehouses", "roles", "service_accounts", "people"):
        access[section] = {}
    access["grants"] = []
    _principals(access, scope, naming)
    per_role, warehouses = _schema_access(access, live, scope, database)
    db_roles = set(scope.db_roles.values())
    kept = {
        role
        for db, entry in access["databases"].items()
        if entry["database_roles"]
        for role in (reader_role(db), writer_role(db))
    }
    for held in holders(access):
        held[:] = [r for r in held if r not in db_roles or r in kept]
    skipped += _warehouses(access, live, warehouses)
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
    if not naming.database_roles:
        dev_db = base.get("dev_database") or AccessConfig.model_fields["dev_database"].default
        fold_database_roles(access, database, dev_db.upper())
    if previous is not None:
        _keep_unshown(access, previous)
    return access, skipped


def _principals(access: dict[str, Any], scope: Scope, naming: Naming) -> None:
    """Roles, service accounts and people, with the roles each holds."""
    for p in sorted(scope.members, key=lambda p: scope.names[p]):
        name, account = scope.names[p], scope.accounts[p]
        comment = user_comment(account.comment, naming.project)
        held = list(scope.held_by[p])
        entry: dict[str, Any]
        if p not in scope.users:
            entry = {"member_of": held} if held else {}
            access["roles"][name] = _with_comment(entry, comment)
        elif p in scope.services:
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


def _schema_access(
    access: dict[str, Any], live: State, scope: Scope, database: str
) -> tuple[dict[str, dict[str, list[str]]], dict[str, set[str]]]:
    """Declared schemas, and each role's read/write schemas and warehouses (a person holds
    none directly)."""
    grantable = {
        p: scope.names[p] for p in scope.members if p not in scope.users or p in scope.services
    }
    levels: dict[tuple[str, str], dict[tuple[str, str], str]] = {}
    warehouses: dict[str, set[str]] = {}
    for g in sorted(live.grants):
        role = grantable.get(g.grantee) or scope.db_roles.get(g.grantee)
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
    databases = access["databases"]
    for (db, schema), holders_of in sorted(levels.items()):
        databases.setdefault(db, {"schemas": [], "database_roles": False})
        if schema not in databases[db]["schemas"]:
            databases[db]["schemas"].append(schema)
        for (role, kind), how in sorted(holders_of.items()):
            if kind == "database_role":
                databases[db]["database_roles"] = True
                continue
            per_role.setdefault(role, {"read": [], "write": []})[how].append(f"{db}.{schema}")
    live_db_roles = {(p.database, p.name) for p in scope.db_roles}
    for db in databases:
        if {(db, reader_role(db)), (db, writer_role(db))} <= live_db_roles:
            databases[db]["database_roles"] = True
    return per_role, warehouses


def _warehouses(access: dict[str, Any], live: State, warehouses: dict[str, set[str]]) -> list[str]:
    """Declare the warehouses roles use or users default to; drop defaults to others."""
    skipped = []
    used = {w for ws in warehouses.values() for w in ws}
    for section in ("service_accounts", "people"):
        for entry in access[section].values():
            if entry.get("default_warehouse"):
                used.add(entry["default_warehouse"])
    for container in sorted(live.containers):
        if container.kind == "warehouse" and container.name[0] in used:
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
    return skipped


def fold_database_roles(access: dict[str, Any], database: str, dev_db: str = "") -> None:
    """Declare each ``<DB>_DB_READER``/``<DB>_DB_WRITER`` role pair of the target's database
    as database ``DB`` with ``database_roles: true``, when the pair is exactly what that
    declaration gives: the reader reads the schemas the writer writes and holds nothing, the
    writer holds the reader only, neither has a comment or other grants.

    A declared developer database gives every person holding ANALYTICS_DEVELOPER a role
    ``DEV_<PERSON>`` writing ``dev_<person>``: it is folded only when each such person's
    role is exactly that one, which is then left to the declaration to derive.

    Args:
        access: the mapping, changed in place (roles and their grants out, databases in).
        database: the declared database the target's schemas were put in.
        dev_db: ``access.dev_database``.

    >>> access = {"databases": {"SHOP": {"schemas": ["raw", "marts"], "database_roles": False}},
    ...     "roles": {"RAW_DB_READER": {}, "RAW_DB_WRITER": {"member_of": ["RAW_DB_READER"]},
    ...               "BI": {}},
    ...     "grants": [{"role": "BI", "read": ["SHOP.marts", "SHOP.raw"]},
    ...                {"role": "RAW_DB_READER", "read": ["SHOP.raw"]},
    ...                {"role": "RAW_DB_WRITER", "write": ["SHOP.raw"]}]}
    >>> fold_database_roles(access, "SHOP")
    >>> access["databases"]
    {'SHOP': {'schemas': ['marts'], 'database_roles': False}, 'RAW': {'schemas': ['raw'], 'database_roles': True}}
    >>> access["grants"], sorted(access["roles"])
    ([{'role': 'BI', 'read': ['SHOP.marts', 'RAW.raw']}], ['BI'])
    """
    roles, databases = access["roles"], access["databases"]
    grants = {g["role"]: g for g in access["grants"]}
    moved: dict[str, str] = {}  # schema -> the database it goes to
    for reader in sorted(r for r in roles if r.endswith(_READER)):
        db = reader[: -len(_READER)]
        writer = writer_role(db)
        if not db or writer not in roles:
            continue
        read, write = grants.get(reader, {}), grants.get(writer, {})
        schemas = sorted(read.get("read", []))
        exact = (
            not roles[reader].get("member_of")
            and set(roles[reader]) <= {"member_of"}
            and roles[writer].get("member_of") == [reader]
            and set(roles[writer]) <= {"member_of"}
            and set(read) <= {"role", "read"}
            and set(write) <= {"role", "write"}
            and schemas == sorted(write.get("write", []))
            and all(s.startswith(f"{database}.") for s in schemas)
        )
        names = [s[len(database) + 1 :] for s in schemas]
        # The target's own database folds only when the pair covers all of its schemas.
        whole = (
            db == database and db in databases and sorted(names) == sorted(databases[db]["schemas"])
        )
        if not exact or (db in databases and not whole) or any(n in moved for n in names):
            continue
        dev_roles = _dev_roles(access, database, names) if db == dev_db else {}
        if dev_roles is None:
            continue
        for person, own in dev_roles.items():
            access["people"][person]["roles"].remove(own)
            del roles[own]
            access["grants"].remove(grants[own])
        del roles[reader], roles[writer]
        databases[db] = {"schemas": names, "database_roles": True}
        moved.update(dict.fromkeys(names, db))
    if not moved:
        return
    access["grants"] = [g for g in access["grants"] if not _folded(g["role"], databases)]
    for grant in access["grants"]:
        for how in ("read", "write"):
            if how in grant:
                grant[how] = [_moved(s, database, moved) for s in grant[how]]
    if database in databases and not databases[database]["database_roles"]:
        schemas = [s for s in databases[database]["schemas"] if s not in moved]
        if schemas:
            databases[database]["schemas"] = schemas
        else:
            del databases[database]


def _dev_roles(access: dict[str, Any], database: str, schemas: list[str]) -> dict[str, str] | None:
    """Each developer's ``DEV_<PERSON>`` role, or ``None`` when one is not exactly what a
    declared developer database derives (it would then clash with the derived one)."""
    grants = {g["role"]: g for g in access["grants"]}
    held = [r for h in holders(access) for r in h]
    found = {}
    for person, entry in access["people"].items():
        if DEVELOPER not in entry.get("roles", []):
            continue
        own, schema = f"DEV_{person.upper()}", dev_schema(person)
        exact = (
            schema in schemas
            and access["roles"].get(own) == {"member_of": [], "comment": f"Writes {schema} only."}
            and grants.get(own) == {"role": own, "write": [f"{database}.{schema}"]}
            and held.count(own) == 1
            and own in entry["roles"]
        )
        if not exact:
            return None
        found[person] = own
    return found


def _folded(role: str, databases: dict[str, Any]) -> bool:
    for suffix in (_READER, _WRITER):
        if role.endswith(suffix):
            entry = databases.get(role[: -len(suffix)])
            return bool(entry and entry["database_roles"])
    return False


def _moved(declared: str, database: str, moved: dict[str, str]) -> str:
    db, _, schema = declared.partition(".")
    return f"{moved[schema]}.{schema}" if db == database and schema in moved else declared


def _keep_unshown(access: dict[str, Any], previous: Declaration) -> None:
    """Keep what the warehouse never shows back from the declaration being replaced: public
    keys (Postgres does not use them), loaders, and a database's comment (Postgres has one
    database for all declared ones)."""
    people = {k.upper(): k for k in access["people"]}
    for user in previous.users:
        if user.kind == "service" and user.name.upper() in access["service_accounts"]:
            entry = access["service_accounts"][user.name.upper()]
        elif user.kind == "person" and user.name.upper() in people:
            entry = access["people"][people[user.name.upper()]]
        else:
            continue
        for key in _KEPT_USER_KEYS:
            value = getattr(user, key)
            if value and key not in entry and (key != "loader" or user.kind == "service"):
                entry[key] = value
    for db in previous.databases:
        entry = access["databases"].get(db.name.upper())
        if entry is None:
            continue
        for key in _KEPT_DATABASE_KEYS:
            value = getattr(db, key)
            if value and key not in entry:
                entry[key] = value


def _with_comment(entry: dict[str, Any], comment: str | None) -> dict[str, Any]:
    if comment:
        entry["comment"] = comment
    return entry


def holders(access: dict[str, Any]) -> list[list[str]]:
    """Every list of held roles in the mapping, to edit in place."""
    lists = [r.setdefault("member_of", []) for r in access["roles"].values()]
    lists += [s.setdefault("roles", []) for s in access["service_accounts"].values()]
    lists += [p.setdefault("roles", []) for p in access["people"].values()]
    return lists
