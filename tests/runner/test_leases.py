"""No two runs of one source or of the transformation overlap: the second trigger is refused
(exit 1) naming the holder, and `stackyard status` shows who holds what."""

from __future__ import annotations

import os
import pwd
import re
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stackyard import Context
from stackyard.cli.main import app
from stackyard.metadata.run_leases import RunLeases, holder_alive, holder_name
from stackyard.project import init_project
from stackyard.results import RunResult

runner = CliRunner()

# A source that waits for a "go" file before yielding its rows, so a test can hold a run open.
SOURCE = """
import time
from pathlib import Path

import dlt

HERE = Path(__file__).parent


@dlt.source
def held():
    @dlt.resource(primary_key="id")
    def events():
        (HERE / "started").write_text("yes")
        for _ in range(600):
            if (HERE / "go").exists():
                break
            time.sleep(0.1)
        yield from ({"id": i} for i in range(4))

    return events
"""


def project(root: Path) -> Path:
    init_project(root)
    (root / "sources").mkdir(exist_ok=True)
    (root / "sources" / "held.py").write_text(SOURCE)
    entry = "sources:\n  events:\n    kind: python\n    path: sources/held.py\n    function: held\n"
    text = (root / "stackyard.yml").read_text().replace("sources: {}\n", entry)
    (root / "stackyard.yml").write_text(text)
    return root


def wait_for(path: Path, seconds: float = 120) -> None:
    give_up = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < give_up, f"{path} never appeared"
        time.sleep(0.05)


def test_two_overlapping_triggers_give_one_run_and_one_refusal(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    first: list[RunResult] = []

    def run() -> None:
        with Context(root) as context:
            first.append(context.run())

    thread = threading.Thread(target=run)
    thread.start()
    try:
        wait_for(root / "sources" / "started")
        second = runner.invoke(app, ["run", "--project", str(root)])
        assert second.exit_code == 1, second.output
        said = " ".join(second.output.split())
        assert "source 'events' is being run by" in said, said
        assert f"pid {os.getpid()} (run " in said, said

        shown = runner.invoke(app, ["status", "--project", str(root)])
        assert shown.exit_code == 0, shown.output
        assert "held leases" in shown.output
        assert "source:events" in shown.output and "transformation" in shown.output
    finally:
        (root / "sources" / "go").write_text("go")
        thread.join(300)
    (result,) = first
    assert result.loads[0].status == "loaded" and result.loads[0].rows == 4
    with Context(root) as context:
        runs = context.sql("select count(*) from stackyard.runs").rows[0][0]
        assert runs == 1  # the refused trigger ran nothing and recorded nothing
        assert context.leases() == []  # given back at the end
    shown = runner.invoke(app, ["status", "--project", str(root)])
    assert "held leases" not in shown.output


def test_a_lease_of_a_dead_process_or_past_its_end_is_taken_over(tmp_path: Path) -> None:
    root = init_project(tmp_path / "p").path
    with Context(root) as context:
        leases = RunLeases(context.warehouse())
        leases.ensure()
        leases.acquire(["source:x"], "old", seconds=0.01)
        time.sleep(0.05)  # past its end
        leases.acquire(["source:x"], "new", seconds=60)
        (held,) = leases.held()
        assert held.run_id == "new"
        leases.release(["source:x"], "new")
        assert leases.held() == []


def test_a_waiting_taker_gives_up_at_its_deadline_naming_the_holder(tmp_path: Path) -> None:
    root = init_project(tmp_path / "p").path
    with Context(root) as context:
        leases = RunLeases(context.warehouse())
        leases.ensure()
        leases.acquire(["transformation"], "first", seconds=60)
        waited: list[float] = []
        try:
            leases.acquire(["transformation"], "second", seconds=60, wait=0.2, sleep=waited.append)
        except Exception as exc:
            assert "the transformation is being run by" in str(exc)
            assert "(run first)" in str(exc)
            # The expiry can be a day or more ahead: a bare time read as one already past.
            assert re.search(r"lease ends by \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", str(exc))
        else:
            raise AssertionError("the second taker got a held lease")
        assert waited  # it waited before giving up


def test_holder_alive_knows_local_dead_processes() -> None:
    assert holder_alive(holder_name("r1"))
    dead = holder_name("r1").replace(f"pid {os.getpid()}", "pid 999999999")
    assert not holder_alive(dead)
    assert holder_alive("someone@elsewhere pid 1 (run r1)")


def test_holder_names_the_account_when_user_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    # Containers and cron often run without $USER: the holder read "?@host".
    for name in ("USER", "USERNAME", "LOGNAME", "LNAME"):
        monkeypatch.delenv(name, raising=False)
    holder = holder_name("r1")
    assert not holder.startswith("?@")
    assert holder.split("@")[0] == pwd.getpwuid(os.getuid()).pw_name
    assert holder_alive(holder)
