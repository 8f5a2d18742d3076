"""Pages of a ``rest_api`` endpoint whose entry names no ``paginator``.

dlt then guesses one from the first answer. Its guess for an answer carrying ``total_pages`` is
a page-number paginator counting from 0: on an API whose pages start at 1 (most of them) it asks
for page 1 again after the first answer and never for the last page, so rows were loaded twice
and the last page's rows not at all, with nothing said. stackyard keeps dlt's guess for links
and cursors, but numbers pages from the page number the first answer gives, and refuses to
guess when the answer gives none. A guessed paginator whose next request brings back the very
same page (a cursor sent under a name the API ignores) fails instead of looping or loading
copies.
"""

from __future__ import annotations

import hashlib
from typing import Any

from stackyard.errors import LoadError

# Keys an answer names its own page number by, beside its total_pages (compared lower-cased).
_PAGE_KEYS = ("page", "current_page", "currentpage", "page_number", "pagenumber")


def guessing_paginator(where: str) -> Any:
    """A dlt paginator for an endpoint without one configured; ``where`` names its entry
    (``sources.crm.endpoints.customers``) in the messages."""
    from dlt.sources.helpers.rest_client.paginators import BasePaginator

    class GuessedPaginator(BasePaginator):
        def __init__(self) -> None:
            super().__init__()
            self._inner: Any = None
            self._last_page: bytes | None = None

        def update_state(self, response: Any, data: Any = None) -> None:
            page = hashlib.sha256(response.content).digest()
            if self._inner is None:
                self._inner = _guess(response, where)
            elif page == self._last_page and data:
                raise LoadError(
                    f"{where}: the API answered {response.url} with the same page as the "
                    f"request before it; the paginator dlt guessed ({_named(self._inner)}) "
                    "is not how this API pages, and going on would load copies or never end",
                    hint=f"set paginator: under {where} (or the source) in stackyard.yml: "
                    "docs/runbooks/adding-data-sources.md lists the types",
                )
            self._last_page = page
            self._inner.update_state(response, data)
            self._has_next_page = self._inner.has_next_page

        def update_request(self, request: Any) -> None:
            self._inner.update_request(request)

        def __str__(self) -> str:
            return f"guessed: {self._inner}" if self._inner is not None else "not guessed yet"

    return GuessedPaginator()


def _guess(response: Any, where: str) -> Any:
    from dlt.sources.helpers.rest_client.detector import PaginatorFactory, find_total_pages_path
    from dlt.sources.helpers.rest_client.paginators import PageNumberPaginator

    guessed, _score = PaginatorFactory().create_paginator(response)
    if not isinstance(guessed, PageNumberPaginator):
        return guessed
    body = response.json()
    path, total = find_total_pages_path(body)
    holder = body
    for part in path[:-1]:
        holder = holder[part]
    first = _page_number(holder)
    if first is None:
        total_path = ".".join(path)
        raise LoadError(
            f"{where}: the API's answer gives its number of pages ({total_path}: {total}) but "
            "not the number of the page it is, so whether its pages start at 0 or 1 is "
            "unknown, and a wrong guess loads one page twice and misses the last",
            hint=f"set paginator: {{type: page_number, page_param: page, base_page: 1, "
            f"total_path: {total_path}}} under {where} in stackyard.yml (base_page: 0 if its "
            "first page is page 0)",
        )
    # Its number of pages is known: an empty page before the last does not end the load.
    return PageNumberPaginator(
        base_page=first, page=first, total_path=".".join(path), stop_after_empty_page=False
    )


def _page_number(holder: Any) -> int | None:
    if not isinstance(holder, dict):
        return None
    for key, value in holder.items():
        if str(key).lower() in _PAGE_KEYS and isinstance(value, int) and value in (0, 1):
            return value
    return None


def _named(paginator: Any) -> str:
    return type(paginator).__name__
