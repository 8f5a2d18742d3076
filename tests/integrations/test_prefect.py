"""`stackyard deploy prefect` against a real, temporary, local Prefect server: the written
prefect.yaml deploys with `prefect deploy --all`, the server's scheduler makes runs on the
declared cron, and driving time past missed intervals runs the work once (catch_up: once),
through a real Prefect worker, recorded in `stackyard.runs`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from stackyard import Context
from stackyard.cli.main import app
from stackyard.config.orchestration import Schedule
from stackyard.project import init_project

prefect = pytest.importorskip("prefect", reason="pip install 'stackyard[prefect]'")

runner = CliRunner()
BIN = Path(sys.executable).parent

SOURCE = """
import dlt


@dlt.source
def shop():
    @dlt.resource(primary_key="id", write_disposition="merge")
    def orders():
        yield from ({"id": i, "amount": i * 10} for i in range(5))

    return orders
"""

MODEL = "select count(*) as orders, sum(amount) as amount from {{ source('orders', 'orders') }}\n"
SOURCES_YML = """version: 2
sources:
  - name: orders
    schema: orders
    tables:
      - name: orders
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def prefect_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A Prefect server on a free port with its own home, stopped afterwards."""
    home = tmp_path_factory.mktemp("prefect_home")
    port = free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    log = (home / "server.log").open("w")
    server = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        give_up = time.monotonic() + 180
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert server.poll() is None, (home / "server.log").read_text()
                assert time.monotonic() < give_up, "the Prefect server did not start"
                time.sleep(0.5)
        wait_until(lambda: api(env, "GET", "/health") is True, 120, "the server's health")
        yield env
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def api(env: dict[str, str], method: str, path: str, body: Any = None) -> Any:
    import httpx

    response = httpx.request(method, env["PREFECT_API_URL"] + path, json=body, timeout=30.0)
    response.raise_for_status()
    return response.json() if response.content else None


def wait_until(check: Any, seconds: float, what: str) -> Any:
    give_up = time.monotonic() + seconds
    while True:
        try:
            value = check()
        except AssertionError:
            raise
        except Exception:  # the server is still starting
            value = None
        if value:
            return value
        assert time.monotonic() < give_up, f"gave up waiting for {what}"
        time.sleep(0.5)


def prefect_cli(env: dict[str, str], cwd: Path, *args: str) -> str:
    done = subprocess.run(
        [str(BIN / "prefect"), "--no-prompt", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def make_project(root: Path) -> Path:
    init_project(root)
    (root / "sources" / "shop.py").write_text(SOURCE)
    (root / "transform" / "models" / "order_totals.sql").write_text(MODEL)
    (root / "transform" / "models" / "_sources.yml").write_text(SOURCES_YML)
    entry = (
        "sources:\n  orders:\n    kind: python\n    path: sources/shop.py\n    function: shop\n"
        "    schedule: {cron: '0 7 * * *', timezone: UTC, catch_up: once}\n"
    )
    text = (root / "stackyard.yml").read_text().replace("sources: {}\n", entry)
    (root / "stackyard.yml").write_text(text)
    return root


def test_deploy_writes_one_deployment_per_source_and_the_transformation(tmp_path: Path) -> None:
    root = make_project(tmp_path / "shop")
    done = runner.invoke(app, ["deploy", "prefect", "--json", "--project", str(root)])
    assert done.exit_code == 0, done.output
    result = json.loads(done.output)
    assert result["files"] == ["prefect.yaml", "prefect_flows.py"]
    by_name = {d["name"]: d for d in result["deployments"]}
    assert set(by_name) == {"orders", "transformation"}
    orders = by_name["orders"]
    assert (orders["cron"], orders["timezone"], orders["catch_up"]) == ("0 7 * * *", "UTC", "once")
    # the runbook's retry policy: 3 retries, backoff factor 10, jitter 0.5
    assert (orders["retries"], orders["retry_delays"], orders["jitter"]) == (3, [10, 20, 40], 0.5)
    document = yaml.safe_load((root / "prefect.yaml").read_text())
    deployed = {d["name"]: d for d in document["deployments"]}
    assert deployed["orders"]["schedules"] == [
        {"cron": "0 7 * * *", "timezone": "UTC", "active": True}
    ]
    assert "schedules" not in deployed["transformation"]  # it follows the loads
    assert deployed["orders"]["entrypoint"] == "prefect_flows.py:load_orders"

    from stackyard.integrations.prefect import flows

    found = {f.name: f for f in flows(root)}
    assert set(found) == {"shop-orders", "shop-transformation"}
    assert found["shop-orders"].fn.__name__ == "load_orders"


def test_a_local_prefect_server_runs_the_schedule_once_after_downtime(
    tmp_path: Path, prefect_env: dict[str, str]
) -> None:
    env = prefect_env
    root = make_project(tmp_path / "shop")
    assert runner.invoke(app, ["deploy", "prefect", "--project", str(root)]).exit_code == 0
    prefect_cli(env, root, "work-pool", "create", "stackyard", "--type", "process")
    prefect_cli(env, root, "deploy", "--all")

    deployments = api(env, "POST", "/deployments/filter", {})
    by_name = {d["name"]: d for d in deployments}
    assert set(by_name) == {"orders", "transformation"}
    (schedule,) = by_name["orders"]["schedules"]
    assert schedule["schedule"]["cron"] == "0 7 * * *"
    assert schedule["schedule"]["timezone"] == "UTC"
    assert not by_name["transformation"]["schedules"]

    # The server's scheduler made the upcoming runs on the cron.
    def scheduled() -> list[dict[str, Any]]:
        runs = api(
            env,
            "POST",
            "/flow_runs/filter",
            {"deployments": {"id": {"any_": [by_name["orders"]["id"]]}}},
        )
        return [r for r in runs if r["state_type"] == "SCHEDULED"]

    upcoming = wait_until(scheduled, 120, "the scheduler's runs")
    for run in upcoming:
        at = datetime.fromisoformat(run["expected_start_time"])
        assert (at.hour, at.minute) == (7, 0), at

    # Drive time: the server was down over the last three 07:00s; their runs are late now.
    now = datetime.now(UTC)
    ticks = Schedule(cron="0 7 * * *").ticks(now - timedelta(days=3), now)
    missed = [
        api(
            env,
            "POST",
            f"/deployments/{by_name['orders']['id']}/create_flow_run",
            {"state": {"type": "SCHEDULED", "state_details": {"scheduled_time": t.isoformat()}}},
        )["id"]
        for t in ticks
    ]
    assert len(missed) == 3
    prefect_cli(env, root, "worker", "start", "--pool", "stackyard", "--run-once")

    def finished() -> list[dict[str, Any]] | None:
        runs = [api(env, "GET", f"/flow_runs/{run_id}") for run_id in missed]
        return (
            runs
            if all(r["state_type"] in ("COMPLETED", "FAILED", "CRASHED") for r in runs)
            else None
        )

    runs = wait_until(finished, 600, "the late runs")
    assert [r["state_type"] for r in runs] == ["COMPLETED"] * 3, [r["state"] for r in runs]
    with Context(root) as context:
        recorded = context.sql("select run_id, status, selected from stackyard.runs").rows
        totals = context.sql("select orders, amount from order_totals").rows
    # catch_up: once — three late runs, one load (the latest interval's), two skipped
    assert [(status, selected) for _, status, selected in recorded] == [("success", "orders")]
    assert list(totals) == [(5, 100)]


def test_prefect_yaml_names_no_folder_of_the_machine_it_was_written_on(tmp_path: Path) -> None:
    root = make_project(tmp_path / "shop")
    assert runner.invoke(app, ["deploy", "prefect", "--project", str(root)]).exit_code == 0
    text = (root / "prefect.yaml").read_text()
    # It held set_working_directory: {directory: <this checkout's absolute path>}.
    assert str(tmp_path) not in text and str(tmp_path.resolve()) not in text, text
    (pull,) = yaml.safe_load(text)["pull"]
    assert pull == {
        "prefect.deployments.steps.set_working_directory": {
            "directory": "{{ stackyard-project.directory }}"
        }
    }


def test_a_committed_prefect_yaml_deploys_and_runs_from_another_checkout(
    tmp_path: Path, prefect_env: dict[str, str]
) -> None:
    import shutil

    env = prefect_env
    written = make_project(tmp_path / "laptop" / "shop")
    assert runner.invoke(app, ["deploy", "prefect", "--project", str(written)]).exit_code == 0
    # The project is committed and cloned on the worker's machine; where it was written is
    # not there. Its runs went to that folder and crashed (no such file or directory).
    clone = tmp_path / "worker" / "shop"
    shutil.copytree(written, clone)
    shutil.rmtree(written.parent)
    prefect_cli(env, clone, "work-pool", "create", "stackyard", "--type", "process", "--overwrite")
    prefect_cli(env, clone, "deploy", "--all")
    (deployment,) = [
        d for d in api(env, "POST", "/deployments/filter", {}) if d["name"] == "orders"
    ]
    run_id = api(env, "POST", f"/deployments/{deployment['id']}/create_flow_run", {})["id"]
    prefect_cli(env, clone, "worker", "start", "--pool", "stackyard", "--run-once")

    def finished() -> dict[str, Any] | None:
        run: dict[str, Any] = api(env, "GET", f"/flow_runs/{run_id}")
        return run if run["state_type"] in ("COMPLETED", "FAILED", "CRASHED") else None

    run = wait_until(finished, 600, "the run")
    assert run["state_type"] == "COMPLETED", run["state"].get("message")
    with Context(clone) as context:
        recorded = context.sql("select status, selected from stackyard.runs").rows
        totals = context.sql("select orders, amount from order_totals").rows
    assert list(recorded) == [("success", "orders")]
    assert list(totals) == [(5, 100)]


def test_ctrl_c_stops_serve_as_an_interrupt(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {"PREFECT_HOME": str(tmp_path / "home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    out = (tmp_path / "serve.log").open("w")
    serve = subprocess.Popen(
        [str(BIN / "stackyard"), "serve", "--orchestrator", "prefect"],
        cwd=root,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        log = tmp_path / "serve.log"

        def served() -> bool:
            text = log.read_text()
            assert serve.poll() is None, f"serve exited {serve.returncode}: {text[-3000:]}"
            return "being served" in text

        wait_until(served, 400, "the deployments to be served")
        # A terminal's Ctrl-C reaches the whole group: stackyard and Prefect's temporary server.
        os.killpg(serve.pid, signal.SIGINT)
        serve.wait(300)
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGKILL)
            serve.wait()
        out.close()
    text = log.read_text()
    # Before: exit 1, "unexpected error: ConnectError: All connection attempts failed".
    assert serve.returncode == 130, text[-3000:]
    assert "unexpected error" not in text and "Traceback" not in text.split("being served")[1]
    assert "interrupted:" in text


@pytest.mark.parametrize(("error", "attempts"), [("ValueError", 1), ("ConnectionResetError", 3)])
def test_a_failure_another_attempt_would_repeat_skips_prefects_retries(
    tmp_path: Path, prefect_env: dict[str, str], error: str, attempts: int
) -> None:
    from tests.ingest.test_attempts import attempts as counted
    from tests.ingest.test_attempts import project

    policy = "    retries: {count: 2, backoff_factor: 0.01, jitter: 0}\n"
    root = project(tmp_path / "p", f"{{fails: 99, error: {error}}}", policy)
    code = (
        "import sys\nfrom stackyard.integrations.prefect import flows\n"
        "(flow,) = [f for f in flows(sys.argv[1]) if f.name.endswith('-events')]\nflow()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(root)],
        env=prefect_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode != 0, done.stdout + done.stderr
    # Bad input fails the same way again: one attempt; a network blip: the policy's three.
    assert counted(root) == attempts, done.stdout + done.stderr


def test_serve_gives_prefects_temporary_server_time_to_start_on_a_busy_machine() -> None:
    """Prefect waits 20 s for its temporary API server; under load serve failed before it."""
    from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS as wait
    from prefect.settings import temporary_settings

    from stackyard.integrations.prefect import _patient_temporary_server

    with _patient_temporary_server():
        assert wait.value() >= 180
    with temporary_settings(updates={wait: 900}), _patient_temporary_server():
        assert wait.value() == 900
