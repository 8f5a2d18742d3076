"""`stackyard schema diff` on the example project: an upstream rename is caught before it runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from stackyard.lineage.diff import classify_type_change
from tests.lineage.conftest import stackyard

TYPES = yaml.safe_load(
    (Path(__file__).parent / "fixtures" / "type_changes.yml").read_text(encoding="utf-8")
)
STAGING = Path("transform/models/staging/dlt/stg_dlt__customers.sql")


@pytest.mark.parametrize("case", TYPES, ids=[f"{c[0]}->{c[1]}" for c in TYPES])
def test_type_changes_are_classified(case: list[str]) -> None:
    before, after, expected = case
    assert classify_type_change(before, after) == (None if expected == "same" else expected)


def test_an_unchanged_project_passes_the_check(example: Path) -> None:
    done = stackyard("schema", "diff", "--check", "--json", cwd=example)
    assert json.loads(done.stdout)["changes"] == []


def test_an_upstream_rename_fails_the_check_before_it_runs(example: Path) -> None:
    sql = example / STAGING
    sql.write_text(sql.read_text().replace("name as customer_name", "name as full_name"))

    done = stackyard("schema", "diff", "--check", "--json", cwd=example, check=False)

    assert done.returncode == 1
    changes = {(c["node"], c["column"]): c for c in json.loads(done.stdout)["changes"]}
    rename = changes[("stg_dlt__customers", "customer_name")]
    assert (rename["change"], rename["after"], rename["breaking"]) == ("rename", "full_name", True)
    assert rename["readers"] == ["customers"]
    broken = changes[("customers", "customer_name")]
    assert broken["change"] == "broken_reference"
    # Nothing ran: the warehouse still has the old column.
    old = stackyard(
        "sql", "select customer_name from staging.stg_dlt__customers limit 1", cwd=example
    )
    assert old.returncode == 0

    # Approved in stackyard.yml (both the rename and the consumer it breaks), the check passes.
    stackyard(
        "schema",
        "approve",
        "stg_dlt__customers.customer_name",
        "--change",
        "rename",
        "--reason",
        "analysts told on 2026-12-01",
        cwd=example,
    )
    stackyard(
        "schema",
        "approve",
        "customers.customer_name",
        "--change",
        "broken_reference",
        "--reason",
        "fixed in the next commit",
        cwd=example,
    )
    assert "schema_changes" in (example / "stackyard.yml").read_text()
    assert stackyard("schema", "diff", "--check", cwd=example, check=False).returncode == 0


def test_additive_and_type_changes_against_a_git_ref(example: Path) -> None:
    sql = example / STAGING
    text = sql.read_text()
    text = text.replace("email,", "email,\n        upper(email) as email_upper,")
    text = text.replace("cast(id as integer) as customer_id", "cast(id as bigint) as customer_id")
    sql.write_text(text)

    done = stackyard("schema", "diff", "--against", "HEAD", "--json", "--check", cwd=example)

    data = json.loads(done.stdout)
    kinds = {(c["node"], c["column"]): c["change"] for c in data["changes"]}
    assert kinds[("stg_dlt__customers", "email_upper")] == "additive"
    assert kinds[("stg_dlt__customers", "customer_id")] == "type_widening"
    assert data["against"] == "git HEAD"
    assert data["unapproved"] == 0


def test_an_unknown_ref_is_a_usage_error(example: Path) -> None:
    done = stackyard("schema", "diff", "--against", "no-such-ref", cwd=example, check=False)
    assert done.returncode == 2
    assert "no-such-ref" in done.stderr
