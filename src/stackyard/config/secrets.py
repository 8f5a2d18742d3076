"""Secrets: named in stackyard.yml, kept in the environment, .stackyard/secrets.toml or a
secret manager.

Lookup order for ``{secret: NAME}``: the environment variable ``NAME``, then the key ``NAME``
in ``<project>/.stackyard/secrets.toml``. ``from: env`` or ``from: file`` looks in one of
them only; ``from: aws`` and ``from: vault`` read AWS Secrets Manager or HashiCorp Vault
(:mod:`stackyard.config.secret_backends`). The file must not be readable by other users
(mode 0600), the same rule ssh applies to private keys.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path

from stackyard.config.base import SecretRef
from stackyard.config.bounds import read_text_file
from stackyard.config.secret_backends import BACKENDS, read_secret, write_secret
from stackyard.errors import ConfigError, SecretMissingError, UsageError, did_you_mean

SECRETS_FILE = Path(".stackyard") / "secrets.toml"


class Secrets:
    """Resolves secret references for one project and remembers every value it handed out.

    The remembered values let output and run history be scrubbed (:meth:`redact`).
    """

    def __init__(self, project_dir: Path, environ: Mapping[str, str] | None = None) -> None:
        self._file = project_dir / SECRETS_FILE
        self._environ = os.environ if environ is None else environ
        self._from_file: dict[str, str] | None = None
        self._wrong_types: dict[str, tuple[str, int | None]] = {}
        self._handed_out: set[str] = set()
        self._from_backends: dict[tuple[str, str, str | None], str] = {}

    def resolve(self, ref: SecretRef, *, used_for: str) -> str:
        """The value of a secret.

        Args:
            ref: the reference from stackyard.yml.
            used_for: what needs it, e.g. ``targets.prod.password``, for the error message.

        Raises:
            SecretMissingError: naming every place that was looked in.
            ConfigError: when the secrets file is unreadable, invalid or too open.
        """
        backend = ref.from_
        if backend in BACKENDS:
            cached = (str(backend), ref.name or ref.secret, ref.key)
            if cached not in self._from_backends:
                self._from_backends[cached] = read_secret(
                    str(backend), cached[1], ref.key, self._environ, used_for=used_for
                )
            found = self._from_backends[cached]
            self._remember(found)
            return found
        value = self._environ.get(ref.secret) if backend in (None, "env") else None
        if value is None and backend in (None, "file"):
            value = self._file_values().get(ref.secret)
        if value is None and ref.secret in self._wrong_types:
            found, line = self._wrong_types[ref.secret]
            where = f"{self._file}:{line}" if line else str(self._file)
            raise ConfigError(
                f"{where}: secret '{ref.secret}' (for {used_for}) is {found}; expected a string",
                hint=f'write {ref.secret} = "…" (one quoted value)',
            )
        if value is None:
            state = "exists, no such key" if self._file.exists() else "does not exist"
            places = []
            if backend in (None, "env"):
                places.append(f"environment variable {ref.secret} (not set)")
            if backend in (None, "file"):
                places.append(f"key {ref.secret} in {self._file} ({state})")
            raise SecretMissingError(
                f"secret '{ref.secret}' (for {used_for}) was not found; looked in: "
                + ", ".join(places),
                hint=f'export {ref.secret}=… or add {ref.secret} = "…" to {SECRETS_FILE} '
                "(chmod 600)",
            )
        self._remember(value)
        return value

    def store(self, backend: str, name: str, value: str) -> str:
        """Write a value (a new private key) to a secret manager.

        Args:
            backend: ``aws`` or ``vault``.
            name: the secret's name there.
            value: what to store; it is remembered for redaction, never printed.

        Returns:
            Where it was stored, in words.

        Raises:
            UsageError: an unknown backend.
            SecretBackendUnreachableError: the backend did not answer; nothing was stored.
        """
        check_backend(backend)
        self._remember(value)
        return write_secret(backend, name, value, self._environ)

    def _remember(self, value: str) -> None:
        if len(value) >= 4:
            self._handed_out.add(value)

    def values(self, names: Iterable[str]) -> set[str]:
        """Every value in the secrets file, and the environment's values of ``names``: what a
        scan for leaked secrets looks for.

        The file is read even when it is too open: the scan reports that separately.

        Raises:
            ConfigError: when the secrets file is unreadable or invalid.
        """
        found = set(self._file_values(check_mode=False).values())
        found |= {self._environ[n] for n in names if self._environ.get(n)}
        return found

    def redact(self, text: str) -> str:
        """``text`` with every secret value handed out so far replaced by ``***``."""
        for value in sorted(self._handed_out, key=len, reverse=True):
            text = text.replace(value, "***")
        return text

    def _file_values(self, *, check_mode: bool = True) -> dict[str, str]:
        # Cached only once read and checked: a failed read fails again on the next lookup.
        if self._from_file is not None:
            return self._from_file
        if not self._file.exists() and not self._file.is_symlink():
            self._from_file = {}
            return self._from_file
        if self._file.is_dir():
            raise ConfigError(
                f"{self._file} is a folder, expected a TOML file of secrets",
                hint=f'remove the folder and write NAME = "value" lines to {SECRETS_FILE}',
            )
        try:
            mode = stat.S_IMODE(self._file.stat().st_mode)
        except OSError as exc:  # a dangling link, a folder we may not enter
            raise ConfigError(
                f"{self._file} cannot be read: {exc.strerror}",
                hint="check the file and its folder",
            ) from None
        if mode & 0o077 and check_mode:
            raise ConfigError(
                f"{self._file} is readable by other users (mode {mode:o})",
                hint=f"chmod 600 {self._file}",
            )
        text = read_text_file(self._file, what=str(self._file))
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(
                f"{self._file} is not valid TOML: {exc}",
                hint='write one NAME = "value" per line',
            ) from None
        values: dict[str, str] = {}
        for key, value in data.items():
            if isinstance(value, str):
                values[key] = value
            elif isinstance(value, int) and not isinstance(value, bool):
                values[key] = str(value)
            else:
                self._wrong_types[key] = (_toml_type(value), _line_of(text, key))
        if check_mode:
            self._from_file = values
        return values


def _toml_type(value: object) -> str:
    """What a TOML value is, in a user's words.

    >>> _toml_type([1]), _toml_type({"a": 1}), _toml_type(True)
    ('a list', 'a table', 'a boolean')
    """
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, bool):
        return "a boolean"
    return f"a {type(value).__name__}"


def _line_of(text: str, key: str) -> int | None:
    """The line where ``key`` is assigned or opens a table, if it can be found."""
    pattern = re.compile(rf"^\s*(\[\s*)?[\"']?{re.escape(key)}[\"']?\s*[=\]]", re.MULTILINE)
    match = pattern.search(text)
    return text.count("\n", 0, match.start()) + 1 if match else None


def check_backend(backend: str) -> None:
    """Refuse a secret manager stackyard cannot store in.

    Raises:
        UsageError: an unknown backend.
    """
    if backend not in BACKENDS:
        raise UsageError(
            f"cannot store a secret in '{backend}'{did_you_mean(backend, BACKENDS)}",
            hint=f"secret managers: {', '.join(BACKENDS)}",
        )
