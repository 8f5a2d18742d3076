"""Users and keys: RSA key pairs for service accounts, and edits to stackyard.yml.

A service account authenticates with a key pair only (the Security Hardening runbook). The
private key is written once, mode 0600, under ``.stackyard/keys/`` (git-ignored) or printed
once; only the public key goes into stackyard.yml. Edits keep the file's comments and layout
(ruamel.yaml round trip), and are validated before anything is written.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackyard.config.private import private_dir
from stackyard.errors import ConfigError, UsageError

KEYS_DIR = Path(".stackyard") / "keys"


@dataclass(frozen=True)
class KeyPair:
    """A new RSA key pair: the private key in PKCS#8 PEM, the public key in PEM."""

    private_pem: str
    public_pem: str

    @property
    def short_id(self) -> str:
        """A short hash of the public key, for file names."""
        return hashlib.sha256(self.public_pem.encode()).hexdigest()[:8]


def generate_key_pair(bits: int = 2048) -> KeyPair:
    """A new RSA key pair, as Snowflake key-pair authentication takes it.

    Args:
        bits: key size; Snowflake requires at least 2048.

    Returns:
        The key pair, unencrypted PKCS#8 private key.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return KeyPair(private.decode(), public.decode())


def write_private_key(project_dir: Path, user: str, pair: KeyPair) -> Path:
    """Write a private key to ``.stackyard/keys/<user>-<id>.p8``, readable by its owner only.

    The file is created with mode 0600 in one step (never world-readable, not even briefly)
    and never overwritten.

    Raises:
        UsageError: a file of that name exists already.
    """
    folder = private_dir(project_dir, KEYS_DIR.name)
    path = folder / f"{user.lower()}-{pair.short_id}.p8"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UsageError(f"{path} exists already", hint="move it away and retry") from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(pair.private_pem)
    return path


class ProjectFile:
    """stackyard.yml opened for editing, with comments kept."""

    def __init__(self, path: Path) -> None:
        from ruamel.yaml import YAML

        self.path = path
        self._yaml = YAML()
        self._yaml.preserve_quotes = True
        self._yaml.width = 4096
        self.data: Any = self._yaml.load(path.read_text(encoding="utf-8"))

    def section(self, *keys: str) -> Any:
        """The mapping at ``access.<keys…>``, created (empty) when missing."""
        from ruamel.yaml.comments import CommentedMap

        node = self.data
        for key in ("access", *keys):
            if node.get(key) is None:
                node[key] = CommentedMap()
            node = node[key]
        return node

    def find(self, *keys: str) -> Any:
        """The value at ``access.<keys…>``, or ``None``."""
        node = self.data.get("access")
        for key in keys:
            if not isinstance(node, dict):
                return None
            node = next((v for k, v in node.items() if str(k).upper() == key.upper()), None)
        return node

    def key_of(self, section: str, name: str) -> str | None:
        """How ``name`` is spelled in ``access.<section>``, or ``None``."""
        node = self.find(section)
        if not isinstance(node, dict):
            return None
        return next((str(k) for k in node if str(k).upper() == name.upper()), None)

    def validate(self) -> Any:
        """The edited file as a validated config, or a ConfigError; nothing is written."""
        from pydantic import ValidationError

        from stackyard.config.model import ProjectConfig
        from stackyard.infra.declaration import build_declaration

        try:
            config = ProjectConfig.model_validate(_plain(self.data))
        except ValidationError as exc:
            raise ConfigError(
                f"the change would make {self.path.name} invalid: {exc.errors()[0]['msg']}",
                hint="nothing was written",
            ) from None
        build_declaration(config)
        return config

    def save(self) -> None:
        """Validate, then write the file back."""
        self.validate()
        buffer = io.StringIO()
        self._yaml.dump(self.data, buffer)
        self.path.write_text(buffer.getvalue(), encoding="utf-8")


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value
