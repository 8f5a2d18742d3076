"""`stackyard evolve rename` on Postgres, where rebuilding a table drops the views over it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import example_on_postgres
from tests.lineage.conftest import stackyard
from tests.runbooks.test_evolve import RENAME


@pytest.mark.slow
@pytest.mark.postgres
def test_a_rename_goes_through_three_phases_on_postgres(
    tmp_path: Path, pg_database: dict[str, object]
) -> None:
    # migrate rebuilt marts.customers alone; Postgres dropped reporting.rpt_customer_lifetime
    # over it, whose tests then failed the phase, and the rename could never be finished.
    stackyard("init", "shop", "--example", "jaffle_shop", cwd=tmp_path)
    root = tmp_path / "shop"
    example_on_postgres(root, pg_database)
    stackyard("run", "-t", "prod", cwd=root)
    # A capital in the new name: quoted by expand, folded by Postgres in the readers' SQL
    # (before: expand applied "Full_Name", then migrate failed on "column full_name").
    capital = ["evolve", "rename", "stg_dlt__customers.customer_name", "Full_Name", "-t", "prod"]
    refused = stackyard(*capital, "--phase", "expand", cwd=root, check=False)
    assert refused.returncode == 2 and "full_name" in refused.stderr, refused.stderr
    for phase in ("expand", "migrate", "contract"):
        stackyard(*RENAME, "--phase", phase, "-t", "prod", cwd=root)
    rows = stackyard(
        "sql",
        "select count(*) as n from reporting.rpt_customer_lifetime",
        "-t",
        "prod",
        "--json",
        cwd=root,
    )
    assert json.loads(rows.stdout)["rows"][0]["n"] > 0
    # retype has no TRY_CAST here: refused, nothing changed (it was a raw syntax error)
    retype = ["evolve", "retype", "stg_dlt__orders.store_id", "BIGINT", "-t", "prod"]
    for dry in ((), ("--dry-run",)):
        refused = stackyard(*retype, *dry, cwd=root, check=False)
        assert refused.returncode == 2 and "TRY_CAST" in refused.stderr, refused.stderr
        assert "syntax error" not in refused.stderr
