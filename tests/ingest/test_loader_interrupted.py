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


def test_ctrl_c_during_an_extract_leaves_no_dlt_trace(tmp_path: Path) -> None:
    root = tmp_path / "p"
    init_project(root)
    (root / "sources").mkdir(exist_ok=True)
    (root / "sources" / "ticks.py").write_text(SOURCE)
    yml = root / "stackyard.yml"
    yml.write_text(
        yml.read_text().replace(
            "sources: {}\n",
            "sources:\n  ticks:\n    kind: python\n    path: sources/ticks.py\n"
            "    function: ticks\n",
        )
    )
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
