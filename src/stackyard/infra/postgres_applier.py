"""Who applies an access plan on Postgres: what the connected user may do, and the rules its
server version sets for a user that is not a superuser."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stackyard.infra.applier import Applier


@dataclass(frozen=True)
class RoleRules:
    """What PostgreSQL asks of a non-superuser applier, by server version.

    A role the applier acts as must be granted to it directly: a membership inherited through
    a login role would vanish when that login role is dropped earlier in the same plan.

    Attributes:
        acts_as: the condition on a direct ``pg_auth_members`` row that lets a user set default
            privileges for a role and reassign its objects: any membership before 16, one
            with INHERIT and SET from 16 (the creator's own grant has neither).
        createrole_needs_admin: from 16, CREATEROLE acts only on roles held WITH ADMIN OPTION.
    """

    acts_as: str
    createrole_needs_admin: bool


def role_rules(server_version: int) -> RoleRules:
    """The rules of a server version (``server_version_num``).

    >>> role_rules(150004).acts_as, role_rules(160002).acts_as
    ('true', 'am.inherit_option AND am.set_option')
    """
    if server_version >= 160000:
        return RoleRules("am.inherit_option AND am.set_option", True)
    return RoleRules("true", False)


_APPLIER_SQL = """
SELECT current_user, r.rolsuper, r.rolcreaterole,
       has_database_privilege(current_database(), 'CREATE'),
       current_setting('server_version_num')::int
FROM pg_roles r WHERE r.rolname = current_user
"""


def read_applier(connection: Any) -> Applier:
    """What the connected user may do, and which roles it may act as.

    Args:
        connection: an open psycopg connection, as the target's user.
    """
    with connection.cursor() as cursor:
        cursor.execute(_APPLIER_SQL)
        name, superuser, createrole, create, version = cursor.fetchone()
        usable: frozenset[str] = frozenset()
        administers: frozenset[str] = frozenset()
        if not superuser:
            rules = role_rules(version)
            cursor.execute(
                "SELECT g.rolname FROM pg_auth_members am JOIN pg_roles g ON g.oid = am.roleid "
                "JOIN pg_roles m ON m.oid = am.member "
                f"WHERE m.rolname = current_user AND {rules.acts_as}"
            )
            usable = frozenset(row[0] for row in cursor.fetchall())
            if rules.createrole_needs_admin:
                cursor.execute(
                    "SELECT rolname FROM pg_roles WHERE rolname !~ '^pg_' "
                    "AND pg_has_role(current_user, oid, 'MEMBER WITH ADMIN OPTION')"
                )
                administers = frozenset(row[0] for row in cursor.fetchall())
    return Applier(
        name, bool(superuser), bool(createrole), bool(create), int(version), usable, administers
    )
