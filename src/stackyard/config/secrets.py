"""Secrets: named in stackyard.yml, kept in the environment or .stackyard/secrets.toml.

Lookup order for ``{secret: NAME}``: the environment variable ``NAME``, then the key ``NAME``
in ``<project>/.stackyard/secrets.toml``. The file must not be readable by other users
(mode 0600), the same rule ssh applies to private keys.
"""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path

from stackyard.config.base import SecretRef
from stackyard.errors import ConfigError, SecretMissingError

SECRETS_FILE = Path(".stackyard") / "secrets.toml"


class Secrets:
    """Resolves secret references for one project and remembers every value it handed out.

    The remembered values let output and run history be scrubbed (:meth:`redact`).
    """

    def __init__(self, project_dir: Path, environ: Mapping[str, str] | None = None) -> None:
        self._file = project_dir / SECRETS_FILE
        self._environ = os.environ if environ is None else environ
        self._from_file: dict[str, str] | None = None
        self._handed_out: set[str] = set()

    def resolve(self, ref: SecretRef, *, used_for: str) -> str:
        """The value of a secret.

        Args:
            ref: the reference from stackyard.yml.
            used_for: what needs it, e.g. ``targets.prod.password``, for the error message.

        Raises:
            SecretMissingError: naming every place that was looked in.
            ConfigError: when the secrets file is unreadable, invalid or too open.
        """
        value = self._environ.get(ref.secret)
        if value is None:
            value = self._file_values().get(ref.secret)
        if value is None:
            state = "exists, no such key" if self._file.exists() else "does not exist"
            raise SecretMissingError(
                f"secret '{ref.secret}' (for {used_for}) was not found; looked in: "
                f"environment variable {ref.secret} (not set), "
                f"key {ref.secret} in {self._file} ({state})",
                hint=f'export {ref.secret}=… or add {ref.secret} = "…" to {SECRETS_FILE} '
                "(chmod 600)",
            )
        if len(value) >= 4:
            self._handed_out.add(value)
        return value

    def redact(self, text: str) -> str:
        """``text`` with every secret value handed out so far replaced by ``***``."""
        for value in sorted(self._handed_out, key=len, reverse=True):
            text = text.replace(value, "***")
        return text

    def _file_values(self) -> dict[str, str]:
        if self._from_file is not None:
            return self._from_file
        self._from_file = {}
        if not self._file.exists():
            return self._from_file
        mode = stat.S_IMODE(self._file.stat().st_mode)
        if mode & 0o077:
            raise ConfigError(
                f"{self._file} is readable by other users (mode {mode:o})",
                hint=f"chmod 600 {self._file}",
            )
        try:
            data = tomllib.loads(self._file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(
                f"{self._file} is not valid TOML: {exc}",
                hint='write one NAME = "value" per line',
            ) from None
        self._from_file = {k: str(v) for k, v in data.items() if isinstance(v, str | int)}
        return self._from_file
