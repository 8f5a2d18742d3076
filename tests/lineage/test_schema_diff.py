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


EXTREMES = {
    "SMALLINT": ["32767", "-32768"],
    "INTEGER": ["2147483647", "16777217"],
    "BIGINT": ["9223372036854775807", "9007199254740993"],
    "DECIMAL(6,2)": ["9999.99", "1234.57"],
    "DECIMAL(7,2)": ["99999.99", "12345.67", "99999.97"],
    "DECIMAL(8,2)": ["999999.99", "123456.78"],
    "DECIMAL(10,2)": ["99999999.99", "-12345678.91"],
    "DECIMAL(16,2)": ["99999999999999.99"],
    "DECIMAL": ["999999999999999.999"],
}
NUMERIC = [c for c in TYPES if c[0] in EXTREMES and c[1] in ("FLOAT", "DOUBLE")]


@pytest.mark.parametrize("case", NUMERIC, ids=[f"{c[0]}->{c[1]}" for c in NUMERIC])
def test_a_widening_to_a_float_keeps_every_value_and_a_narrowing_loses_one(
    case: list[str],
) -> None:
    import duckdb

    before, after, expected = case

    def kept(value: str) -> bool:
        try:
            back = f"cast(cast(cast({value} as {before}) as {after}) as {before})"
            return bool(con.execute(f"select {back} = cast({value} as {before})").fetchall()[0][0])
        except duckdb.ConversionException:  # out of range on the way back
            return False

    with duckdb.connect() as con:
        results = [kept(v) for v in EXTREMES[before]]
    # Before: DECIMAL(16,2) and BIGINT to DOUBLE were "widening" while values changed.
    assert all(results) == (expected == "type_widening"), (results, expected)


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
    # Run again, the approval is not written a second time.
    before = (example / "stackyard.yml").read_text()
    again = stackyard(
        "schema", "approve", "stg_dlt__customers.customer_name", "--change", "rename",
        "--reason", "said twice", cwd=example,
    )  # fmt: skip
    assert "already approved" in again.stdout and "nothing written" in again.stdout
    assert (example / "stackyard.yml").read_text() == before


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


def test_a_deleted_model_whose_table_is_still_built_fails_the_check(example: Path) -> None:
    """Deleting a reporting model said "no schema changes" and passed: its table stays in
    the warehouse, no longer rebuilt, and whoever reads it reads it stale."""
    for path in (example / "transform/models/reporting").glob("rpt_customer_lifetime.*"):
        path.unlink()

    done = stackyard("schema", "diff", "--check", "--json", cwd=example, check=False)

    assert done.returncode == 1, done.stdout + done.stderr
    changes = {(c["node"], c["column"]): c for c in json.loads(done.stdout)["changes"]}
    gone = changes[("rpt_customer_lifetime", "*")]
    assert (gone["change"], gone["breaking"]) == ("drop", True), gone


def test_against_another_target_compares_with_its_own_tables(example: Path) -> None:
    """Read at the current target's database, every model of the other one looked new
    ("additive"), and --check passed a rename it should have refused."""
    config = example / "stackyard.yml"
    config.write_text(
        config.read_text().replace(
            "targets:\n", "targets:\n  ci:\n    type: duckdb\n    path: .stackyard/ci.duckdb\n"
        )
    )
    stackyard("run", "--target", "ci", cwd=example)
    unchanged = stackyard("schema", "diff", "--against", "ci", "--json", cwd=example)
    assert json.loads(unchanged.stdout)["changes"] == []

    sql = example / STAGING
    sql.write_text(sql.read_text().replace("name as customer_name", "name as full_name"))
    done = stackyard(
        "schema", "diff", "--against", "ci", "--check", "--json", cwd=example, check=False
    )

    assert done.returncode == 1, done.stdout + done.stderr
    changes = {(c["node"], c["column"]): c["change"] for c in json.loads(done.stdout)["changes"]}
    assert changes[("stg_dlt__customers", "customer_name")] == "rename", changes


def test_an_unknown_ref_is_a_usage_error(example: Path) -> None:
    done = stackyard("schema", "diff", "--against", "no-such-ref", cwd=example, check=False)
    assert done.returncode == 2
    assert "no-such-ref" in done.stderr


@pytest.mark.parametrize(
    ("spec", "suggested"),
    [
        ("stg_dlt__customers.customer_nme", "customer_name"),
        ("stg_dlt__custmers.customer_name", "stg_dlt__customers"),
    ],
)
def test_approving_a_misspelt_name_is_refused_with_the_closest_one(
    example: Path, spec: str, suggested: str
) -> None:
    before = (example / "stackyard.yml").read_text()

    done = stackyard(
        "schema",
        "approve",
        spec,
        "--change",
        "rename",
        "--reason",
        "typo",
        cwd=example,
        check=False,
    )

    assert done.returncode == 2
    assert f"did you mean '{suggested}'" in done.stderr
    assert (example / "stackyard.yml").read_text() == before


def test_approving_a_column_only_the_warehouse_still_has_is_accepted(example: Path) -> None:
    sql = example / STAGING
    sql.write_text(sql.read_text().replace("name as customer_name", "name as full_name"))

    done = stackyard(
        "schema",
        "approve",
        "staging.stg_dlt__customers.CUSTOMER_NAME",
        "--change",
        "rename",
        "--reason",
        "told",
        "--json",
        cwd=example,
    )

    # Named as `schema diff` names it, so the approval matches the change.
    assert json.loads(done.stdout)["node"] == "stg_dlt__customers"
    assert json.loads(done.stdout)["column"] == "customer_name"
    diff = json.loads(stackyard("schema", "diff", "--json", cwd=example).stdout)
    rename = next(c for c in diff["changes"] if c["change"] == "rename")
    assert rename["approved"] is True
