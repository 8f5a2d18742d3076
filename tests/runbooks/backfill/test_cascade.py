"""``backfill SOURCE.TABLE --cascade``: a microbatch model downstream is rebuilt for the days its
rows belong to, not only the days the source table's cursor says they changed."""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta
from pathlib import Path

import pytest

from tests.runbooks.backfill.conftest import backfill_json, sql
from tests.runbooks.backfill.test_backfill_example import _example


@pytest.mark.slow
def test_an_order_changed_days_after_it_was_placed_rebuilds_the_day_it_was_placed(
    tmp_path: Path,
) -> None:
    root = _example(tmp_path, None)
    app = sqlite3.connect(root / "sources" / "jaffle_app.sqlite")
    # An order placed at least two days before its last change, changed before today, placed
    # on a day the microbatch model holds, and not returned yet.
    found = app.execute(
        "SELECT id, store_id, date(ordered_at), date(updated_at) FROM orders "
        "WHERE status <> 'returned' AND date(updated_at) < date('now') "
        "AND julianday(date(updated_at)) - julianday(date(ordered_at)) >= 2 "
        "AND date(ordered_at) >= date('now', '-6 days') ORDER BY updated_at DESC LIMIT 1"
    ).fetchone()
    assert found, "the example has no order changed days after it was placed"
    order, store, placed, changed = found
    app.execute("UPDATE orders SET status = 'returned' WHERE id = ?", (order,))
    app.commit()
    app.close()
    day = date.fromisoformat(changed)

    def returned_in_model() -> int:
        rows = sql(
            root,
            "select count_returned_orders as n from marts.fct_daily_orders "
            f"where store_day_id = '{store}-{placed}'",
        )
        return int(rows[0]["n"])

    before = returned_in_model()
    done = backfill_json(
        root,
        "shop_db.orders",
        "--start",
        day.isoformat(),
        "--end",
        (day + timedelta(days=1)).isoformat(),
        "--cascade",
    )
    assert done["ok"], done
    (daily,) = done["cascaded"]
    # The model's range reaches back to the earliest day an order changed that day was placed
    # on (read on stg_dlt__orders' event time), at least to this order's.
    assert daily["ok"] and "ordered_at" in daily["widened"], daily
    assert daily["partitions"][0]["start"][:10] <= placed < day.isoformat()
    # The order is returned in the source, in the source table, and now in the day it was
    # placed on; the model agrees with a count over the orders model.
    assert returned_in_model() == before + 1
    expected = sql(
        root,
        "select count(*) as n from marts.orders where status = 'returned' "
        f"and store_id = {store} and cast(ordered_at as date) = '{placed}'",
    )
    assert returned_in_model() == expected[0]["n"]
