"""The ``rest_api`` source kind: stackyard.yml → dlt's rest_api configuration.

Retries: dlt's own HTTP client backs off exponentially without jitter, so many pipelines hitting
one rate-limited API retry in lock-step. stackyard hands dlt a ``requests`` session whose
urllib3 ``Retry`` adds random jitter and honours ``Retry-After``
(https://urllib3.readthedocs.io/en/stable/reference/urllib3.util.html#urllib3.util.Retry).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from stackyard.config.model import RestApiSource, RestAuth, RestPaginator, RestRetries
from stackyard.config.secrets import Secrets
from stackyard.ingest.attempts import is_refused
from stackyard.ingest.boundary_copies import copies_step
from stackyard.ingest.rest_pages import guessing_paginator

RETRY_STATUSES = (429, 500, 502, 503, 504)


def rest_api_config(name: str, config: RestApiSource, secrets: Secrets) -> dict[str, Any]:
    """The ``RESTAPIConfig`` dictionary dlt's ``rest_api_source`` takes.

    Raises:
        SecretMissingError: an auth secret is not set.
    """
    client: dict[str, Any] = {"base_url": config.base_url.rstrip("/") + "/"}
    if config.headers:
        client["headers"] = dict(config.headers)
    if config.auth:
        client["auth"] = _auth(name, config.auth, secrets)
    if config.paginator and config.paginator.type != "auto":
        client["paginator"] = _paginator(config.paginator)
    client["session"] = retrying_session(config.retries)
    resources = []
    for table, endpoint in config.endpoints.items():
        spec: dict[str, Any] = {"path": endpoint.path.lstrip("/")}
        params: dict[str, Any] = dict(endpoint.params)
        if endpoint.data_selector:
            spec["data_selector"] = endpoint.data_selector
        chosen = endpoint.paginator or config.paginator
        if chosen is None or chosen.type == "auto":
            # dlt's own guess can number pages from the wrong end (rest_pages says how).
            spec["paginator"] = guessing_paginator(f"sources.{name}.endpoints.{table}")
        elif endpoint.paginator:
            spec["paginator"] = _paginator(endpoint.paginator)
        if endpoint.cursor:
            incremental: dict[str, Any] = {
                "cursor_path": endpoint.cursor,
                "last_value_func": latest_cursor,
            }
            if endpoint.initial_value is not None:
                incremental["initial_value"] = endpoint.initial_value
            if endpoint.cursor_param:
                incremental["start_param"] = endpoint.cursor_param
            if not endpoint.primary_key:
                # Rows at the last cursor value come again on the next run (without a
                # cursor_param, or from an API whose filter is inclusive): their copies are
                # counted by boundary_copies (rest_resources), dlt's own check is off.
                incremental["primary_key"] = []
            spec["incremental"] = incremental
        if params:
            spec["params"] = params
        resource: dict[str, Any] = {"name": table, "endpoint": spec}
        if endpoint.primary_key:
            resource["primary_key"] = endpoint.primary_key
            resource["write_disposition"] = "merge"
            if endpoint.cursor and endpoint.cursor.isidentifier():
                # Two versions of a key in one load: the later one is kept (dlt kept either).
                resource["columns"] = {endpoint.cursor.lower(): {"dedup_sort": "desc"}}
        else:
            resource["write_disposition"] = "append" if endpoint.cursor else "replace"
        resources.append(resource)
    return {"client": client, "resources": resources}


def latest_cursor(values: Sequence[Any]) -> Any:
    """The latest of cursor values: timestamps by the instant they name, whatever offset
    each is written in, anything else as ``max`` orders it. Compared as text, a row at
    ``09:15:00Z`` came before a cursor of ``10:00:00+01:00`` (09:00Z), and every run
    dropped it.

    >>> latest_cursor(["2026-11-01T10:00:00+01:00", "2026-11-01T09:15:00Z"])
    '2026-11-01T09:15:00Z'
    >>> latest_cursor([3, 12]), latest_cursor(["b", "a"])
    (12, 'b')
    """
    instants = [_instant(v) for v in values]
    placed = [(i, v) for i, v in zip(instants, values, strict=True) if i is not None]
    if len(placed) == len(values):
        return max(placed, key=lambda pair: pair[0])[1]
    return max(values)


def _instant(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and len(value) >= 10 and value[4:5] == "-":
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def build_rest(name: str, config: RestApiSource, context: Any) -> list[Any]:
    """The ``rest_api`` kind's builder (see :mod:`stackyard.ingest.sources`): a record
    giving a field twice goes to the rejected rows (:mod:`stackyard.ingest.rest_json`), as
    does one with a number no column holds as sent."""
    from stackyard.ingest.rest_json import without_twice_named, without_unfit_numbers
    from stackyard.ingest.stamping import whole_pages

    resources = rest_resources(name, config, context.secrets)
    for resource in resources:

        def reject_twice_named(item: Any, table: str = resource.name) -> Any:
            item, rejected = without_twice_named(item, table)
            item, unfit = without_unfit_numbers(item, table)
            if rejected or unfit:
                context.build.reject([*rejected, *unfit])
            return item

        resource.add_step(whole_pages(reject_twice_named), insert_at=1)
    return resources


def rest_resources(name: str, config: RestApiSource, secrets: Secrets) -> list[Any]:
    """dlt resources for every endpoint of the API."""
    from dlt.sources.rest_api import rest_api_source

    spec: Any = rest_api_config(name, config, secrets)  # a RESTAPIConfig TypedDict
    source = rest_api_source(spec, name=name)
    resources = list(source.resources.values())
    for resource in resources:
        endpoint = config.endpoints.get(resource.name)
        if endpoint is not None and endpoint.cursor and not endpoint.primary_key:
            resource.add_step(copies_step(endpoint.cursor, latest_cursor))
    return resources


def retrying_session(retries: RestRetries) -> Any:
    """A ``requests`` session that retries 429/5xx and connection errors (but a refused one)
    with jittered exponential backoff, and gives every request a timeout.

    The longest a request can wait is ``max_attempts × timeout_seconds`` plus the backoff
    between attempts: an API that accepts the connection and never answers fails the source.
    """
    import logging

    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.exceptions import MaxRetryError
    from urllib3.util.retry import Retry

    # urllib3 logs each retry as a warning on stderr; the final failure is reported instead.
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)

    class _TimeoutSession(requests.Session):
        # dlt's RESTClient prepares requests itself and calls send(), never request(), so the
        # deadline is set in send(): every request, whoever builds it, waits at most
        # timeout_seconds to connect and timeout_seconds between bytes of the answer.
        def send(self, request: Any, **kwargs: Any) -> Any:
            from functools import partial

            from stackyard.ingest.rest_json import read_answer

            if kwargs.get("timeout") is None:
                kwargs["timeout"] = retries.timeout_seconds
            response = super().send(request, **kwargs)
            # Read so that a record giving a field twice is seen (Python keeps the last).
            response.json = partial(read_answer, response)  # type: ignore[method-assign]
            return response

    class _Retry(Retry):
        # A refused connection (nothing listens there) is not tried again request by
        # request, 1 s, 2 s, 4 s and 8 s apart within each attempt of the load: the load's
        # own few quick tries (``retry_policy``) are enough for a server that is restarting.
        def increment(
            self,
            method: Any = None,
            url: Any = None,
            response: Any = None,
            error: Any = None,
            _pool: Any = None,
            _stacktrace: Any = None,
        ) -> Any:
            if error is not None and is_refused(error):
                raise MaxRetryError(_pool, url, error) from error
            return super().increment(method, url, response, error, _pool, _stacktrace)

    retry = _Retry(
        total=retries.max_attempts - 1,
        connect=retries.max_attempts - 1,
        read=retries.max_attempts - 1,
        status=retries.max_attempts - 1,
        backoff_factor=retries.backoff_seconds,
        backoff_jitter=retries.jitter_seconds,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=None,  # POST searches are reads too
        respect_retry_after_header=True,
        raise_on_status=True,
    )
    session = _TimeoutSession()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _auth(name: str, auth: RestAuth, secrets: Secrets) -> dict[str, Any]:
    where = f"sources.{name}.auth"
    if auth.type == "bearer":
        assert auth.token is not None  # checked by the config model
        return {"type": "bearer", "token": secrets.resolve(auth.token, used_for=f"{where}.token")}
    if auth.type == "api_key":
        assert auth.api_key is not None
        return {
            "type": "api_key",
            "name": auth.name,
            "location": auth.location,
            "api_key": secrets.resolve(auth.api_key, used_for=f"{where}.api_key"),
        }
    assert auth.password is not None
    return {
        "type": "http_basic",
        "username": auth.username,
        "password": secrets.resolve(auth.password, used_for=f"{where}.password"),
    }


def _paginator(paginator: RestPaginator) -> dict[str, Any]:
    data = paginator.model_dump(exclude_none=True)
    if paginator.type == "cursor":
        data["type"] = "cursor"
    # dlt stops at the first empty page; an API that says how many pages there are has the
    # rest after it (an empty page 2 of 3 lost page 3 without a word). Not where the first
    # page is only assumed to be 0: an empty page 0 of an API whose pages start at 1 ends the
    # first load with no rows, which says to set base_page, where reading on loaded all but
    # the last page.
    counted = paginator.total_path is not None or paginator.maximum_page is not None
    known_start = paginator.type == "offset" or paginator.base_page is not None
    if paginator.type in ("page_number", "offset") and counted and known_start:
        data.setdefault("stop_after_empty_page", False)
    return data
