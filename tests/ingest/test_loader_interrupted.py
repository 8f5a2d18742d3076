"""Ctrl-C in the middle of a source's extract: dlt's ``trace.pickle`` (request URLs and
resolved config values, secrets included) is not left behind under .stackyard/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from stackyard.project import init_project

# A source that presses Ctrl-C on its own process after its first rows, then keeps
# extracting until dlt is told to stop (at most a minute).
SOURCE = """
import os, signal, time
import dlt

@dlt.source
def ticks():
    @dlt.resource(primary_key="id")
    def tick():
        for i in range(600):
            if i == 1:
                os.kill(os.getpid(), signal.SIGINT)
            yield {"id": i}
            time.sleep(0.1)
    return tick
"""


def _project_with(tmp_path: Path, name: str, code: str) -> Path:
    """A new project whose one source is the Python function ``name`` in ``code``."""
    root = tmp_path / "p"
    init_project(root)
    (root / "sources").mkdir(exist_ok=True)
    (root / "sources" / f"{name}.py").write_text(code)
    yml = root / "stackyard.yml"
    entry = f"sources:\n  {name}:\n    kind: python\n    path: sources/{name}.py\n"
    yml.write_text(yml.read_text().replace("sources: {}\n", f"{entry}    function: {name}\n"))
    return root


def test_ctrl_c_during_an_extract_leaves_no_dlt_trace(tmp_path: Path) -> None:
    root = _project_with(tmp_path, "ticks", SOURCE)
    stopped = subprocess.run(
        [str(Path(sys.executable).parent / "stackyard"), "run"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert stopped.returncode == 130, stopped.stdout[-2000:] + stopped.stderr[-2000:]
    assert (root / ".stackyard" / "pipelines").is_dir()
    assert not list((root / ".stackyard").rglob("trace.pickle"))


# A source stuck in its own code (a long sleep between two items) after Ctrl-C: dlt is told to
# stop but never gets control back. A second Ctrl-C comes a few seconds later.
STUCK = """
import signal, threading, time
import dlt

@dlt.source
def stuck():
    @dlt.resource(primary_key="id")
    def item():
        yield {"id": 0}
        # To the main thread, as a terminal's Ctrl-C reaches it.
        press = lambda: signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
        press()
        threading.Timer(3.0, press).start()
        time.sleep(3600)
        yield {"id": 1}
    return item
"""


def test_a_second_ctrl_c_stops_waiting_for_a_source_stuck_in_its_own_code(
    tmp_path: Path,
) -> None:
    # The run waited for the source until its deadline (two hours by default), and a second
    # Ctrl-C only asked it again.
    root = _project_with(tmp_path, "stuck", STUCK)
    stopped = subprocess.run(
        [str(Path(sys.executable).parent / "stackyard"), "run"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,  # a failsafe only: the old wait lasted the source's whole sleep
    )
    said = " ".join((stopped.stdout + stopped.stderr).split())
    assert stopped.returncode == 130, stopped.stdout[-2000:] + stopped.stderr[-2000:]
    assert "Ctrl-C again to stop waiting" in said, said
    assert "interrupted while waiting for loading stuck to stop" in said, said
    assert "recorded as interrupted" in said
    # The thread left behind does not drag the interpreter's teardown onto the terminal.
    assert "leaked" not in stopped.stderr, stopped.stderr[-2000:]
