"""What ``user add`` says when the name is taken already: which entry holds it, and what
frees it, if anything does. ``user remove`` removes users only; a role is freed by editing
the entry it comes from, and the roles stackyard declares itself not at all."""

from __future__ import annotations

from stackyard.config.edit import ProjectFile
from stackyard.errors import UsageError
from stackyard.infra.declaration import Declaration


def refuse_a_taken_name(name: str, declaration: Declaration, file: ProjectFile) -> None:
    """Refuse a user whose name a declared user or role has, saying where that one comes from
    and what frees the name (``user remove`` only where it would).

    Raises:
        UsageError: the name is taken; nothing was written.
    """
    user = declaration.user(name)
    role = declaration.role(name)
    if user is not None:
        kind = "person" if user.kind == "person" else "service account"
        what = f"'{name}' is already declared as a {kind}"
        if user.kind == "service" and user.loader:
            fix = (
                f": {user.name} is loader {user.loader}'s service account, which `stackyard "
                "user remove` refuses while its loader writes a database"
            )
        else:
            listed = user.name.lower() if user.kind == "person" else user.name
            fix = f", or `stackyard user remove {listed}` first"
    elif role is not None:
        what = f"'{name}' is already declared as role {role.name}"
        entry = file.key_of("roles", name)
        owner = next(
            (u for u in declaration.users if u.kind == "person" and f"DEV_{u.name}" == role.name),
            None,
        )
        if entry is not None:
            fix = (
                f", or rename or remove access.roles.{entry} in stackyard.yml (`user remove` "
                "removes users, not roles)"
            )
        elif owner is not None:
            fix = (
                f": {role.name} is person {owner.name.lower()}'s own role (ANALYTICS_DEVELOPER "
                "gives each developer one), which goes only with `stackyard user remove "
                f"{owner.name.lower()}`"
            )
        elif role.database is not None:
            fix = f": {role.name} is a role of database {role.database}, derived from it"
        else:
            fix = (
                f": {role.name} is one of the roles stackyard declares itself "
                "(docs/access-control.md)"
            )
    else:
        return
    raise UsageError(what, hint=f"pick another name{fix}; nothing was written")
