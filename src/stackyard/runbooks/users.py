"""The "Adding Users" runbook: people and service accounts in stackyard.yml, and key rotation.

``user add`` declares a person, or a service account with a new key pair (the private half
written once, mode 0600); ``user rotate-key`` rotates a key through the second slot without
downtime and applies it; ``user remove`` takes a user out (the next plan drops it). Every edit
is validated, the access declaration included, before stackyard.yml is replaced.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from stackyard.config.access import PRINCIPAL_PATTERN
from stackyard.config.edit import ProjectFile
from stackyard.config.names import reserved_reason
from stackyard.config.project import Project
from stackyard.config.secrets import check_backend
from stackyard.errors import UsageError, did_you_mean
from stackyard.infra.declaration import (
    SERVICE_PREFIX,
    SOURCES_READER,
    Declaration,
    is_service_account_name,
    looks_like_service_account,
    reader_role,
    writer_role,
)
from stackyard.infra.layout import build_declaration
from stackyard.infra.loaders import declare_loader
from stackyard.infra.service import AccessControl
from stackyard.infra.users import KEYS_DIR, KeyPair, generate_key_pair
from stackyard.runbooks.steps import RunbookPlan, RunbookStep
from stackyard.runbooks.user_clashes import refuse_a_taken_name
from stackyard.runbooks.user_keys import KeyRotation, UserChange, keep_private_key, key_text
from stackyard.session import Sessions


class UsersRunbook:
    """Add, rotate the key of, and remove users of one project.

    Args:
        project: the project as read.
        sessions: its sessions (a rotation is planned and applied on a target).
    """

    def __init__(self, project: Project, sessions: Sessions) -> None:
        self.project = project
        self.sessions = sessions
        self.access = AccessControl(project, sessions)

    def _refuse_a_login(self, name: str) -> None:
        target = _login_clash(self.project.config, name)
        if target is not None:
            raise UsageError(
                f"cannot add user '{name}': its role would be the login of target '{target}' "
                "(the user stackyard applies plans as), whose grants a plan would then change",
                hint="pick another name; nothing was written",
            )

    def plan_add(
        self,
        name: str,
        *,
        service: bool = False,
        roles: list[str] | None = None,
        loader: str | None = None,
        print_key: bool = False,
        schemas: tuple[str, ...] = (),
        key_backend: str | None = None,
        key_name: str | None = None,
    ) -> RunbookPlan:
        """The steps ``add`` would take, each with its rollback; nothing is changed.

        Raises:
            UsageError, ConfigError: as :meth:`add` would, for the same reasons: the dry run
                checks what the real one checks (the edit is drafted and validated in memory).
        """
        self._draft(name, service, roles, loader, schemas, key_backend)
        user = name.upper() if service else name.lower()
        section = "service_accounts" if service else "people"
        granted = ", ".join(roles or []) or (
            "its own role" if service else "ANALYTICS_DEVELOPER and a dev schema of its own"
        )
        steps = []
        if service:
            where = (
                f"stored in {key_backend} as "
                f"'{key_name or f'stackyard/{self.project.config.name}/{user.lower()}'}'"
                if key_backend
                else "printed once"
                if print_key
                else f"written to .stackyard/keys/{user.lower()}-<id>.p8 (mode 0600, git-ignored)"
            )
            steps.append(
                RunbookStep(
                    "create key pair",
                    f"a new RSA key pair for {user}: the private key {where}, the public key "
                    "into stackyard.yml",
                    "delete the key file",
                )
            )
        loads = f", writing loader {loader}'s database" if loader else ""
        declaration = self.access.declaration()
        if (
            service
            and loader
            and (schemas or not any(d.loader == loader for d in declaration.databases))
        ):
            db = loader.upper()
            listed = ", ".join(schemas) or "none yet"
            steps.append(
                RunbookStep(
                    "declare loader database",
                    f"declare database {db} (loader {loader}; schemas: {listed}) under "
                    f"access.databases: roles {reader_role(db)} and {writer_role(db)}, "
                    f"{reader_role(db)} joins {SOURCES_READER} (the read chain), {user}'s "
                    f"role holds {writer_role(db)}",
                    f"remove access.databases.{db} from stackyard.yml",
                )
            )
        # `user remove` refuses a loader's account: it is undone by hand, with the loader's
        # database when this adds it.
        undo = f"`stackyard user remove {user}`"
        if service and loader:
            new_db = steps and steps[-1].action == "declare loader database"
            undo = (
                f"remove {user}'s entry under access.{section}"
                + (f" and access.databases.{loader.upper()}" if new_db else "")
                + " from stackyard.yml (`user remove` refuses a loader's account)"
            )
        steps.append(
            RunbookStep(
                "edit stackyard.yml",
                f"declare {user} under access.{section}, granted {granted}{loads}",
                undo,
            )
        )
        return RunbookPlan(
            "user add",
            user,
            tuple(steps),
            ("the warehouse changes with `stackyard plan`, then `stackyard apply`",),
        )

    def add(
        self,
        name: str,
        *,
        service: bool = False,
        roles: list[str] | None = None,
        loader: str | None = None,
        print_key: bool = False,
        schemas: tuple[str, ...] = (),
        key_backend: str | None = None,
        key_name: str | None = None,
    ) -> UserChange:
        """Declare a person, or a service account with a new key pair, in stackyard.yml.

        Args:
            name: the user's name (a person: ``alice``; a service: ``SVC_FIVETRAN``).
            service: declare a service account (key-pair authentication).
            roles: roles to grant (a person's default: ANALYTICS_DEVELOPER).
            loader: for a service account, the loader whose database it writes; a loader
                without a database yet gets one, with its roles and its place in the read
                chain (:func:`stackyard.infra.loaders.declare_loader`).
            print_key: return the private key instead of writing it to .stackyard/keys.
            schemas: for a loader, schemas it writes in its database (added to it).
            key_backend: store the private key in this secret manager (``aws``, ``vault``)
                instead of a file; nothing is written if it cannot be stored.
            key_name: its name there; default ``stackyard/<project>/<user>``.

        Returns:
            What changed; the plan is left to ``stackyard plan`` / ``apply``.

        Raises:
            UsageError: the name is already declared, or reserved (PUBLIC, SYSADMIN, pg_* …),
                or a person's name looks like a service account's (SVC_…).
            ConfigError: the change would make stackyard.yml invalid (nothing is written).
        """
        file, pair = self._draft(name, service, roles, loader, schemas, key_backend)
        if pair is None:
            file.save()
            return UserChange(
                name.lower(),
                "person",
                "added",
                next_step="run `stackyard plan`, then `stackyard apply`",
            )
        key_file, stored = keep_private_key(
            self.project, name, pair, print_key, key_backend, key_name
        )
        file.save()
        return UserChange(
            name.upper(),
            "service",
            "added",
            key_file=key_file,
            private_key=pair.private_pem if print_key and not stored else None,
            next_step=(
                "run `stackyard plan` and `stackyard apply`"
                if stored
                else "store the private key in your secret manager, then run `stackyard plan` "
                "and `stackyard apply`"
            ),
            key_stored=stored,
        )

    def _draft(
        self,
        name: str,
        service: bool,
        roles: list[str] | None,
        loader: str | None,
        schemas: tuple[str, ...],
        key_backend: str | None,
    ) -> tuple[ProjectFile, KeyPair | None]:
        """stackyard.yml with the user added, validated but not saved, and a service
        account's new key pair: every check ``add`` makes, before anything is written."""
        if key_backend and not service:
            raise UsageError(
                "--key-backend stores a service account's private key: it needs --service",
                hint="a person logs in as your warehouse's SSO or password rules say; nothing "
                "was written",
            )
        if key_backend:
            check_backend(key_backend)
        if schemas and not (service and loader):
            raise UsageError(
                "--schema names a schema of a loader's database: it needs --service and --loader",
                hint=f"e.g. `stackyard user add {name.upper()} --service --loader fivetran "
                "--schema salesforce`; nothing was written",
            )
        _check_new_name(name)
        if service:
            _refuse_a_person_name(name)
        else:
            _refuse_a_service_name(name)
        self._refuse_a_login(name)
        file = ProjectFile(self.project.config_file)
        declaration = self.access.declaration()
        existing = declaration.user(name) or declaration.role(name)
        explicit = file.key_of("service_accounts", name) or file.key_of("people", name)
        derived_service = (
            service
            and existing is not None
            and declaration.user(name) is not None
            and declaration.user(name).kind == "service"  # type: ignore[union-attr]
            and explicit is None
        )
        if existing is not None and not derived_service:
            refuse_a_taken_name(name, declaration, file)
        if not service:
            entry: dict[str, Any] = {}
            if roles:
                entry["roles"] = list(roles)
            file.section("people")[name.lower()] = entry
            build_declaration(file.validated())
            return file, None
        user = declaration.user(name)
        entry = {}
        loader = loader or (user.loader if user else None)
        if roles:
            entry["roles"] = list(roles)
        pair = generate_key_pair()
        entry["rsa_public_key"] = key_text(pair.public_pem)
        if loader and (schemas or not any(d.loader == loader for d in declaration.databases)):
            # A loader stackyard has no database for yet: declare its database with it, so
            # the read chain and the service account follow (one command per new loader).
            declare_loader(file, loader, schemas=schemas, account=name, service_entry=entry)
        else:
            if loader:
                entry = {"loader": loader, **entry}
            file.section("service_accounts")[name.upper()] = entry
        build_declaration(file.validated())
        return file, pair

    def rotate_key(
        self,
        name: str,
        *,
        finish: bool = False,
        target: str | None = None,
        print_key: bool = False,
        key_backend: str | None = None,
        key_name: str | None = None,
    ) -> UserChange:
        """Rotate a service account's key without downtime, and apply on the target
        (:meth:`~stackyard.runbooks.user_keys.KeyRotation.rotate`)."""
        return KeyRotation(self.project, self.sessions).rotate(
            name,
            finish=finish,
            target=target,
            print_key=print_key,
            key_backend=key_backend,
            key_name=key_name,
        )

    def remove(self, name: str) -> UserChange:
        """Remove a person or service account from stackyard.yml.

        The next plan drops the user (a destructive step: ``apply --allow-destructive``).

        Raises:
            UsageError: the user is not declared, or is derived from the sources.
        """
        file = ProjectFile(self.project.config_file)
        before = self.access.declaration()
        for section, kind in (("people", "person"), ("service_accounts", "service")):
            key = file.key_of(section, name)
            if key is not None:
                del file.section(section)[key]
                left = build_declaration(file.validated()).user(name)
                if left is not None and left.loader:
                    # The entry only added a key (or roles) to an account the layout derives
                    # from a loader: removing it said "removed" while the account stayed.
                    raise _derived(left.loader, left.name, file.key_of("databases", left.loader))
                _refuse_a_loaders_account(before, name)
                file.save()
                return UserChange(
                    name,
                    kind,
                    "removed",
                    loses=_what_it_held(before, name),
                    next_step="run `stackyard plan` to review, then `stackyard apply "
                    f"--allow-destructive`{_kept_keys(self.project.project_dir, key)}",
                )
        declaration = self.access.declaration()
        user = declaration.user(name)
        if user is not None and user.loader:
            raise _derived(user.loader, user.name, file.key_of("databases", user.loader))
        known = [u.name for u in declaration.users]
        raise UsageError(
            f"no user '{name}' is declared{did_you_mean(name.upper(), known)}",
            hint=f"declared users: {', '.join(known) or '(none)'}",
        )


def _refuse_a_loaders_account(before: Declaration, name: str) -> None:
    """Refuse to remove a service account declared with ``loader:`` (as ``import access``
    writes it) while its loader still writes a database: it said "removed", and the next
    apply dropped the account the loads connect as."""
    declared = before.user(name)
    if declared is None or declared.kind != "service" or not declared.loader:
        return
    writes = [d.name for d in before.loader_databases() if d.loader == declared.loader]
    if writes:
        raise UsageError(
            f"{declared.name} is the service account of loader {declared.loader}, which "
            f"writes {', '.join(writes)}; nothing was removed",
            hint=f"to retire the loader, remove access.databases.{writes[0]} and this "
            f"account's entry together; to replace a leaked key, `stackyard user "
            f"rotate-key {declared.name}`",
        )


def _derived(loader: str, user: str, database: str | None) -> UsageError:
    """The refusal to remove a loader's service account, which the layout derives."""
    if database is not None:
        return UsageError(
            f"{user} is the service account of loader {loader}, derived from "
            f"access.databases.{database} in stackyard.yml; nothing was removed",
            hint=f"to retire the loader, remove access.databases.{database} (the next plan "
            f"drops its roles and {user}); to replace a leaked key, `stackyard user "
            f"rotate-key {user}`",
        )
    return UsageError(
        f"{user} is the service account of loader {loader}, derived from the sources that "
        "it loads; nothing was removed",
        hint=f"it goes away with the last source loaded by {loader} (`stackyard source "
        f"remove`); to replace a leaked key, `stackyard user rotate-key {user}`",
    )


def _login_clash(config: Any, name: str) -> str | None:
    """The target whose own login a new user's role would be (``role_prefix`` + name), or
    None. Planned, that role's grants were given to and taken from the applying user."""
    from stackyard.config.model import PostgresTarget

    role = f"{config.access.role_prefix}{name}".lower()
    for target, settings in config.targets.items():
        # On Postgres users and roles are one namespace; Snowflake keeps them apart.
        if isinstance(settings, PostgresTarget) and settings.user.lower() == role:
            return str(target)
    return None


def _check_new_name(name: str) -> None:
    """Refuse a name no user can have, before anything is written.

    Raises:
        UsageError: not letters, digits and _ starting with a letter, or a built-in role.
    """
    if not re.match(PRINCIPAL_PATTERN, name):
        fixed = re.sub(r"[^A-Za-z0-9_]", "_", name)
        example = f" (e.g. '{fixed}')" if re.match(PRINCIPAL_PATTERN, fixed) else ""
        raise UsageError(
            f"cannot add user '{name}': a user's name is letters, digits and _, starting with "
            "a letter, at most 63 characters",
            hint=f"pick another name{example}; nothing was written",
        )
    reserved = reserved_reason(name)
    if reserved:
        raise UsageError(
            f"cannot add user '{name}': {reserved}",
            hint="pick another name; nothing was written",
        )


def _refuse_a_service_name(name: str) -> None:
    """Refuse a person named like a service account: the ``naming`` policy reports it, so
    ``policy check`` and ``apply`` refused it later, after stackyard.yml had been written.

    Raises:
        UsageError: the name starts with SVC_ (in any case).
    """
    if looks_like_service_account(name):
        account = name.upper() if is_service_account_name(name) else f"{SERVICE_PREFIX}<NAME>"
        raise UsageError(
            f"cannot add person '{name}': the name looks like a service account's "
            f"({SERVICE_PREFIX}<NAME>), which the naming policy refuses for a person",
            hint=f"for a service account, `stackyard user add {account} --service`; for "
            f"a person, choose a name that does not start with {SERVICE_PREFIX}; nothing was "
            "written",
        )


def _refuse_a_person_name(name: str) -> None:
    """Refuse a service account not named ``SVC_<NAME>``: the ``naming`` policy reports it,
    so ``policy check`` and ``apply`` refused it later, after stackyard.yml had been written.

    Raises:
        UsageError: the name is not SVC_ and a name after it.
    """
    if not is_service_account_name(name):
        rest = name[len(SERVICE_PREFIX) :] if looks_like_service_account(name) else name
        account = f"{SERVICE_PREFIX}{rest.upper()}" if rest else f"{SERVICE_PREFIX}<NAME>"
        raise UsageError(
            f"cannot add service account '{name}': a service account's name is "
            f"{SERVICE_PREFIX}<NAME>, which the naming policy holds every service account to",
            hint=f"e.g. `stackyard user add {account} --service`; nothing was written",
        )


def _kept_keys(project_dir: Path, user: str) -> str:
    """The user's private key files that ``remove`` leaves in place, said only when there
    are some (a person has none; a key may have gone to a secret manager or the screen)."""
    files = sorted((project_dir / KEYS_DIR).glob(f"{user.lower()}-*.p8"))
    if not files:
        return ""
    shown = ", ".join(str(f.relative_to(project_dir)) for f in files)
    them = "them" if len(files) > 1 else "it"
    return f" (kept: {shown}; delete {them} once no client uses {them})"


def _what_it_held(declaration: Declaration, name: str) -> tuple[str, ...]:
    """The roles a user held and the schemas it could read or write, for the record.

    >>> from stackyard.infra.declaration import Membership, Role, SchemaAccess
    >>> d = Declaration("p", (), (), (Role("R"),), (), (Membership("R", "ALICE"),),
    ...     (SchemaAccess("R", "DLT", "shop", "read"),), ())
    >>> _what_it_held(d, "alice")
    ('role R', 'read DLT.shop')
    """
    user = name.upper()
    roles = [f"role {r}" for r in sorted(declaration.roles_held(user)) if r != user]
    access = sorted(
        {(a.database, a.schema, a.level) for a in declaration.access_of(user)},
        key=lambda a: (a[0], a[1], a[2] != "write"),
    )
    seen: set[tuple[str, str]] = set()
    schemas = []
    for database, schema, level in access:
        if (database, schema) not in seen:
            seen.add((database, schema))
            schemas.append(f"{level} {database}.{schema}")
    return (*roles, *schemas)
