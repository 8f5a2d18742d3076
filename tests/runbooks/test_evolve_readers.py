"""Which references `evolve rename`'s migrate phase rewrites in a reader, table-driven from
fixtures/reader_renames.yml."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from stackyard.errors import UsageError
from stackyard.runbooks.evolve_readers import rewrite_reader

CASES = yaml.safe_load(
    (Path(__file__).parent / "fixtures" / "reader_renames.yml").read_text("utf-8")
)


@pytest.mark.parametrize("case", CASES["cases"], ids=[c["name"] for c in CASES["cases"]])
def test_only_references_to_the_renamed_column_are_rewritten(case: dict[str, Any]) -> None:
    def rewrite() -> Any:
        return rewrite_reader(
            case["sql"], "a", "id", "key", CASES["relations"], "duckdb", "m.sql", "m"
        )

    if "error" in case:
        with pytest.raises(UsageError, match=re.escape(case["error"])):
            rewrite()
        return
    done = rewrite()
    assert done.text == case["expected"]
    assert sorted(done.renamed_outputs) == case["outputs"]
