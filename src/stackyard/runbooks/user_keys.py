"""Rotating a service account's key through its second slot, without downtime.

A rotation edits stackyard.yml and applies the result on a target, so everything that could
stop the apply is checked before the file changes: the target, its secrets and connection, and
that the target is otherwise up to date. A rotation applies its own key change only: other
changes declared but not yet applied are someone's to review, and the rotation refuses to
carry them along.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackyard.config.edit import ProjectFile
from stackyard.config.project import Project
from stackyard.errors import UsageError, counted, did_you_mean
from stackyard.infra.layout import build_declaration
from stackyard.infra.plan import Plan
from stackyard.infra.service import AccessControl
from stackyard.infra.users import (
    KeyPair,
    generate_key_pair,
    private_key_files,
    write_private_key,
)
from stackyard.session import Sessions


@dataclass(frozen=True)
class UserChange:
    """The result of ``user add``, ``user rotate-key`` and ``user remove``.

    Attributes:
        name: the user, as declared.
        kind: ``service`` or ``person``.
        action: ``added``, ``rotation started``, ``rotation finished`` or ``removed``.
        key_file: where the new private key was written, if one was.
        private_key: the new private key, only when asked to print it instead of saving it.
        plan: the plan applied (or to apply) on the target, if one was computed.
        applied: whether that plan was applied.
        next_step: what the user does next, in words.
        loses: for ``removed``: the roles and schema access the user had, by the declaration.
        key_stored: where in a secret manager the new private key was stored, if it was.
        keys_removed: for ``rotation finished``: the retired key's private key files, deleted.
    """

    name: str
    kind: str
    action: str
    key_file: Path | None = None
    private_key: str | None = None
    plan: Plan | None = None
    applied: bool = False
    next_step: str = ""
    loses: tuple[str, ...] = ()
    key_stored: str | None = None
    keys_removed: tuple[Path, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The change as plain data (``--json``)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "action": self.action,
            "key_file": None if self.key_file is None else str(self.key_file),
            "key_stored": self.key_stored,
            "private_key": self.private_key,
            "plan": None if self.plan is None else self.plan.to_dict(),
            "applied": self.applied,
            "loses": list(self.loses),
            "next_step": self.next_step,
            "keys_removed": [str(p) for p in self.keys_removed],
        }


class KeyRotation:
    """Key rotation for one project's service accounts.

    Args:
        project: the project as read.
        sessions: its sessions (a rotation is planned and applied on a target).
    """

    def __init__(self, project: Project, sessions: Sessions) -> None:
        self.project = project
        self.sessions = sessions
        self.access = AccessControl(project, sessions)

    def rotate(
        self,
        name: str,
        *,
        finish: bool = False,
        target: str | None = None,
        print_key: bool = False,
        key_backend: str | None = None,
        key_name: str | None = None,
    ) -> UserChange:
        """Rotate a service account's key without downtime, and apply on the target.

        Without ``finish``: a new key pair goes into the second slot (RSA_PUBLIC_KEY_2) and is
        applied; both keys work. With ``finish``: the new key moves to the first slot and the
        old one is removed, which is applied too (the only destructive step allowed).
        ``key_backend``/``key_name`` store the new private key in a secret manager (as a new
        version of the secret) instead of a file.

        Raises:
            UsageError: not a service account, a rotation already in progress, or none to
                finish.
        """
        declaration = self.access.declaration()
        user = declaration.user(name)
        if user is None or user.kind != "service":
            known = [u.name for u in declaration.users if u.kind == "service"]
            raise UsageError(
                f"'{name}' is not a declared service account{did_you_mean(name.upper(), known)}",
                hint=f"service accounts: {', '.join(known) or '(none)'}; add one with "
                "`stackyard user add NAME --service`",
            )
        # What could stop the apply is checked before the file changes: an unknown target, a
        # missing secret or a warehouse that does not answer left a new key in stackyard.yml
        # and .stackyard/keys, and the retry refused it as a rotation in progress.
        before = self.access.plan(target)
        if before.live_known and before.has_changes:
            raise UsageError(
                f"'{before.target}' has {counted(len(before.steps), 'access statement')} declared but "
                "not applied, and a rotation applies its own key change only",
                hint="review them with `stackyard plan`, apply them (`stackyard apply`), then "
                "rotate; nothing was written",
            )
        file = ProjectFile(self.project.config_file)
        key = file.key_of("service_accounts", user.name) or user.name
        entry = file.section("service_accounts", key)
        if user.loader and "loader" not in entry:
            entry["loader"] = user.loader
        key_file = None
        private = None
        stored = None
        retired: list[Path] = []
        if finish:
            if not user.rsa_public_key_2:
                raise UsageError(
                    f"no rotation to finish for {user.name}: its second key slot is empty",
                    hint=f"start one with `stackyard user rotate-key {user.name}`",
                )
            entry["rsa_public_key"] = entry["rsa_public_key_2"]
            del entry["rsa_public_key_2"]
            action = "rotation finished"
            # Every client has the new key: the retired one's private file is only a
            # liability now (and the security check would go on asking to rotate it).
            retired = private_key_files(
                self.project.project_dir, user.name, user.rsa_public_key or ""
            )
        else:
            if user.rsa_public_key and user.rsa_public_key_2:
                raise UsageError(
                    f"a rotation of {user.name}'s key is in progress (both slots hold keys)",
                    hint=f"finish it first: `stackyard user rotate-key {user.name} --finish`",
                )
            pair = generate_key_pair()
            slot = "rsa_public_key_2" if user.rsa_public_key else "rsa_public_key"
            entry[slot] = key_text(pair.public_pem)
            build_declaration(file.validated())
            key_file, stored = keep_private_key(
                self.project, user.name, pair, print_key, key_backend, key_name
            )
            if print_key and not key_backend:
                private = pair.private_pem
            action = "rotation started"
        build_declaration(file.validated())
        file.save()
        # The rotation is planned and applied against stackyard.yml as it is now.
        access = AccessControl(self.project.reloaded(), self.sessions)
        plan = access.plan(target)
        allowed = all(
            s.kind == "alter_user" and s.grantee.upper().endswith(user.name)
            for s in plan.destructive_steps
        )
        applied = False
        next_step = ""
        warehouse = self.sessions.get(plan.target).warehouse
        if not warehouse.REACHABLE_HERE:
            next_step = (
                f"run the plan's statements on '{plan.target}' (`stackyard plan -t "
                f"{plan.target} --sql FILE`)"
            )
        elif not allowed:
            next_step = (
                "the plan holds other destructive steps: review `stackyard plan`, then "
                "`stackyard apply --allow-destructive`"
            )
        else:
            access.apply(target=plan.target, allow_destructive=finish)
            applied = True
        if not finish:
            next_step = next_step or (
                "deploy the new private key to every client, then run "
                f"`stackyard user rotate-key {user.name} --finish`"
            )
        for path in retired:
            path.unlink(missing_ok=True)
        return UserChange(
            user.name,
            "service",
            action,
            key_file,
            private,
            plan,
            applied,
            next_step,
            key_stored=stored,
            keys_removed=tuple(retired),
        )


def keep_private_key(
    project: Project,
    user: str,
    pair: KeyPair,
    print_key: bool,
    backend: str | None,
    key_name: str | None,
) -> tuple[Path | None, str | None]:
    """Put a new private key where it was asked to go: a secret manager, the screen
    (returned, not kept) or a 0600 file; return (file, where stored)."""
    if backend:
        name = key_name or f"stackyard/{project.config.name}/{user.lower()}"
        return None, project.secrets.store(backend, name, pair.private_pem)
    if print_key:
        return None, None
    return write_private_key(project.project_dir, user, pair), None


def key_text(pem: str) -> str:
    """A public key as stackyard.yml holds it: the PEM's body, on one line."""
    from stackyard.infra.snowflake import key_body

    return key_body(pem)
