"""A NATS server that cannot be reached, on every path that connects to one: the first load
of `source add`, `run` and `source remove` (which deletes the durable consumer). Each says
which server and what to check in one message, without nats-py's tracebacks on stderr."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from stackyard.project import init_project

BIN = Path(sys.executable).parent


@pytest.fixture()
def closed_port() -> int:
    """A port nothing listens on: a connection to it is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stackyard(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "stackyard"), *args], cwd=project, capture_output=True, text=True
    )


def add(project: Path, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return stackyard(
        project, "source", "add", "events", "--kind", "stream", "--url", url,
        "--subject", "orders.>", "--table", "order_events", "--primary-key", "event_id", *extra,
    )  # fmt: skip


def assert_clean(done: subprocess.CompletedProcess[str]) -> str:
    said = done.stdout + done.stderr
    assert "Traceback" not in said, said[-3000:]
    assert "nats: encountered error" not in said, said[-3000:]
    return " ".join(said.split())  # the console wraps long lines


def test_unreachable_server_is_one_message_on_add_run_and_remove(
    tmp_path: Path, closed_port: int
) -> None:
    project = tmp_path / "p"
    init_project(project)
    url = f"nats://127.0.0.1:{closed_port}"
    refused = (
        f"cannot reach the stream server {url}: connection refused "
        f"(nothing listens at 127.0.0.1:{closed_port})"
    )

    first = add(project, url)  # the first load fails, and the add is undone
    assert first.returncode == 1, first.stdout + first.stderr
    said = assert_clean(first)
    assert refused in said and "check that the NATS server runs there" in said
    assert "events" not in (project / "stackyard.yml").read_text()

    assert add(project, url, "--no-load").returncode == 0
    config = project / "stackyard.yml"
    config.write_text(config.read_text().replace(url, f"{url}\n    retries: {{count: 0}}"))
    run = stackyard(project, "run", "--select", "events", "--json")
    assert run.returncode == 1, run.stdout + run.stderr
    assert_clean(run)
    assert refused in json.loads(run.stdout)["loads"][0]["error"]

    removed = stackyard(project, "source", "remove", "events", "--yes")
    assert removed.returncode == 0, removed.stdout + removed.stderr
    said = assert_clean(removed)
    assert f"stream consumer stackyard_events_dev not checked (source 'events': {refused})" in said
    assert "if the server still has it, delete it" in said
