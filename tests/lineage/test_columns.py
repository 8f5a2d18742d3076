"""Column lineage of single queries, table-driven from fixtures/queries.yml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from stackyard.lineage.columns import query_lineage

CASES = yaml.safe_load((Path(__file__).parent / "fixtures" / "queries.yml").read_text("utf-8"))


@pytest.mark.parametrize("case", CASES["cases"], ids=[c["name"] for c in CASES["cases"]])
def test_query_lineage(case: dict[str, Any]) -> None:
    result = query_lineage(case["sql"], CASES["schema"], "duckdb")
    found = {
        column: sorted(f"{t.name}.{c}" for t, c in sources)
        for column, sources in result.columns.items()
    }
    expected = {column: sorted(ups) for column, ups in case["expected"].items()}
    assert {k.lower(): [u.lower() for u in v] for k, v in found.items()} == {
        k.lower(): [u.lower() for u in v] for k, v in expected.items()
    }
    assert set(found) == set(expected), "output names keep their spelling"
    assert sorted(u.column for u in result.unresolved) == sorted(case.get("unresolved", []))
