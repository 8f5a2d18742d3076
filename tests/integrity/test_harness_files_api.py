"""The per-kind differential harness (tests/integrity/kinds_harness.py) on filesystem
sources (CSV, JSONL, Parquet), a rest_api source on a local HTTP server and a user's Python
source."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.integrity.kinds_harness import check_histories


@pytest.mark.parametrize("kind", ["csv", "jsonl", "parquet", "rest", "python"])
def test_files_api_and_python_keep_what_the_docs_promise(kind: str, tmp_path: Path) -> None:
    check_histories(kind, tmp_path, None)
