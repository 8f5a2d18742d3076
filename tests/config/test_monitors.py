"""The ``monitors:`` section of stackyard.yml: each mistake refused with what to write."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackyard.config import load_project_config
from stackyard.errors import ConfigError
from tests.conftest import write

PROJECT = """
name: shop
targets:
  dev: {type: duckdb}
sources:
  uni:
    kind: filesystem
    url: sources/uni
    tables:
      Événements: {glob: "*.csv", primary_key: id}
"""


def error_of(tmp_path: Path, monitors: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_project_config(write(tmp_path / "stackyard.yml", PROJECT + monitors))
    return " ".join(str(info.value).split())


def test_a_table_named_as_declared_is_told_its_loaded_spelling(tmp_path: Path) -> None:
    """It read "'uni.Événements' is not a table: write 'schema.table'", though it is one."""
    said = error_of(tmp_path, "monitors:\n  tables:\n    uni.Événements: {owner: '@x'}\n")
    assert "'uni.Événements' is not a table as loaded" in said, said
    assert "named as dlt spells it (did you mean 'uni._v_nements'?)" in said, said
    assert "write 'schema.table'" not in said, said
    said = error_of(tmp_path, "monitors:\n  tables:\n    a.b.c: {owner: '@x'}\n")
    assert "'a.b.c' is not a table: write 'schema.table'" in said, said
