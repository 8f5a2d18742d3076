"""The base every stackyard.yml model shares, and the one shape a secret reference takes.

Kept apart from :mod:`stackyard.config.model` so that the section modules (``access``,
``monitors``) and the project model can all import it without importing each other.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator


class StrictModel(BaseModel):
    """Base for every config model: unknown keys are errors, values are immutable, and a
    yes/no is never read as a number."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    @model_validator(mode="before")
    @classmethod
    def _no_booleans_as_numbers(cls, data: Any) -> Any:
        # Pydantic's lax mode reads `true` as 1 for a number field: `sensitivity: true` would
        # quietly mean a band one noise unit wide. A number field takes numbers only.
        if not isinstance(data, dict):
            return data
        for name, field in cls.model_fields.items():
            for key in {name, field.alias or name}:
                value = data.get(key)
                if isinstance(value, bool) and not _admits_bool(field.annotation):
                    raise ValueError(
                        f"{key}: {str(value).lower()} is a yes/no, not a value {key} takes"
                    )
        return data


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


def _admits_bool(annotation: Any) -> bool:
    """Whether a field's type takes ``bool`` anywhere (``bool``, ``bool | None``, ``Any``, …)."""
    if annotation is bool or annotation is Any:
        return True
    return any(_admits_bool(arg) for arg in get_args(annotation))
