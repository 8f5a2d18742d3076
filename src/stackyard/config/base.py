"""The base every stackyard.yml model shares, and the one shape a secret reference takes.

Kept apart from :mod:`stackyard.config.model` so that the section modules (``access``,
``monitors``) and the project model can all import it without importing each other.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class StrictModel(BaseModel):
    """Base for every config model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretRef(StrictModel):
    """A reference to a secret kept outside stackyard.yml, e.g. ``{secret: PROD_PG_PASSWORD}``."""

    secret: str = Field(
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Name of the environment variable / key in .stackyard/secrets.toml.",
    )
