"""`stackyard serve`: bad input is refused before any orchestrator starts (exit 2)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from stackyard.project import init_project

BIN = Path(sys.executable).parent


@pytest.mark.parametrize("port", ["0", "99999"])
def test_serve_refuses_a_port_out_of_range_before_starting_dagster(
    tmp_path: Path, port: str
) -> None:
    root = tmp_path / "p"
    init_project(root)
    server = subprocess.Popen(
        [str(BIN / "stackyard"), "serve", "--orchestrator", "dagster", "--port", port],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _, err = server.communicate(timeout=120)  # a hang guard: dagster dev never returns
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
        pytest.fail(f"--port {port} started dagster dev")
    assert server.returncode == 2, err
    assert "--port" in err
    assert not (root / ".stackyard" / "dagster").exists()  # nothing was written or started
