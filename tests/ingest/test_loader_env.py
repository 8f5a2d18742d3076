"""dlt settings for one target's load never leak into the next target's."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stackyard import Context
from stackyard.ingest.loader import Loader
from stackyard.project import init_project


def test_a_duckdb_load_leaves_no_dlt_settings_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATA_WRITER__COMPRESSION", raising=False)
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
        session = ctx.session()
        assert not session.warehouse.COMPRESS_LOAD_FILES  # DuckDB turns compression off
        with session.released():
            loads = Loader(session).load(["files"], datetime.now(UTC))
    assert loads[0].status == "loaded", loads[0].error
    # A Postgres target loaded next in this process compresses its files again.
    assert "DATA_WRITER__COMPRESSION" not in os.environ


def test_a_setting_the_user_made_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from stackyard.ingest.loader import _dlt_settings

    monkeypatch.setenv("DATA_WRITER__COMPRESSION", "gzip")
    init_project(tmp_path / "p")
    with Context(tmp_path / "p") as ctx, _dlt_settings(ctx.warehouse()):
        assert os.environ["DATA_WRITER__COMPRESSION"] == "gzip"
    assert os.environ["DATA_WRITER__COMPRESSION"] == "gzip"
