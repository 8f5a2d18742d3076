"""Loading a source again from scratch on Postgres, whose DROP TABLE refuses while a view
reads the table: the dbt views over the source are dropped first and built again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.conftest import example_on_postgres
from tests.runbooks.backfill.conftest import sql, stackyard


@pytest.mark.slow
@pytest.mark.postgres
def test_reload_and_full_refresh_work_under_dbt_views(
    tmp_path: Path, pg_database: dict[str, object]
) -> None:
    # "cannot drop table orders because other objects depend on it": reload and run
    # --full-refresh failed on the example project, and every later run retried the drop.
    stackyard(tmp_path, "init", "shop", "--example", "jaffle_shop", check=0)
    root = tmp_path / "shop"
    example_on_postgres(root, pg_database, default=True)
    stackyard(root, "run", "--json", check=0)
    before = sql(root, "select count(*) as n from marts.orders")

    for command in (
        ["reload", "shop_db.orders", "--yes", "--json"],
        ["reload", "shop_db", "--yes", "--json"],
        ["run", "--full-refresh", "--select", "shop_db", "--json"],
        ["run", "--json"],
    ):
        done = stackyard(root, *command)
        assert done.returncode == 0, (command, done.stdout[-3000:], done.stderr[-3000:])
        assert json.loads(done.stdout)["status"] == "success", command
    # The views over the source are there again, and read what they read before.
    assert sql(root, "select count(*) as n from marts.orders") == before
