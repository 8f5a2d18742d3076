"""The fixture project's lineage and schema diff on Postgres: the same answer key holds."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from stackyard import Context
from tests.lineage.test_fixture_project import FIXTURE, KEY

pytestmark = pytest.mark.postgres


@pytest.fixture()
def pg_quirky(tmp_path: Path, pg_database: dict[str, object]) -> Path:
    import psycopg

    root = tmp_path / "quirky"
    shutil.copytree(FIXTURE, root)
    (root / "stackyard.yml").write_text(
        "name: quirky\n"
        "targets:\n"
        "  dev:\n"
        "    type: postgres\n"
        f"    host: {pg_database['host']}\n"
        f"    port: {pg_database['port']}\n"
        f"    user: {pg_database['user']}\n"
        f"    database: {pg_database['database']}\n"
        "sources: {}\n"
    )
    conninfo = (
        f"host={pg_database['host']} port={pg_database['port']} "
        f"user={pg_database['user']} dbname={pg_database['database']}"
    )
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute((root / "warehouse.sql").read_text())  # type: ignore[call-overload]
    return root


def test_impact_matches_the_answer_key_on_postgres(pg_quirky: Path) -> None:
    service: Any = Context(pg_quirky).lineage()
    for column, expected in KEY["impact"].items():
        found = {(c.node, c.column) for c in service.impact(column).downstream}
        assert found == {tuple(e.split(".", 1)) for e in expected}, column
    assert service.graph().unresolved == {}


def test_schema_diff_describes_new_sql_on_postgres(pg_quirky: Path) -> None:
    context = Context(pg_quirky)
    context.dbt().build(select=["stg_orders"])
    sql = pg_quirky / "transform" / "models" / "staging" / "stg_orders.sql"
    sql.write_text(
        sql.read_text().replace("amount_cents / 100.0 as amount", "amount_cents as amount")
    )
    changes = {(c.node, c.column): c for c in Context(pg_quirky).schema_diff().changes}
    change = changes[("stg_orders", "amount")]
    assert change.change == "type_narrowing"  # numeric → bigint
