"""The ``python`` kind runs a team's existing ``@dlt.source`` as plain dlt would: its
source-level settings kept, its arguments given as lists, mappings or secrets."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from stackyard import Context
from stackyard.project import init_project

SOURCE = """
import dlt


@dlt.source(max_table_nesting=0)
def shop(regions, limits, token=dlt.secrets.value):
    @dlt.resource(primary_key="id")
    def orders():
        for i, region in enumerate(regions):
            yield {"id": i, "region": region, "lines": [{"sku": "a", "qty": i}],
                   "limit": limits[region], "token_length": len(token)}

    return orders
"""


@pytest.mark.slow
def test_source_settings_and_options_with_secrets_reach_the_users_function(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "p"
    init_project(project)
    (project / "sources" / "shop.py").write_text(SOURCE)
    yml = project / "stackyard.yml"
    yml.write_text(
        yml.read_text().replace(
            "sources: {}",
            textwrap.dedent(
                """\
                sources:
                  shop:
                    kind: python
                    path: sources/shop.py
                    function: shop
                    options:
                      regions: [north, south]
                      limits: {north: 10, south: 20}
                      token: {secret: SHOP_TOKEN}
                """
            ),
        )
    )
    monkeypatch.setenv("SHOP_TOKEN", "s3cret-value")
    with Context(project) as ctx:
        result = ctx.run(select=["shop"])
        assert result.exit_code == 0, result.to_dict()
        rows = ctx.sql('select id, region, "limit", token_length from shop.orders order by id')
        tables = ctx.sql(
            "select table_name from information_schema.tables where table_schema = 'shop'"
        ).rows
    assert [tuple(r) for r in rows.rows] == [(0, "north", 10, 12), (1, "south", 20, 12)]
    # max_table_nesting=0 on the source: the list stays a JSON column, no child table.
    assert not [t for (t,) in tables if t.startswith("orders__")]
