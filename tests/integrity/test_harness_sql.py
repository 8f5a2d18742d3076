"""The per-kind differential harness (tests/integrity/kinds_harness.py) on sql_database
sources: SQLite, and throwaway Postgres and MariaDB databases on the local servers."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.integrity.kinds_harness import check_histories, server_url_for


@pytest.mark.parametrize(
    "kind",
    [
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ],
)
def test_sql_database_keeps_what_the_docs_promise(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    check_histories(kind, tmp_path, server_url_for(kind, request, tmp_path))
