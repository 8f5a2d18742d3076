"""The base every stackyard.yml model shares, and the one shape a secret reference takes.

Kept apart from :mod:`stackyard.config.model` so that the section modules (``access``,
``monitors``) and the project model can all import it without importing each other.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class StrictModel(BaseModel):
    """Base for every config model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class SecretRef(StrictModel):
    """A reference to a secret kept outside stackyard.yml, e.g. ``{secret: PROD_PG_PASSWORD}``."""

    secret: str = Field(
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Name of the environment variable / key in .stackyard/secrets.toml (and "
        "of the variable dbt reads it from).",
    )
    from_: Literal["env", "file", "aws", "vault"] | None = Field(
        None,
        alias="from",
        description="Where it is kept: env, file (.stackyard/secrets.toml), aws (AWS Secrets "
        "Manager) or vault (HashiCorp Vault KV v2). Default: the environment, then the file.",
    )
    name: str | None = Field(
        None,
        min_length=1,
        description="aws: the secret id; vault: mount/path (secret/prod/pg). Default: secret.",
    )
    key: str | None = Field(
        None,
        min_length=1,
        description="aws: a key of a JSON secret (default: the whole string); vault: the "
        "field (default: value).",
    )
