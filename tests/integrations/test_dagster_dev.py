"""`stackyard serve --orchestrator dagster` starts `dagster dev` for real: its GraphQL API shows
every source table and dbt model as an asset with its check, and the project's schedules."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.integrations.test_dagster import make_project

pytest.importorskip("dagster", reason="pip install 'stackyard[dagster]'")
pytest.importorskip("dagster_webserver", reason="pip install 'stackyard[dagster]'")

BIN = Path(sys.executable).parent
QUERY = """{
  assetNodes {
    assetKey { path }
    assetChecksOrError { __typename ... on AssetChecks { checks { name } } }
  }
  repositoriesOrError {
    __typename
    ... on RepositoryConnection {
      nodes { schedules { name cronSchedule executionTimezone scheduleState { status } } }
    }
  }
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def graphql(port: int, query: str) -> dict[str, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        answer: dict[str, Any] = json.loads(response.read())
    assert "errors" not in answer, answer
    return answer["data"]


def loaded(port: int, server: subprocess.Popen[bytes], log: Path, within: float) -> dict[str, Any]:
    """The query's answer once the code location has loaded (its repository is listed)."""
    end = time.monotonic() + within
    while time.monotonic() < end:
        if server.poll() is not None:
            raise AssertionError(f"dagster dev exited {server.returncode}:\n{log.read_text()}")
        try:
            data = graphql(port, QUERY)
            repositories = data["repositoriesOrError"]
            if repositories.get("nodes"):
                return data
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"dagster dev did not answer in {within:g}s:\n{log.read_text()}")


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def stop(server: subprocess.Popen[bytes], grace: float = 30.0) -> None:
    """The whole process group (stackyard, dagster dev, its webserver, daemon and code
    servers): SIGTERM, then SIGKILL for what is still there after ``grace`` seconds."""
    pgid = server.pid
    if group_alive(pgid):
        os.killpg(pgid, signal.SIGTERM)
    end = time.monotonic() + grace
    while group_alive(pgid) and time.monotonic() < end:
        server.poll()  # reap stackyard itself so the group can empty
        time.sleep(0.5)
    if group_alive(pgid):
        os.killpg(pgid, signal.SIGKILL)
    server.wait(timeout=30)
    end = time.monotonic() + 30
    while group_alive(pgid) and time.monotonic() < end:
        time.sleep(0.2)
    assert not group_alive(pgid), "dagster dev's processes outlived SIGKILL"


def test_dagster_dev_shows_every_asset_with_its_check_and_the_schedules(tmp_path: Path) -> None:
    root = make_project(tmp_path / "shop")
    port = free_port()
    log = tmp_path / "dagster.log"
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env["DAGSTER_DISABLE_TELEMETRY"] = "1"
    command = [str(BIN / "stackyard"), "serve", "--orchestrator", "dagster"]
    with log.open("wb") as out:
        server = subprocess.Popen(
            [*command, "--port", str(port), "--project", str(root)],
            cwd=root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, stopped whole below
        )
    try:
        # dagster dev took up to two minutes to load here with the cores shared
        data = loaded(port, server, log, within=300)
    finally:
        stop(server)

    assets = {tuple(a["assetKey"]["path"]): a["assetChecksOrError"] for a in data["assetNodes"]}
    assert set(assets) == {("orders", "orders"), ("order_totals",)}
    for key, checks in assets.items():
        assert checks["__typename"] == "AssetChecks", (key, checks)
        assert [c["name"] for c in checks["checks"]] == ["stackyard_monitors"], key
    (repository,) = data["repositoriesOrError"]["nodes"]
    schedules = {s["name"]: s for s in repository["schedules"]}
    assert set(schedules) == {"orders_schedule"}
    orders = schedules["orders_schedule"]
    assert (orders["cronSchedule"], orders["executionTimezone"]) == (
        "30 6 * * 1-5",
        "Europe/Berlin",
    )
    assert orders["scheduleState"]["status"] == "RUNNING"


def groups_below(pid: int) -> set[int]:
    """The process groups of ``pid`` and of every process descended from it (from /proc)."""
    parents: dict[int, tuple[int, int]] = {}  # pid -> (ppid, pgid)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # it exited while we looked
            continue
        fields = stat.rsplit(")", 1)[1].split()
        parents[int(entry.name)] = (int(fields[1]), int(fields[2]))
    below, groups = {pid}, set()
    grew = True
    while grew:
        grew = False
        for child, (ppid, _) in parents.items():
            if ppid in below and child not in below:
                below.add(child)
                grew = True
    for member in below:
        if member in parents:
            groups.add(parents[member][1])
    return groups


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process tree from /proc")
def test_sigterm_to_serve_stops_every_dagster_process(tmp_path: Path) -> None:
    """SIGTERM to stackyard alone (kill, systemd) left dagster dev's webserver, daemon and code
    server running, the scheduler still firing, after stackyard said it was interrupted."""
    root = make_project(tmp_path / "shop")
    port = free_port()
    log = tmp_path / "dagster.log"
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env["DAGSTER_DISABLE_TELEMETRY"] = "1"
    command = [str(BIN / "stackyard"), "serve", "--orchestrator", "dagster"]
    with log.open("wb") as out:
        server = subprocess.Popen(
            [*command, "--port", str(port), "--project", str(root)],
            cwd=root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    groups = {server.pid}
    try:
        loaded(port, server, log, within=300)
        groups |= groups_below(server.pid)
        server.send_signal(signal.SIGTERM)  # stackyard only, not its group
        assert server.wait(timeout=300) == 130, log.read_text()[-3000:]
        end = time.monotonic() + 120
        while time.monotonic() < end and any(group_alive(g) for g in groups):
            time.sleep(0.5)
        survivors = sorted(g for g in groups if group_alive(g))
        assert not survivors, f"process groups {survivors} outlived stackyard serve"
        assert not port_open(port), f"port {port} still answers"
    finally:
        for group in groups:
            if group_alive(group):
                os.killpg(group, signal.SIGKILL)
        if server.poll() is None:
            server.kill()
            server.wait()
