"""The example project's two backfill targets — the microbatch model fct_daily_orders and the
source table shop_db.orders — on DuckDB and on Postgres."""

from __future__ import annotations

import json
import sqlite3
from datetime import date, timedelta
from pathlib import Path

import pytest

from tests.conftest import example_on_postgres
from tests.runbooks.backfill.conftest import backfill_json, sql, stackyard


def _example(tmp_path: Path, db: dict[str, object] | None) -> Path:
    stackyard(tmp_path, "init", "shop", "--example", "jaffle_shop", check=0)
    root = tmp_path / "shop"
    if db is not None:
        example_on_postgres(root, db, default=True)
    stackyard(root, "run", "--json", check=0)
    return root


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_example_model_and_source_table_backfill(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    db = request.getfixturevalue("pg_database") if engine == "postgres" else None
    root = _example(tmp_path, db)
    end = date.today() - timedelta(days=20)
    start = end - timedelta(days=10)
    args = ["--start", start.isoformat(), "--end", end.isoformat(), "--workers", "2"]

    app = sqlite3.connect(root / "sources" / "jaffle_app.sqlite")
    gone = start + timedelta(days=3)
    app.execute("DELETE FROM orders WHERE updated_at LIKE ?", (f"{gone.isoformat()}%",))
    app.commit()
    app.close()
    # The source table, then (--cascade) the models downstream of it, for the same days.
    proc = stackyard(root, "backfill", "shop_db.orders", *args, "--cascade", "--json", check=0)
    orders = json.loads(proc.stdout)
    # dlt's own log lines (schema-merge warnings) stay off the user's terminal, as in a run.
    assert "[WARNING]" not in proc.stderr and "|dlt|" not in proc.stderr, proc.stderr[-2000:]
    assert orders["ok"] and len(orders["partitions"]) == 10
    assert [c["target"] for c in orders["cascaded"]] == ["fct_daily_orders"]
    assert orders["cascaded"][0]["ok"]
    # The table models downstream are rebuilt once at the end, and each is reported.
    rebuilt = {m["model"]: m["status"] for m in orders["rebuilt"]}
    assert rebuilt["orders"] == rebuilt["customers"] == "success", orders["rebuilt"]
    # The views over them are created again: on Postgres, dbt drops a table it rebuilds with
    # CASCADE, and the reporting views were gone (the next run skipped its build).
    assert rebuilt["rpt_daily_revenue"] == rebuilt["rpt_customer_lifetime"] == "success"
    for view in ("rpt_daily_revenue", "rpt_customer_lifetime"):
        assert sql(root, f"select count(*) as n from reporting.{view}")[0]["n"] > 0
    left = sql(
        root,
        f"select count(*) as n from shop_db.orders where updated_at >= '{gone}' "
        f"and updated_at < '{gone + timedelta(days=1)}'",
    )
    assert left[0]["n"] == 0

    assert orders["cascaded"][0]["engine"] == "sql"

    # The microbatch model on its own: its days are replaced again, idempotently — by plain
    # SQL compiled once, then by dbt itself; both leave the same table, row for row.
    window = f"order_date >= '{start}' and order_date < '{end}'"
    table = "select * from marts.fct_daily_orders order by store_day_id"

    def spoil() -> None:
        sql(root, f"update marts.fct_daily_orders set revenue = -1 where {window}")
        sql(root, f"delete from marts.fct_daily_orders where order_date = '{start}'")

    spoil()
    daily = backfill_json(root, "fct_daily_orders", *args)
    assert daily["ok"] and daily["validation"]["rows_actual"] > 0
    assert daily["engine"] == "sql" and {p["engine"] for p in daily["partitions"]} == {"sql"}
    by_sql = sql(root, table)
    spoil()
    forced = backfill_json(root, "fct_daily_orders", *args, "--engine", "dbt", "--force")
    assert forced["ok"] and {p["engine"] for p in forced["partitions"]} == {"dbt"}
    by_dbt = sql(root, table)
    assert by_sql == by_dbt
    assert not [r for r in by_dbt if r["revenue"] == -1]
    assert [p["rows_written"] for p in daily["partitions"]] == [
        p["rows_written"] for p in forced["partitions"]
    ]
    days = sql(
        root,
        "select count(distinct order_date) as n from marts.fct_daily_orders "
        f"where order_date >= '{start}' and order_date < '{end}'",
    )
    assert days[0]["n"] == 10
    assert backfill_json(root, "status", daily["backfill_id"])["progress"]["success"] == 10

    # A table model that fails to rebuild fails the backfill (exit 1), named with dbt's error;
    # it used to be ignored and the backfill reported ok.
    model = root / "transform" / "models" / "marts" / "customers.sql"
    model.write_text(model.read_text().replace("select", "select no_such_column,", 1))
    broken = backfill_json(root, "shop_db.orders", *args, "--cascade", "--force", check=1)
    failed = {m["model"]: m for m in broken["rebuilt"]}["customers"]
    assert not broken["ok"] and failed["status"] == "error" and failed["message"], broken["rebuilt"]


@pytest.mark.slow
def test_a_source_row_stamped_at_midnight_counts_in_its_own_day(tmp_path: Path) -> None:
    # On SQLite's text timestamps the source count compared '… 00:00:00' with the bound
    # '… 00:00:00.000000' and put a midnight row in the day before: a correct backfill
    # failed validation ("mismatched 2"), exit 1.
    root = _example(tmp_path, None)
    day = date.today() - timedelta(days=12)
    app = sqlite3.connect(root / "sources" / "jaffle_app.sqlite")
    app.execute(
        "UPDATE orders SET updated_at = ? WHERE id IN (SELECT id FROM orders LIMIT 6)",
        (f"{day.isoformat()} 00:00:00",),
    )
    app.commit()
    app.close()
    stackyard(root, "run", "--json", check=0)
    start, end = day - timedelta(days=1), day + timedelta(days=1)
    result = backfill_json(root, "shop_db.orders", "--start", str(start), "--end", str(end))
    assert result["ok"], result
    assert result["validation"]["count_mismatches"] == [], result["validation"]
