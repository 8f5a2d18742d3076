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


def test_monitor_errors_point_to_the_monitor_docs_and_show_values_as_written(
    tmp_path: Path,
) -> None:
    """They said "docs/project.md describes every key", which does not describe them, and
    showed a date as Python spells it: "(found: datetime.date(2026, 12, 4))"."""
    said = error_of(tmp_path, "monitors:\n  holidays: 2026-12-04\n")
    assert "monitors.holidays: Input should be a valid list (found: 2026-12-04)" in said, said
    assert "(docs/observability.md describes the monitors: keys)" in said, said
    assert "docs/project.md" not in said, said
    said = error_of(tmp_path, "monitors:\n  recheck_days: null\n  enabled: 2026-12-04 10:00:00\n")
    assert "recheck_days: Input should be a valid integer (found: null)" in said, said
    assert "enabled: Input should be a valid boolean (found: 2026-12-04 10:00:00)" in said, said
    # A file wrong in both places points to both documents.
    said = error_of(
        tmp_path,
        "monitors:\n  holidays: 2026-12-04\ndefaults: {freshness: {warn_after_hours: soon}}\n",
    )
    assert "docs/project.md describes every key, docs/observability.md the monitors" in said


def test_a_column_listed_twice_is_refused(tmp_path: Path) -> None:
    """Each check ran twice (health listed distinct, mean and median twice), and one problem
    was counted twice in an alert."""
    said = error_of(
        tmp_path,
        "monitors:\n  tables:\n    uni.x: {columns: [a, b, a], dimensions: [s, s]}\n",
    )
    assert "columns" in said and "a listed more than once: list each column once" in said, said
