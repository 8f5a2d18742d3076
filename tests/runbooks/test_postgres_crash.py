"""Postgres after a crash, on a throwaway server of the test's own (the machine's shared server
cannot be crashed): killed mid-life it replays its write-ahead log on restart and nothing
committed is lost; with its log gone it will not start, the doctor says so, and the last
backup restored into a new server continues the cursors with no duplicates and no gaps."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.runbooks.test_restore_drill import (
    add_orders,
    cli,
    postgres_project,
    source_counts,
    warehouse_state,
)

PG_BIN = Path("/usr/lib/postgresql")


def _bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(PG_BIN.glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True)
    return next((str(p / name) for p in versions if (p / name).exists()), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A Postgres server in its own data folder, run as the ``postgres`` user when the tests
    run as root (initdb refuses root)."""

    root: Path
    port: int

    @property
    def data(self) -> Path:
        return self.root / "data"

    def _as_owner(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = list(args)
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=check)

    def init(self) -> None:
        initdb = _bin("initdb")
        assert initdb, "initdb not found"
        self._as_owner(initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    def start(self, check: bool = True) -> bool:
        done = self._as_owner(
            str(_bin("pg_ctl")),
            "-D",
            str(self.data),
            "-l",
            str(self.root / "server.log"),
            "-w",
            "-t",
            "60",
            "-o",
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=on",
            "start",
            check=False,
        )
        if check:
            assert done.returncode == 0, done.stdout + done.stderr + self.log()
        return done.returncode == 0

    def crash(self) -> None:
        """Stop the way a power cut would: no shutdown checkpoint, so the next start has to
        replay the write-ahead log (`pg_ctl stop -m immediate`)."""
        self._as_owner(str(_bin("pg_ctl")), "-D", str(self.data), "-m", "immediate", "stop")

    def stop(self) -> None:
        self._as_owner(
            str(_bin("pg_ctl")), "-D", str(self.data), "-m", "immediate", "stop", check=False
        )

    def log(self) -> str:
        path = self.root / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def create_database(self, name: str) -> None:
        import psycopg

        dsn = f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')


def new_server() -> Server:
    root = Path(tempfile.mkdtemp(prefix="stackyard-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    server = Server(root, _free_port())
    server.init()
    server.start()
    return server


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    if not (_bin("initdb") and _bin("pg_ctl")):
        pytest.skip("the PostgreSQL server programs (initdb, pg_ctl) are not installed")
    made: list[Server] = []
    yield made
    for server in made:
        server.stop()
        shutil.rmtree(server.root, ignore_errors=True)


def point_at(project: Path, server: Server) -> None:
    config = project / "stackyard.yml"
    text = config.read_text()
    marker = "    host: 127.0.0.1\n"
    assert marker in text
    if "    port: " in text:
        text = "\n".join(
            f"    port: {server.port}" if line.startswith("    port: ") else line
            for line in text.splitlines()
        )
    else:
        text = text.replace(marker, f"{marker}    port: {server.port}\n")
    config.write_text(text)


def doctor(project: Path, code: int) -> dict[str, Any]:
    out = cli("doctor", "--json", "--project", str(project), "--target", "prod", code=code)
    report: dict[str, Any] = json.loads(out[out.index("{") :])
    return report


@pytest.mark.slow
@pytest.mark.postgres
def test_crash_replays_the_log_and_a_lost_log_is_restored_from_the_last_backup(
    tmp_path: Path, servers: list[Server]
) -> None:
    server = new_server()
    servers.append(server)
    server.create_database("shop")
    project = postgres_project(tmp_path, "shop")
    point_at(project, server)

    cli("run", "--project", str(project), "--target", "prod")
    backup = cli("backup", "--project", str(project), "--target", "prod").splitlines()[0].strip()
    backed_up = warehouse_state(project, "prod")
    add_orders(project, 25)
    cli("run", "--project", str(project), "--target", "prod")
    before = warehouse_state(project, "prod")

    # A crash: no shutdown checkpoint. The doctor sees a server that does not answer.
    server.crash()
    down = doctor(project, code=1)
    finding = next(f for f in down["findings"] if f["check"] == "warehouse")
    assert "not reachable" in finding["what"], finding
    assert "restore latest" in finding["fix"], finding  # the way back if it cannot start

    server.start()  # replays the write-ahead log from the last checkpoint
    assert "redo" in server.log()
    assert warehouse_state(project, "prod") == before  # every committed row is back

    # The log lost (a disk gone, a volume restored without it): the server will not start.
    server.crash()
    for segment in (server.data / "pg_wal").iterdir():
        if segment.is_file():
            segment.unlink()
    assert not server.start(check=False)
    assert "checkpoint" in server.log().lower()
    doctor(project, code=1)

    # A new server in its place; the backup goes into it, and the cursors carry on from there.
    replacement = new_server()
    servers.append(replacement)
    replacement.create_database("shop")
    point_at(project, replacement)
    cli("restore", "latest", "--yes", "--project", str(project), "--target", "prod")
    assert warehouse_state(project, "prod") == backed_up
    assert Path(backup).is_dir()

    cli("run", "--project", str(project), "--target", "prod")
    after = warehouse_state(project, "prod")
    now = source_counts(project)
    for table in ("customers", "orders", "order_items"):
        assert after[table] == now[table], table  # no gaps: the 25 orders come back
        assert after[f"{table}_duplicates"] == 0, table
    assert after["renamed"] == 1
