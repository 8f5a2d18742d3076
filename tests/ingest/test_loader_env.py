"""dlt settings for one target's load never leak into the next target's."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stackyard import Context
from stackyard.ingest.loader import Loader
from stackyard.project import init_project


def _csv_project(tmp_path: Path) -> Path:
    """A new project with one CSV file source, not loaded yet."""
    init_project(tmp_path / "p")
    (tmp_path / "p/sources/files").mkdir(parents=True, exist_ok=True)
    (tmp_path / "p/sources/files/things.csv").write_text("id,name\n1,a\n2,b\n")
    with Context(tmp_path / "p") as ctx:
        ctx.source_add(
            "files",
            "filesystem",
            {"url": "sources/files", "tables": {"things": {"glob": "things.csv"}}},
            load=False,
        )
    return tmp_path / "p"


def test_a_duckdb_load_leaves_no_dlt_settings_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATA_WRITER__COMPRESSION", raising=False)
    with Context(_csv_project(tmp_path)) as ctx:
        session = ctx.session()
        assert not session.warehouse.COMPRESS_LOAD_FILES  # DuckDB turns compression off
        with session.released():
            loads = Loader(session).load(["files"], datetime.now(UTC))
    assert loads[0].status == "loaded", loads[0].error
    # A Postgres target loaded next in this process compresses its files again.
    assert "DATA_WRITER__COMPRESSION" not in os.environ


def test_a_setting_the_user_made_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from stackyard.ingest.dlt_settings import dlt_settings

    monkeypatch.setenv("DATA_WRITER__COMPRESSION", "gzip")
    init_project(tmp_path / "p")
    with Context(tmp_path / "p") as ctx, dlt_settings(ctx.warehouse()):
        assert os.environ["DATA_WRITER__COMPRESSION"] == "gzip"
    assert os.environ["DATA_WRITER__COMPRESSION"] == "gzip"


_LOAD_AND_REPORT_TRACKER = """
import sys
from stackyard import Context
result = Context(sys.argv[1]).run()
assert result.ok, result.to_dict()
from dlt.common.runtime import anon_tracker
print("tracker", anon_tracker._ANON_TRACKER_ENDPOINT)
"""


def test_a_load_sends_no_usage_events_to_dlthub(tmp_path: Path) -> None:
    """dlt's anonymous usage events stay off (as dbt's do): no tracker started in the process.
    A fresh process, since dlt starts its tracker once per process."""
    import subprocess
    import sys

    _csv_project(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "RUNTIME__DLTHUB_TELEMETRY"}
    done = subprocess.run(
        [sys.executable, "-c", _LOAD_AND_REPORT_TRACKER, str(tmp_path / "p")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "tracker None" in done.stdout, done.stdout
