"""The parts of a ``rest_api`` source's entry: auth, paginator, endpoints, retries."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from stackyard.config.base import SecretRef, StrictModel
from stackyard.config.orchestration import Retries


def _check_cursor_key(cursor: str | None, key: object, append: bool) -> None:
    """A cursor loads only new rows; without a key to merge on they can only be appended,
    which must be asked for, since a changed row then appears twice."""
    if cursor and not key and not append:
        raise ValueError(
            f"cursor '{cursor}' without a primary_key would append every changed row again: "
            "declare primary_key: COLUMN (rows merge on it) or append: true (each load's new "
            "rows are appended)"
        )
    if append and not cursor:
        raise ValueError("append: true needs a cursor (without one the table is replaced)")


class RestAuth(StrictModel):
    """How an API authenticates: a bearer token, an API key, or HTTP basic auth."""

    type: Literal["bearer", "api_key", "http_basic"]
    token: SecretRef | None = Field(None, description="bearer: the token.")
    api_key: SecretRef | None = Field(None, description="api_key: the key.")
    name: str = Field("X-API-Key", description="api_key: header or query parameter name.")
    location: Literal["header", "query"] = "header"
    username: str | None = Field(None, description="http_basic: the user name.")
    password: SecretRef | None = Field(None, description="http_basic: the password.")

    @model_validator(mode="after")
    def _needs(self) -> RestAuth:
        needed = {"bearer": "token", "api_key": "api_key", "http_basic": "password"}[self.type]
        if getattr(self, needed) is None:
            raise ValueError(f"auth type {self.type} needs {needed}: {{secret: NAME}}")
        if self.type == "http_basic" and not self.username:
            raise ValueError("auth type http_basic needs username")
        return self


class RestPaginator(StrictModel):
    """How an API splits results into pages (dlt's rest_api paginators)."""

    type: Literal[
        "page_number", "offset", "cursor", "header_link", "json_link", "single_page", "auto"
    ]
    page_param: str | None = None
    base_page: int | None = None
    total_path: str | None = None
    maximum_page: int | None = None
    limit: int | None = None
    offset_param: str | None = None
    limit_param: str | None = None
    cursor_path: str | None = None
    cursor_param: str | None = None
    next_url_path: str | None = None
    stop_after_empty_page: bool | None = None

    @model_validator(mode="after")
    def _needs(self) -> RestPaginator:
        if self.type == "offset" and self.limit is None:
            raise ValueError("paginator type offset needs limit (rows per page)")
        if self.type == "cursor" and not self.cursor_path:
            raise ValueError("paginator type cursor needs cursor_path (where the next cursor is)")
        return self


class RestEndpoint(StrictModel):
    """One endpoint of an API, loaded into one table."""

    path: str
    params: dict[str, str | int | float | bool] = Field(default_factory=dict)
    data_selector: str | None = Field(None, description="JSON path to the rows, e.g. data.")
    primary_key: str | list[str] | None = None
    cursor: str | None = Field(None, description="Field for incremental loads, e.g. updated_at.")
    cursor_param: str | None = Field(
        None, description="Query parameter that sends the last cursor value, e.g. since."
    )
    initial_value: str | None = Field(None, description="First cursor value to send.")
    paginator: RestPaginator | None = None
    append: bool = Field(False, description="With a cursor and no key: append new rows.")

    @model_validator(mode="after")
    def _cursor_needs_key(self) -> RestEndpoint:
        _check_cursor_key(self.cursor, self.primary_key, self.append)
        return self


class RestRetries(Retries):
    """Retries of the whole load (``count``, ``backoff_factor``, ``jitter``, as every kind has)
    and, inside one attempt, of each HTTP request answered 429 or 5xx or cut off, with
    jittered backoff (``max_attempts``, ``backoff_seconds``, ``jitter_seconds``)."""

    max_attempts: int = Field(5, ge=1, le=20)
    backoff_seconds: float = Field(1.0, ge=0, description="First wait; doubles each retry.")
    jitter_seconds: float = Field(0.5, ge=0, description="Random extra wait, up to this.")
    timeout_seconds: float = Field(30.0, gt=0)
