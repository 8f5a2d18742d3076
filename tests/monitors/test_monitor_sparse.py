"""Sparse tables through the real monitor suite on DuckDB: a table that is often empty must
not alert on its usual empty days, and one that is never empty must alert on an outage.

The fixture tables are written straight into DuckDB with a ``created_at`` column, so the
suite counts rows per day from the table itself (no seeded metric history).
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from stackyard.config.model import ProjectConfig
from stackyard.console import CaptureConsole
from stackyard.monitors.health import MonitorReport
from stackyard.monitors.suite import MonitorSuite
from stackyard.warehouse.base import Warehouse
from tests.monitors.conftest import duckdb_warehouse

NOW = datetime(2026, 3, 10, 7, 0, tzinfo=UTC)
TODAY = NOW.date()


def _check(
    tmp_path: Path, warehouse: Warehouse, defaults: dict[str, object] | None = None
) -> MonitorReport:
    config = ProjectConfig.model_validate(
        {
            "name": "p",
            "sources": {
                "app": {
                    "kind": "sql_database",
                    "connection": "sqlite:///x.sqlite",
                    "tables": {"signups": {}, "refunds": {}},
                }
            },
            "monitors": {"defaults": defaults or {}},
        }
    )
    suite = MonitorSuite(
        project=config,
        project_dir=tmp_path,
        transform_dir=tmp_path / "transform",
        warehouse=warehouse,
        console=CaptureConsole(),
        clock=lambda: NOW,
        sleep=lambda _: None,
    )
    return suite.check(None)


def _write(warehouse: Warehouse, table: str, per_day: dict[date, int]) -> None:
    rows = [(d, n) for d, n in per_day.items() if n > 0]
    values = ", ".join(f"(DATE '{d}', {n})" for d, n in rows)
    warehouse.execute(
        f"CREATE TABLE app.{table} AS SELECT d::TIMESTAMP + INTERVAL 9 HOUR AS created_at, "
        f"i AS amount FROM (VALUES {values}) AS v(d, n), range(n) AS r(i)"
    )


def _sparse_days(seed: int, *, empty_share: float) -> dict[date, int]:
    """70 days: about ``empty_share`` of them empty, the others 1-9 rows; today 2 so far."""
    rng = random.Random(seed)
    days = {
        TODAY - timedelta(days=back): (0 if rng.random() < empty_share else rng.randint(1, 9))
        for back in range(70, 0, -1)
    }
    return days | {TODAY: 2}


def test_usual_empty_days_do_not_alert_but_an_outage_on_a_never_empty_table_does(
    tmp_path: Path,
) -> None:
    warehouse = duckdb_warehouse(tmp_path)
    warehouse.execute("CREATE SCHEMA app")
    # refunds: about a third of the days have no rows, and the last complete days include
    # empty ones, as its normal life.
    refunds = _sparse_days(3, empty_share=0.35)
    for back in (1, 3, 4):
        refunds[TODAY - timedelta(days=back)] = 0
    _write(warehouse, "refunds", refunds)
    # signups: a few rows every day and never none, until yesterday's outage.
    signups = {d: n + 3 for d, n in _sparse_days(4, empty_share=0.0).items()}
    signups[TODAY - timedelta(days=1)] = 0
    _write(warehouse, "signups", signups)
    warehouse.close()

    report = _check(tmp_path, warehouse)
    tables = {t.table: t for t in report.tables}

    quiet = tables["app.refunds"]
    assert quiet.status == "ok", quiet.why
    volume = quiet.volume
    assert volume is not None and volume.status == "ok"
    assert not [c for c in quiet.checks if c.check == "volume" and c.status == "anomaly"]
    assert "empty days are usual here" in " ".join(c.reason for c in quiet.checks)
    # bands of a count are whole rows
    assert volume.lower == int(volume.lower) and volume.upper == int(volume.upper)

    broken = tables["app.signups"]
    assert broken.status == "anomaly"
    outage = next(c for c in broken.checks if c.check == "volume" and c.status == "anomaly")
    assert outage.day == TODAY - timedelta(days=1) and outage.value == 0
    assert "never been empty before, an outage" in outage.reason
    assert report.status == "anomaly"


def _weekday_sparse_days(seed: int, empty_by_weekday: dict[int, float]) -> dict[date, int]:
    """70 days whose empty days cluster on some weekdays; today 2 rows so far."""
    rng = random.Random(seed)
    days = {}
    for back in range(70, 0, -1):
        d = TODAY - timedelta(days=back)
        empty = rng.random() < empty_by_weekday.get(d.weekday(), 0.0)
        days[d] = 0 if empty else rng.randint(4, 14)
    return days | {TODAY: 2}


def test_a_zero_is_judged_by_how_usual_it_is_for_its_weekday_and_a_long_empty_run_alerts(
    tmp_path: Path,
) -> None:
    # About a third of the days are empty, all of them on Tuesdays, Thursdays and weekends;
    # Mondays, Wednesdays and Fridays always have rows. Yesterday (TODAY is a Tuesday) is a
    # Monday.
    clustered = {1: 0.6, 3: 0.6, 5: 0.5, 6: 0.5}
    assert (TODAY - timedelta(days=1)).weekday() == 0
    warehouse = duckdb_warehouse(tmp_path)
    warehouse.execute("CREATE SCHEMA app")
    # refunds: an empty Monday, a weekday that is never empty for it.
    refunds = _weekday_sparse_days(5, clustered)
    refunds[TODAY - timedelta(days=1)] = 0
    _write(warehouse, "refunds", refunds)
    # signups: Mondays are its usual empty days, and yesterday was one of them.
    signups = _weekday_sparse_days(6, {0: 0.7, 2: 0.4, 5: 0.5, 6: 0.5})
    signups[TODAY - timedelta(days=1)] = 0
    _write(warehouse, "signups", signups)
    warehouse.close()

    report = _check(tmp_path, warehouse)
    tables = {t.table: t for t in report.tables}
    unusual = tables["app.refunds"]
    assert unusual.status == "anomaly"
    zero = next(c for c in unusual.checks if c.check == "volume" and c.status == "anomaly")
    assert zero.day == TODAY - timedelta(days=1) and zero.value == 0
    assert "Mondays are never empty here" in zero.reason
    usual = tables["app.signups"]
    assert usual.status == "ok", usual.why
    assert "empty days are usual here" in " ".join(c.reason for c in usual.checks)


def test_a_run_of_empty_days_on_an_often_empty_table_is_an_outage(tmp_path: Path) -> None:
    warehouse = duckdb_warehouse(tmp_path)
    warehouse.execute("CREATE SCHEMA app")
    # refunds: a third of its days are empty, on any weekday; then nothing for eight days.
    refunds = _sparse_days(7, empty_share=0.33)
    for back in range(1, 9):
        refunds[TODAY - timedelta(days=back)] = 0
    _write(warehouse, "refunds", refunds)
    # signups: the same kind of table with a usual two-day gap.
    signups = _sparse_days(8, empty_share=0.33)
    signups[TODAY - timedelta(days=3)] = 5
    for back in (1, 2):
        signups[TODAY - timedelta(days=back)] = 0
    _write(warehouse, "signups", signups)
    warehouse.close()

    report = _check(tmp_path, warehouse)
    tables = {t.table: t for t in report.tables}
    broken = tables["app.refunds"]
    assert broken.status == "anomaly"
    outage = next(c for c in broken.checks if c.check == "volume" and c.status == "anomaly")
    assert "no rows for" in outage.reason and "an outage" in outage.reason
    # The days after the one alerted on are the same outage, not alerted again: the alert
    # says how long it lasted, not only when it became unusual.
    last = first = TODAY - timedelta(days=1)
    while refunds.get(first - timedelta(days=1)) == 0:
        first -= timedelta(days=1)
    assert outage.day is not None and outage.day < last
    run = (last - first).days + 1
    assert f"still no rows through {last} ({run} days from {first})" in outage.reason, outage
    assert tables["app.signups"].status == "ok", tables["app.signups"].why


def test_changed_settings_judge_the_unchanged_days_again(tmp_path: Path) -> None:
    warehouse = duckdb_warehouse(tmp_path)
    warehouse.execute("CREATE SCHEMA app")
    refunds = _sparse_days(7, empty_share=0.33)
    for back in range(1, 11):
        refunds[TODAY - timedelta(days=back)] = 0
    _write(warehouse, "refunds", refunds)
    _write(warehouse, "signups", _sparse_days(8, empty_share=0.0))
    warehouse.close()
    # Alerting on spikes only, the empty run is judged and not alerted on.
    first = {t.table: t for t in _check(tmp_path, warehouse, {"direction": "spike"}).tables}
    assert first["app.refunds"].status == "ok", first["app.refunds"].why
    # Drops asked for too: the run's first unusual days are judged again with the new
    # settings. Before, only yesterday was (its count unchanged, the others kept their "ok"),
    # and it read "unusual since … and alerted on then", which nobody was: ok, exit 0.
    report = _check(tmp_path, warehouse, {"direction": "both"})
    broken = {t.table: t for t in report.tables}["app.refunds"]
    assert broken.status == "anomaly", broken.why
    outage = next(c for c in broken.checks if c.check == "volume" and c.status == "anomaly")
    assert "an outage" in outage.reason and outage.day is not None
    assert outage.day < TODAY - timedelta(days=1)


def test_an_outage_longer_than_the_rechecked_days_that_no_pass_saw_begin_alerts(
    tmp_path: Path,
) -> None:
    warehouse = duckdb_warehouse(tmp_path)
    warehouse.execute("CREATE SCHEMA app")
    # Rows of the last weeks deleted at once (or monitors not run while a feed was down):
    # no pass judged the outage's first days. Past ten days it read "unusual since … and
    # alerted on then", which nobody was: ok, exit 0.
    signups = {d: n + 3 for d, n in _sparse_days(4, empty_share=0.0).items()}
    refunds = _sparse_days(7, empty_share=0.33)
    for back in range(1, 26):
        signups[TODAY - timedelta(days=back)] = 0
        refunds[TODAY - timedelta(days=back)] = 0
    _write(warehouse, "signups", signups)
    _write(warehouse, "refunds", refunds)
    warehouse.close()

    report = _check(tmp_path, warehouse)
    tables = {t.table: t for t in report.tables}
    for name in ("app.signups", "app.refunds"):
        assert tables[name].status == "anomaly", tables[name].why
        (outage,) = [
            c for c in tables[name].checks if c.check == "volume" and c.status == "anomaly"
        ]
        assert "an outage" in outage.reason and "alerted on then" not in outage.reason
        # One alert, on the day the outage became unusual, saying how long it has lasted.
        assert outage.day is not None and outage.day < TODAY - timedelta(days=7)
        assert f"still no rows through {TODAY - timedelta(days=1)} (" in outage.reason
    # The next pass knows: that alert makes the rest of the run the same news.
    again = {t.table: t for t in _check(tmp_path, warehouse).tables}
    for name in ("app.signups", "app.refunds"):
        assert again[name].status == "ok", again[name].why
        assert "alerted on then" in again[name].why
