"""Who applies a plan, and the rights the warehouse holds that user to.

A plan is applied as the target's own user. On Postgres that user need not be a superuser:
a role with ``CREATEROLE`` that owns the database can apply, provided it is a member of the
roles it sets default privileges for or drops (PostgreSQL's rule; see
:mod:`stackyard.infra.postgres`). :class:`Applier` is what the live-state reader learns about
that user, so the plan can add the memberships it needs or refuse, naming the missing right.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Applier:
    """The user a plan would be applied as.

    Attributes:
        name: its name on the server (``current_user``).
        superuser: it bypasses every permission check.
        createrole: it may create, alter and drop roles.
        create_on_database: it may create schemas in the target's database (owner or granted).
        server_version: ``server_version_num`` (150004 for 15.4); the rules changed in 16.
        usable: roles granted to it directly, with their privileges and ``SET ROLE`` (what
            ``ALTER DEFAULT PRIVILEGES FOR ROLE`` and ``REASSIGN OWNED`` need).
        administers: roles it holds with ADMIN OPTION (what CREATEROLE needs from 16 on).
    """

    name: str
    superuser: bool
    createrole: bool
    create_on_database: bool
    server_version: int
    usable: frozenset[str] = frozenset()
    administers: frozenset[str] = frozenset()
