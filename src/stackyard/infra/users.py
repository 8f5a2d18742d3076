"""Keys for service accounts: RSA key pairs, the private half written once, mode 0600.

A service account authenticates with a key pair only (the Security Hardening runbook). The
private key is written once, mode 0600, under ``.stackyard/keys/`` (git-ignored) or printed
once; only the public key goes into stackyard.yml (edited through
:class:`stackyard.config.edit.ProjectFile`).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from stackyard.config.private import private_dir
from stackyard.errors import UsageError

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


def private_key_files(project_dir: Path, user: str, public_key: str) -> list[Path]:
    """The private key files under ``.stackyard/keys`` of ``user`` whose public key is
    ``public_key`` (the PEM body, as stackyard.yml holds it).

    Files that cannot be read as a private key are left out (never matched, never removed).
    """
    from cryptography.hazmat.primitives import serialization

    from stackyard.infra.snowflake import key_body

    found = []
    for path in sorted((project_dir / KEYS_DIR).glob(f"{user.lower()}-*.p8")):
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError):
            continue  # not ours to judge: an encrypted or foreign file stays
        pem = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        if key_body(pem.decode()) == key_body(public_key):
            found.append(path)
    return found
