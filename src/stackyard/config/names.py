"""Names a project may never give a role or user.

Each warehouse has built-in roles that hold far more than any functional role should:
Snowflake's system roles (https://docs.snowflake.com/en/user-guide/security-access-control-overview#system-defined-roles),
Postgres's ``PUBLIC`` pseudo-role, its bootstrap superuser and its ``pg_*`` predefined roles
(https://www.postgresql.org/docs/current/predefined-roles.html), and the names Postgres
reads as keywords in ``GRANT … TO``. A declared user or role named like one of them would
either hand access to everybody (``GRANT ROLE X TO ROLE PUBLIC``) or take over a system role,
so such names are refused wherever a name is declared, in any letter case.
"""

from __future__ import annotations

RESERVED_ROLE_NAMES = frozenset(
    {
        "PUBLIC",
        "ACCOUNTADMIN",
        "SYSADMIN",
        "SECURITYADMIN",
        "USERADMIN",
        "ORGADMIN",
        "GLOBALORGADMIN",
        "POSTGRES",
        "NONE",
        "CURRENT_USER",
        "CURRENT_ROLE",
        "SESSION_USER",
    }
)
RESERVED_PREFIXES = ("PG_",)


def reserved_reason(name: str) -> str | None:
    """Why ``name`` cannot be a declared role or user, or ``None`` when it can.

    >>> reserved_reason("public")
    'it is a built-in role of the warehouse (PUBLIC is held by every user)'
    >>> reserved_reason("Pg_Read_All_Data")
    'it starts with pg_, which Postgres keeps for its predefined roles'
    >>> reserved_reason("ANALYTICS_DEVELOPER") is None
    True
    """
    upper = name.upper()
    if upper == "PUBLIC":
        return "it is a built-in role of the warehouse (PUBLIC is held by every user)"
    if upper in RESERVED_ROLE_NAMES:
        return "it is a built-in role or keyword of the warehouse"
    for prefix in RESERVED_PREFIXES:
        if upper.startswith(prefix):
            return f"it starts with {prefix.lower()}, which Postgres keeps for its predefined roles"
    return None
