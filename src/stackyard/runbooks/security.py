"""``stackyard security check``: the Security Hardening runbook as one command.

Each check reads the project (and, with a target, the warehouse's live access state) and
reports findings; none changes anything. The checks, by id:

* ``file-permissions``: ``.stackyard/`` is 0700 and what can hold a secret in it
  (``secrets.toml``, private keys, dlt traces, the DuckDB file) is readable by its owner only,
  as is dlt's own ``.dlt/secrets.toml``;
* ``secrets-in-config``: stackyard.yml holds no secret value (a URL with a password, a token,
  a private key, a value from secrets.toml);
* ``secrets-in-git-history``: no commit of the project's repository ever held one, or a file
  under ``.stackyard/``, and ``.stackyard/`` (and ``.dlt/secrets.toml``, when there is one) is
  git-ignored;
* ``excess-privileges``: no declared role holds more in the warehouse than declared (options
  to pass grants and roles on included), nor is held by a role the project answers for
  without declaring it (the pending revocations of ``stackyard access review``); needs a
  target;
* ``public-access``: nothing is granted to PUBLIC and PUBLIC holds no role;
* ``password-auth``: Snowflake service users and targets log in with key pairs only;
* ``key-rotation``: no private key under ``.stackyard/keys`` is older than the rotation age;
* ``network-deadlines``: no network wait in the project's config or Python sources is
  unbounded (a request without a timeout, ``connect_timeout=0``, timeouts over five minutes).
"""

from __future__ import annotations

import stat
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stackyard.config.loader import read_yaml_with_lines
from stackyard.config.model import PythonSource, RestApiSource, SqlDatabaseSource
from stackyard.config.private import PRIVATE_DIR, TRACE_FILE
from stackyard.config.project import Project
from stackyard.config.secrets import SECRETS_FILE, Secrets
from stackyard.errors import ConfigError
from stackyard.infra.service import AccessControl
from stackyard.runbooks.secret_scan import (
    DLT_SECRETS_FILE,
    deadline_problems,
    git_history_findings,
    secret_lines,
)
from stackyard.warehouse import warehouse_class

CHECKS = (
    "file-permissions",
    "secrets-in-config",
    "secrets-in-git-history",
    "excess-privileges",
    "public-access",
    "password-auth",
    "key-rotation",
    "network-deadlines",
)
DEFAULT_ROTATION_DAYS = 90
LONGEST_TIMEOUT = 300.0  # seconds; a wait longer than this is reported as unbounded


@dataclass(frozen=True)
class Finding:
    """One problem: which check found it, where, what is wrong and what to do."""

    check: str
    where: str
    message: str
    hint: str


@dataclass(frozen=True)
class SecurityReport:
    """The result of ``stackyard security check``."""

    target: str | None
    checks: tuple[str, ...]
    findings: tuple[Finding, ...]
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """No finding."""
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        """The report as ``--json`` prints it."""
        return {
            "ok": self.ok,
            "target": self.target,
            "checks": list(self.checks),
            "skipped": dict(self.skipped),
            "findings": [
                {"check": f.check, "where": f.where, "message": f.message, "hint": f.hint}
                for f in self.findings
            ],
        }


def security_check(
    project: Project,
    access: AccessControl,
    target: str | None = None,
    *,
    rotation_days: int = DEFAULT_ROTATION_DAYS,
    live_state: Path | None = None,
) -> SecurityReport:
    """Run every check on a project (and a target's live access state, when given).

    Args:
        project: the loaded project.
        access: the project's access control (policy check, live state, review).
        target: a target whose warehouse access is read; ``None`` checks the project only.
        rotation_days: keys older than this many days are reported.
        live_state: a recorded live state (SHOW output) instead of connecting.

    Returns:
        The report; ``report.ok`` is ``False`` when anything was found.

    Raises:
        ConfigError: the project or the target is invalid.
        WarehouseUnreachableError: the target's warehouse cannot be reached.
    """
    project_dir = project.project_dir
    findings: list[Finding] = []
    skipped: dict[str, str] = {}
    findings += _permissions(project_dir)
    known = _known_secret_values(project.secrets, project.config.model_dump(by_alias=True))
    findings += _secrets_in_config(project.config_file, known)
    findings += _git_history(project_dir, known, skipped)
    findings += _access_findings(project, access, target, live_state, skipped)
    findings += _key_ages(project_dir, rotation_days)
    findings += _deadlines(project)
    return SecurityReport(
        target=project.target_name(target) if target else None,
        checks=CHECKS,
        findings=tuple(findings),
        skipped=skipped,
    )


def unvalidated_security_check(
    config_file: Path,
    error: ConfigError,
    *,
    rotation_days: int = DEFAULT_ROTATION_DAYS,
    environ: Mapping[str, str] | None = None,
) -> SecurityReport:
    """The checks that need only the project's files, for a stackyard.yml that does not
    validate: a secret in it is what the check is for (the config refuses a URL with a
    password, so the project cannot load), and is reported as a finding.

    Args:
        config_file: the project's stackyard.yml.
        error: why it does not validate.
        rotation_days: keys older than this many days are reported.
        environ: the environment secrets are read from (default: the process's).

    Returns:
        The report; the checks that need the validated config are listed as skipped.

    Raises:
        ConfigError: ``error`` itself, when no secret is found in the raw file: then the file
            is only invalid, which is what to fix first.
    """
    from stackyard.config.secrets import Secrets

    project_dir = config_file.parent
    try:  # the names of its {secret: NAME} references, if the file reads as YAML at all
        data, _ = read_yaml_with_lines(config_file)
    except ConfigError:
        data = None
    known = _known_secret_values(Secrets(project_dir, environ), data)
    in_config = _secrets_in_config(config_file, known)
    if not in_config:
        raise error
    why = f"{config_file.name} does not validate; fix it, then run the check again"
    skipped = {
        check: why
        for check in ("excess-privileges", "public-access", "password-auth", "network-deadlines")
    }
    findings = [*_permissions(project_dir), *in_config]
    findings += _git_history(project_dir, known, skipped)
    findings += _key_ages(project_dir, rotation_days)
    return SecurityReport(None, CHECKS, tuple(findings), skipped)


def _secrets_in_config(config_file: Path, known: list[str]) -> list[Finding]:
    return [
        Finding(
            "secrets-in-config",
            f"{config_file.name}:{line}",
            f"{what} in {config_file.name}",
            "move the value to .stackyard/secrets.toml or the environment and write "
            "{secret: NAME} in its place; then rotate it, since it was exposed",
        )
        for line, what in secret_lines(config_file.read_text(encoding="utf-8"), known)
    ]


def _git_history(project_dir: Path, known: list[str], skipped: dict[str, str]) -> list[Finding]:
    history, reason = git_history_findings(project_dir, known)
    if reason:
        skipped["secrets-in-git-history"] = reason
    return [Finding("secrets-in-git-history", *item) for item in history]


def _permissions(project_dir: Path) -> list[Finding]:
    found = _open_secret_files(project_dir, [project_dir / DLT_SECRETS_FILE])
    private = project_dir / PRIVATE_DIR
    if not private.is_dir():
        return found
    hint = f"chmod 700 {PRIVATE_DIR} && chmod -R go-rwx {PRIVATE_DIR}"
    if _open_to_others(private):
        found.append(
            Finding(
                "file-permissions",
                PRIVATE_DIR,
                f"{PRIVATE_DIR}/ is open to other users (mode {_mode(private):o})",
                hint,
            )
        )
    secret_files = [project_dir / SECRETS_FILE, *sorted((private / "keys").glob("*"))]
    found += _open_secret_files(project_dir, secret_files)
    for trace in sorted(private.rglob(TRACE_FILE)):
        rel = trace.relative_to(project_dir)
        found.append(
            Finding(
                "file-permissions",
                str(rel),
                f"{rel} is dlt's pickled run trace: it keeps request URLs and resolved "
                "config values, secrets included",
                f"rm {rel} (stackyard no longer keeps it)",
            )
        )
    others = [
        p
        for p in private.rglob("*")
        if p not in secret_files and not p.is_symlink() and _open_to_others(p)
    ]
    if others:
        shown = ", ".join(str(p.relative_to(project_dir)) for p in others[:3])
        more = f" and {len(others) - 3} more" if len(others) > 3 else ""
        found.append(
            Finding(
                "file-permissions",
                PRIVATE_DIR,
                f"{len(others)} files or folders under {PRIVATE_DIR}/ are open to other users "
                f"({shown}{more}): they hold loaded data and pipeline state",
                hint,
            )
        )
    return found


def _open_secret_files(project_dir: Path, paths: list[Path]) -> list[Finding]:
    return [
        Finding(
            "file-permissions",
            str(rel),
            f"{rel} holds secrets and is readable by other users (mode {_mode(path):o})",
            f"chmod 600 {rel}",
        )
        for path in paths
        if path.is_file() and _open_to_others(path)
        for rel in [path.relative_to(project_dir)]
    ]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _open_to_others(path: Path) -> bool:
    try:
        return bool(_mode(path) & 0o077)
    except FileNotFoundError:
        return False


def _known_secret_values(secrets: Secrets, config: Any) -> list[str]:
    """Secret values this project uses: from secrets.toml, and from the environment
    variables its config (a mapping as read) names. Short values are left out (too many false
    matches)."""
    names = _secret_names(config)
    try:
        values = secrets.values(names)
    except ConfigError:  # an unreadable secrets file; the commands that need it say so
        values = set()
    return sorted(v for v in values if len(v) >= 8)


def _secret_names(data: Any) -> set[str]:
    if isinstance(data, dict):
        if set(data) == {"secret"} and isinstance(data["secret"], str):
            return {data["secret"]}
        return {n for v in data.values() for n in _secret_names(v)}
    if isinstance(data, list):
        return {n for v in data for n in _secret_names(v)}
    return set()


def _access_findings(
    project: Project,
    access: AccessControl,
    target: str | None,
    live_state: Path | None,
    skipped: dict[str, str],
) -> list[Finding]:
    found: list[Finding] = []
    report = access.policy_check(target, live_state=live_state)
    rule_to_check = {"no-public-grants": "public-access", "service-key-pair-only": "password-auth"}
    for violation in report.violations:
        check = rule_to_check.get(violation.rule)
        if check:
            found.append(Finding(check, target or "declaration", violation.message, _HINTS[check]))
    for name, config in project.config.targets.items():
        if (
            warehouse_class(config.type).SUPPORTS_KEY_PAIR_AUTH
            and getattr(config, "password", None) is not None
        ):
            found.append(
                Finding(
                    "password-auth",
                    f"targets.{name}",
                    f"target {name} logs in to Snowflake with a password",
                    "use key-pair auth: private_key: {secret: NAME} (see docs/targets.md)",
                )
            )
    if target is None:
        skipped["excess-privileges"] = "needs a target (-t): it reads the warehouse's grants"
        return found
    name = project.target_name(target)
    if not warehouse_class(project.config.targets[name].type).GRANTS_IN_CATALOG:
        skipped["excess-privileges"] = "BigQuery access is IAM, outside stackyard"
        return found
    live = access.live_state(name, live_state)
    for account in sorted(live.accounts):
        keyless = not (account.attr("rsa_public_key_fp") or account.attr("rsa_public_key_2_fp"))
        if account.attr("type") in ("SERVICE", "LEGACY_SERVICE") and keyless:
            found.append(
                Finding(
                    "password-auth",
                    name,
                    f"Snowflake service user {account.principal.name} has no RSA public key",
                    f"stackyard user rotate-key {account.principal.name}, then apply",
                )
            )
    review = access.review(name, live_state=live_state)
    for entry in review.outside_declaration:
        if entry.startswith("owner: "):
            found.append(
                Finding(
                    "excess-privileges",
                    name,
                    f"more than declared: {entry.removeprefix('owner: ')}",
                    "give the table back to the user that builds it (`ALTER TABLE … OWNER "
                    "TO …`), or declare CREATE on its schema for that user if it is needed",
                )
            )
        elif "(pending" in entry:
            found.append(
                Finding(
                    "excess-privileges",
                    name,
                    f"more than declared: {entry}",
                    "declare it if it is needed; otherwise `stackyard apply "
                    "--allow-destructive` revokes it",
                )
            )
    return found


_HINTS = {
    "public-access": "revoke it from PUBLIC and grant it to a functional role",
    "password-auth": "give the user a key pair: stackyard user rotate-key NAME",
}


def _key_ages(project_dir: Path, rotation_days: int) -> list[Finding]:
    found = []
    now = time.time()
    for key in sorted((project_dir / PRIVATE_DIR / "keys").glob("*.p8")):
        days = int((now - key.stat().st_mtime) // 86_400)
        if days > rotation_days:
            user = key.stem.rsplit("-", 1)[0].upper()
            found.append(
                Finding(
                    "key-rotation",
                    str(key.relative_to(project_dir)),
                    f"the private key of {user} is {days} days old (rotation age: "
                    f"{rotation_days} days)",
                    f"stackyard user rotate-key {user}",
                )
            )
    return found


def _deadlines(project: Project) -> list[Finding]:
    found = []
    config = project.config
    for name, source in config.sources.items():
        where = f"sources.{name}"
        if isinstance(source, RestApiSource):
            seconds = source.retries.timeout_seconds
            if seconds > LONGEST_TIMEOUT:
                found.append(_slow(f"{where}.retries.timeout_seconds", seconds))
        if (
            isinstance(source, SqlDatabaseSource)
            and isinstance(source.connection, str)
            and "connect_timeout=0" in source.connection.replace(" ", "")
        ):
            found.append(
                Finding(
                    "network-deadlines",
                    f"{where}.connection",
                    "connect_timeout=0 makes the driver wait for the database forever",
                    "remove it (stackyard uses 10 s) or set a number of seconds",
                )
            )
        if isinstance(source, PythonSource):
            path = project.project_dir / source.path
            if path.is_file():
                for line, call in deadline_problems(path.read_text(encoding="utf-8")):
                    found.append(
                        Finding(
                            "network-deadlines",
                            f"{source.path}:{line}",
                            f"{call} has no timeout: an endpoint that never answers blocks "
                            "the load forever",
                            "pass timeout=<seconds>",
                        )
                    )
    for name, channel in config.monitors.alerts.channels.items():
        if channel.timeout_seconds > LONGEST_TIMEOUT:
            found.append(
                _slow(f"monitors.alerts.channels.{name}.timeout_seconds", channel.timeout_seconds)
            )
    return found


def _slow(where: str, seconds: float) -> Finding:
    return Finding(
        "network-deadlines",
        where,
        f"a timeout of {seconds:g} s is as good as none: a stuck endpoint holds the run",
        f"set at most {LONGEST_TIMEOUT:g} seconds",
    )
