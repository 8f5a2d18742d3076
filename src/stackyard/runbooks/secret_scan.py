"""Finding secrets in text, in a project's git history, and network calls without deadlines
in Python sources. Findings name the place and the kind of secret, never its value.
"""

from __future__ import annotations

import ast
import re
import subprocess
from collections.abc import Iterable
from pathlib import Path

from stackyard.config.private import PRIVATE_DIR

# Patterns of secrets that are unmistakable on their own. Vendor prefixes from each vendor's
# documentation of its token formats.
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("a private key", re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----")),
    ("a URL with a password", re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@{}]+:[^/\s@{}]+@")),
    ("an AWS access key", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("a GitHub token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b")),
    ("a Slack token", re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}")),
    ("a Slack webhook URL", re.compile(r"hooks\.slack\.com/services/T[A-Za-z0-9/]+")),
    ("a Stripe key", re.compile(r"\b[sr]k_live_[A-Za-z0-9]{16,}")),
    (
        "a secret written in place of {secret: NAME}",
        re.compile(
            r"^\s*[\"']?(?:password|passphrase|token|api_key|private_key|secret)[\"']?\s*[:=]"
            r"\s*(?![\s{]|$|null\b|~)\S{6,}",
            re.IGNORECASE | re.MULTILINE,
        ),
    ),
)
MAX_HISTORY_BYTES = 200 * 1024 * 1024
HISTORY_TIMEOUT = 120  # seconds for `git log -p`
DLT_SECRETS_FILE = ".dlt/secrets.toml"  # dlt's own, read for adopted dlt sources


def secret_lines(text: str, known: Iterable[str] = ()) -> list[tuple[int, str]]:
    """The lines of ``text`` that hold a secret, with what kind of secret each holds.

    Args:
        text: a file's text.
        known: secret values in use (from secrets.toml and the environment).

    Returns:
        ``(line number, description)`` pairs, first finding per line.

    >>> secret_lines("a: 1\\nurl: postgresql://bob:pw@db/x\\npassword: {secret: PG}\\n")
    [(2, 'a URL with a password')]
    >>> secret_lines("token: tok_123456789\\n", known=["tok_123456789"])
    [(1, 'the value of a secret in use')]
    """
    values = [v for v in known if v]
    found: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        what = _what(line, values)
        if what:
            found.append((number, what))
    return found


def _what(line: str, known: list[str]) -> str | None:
    if any(value in line for value in known):
        return "the value of a secret in use"
    for description, pattern in _PATTERNS:
        if pattern.search(line):
            return description
    return None


def git_history_findings(
    project_dir: Path, known: Iterable[str]
) -> tuple[list[tuple[str, str, str]], str | None]:
    """Secrets in any commit of the git repository holding the project, and files under
    ``.stackyard/`` that were ever committed or are not ignored.

    Returns:
        ``(findings, skipped)``: each finding is ``(where, message, hint)``; ``skipped`` says
        why the history was not read (no git, not a repository), else ``None``.
    """
    root = _git(project_dir, "rev-parse", "--show-toplevel")
    if root is None:
        return [], "the project is not in a git repository (or git is not installed)"
    found: list[tuple[str, str, str]] = []
    hint_rewrite = (
        "rotate the secret now (it is exposed to everyone with a clone), then remove it from "
        "history (git filter-repo) if the repository is shared"
    )
    # --diff-filter=d: the commit that deletes a file is the fix, not a leak.
    committed = _git(
        project_dir,
        "log",
        "--all",
        "--format=%h",
        "--name-only",
        "--diff-filter=d",
        "--",
        PRIVATE_DIR,
    )
    commit = ""
    for line in (committed or "").splitlines():
        if not line.strip():
            continue
        if "/" not in line and re.fullmatch(r"[0-9a-f]{4,40}", line):
            commit = line
            continue
        found.append(
            (
                f"commit {commit}",
                f"{line} was committed (it is private to the machine)",
                hint_rewrite,
            )
        )
    if not _ignored(project_dir, f"{PRIVATE_DIR}/secrets.toml"):
        found.append(
            (
                ".gitignore",
                f"{PRIVATE_DIR}/ is not git-ignored, so secrets.toml and keys can be committed",
                f"add '{PRIVATE_DIR}/' to .gitignore",
            )
        )
    if (project_dir / DLT_SECRETS_FILE).is_file() and not _ignored(project_dir, DLT_SECRETS_FILE):
        found.append(
            (
                DLT_SECRETS_FILE,
                f"{DLT_SECRETS_FILE} (dlt's secrets) is not git-ignored, or is tracked, so "
                "`git add -A` commits its secrets",
                f"add '{DLT_SECRETS_FILE}' to .gitignore (git rm --cached {DLT_SECRETS_FILE} "
                "if it is tracked)",
            )
        )
    found += _history_secrets(project_dir, [v for v in known if v], hint_rewrite)
    return found, None


def _history_secrets(project_dir: Path, known: list[str], hint: str) -> list[tuple[str, str, str]]:
    try:
        process = subprocess.run(
            [
                "git",
                "log",
                "--all",
                "-p",
                "--no-color",
                "--no-ext-diff",
                "--format=commit %h",
                "--",
                ".",
            ],
            cwd=project_dir,
            capture_output=True,
            timeout=HISTORY_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return [("git history", f"reading the history took over {HISTORY_TIMEOUT} s", hint)]
    text = process.stdout[:MAX_HISTORY_BYTES].decode("utf-8", errors="replace")
    found: list[tuple[str, str, str]] = []
    seen: set[tuple[str, str, str]] = set()
    commit = path = ""
    for line in text.splitlines():
        if line.startswith("commit "):
            commit = line.split()[1]
        elif line.startswith("+++ "):
            path = line[6:] if line.startswith("+++ b/") else line[4:]
        elif line.startswith("+") and not line.startswith("+++"):
            what = _what(line[1:], known)
            if what and (commit, path, what) not in seen:
                seen.add((commit, path, what))
                found.append((f"commit {commit}: {path}", f"{what} was committed", hint))
    return found


def _ignored(project_dir: Path, path: str) -> bool:
    """Whether git ignores ``path`` (a tracked file is not ignored, whatever .gitignore says:
    ``--no-index`` is left out)."""
    done = subprocess.run(
        ["git", "check-ignore", "-q", path], cwd=project_dir, capture_output=True, check=False
    )
    return done.returncode != 1


def _git(cwd: Path, *args: str) -> str | None:
    try:
        process = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return process.stdout if process.returncode == 0 else None


# Calls that wait on the network with no deadline unless given one.
_REQUESTS_VERBS = {"get", "post", "put", "patch", "delete", "head", "options", "request"}


def deadline_problems(source: str) -> list[tuple[int, str]]:
    """Network calls in Python source that wait without a deadline.

    Covers ``requests.<verb>(…)`` and ``<session>.<verb>(…)`` on a ``requests.Session``
    name, ``urlopen(…)``, ``smtplib.SMTP(…)`` and ``socket.create_connection(…)`` without a
    timeout. httpx has a default timeout and is not reported.

    >>> deadline_problems("import requests\\nrequests.get(url)\\nrequests.get(url, timeout=5)\\n")
    [(2, 'requests.get(…)')]
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    sessions = {
        target.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and _call_name(node.value) in ("requests.Session", "Session")
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _call_name(node)
        keywords = {k.arg for k in node.keywords}
        if "timeout" in keywords:
            continue
        base, _, verb = name.rpartition(".")
        if (
            ((base == "requests" or base in sessions) and verb in _REQUESTS_VERBS)
            or (name.endswith("urlopen") and len(node.args) < 3)
            or (
                name in ("smtplib.SMTP", "smtplib.SMTP_SSL", "socket.create_connection")
                and len(node.args) < (4 if name.startswith("smtplib") else 2)
            )
        ):
            found.append((node.lineno, f"{name}(…)"))
    return sorted(found)


def _call_name(node: ast.AST) -> str:
    if not isinstance(node, ast.Call):
        return ""
    parts = []
    func: ast.AST = node.func
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        parts.append(func.id)
    return ".".join(reversed(parts))
