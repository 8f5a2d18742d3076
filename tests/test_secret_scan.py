"""The secrets scan finds a planted secret wherever end-to-end tests rely on it looking."""

from __future__ import annotations

import base64
import zlib
from pathlib import Path

import duckdb

from tests.secret_scan import SecretScan

SECRET = "planted-Secret-42"


def test_the_scan_finds_secrets_in_outputs_files_tables_and_compressed_state(
    tmp_path: Path,
) -> None:
    scan = SecretScan()
    scan.secret(SECRET)
    scan.project(tmp_path)
    assert scan.leaks() == []
    (tmp_path / ".stackyard").mkdir()
    (tmp_path / ".stackyard" / "secrets.toml").write_text(f'X = "{SECRET}"\n')
    assert scan.leaks() == []  # the one place a secret belongs
    scan.output(f"error: could not connect with {SECRET}")
    (tmp_path / "transform").mkdir()
    (tmp_path / "transform" / "profiles.yml").write_text(f"password: {SECRET}\n")
    state = base64.b64encode(zlib.compress(f'{{"token": "{SECRET}"}}'.encode())).decode()
    with duckdb.connect(str(tmp_path / ".stackyard" / "dev.duckdb")) as con:
        con.execute("create schema stackyard")
        con.execute("create table stackyard.steps (detail varchar)")
        con.execute("insert into stackyard.steps values (?)", [f"url?key={SECRET}"])
        con.execute("create table main._dlt_pipeline_state (state varchar)")
        con.execute("insert into main._dlt_pipeline_state values (?)", [state])
    leaks = scan.leaks()
    places = {leak.split(":")[0] for leak in leaks}
    assert "output #0" in places
    assert "transform/profiles.yml" in places
    assert ".stackyard/dev.duckdb stackyard.steps" in places
    assert ".stackyard/dev.duckdb main._dlt_pipeline_state" in places
    assert all(SECRET not in leak for leak in leaks)  # the report does not repeat it
