"""A REST API's secrets stay out of .stackyard/ (dlt's trace is not kept, everything there is
owner-only), and every request has a deadline: an API that accepts the connection and never
answers fails the source in about ``timeout_seconds``, instead of hanging the run."""

from __future__ import annotations

import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackyard import Context
from stackyard.project import init_project
from tests.ingest.api_server import ApiState, make_customers, serve
from tests.secret_scan import SecretScan

API_KEY = "ak_live_7Hq2ZpL9xWv4"


def _project(tmp_path: Path, url: str, retries: str) -> Context:
    root = tmp_path / "p"
    init_project(root)
    text = (root / "stackyard.yml").read_text()
    text = text.replace(
        "sources: {}\n",
        f"""sources:
  crm:
    kind: rest_api
    base_url: {url}
    auth: {{type: api_key, name: api_key, location: query, api_key: {{secret: CRM_KEY}}}}
    retries: {retries}
    endpoints:
      customers: {{path: /customers, data_selector: data, primary_key: id}}
""",
    )
    (root / "stackyard.yml").write_text(text)
    return Context(root, environ={"CRM_KEY": API_KEY})


def _files_holding(root: Path, secret: str) -> list[str]:
    return [
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and secret.encode() in p.read_bytes()
    ]


def test_api_key_in_query_string_is_not_kept_under_dot_stackyard(
    tmp_path: Path, secret_scan: SecretScan
) -> None:
    secret_scan.secret(API_KEY)
    state = ApiState(customers=make_customers(5), api_key=API_KEY)
    with serve(state) as url:
        ctx = _project(tmp_path, url, "{max_attempts: 1, count: 0}")
        secret_scan.project(ctx.project_dir)
        result = ctx.run()
    secret_scan.output(str(result.to_dict()))
    assert result.ok, result.to_dict()
    assert any(f"api_key={API_KEY}" in r for r in state.requests)  # it was really sent
    private = ctx.project_dir / ".stackyard"
    assert _files_holding(private, API_KEY) == []
    assert not list(private.rglob("trace.pickle"))
    for path in [private, *private.rglob("*")]:
        if path.is_symlink():
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path}: {mode:o}"


def test_failing_request_url_with_api_key_is_redacted(
    tmp_path: Path, secret_scan: SecretScan
) -> None:
    secret_scan.secret(API_KEY)
    secret_scan.project(tmp_path / "p")
    state = ApiState(customers=make_customers(5), api_key=API_KEY, always_500=True)
    with serve(state) as url:
        result = _project(tmp_path, url, "{max_attempts: 1, count: 0}").run()
    secret_scan.output(str(result.to_dict()))
    assert not result.ok
    text = str(result.to_dict())
    assert "500" in text or "Server Error" in text, text
    assert API_KEY not in text
    assert _files_holding(tmp_path / "p" / ".stackyard", API_KEY) == []


@pytest.fixture()
def silent_server() -> Iterator[str]:
    """A server that accepts TCP connections (the kernel's backlog) and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    finally:
        sock.close()


def test_an_api_that_never_answers_fails_in_about_the_timeout(
    tmp_path: Path, silent_server: str
) -> None:
    ctx = _project(
        tmp_path,
        silent_server,
        "{max_attempts: 2, timeout_seconds: 1.5, backoff_seconds: 0, count: 0}",
    )
    started = time.monotonic()
    result = ctx.run()
    elapsed = time.monotonic() - started
    assert not result.ok
    (load,) = result.loads
    assert load.status == "failed"
    assert "timed out" in (load.error or "").lower(), load.error
    # two attempts of 1.5 s each, plus dlt and dbt start-up; without a deadline it never ends
    assert elapsed < 60, elapsed
