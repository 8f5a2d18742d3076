"""Editing stackyard.yml keeps what a person wrote in it: the comments around an entry that
is taken out stay where they were."""

from __future__ import annotations

from pathlib import Path

from stackyard.config.edit import ProjectFile

APPROVALS = """\
name: shop
schema_changes:
  approved:
    - {node: stg_a, column: x, reason: first}
    - node: stg_b
      column: y
      reason: second
# Targets: dev is the laptop, prod the warehouse.
targets:
  dev: {engine: duckdb}
"""

SOURCES = """\
name: shop
sources:
  orders:
    kind: csv
    path: data/orders
  customers:
    kind: csv
    path: data/customers

# --- who may read what ---
access:
  roles: {}
"""


def _edited(tmp_path: Path, text: str) -> ProjectFile:
    path = tmp_path / "stackyard.yml"
    path.write_text(text, encoding="utf-8")
    return ProjectFile(path)


def test_removing_the_last_approval_keeps_the_comment_that_followed_it(tmp_path: Path) -> None:
    edit = _edited(tmp_path, APPROVALS)

    assert edit.remove_approval(lambda e: e.get("reason") == "second")

    text = edit.text()
    assert "# Targets: dev is the laptop, prod the warehouse.\ntargets:" in text
    assert "stg_b" not in text and "stg_a" in text


def test_removing_every_approval_keeps_the_comment_too(tmp_path: Path) -> None:
    edit = _edited(tmp_path, APPROVALS)

    assert edit.remove_approval(lambda e: e.get("reason") == "second")
    assert edit.remove_approval(lambda e: e.get("reason") == "first")

    text = edit.text()
    assert "schema_changes" not in text
    assert text.index("name: shop") < text.index("# Targets:") < text.index("targets:")


def test_removing_the_last_source_keeps_the_next_sections_heading(tmp_path: Path) -> None:
    edit = _edited(tmp_path, SOURCES)

    edit.remove_source("customers")
    assert "# --- who may read what ---\naccess:" in edit.text()

    edit.remove_source("orders")
    text = edit.text()
    assert "sources: {}" in text
    assert text.index("sources: {}") < text.index("# --- who may read what ---")
    assert text.index("# --- who may read what ---") < text.index("access:")
