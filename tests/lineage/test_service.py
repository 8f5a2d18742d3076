"""Lineage per target: a run on a second target leaves the first target's lineage whole."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.lineage.conftest import stackyard


def _second_duckdb_target(project: Path) -> None:
    """Make the example's prod target a second DuckDB file (its relations name ``prod``)."""
    config = project / "stackyard.yml"
    text = config.read_text()
    prod = re.search(r"^  prod:.*?\n(?=\S)", text, flags=re.S | re.M)
    assert prod is not None
    new = "  prod:\n    type: duckdb\n    path: .stackyard/prod.duckdb\n\n"
    config.write_text(text[: prod.start()] + new + text[prod.end() :])


def test_a_run_on_another_target_leaves_the_default_targets_lineage(example: Path) -> None:
    _second_duckdb_target(example)
    stackyard("run", "-t", "prod", cwd=example)  # dbt's shared manifest is prod's now

    for args in (["lineage", "--downstream"], ["impact"]):
        done = stackyard(*args, "dlt_shop_db.customers.name", "--json", cwd=example)
        found = json.loads(done.stdout)
        refs = found.get("downstream") or []
        assert {"node": "stg_dlt__customers", "column": "customer_name"} in [
            {"node": r["node"], "column": r["column"]} for r in refs
        ], f"{args[0]} on dev lost the source's lineage: {done.stdout[:400]}"

    prod = json.loads(
        stackyard(
            "impact", "dlt_shop_db.customers.name", "-t", "prod", "--json", cwd=example
        ).stdout
    )
    assert prod["models"], "prod's own lineage is there too"


def test_a_half_written_manifest_is_compiled_again_not_a_crash(example: Path) -> None:
    # A dbt killed while writing left manifest.json cut short: lineage, impact, evolve
    # rollbacks and every run then ended in "unexpected error: JSONDecodeError".
    for manifest in (example / "transform" / "target").rglob("manifest.json"):
        manifest.write_bytes(manifest.read_bytes()[:100_000])
    done = stackyard("impact", "dlt_shop_db.customers.name", "--json", cwd=example)
    assert json.loads(done.stdout)["models"]
    stackyard("run", cwd=example)
    for manifest in (example / "transform" / "target").rglob("manifest.json"):
        json.loads(manifest.read_text())  # whole again


def test_lineage_before_the_first_run_says_to_run_first(tmp_path: Path) -> None:
    stackyard("init", "shop", "--example", "jaffle_shop", cwd=tmp_path)
    root = tmp_path / "shop"
    for args in (
        ["lineage", "stg_dlt__orders.order_total"],
        ["impact", "stg_dlt__orders.order_total"],
        ["schema", "diff", "--check"],
    ):
        done = stackyard(*args, cwd=root, check=False)
        # Before: exit 1, "dbt compile could not run: IO Error: Cannot open file …".
        assert done.returncode == 2, done.stdout + done.stderr
        assert "`stackyard run` first" in done.stderr
    assert not (root / ".stackyard" / "dev.duckdb").exists()


def test_a_star_over_a_join_traces_the_second_column_of_a_name(example: Path) -> None:
    model = example / "transform" / "models" / "marts" / "starjoin.sql"
    model.write_text(
        "select * from {{ ref('stg_dlt__stores') }} s join {{ ref('stores') }} t using (store_id)\n"
    )
    stackyard("run", "--select", "starjoin", cwd=example)
    built = stackyard(
        "sql",
        "select column_name from information_schema.columns where table_name = 'starjoin'",
        "--json",
        cwd=example,
    )
    assert "tax_rate_1" in [r["column_name"] for r in json.loads(built.stdout)["rows"]]
    # Before: traced as one tax_rate (from the first table): the warehouse's tax_rate_1 was
    # "no column", and impact said nothing downstream read stores.tax_rate.
    up = json.loads(
        stackyard("lineage", "starjoin.tax_rate_1", "--upstream", "--json", cwd=example).stdout
    )
    assert {"node": "stores", "column": "tax_rate"} in up["upstream"]
    down = json.loads(
        stackyard("lineage", "stores.tax_rate", "--downstream", "--json", cwd=example).stdout
    )
    assert {"node": "starjoin", "column": "tax_rate_1"} in down["downstream"]
