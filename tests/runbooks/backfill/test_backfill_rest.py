"""A rest_api endpoint with a cursor backfills like a table: the window's start goes to the API
as the cursor parameter, dlt drops items at or past the end, the window is swapped in."""

from __future__ import annotations

from pathlib import Path

from stackyard.runbooks.backfill.job import BackfillOptions
from tests.ingest.api_server import ApiState, make_customers, serve
from tests.ingest.test_rest_api import project_for


def test_rest_endpoint_backfill_replaces_its_days(tmp_path: Path) -> None:
    customers = make_customers(30)
    for i, c in enumerate(customers):
        c["updated_at"] = f"2026-01-{1 + i // 10:02d}T{1 + i % 10:02d}:30:00Z"  # 10 a day
    state = ApiState(customers=customers)
    with serve(state) as url:
        ctx = project_for(tmp_path, url)
        assert ctx.run().ok
        # Upstream renamed a day-2 customer without moving its cursor, and lost one of day 3.
        state.customers[12]["name"] = "renamed"
        del state.customers[25]
        options = BackfillOptions(
            target="crm.customers", start="2026-01-02", end="2026-01-04", workers=2
        )
        result = ctx.backfill().run(options)
        assert result.ok, result.to_dict()
        assert [p.rows_written for p in result.record.partitions] == [10, 9]
        assert any("since=2026-01-02T00" in r for r in state.requests)
        rows = ctx.sql("select count(*), count(distinct id) from crm.customers").rows
        assert rows == ((29, 29),)
        assert ctx.sql("select name from crm.customers where id = 13").rows == (("renamed",),)
        ctx.close()
