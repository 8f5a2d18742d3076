"""A real HTTP API for tests: paginated, bearer-authenticated, with an incremental filter,
and switches for the faults a real API has (429s, 500s, malformed pages)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

TOKEN = "test-token-9f3b"


@dataclass
class ApiState:
    """What the server serves, and how it misbehaves."""

    customers: list[dict[str, Any]] = field(default_factory=list)
    page_size: int = 10
    fail_with_429: int = 0  # answer 429 to this many requests first
    always_500: bool = False
    malformed_page: int | None = None  # this page number answers invalid JSON
    requests: list[str] = field(default_factory=list)
    token: str = TOKEN
    api_key: str | None = None  # when set, ?api_key=<this> is accepted instead of the token
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # more endpoints
    since_inclusive: bool = False  # ?since= returns rows at that value too, as many APIs do
    cursor_field: str = "updated_at"  # the field ?since= filters on (text or integer)
    # How an answer describes its pages: "numbered" (page and total_pages), "total_only"
    # (total_pages without the page's own number), "cursor_ignored" (a next_cursor the
    # server does not read back: every request gets the first page, with a next_cursor for
    # the first nine).
    paging: str = "numbered"
    # Rows sent as this JSON text instead of as themselves, by id (a field given twice,
    # which a dict cannot hold), and an answer sent as it is instead of the page.
    raw_rows: dict[int, str] = field(default_factory=dict)
    raw_answer: bytes | None = None
    content_type: str = "application/json"
    empty_pages: set[int] = field(default_factory=set)  # pages answered with no rows

    def after(self, row: dict[str, Any], since: str) -> bool:
        """Whether ``?since=`` returns the row (timestamps compared as instants, as an API
        that parses them does, whatever offset each is written in)."""
        value, bound = row[self.cursor_field], type(row[self.cursor_field])(since)
        if isinstance(value, str) and value[4:5] == "-":
            value, bound = _instant(value), _instant(since)
        return bool(value > bound or (self.since_inclusive and value == bound))

    def rows_at(self, path: str) -> list[dict[str, Any]] | None:
        """The rows an endpoint path serves (None: no such endpoint)."""
        if path == "/v1/customers":
            return self.customers
        name = path.removeprefix("/v1/")
        return self.tables.get(name) if path.startswith("/v1/") else None


def make_customers(n: int, updated_at: str = "2026-01-01T00:00:00Z") -> list[dict[str, Any]]:
    return [
        {
            "id": i,
            "name": f"customer {i}",
            "email": f"c{i}@example.com",
            "updated_at": updated_at,
            "lifetimeValue": i * 10.5,
        }
        for i in range(1, n + 1)
    ]


def _handler(state: ApiState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return None

        def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", state.content_type)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            state.requests.append(self.path)
            keyed = state.api_key is not None and f"api_key={state.api_key}" in self.path
            if not keyed and self.headers.get("Authorization") != f"Bearer {state.token}":
                self._send(401, b'{"error": "bad token"}')
                return
            if state.fail_with_429 > 0:
                state.fail_with_429 -= 1
                self._send(429, b'{"error": "slow down"}', {"Retry-After": "0"})
                return
            if state.always_500:
                self._send(500, b'{"error": "boom"}')
                return
            url = urlparse(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            served = state.rows_at(url.path)
            if served is None:
                self._send(404, b'{"error": "no such endpoint"}')
                return
            page = int(query.get("page", "1"))
            if state.malformed_page == page:
                self._send(200, b'{"data": [{"id": 1,')
                return
            since = query.get("since")
            rows = [c for c in served if since is None or state.after(c, since)]
            # An empty page keeps its place: the rows after it are on the pages after it.
            total_pages = max(1, -(-len(rows) // state.page_size) + len(state.empty_pages))
            before = sum(1 for p in state.empty_pages if p < page)
            chunk = rows[(page - 1 - before) * state.page_size : (page - before) * state.page_size]
            chunk = [] if page in state.empty_pages else chunk
            body: dict[str, Any] = {"data": chunk, "page": page, "total_pages": total_pages}
            if state.paging == "total_only":
                del body["page"]
            elif state.paging == "cursor_ignored":
                body = {"data": chunk}
                if len(state.requests) < 10:  # a client that loops on it still ends
                    body["next_cursor"] = f"after-{page}"
            if state.raw_answer is not None:
                self._send(200, state.raw_answer)
                return
            placed = {f"@@raw{i}@@": t for i, t in state.raw_rows.items()}
            body["data"] = [
                f"@@raw{r['id']}@@" if r.get("id") in state.raw_rows else r for r in body["data"]
            ]
            text = json.dumps(body)
            for mark, raw in placed.items():
                text = text.replace(f'"{mark}"', raw)
            self._send(200, text.encode())

    return Handler


@contextmanager
def serve(state: ApiState) -> Iterator[str]:
    """Run the API on a free local port; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def main() -> None:
    """Serve the API on a fixed port until killed: the stand-in the docs' examples call."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--customers", type=int, default=23)
    parser.add_argument("--token", default=TOKEN)
    args = parser.parse_args()
    state = ApiState(customers=make_customers(args.customers), token=args.token)
    ThreadingHTTPServer(("127.0.0.1", args.port), _handler(state)).serve_forever()


def _instant(text: str) -> datetime:
    """An ISO timestamp as an instant; one without an offset is UTC."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


if __name__ == "__main__":
    main()
