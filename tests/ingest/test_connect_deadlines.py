"""Every network wait has a deadline: a database source or a Postgres warehouse whose host
takes the TCP connection and never answers fails with a clear message instead of hanging."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stackyard import Context
from stackyard.cli.main import app
from stackyard.project import init_project

runner = CliRunner()


@pytest.fixture()
def silent_port() -> Iterator[int]:
    """A port whose listener accepts connections (the kernel's backlog) and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


@pytest.mark.parametrize("backend", ["connectorx", "pyarrow"])
def test_sql_source_on_a_silent_host_fails_within_the_default_deadline(
    tmp_path: Path, silent_port: int, backend: str
) -> None:
    root = tmp_path / "p"
    init_project(root)
    text = (
        (root / "stackyard.yml")
        .read_text()
        .replace(
            "sources: {}\n",
            f"sources:\n  app:\n    kind: sql_database\n    backend: {backend}\n"
            f"    connection: postgresql://u@127.0.0.1:{silent_port}/app\n"
            "    tables: {orders: {}}\n"
            "    retries: {count: 0}\n",  # the deadline of one attempt is what is tested
        )
    )
    (root / "stackyard.yml").write_text(text)
    started = time.monotonic()
    result = Context(root).run()
    elapsed = time.monotonic() - started
    (load,) = result.loads
    assert load.status == "failed"
    assert "timeout" in (load.error or "").lower() or "timed out" in (load.error or "").lower(), (
        load.error
    )
    assert elapsed < 120, elapsed  # a hang guard: without connect_timeout libpq waits forever


def test_postgres_warehouse_on_a_silent_host_is_unreachable_exit_2(
    tmp_path: Path, silent_port: int
) -> None:
    root = tmp_path / "p"
    init_project(root)
    text = (
        (root / "stackyard.yml")
        .read_text()
        .replace(
            "targets:\n",
            "targets:\n  pg:\n    type: postgres\n    port: "
            f"{silent_port}\n    user: u\n    database: d\n    connect_timeout: 1\n",
            1,
        )
    )
    (root / "stackyard.yml").write_text(text)
    result = runner.invoke(app, ["status", "-t", "pg", "--project", str(root)])
    assert result.exit_code == 2, result.output
    assert "timeout" in result.output.lower() or "timed out" in result.output.lower()


@pytest.fixture()
def closed_port() -> int:
    """A port nothing listens on: a connection to it is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("server", ["postgresql://u", "mysql+pymysql://root"])
def test_sql_source_on_a_closed_port_fails_after_a_few_quick_tries(
    tmp_path: Path, closed_port: int, server: str
) -> None:
    # With the default retries (3) a refused connection was retried after 10, 20 and 40 s
    # (plus jitter): about 95 s before the run failed, with libpq's words only. PyMySQL names
    # the host only: the address came out as "connection refused (nothing listens there)".
    root = tmp_path / "p"
    init_project(root)
    text = (
        (root / "stackyard.yml")
        .read_text()
        .replace(
            "sources: {}\n",
            "sources:\n  app:\n    kind: sql_database\n"
            f"    connection: {server}@127.0.0.1:{closed_port}/app\n"
            "    tables: {orders: {primary_key: id}}\n",
        )
    )
    (root / "stackyard.yml").write_text(text)
    result = runner.invoke(app, ["run", "--select", "app", "--json", "--project", str(root)])
    assert result.exit_code == 1, result.output
    (load,) = json.loads(result.stdout)["loads"]
    assert load["error"] == (
        f"source 'app': connection refused at 127.0.0.1:{closed_port} (nothing listens there): "
        "check that the server runs and the host and port the source connects to "
        "(after 3 attempts)"
    )
