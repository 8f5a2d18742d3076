"""The full monitor suite vs one hand-written batched aggregate query per table, on DuckDB.

N tables × R rows (default 100 × 1,000,000) are generated with SQL ``range()``, shaped like a
loaded source table: an id key, a customer, an amount with 2 % NULLs, a status, an
``ordered_at`` over 60 days, and stackyard's ``_loaded_at``/``_dlt_load_id``. Then, side by
side in one run (alternating, best of ``--repeat``):

1. **stackyard**: ``MonitorSuite.check(run)`` — list the tables, read every column with one
   ``information_schema`` query, one batched query per table, read the metric history, judge
   volume (the anomaly detector over 60 days), freshness, null rates, duplicates, schema
   drift, the column profiles of ``amount`` and ``customer_id`` (distinct count, mean,
   median per day) and the ``status`` dimension (rows per value per day), write metrics,
   findings and snapshots.
2. **hand-written**: per table, the one aggregate query a person would write for the same
   numbers (row count, non-NULLs per column, distinct keys, latest load, rows loaded today,
   rows per day, the two columns' daily profiles, rows per day per status), fetched and
   nothing else.

Goal (issue 5): stackyard ≤ 1.2× the hand-written time and ≤ 50 ms per table.

Usage: python bench/monitors.py [--tables 100] [--rows 1000000] [--repeat 3] [--quick]
Writes bench/results/monitors.md (not with --quick).
"""

from __future__ import annotations

import argparse
import platform
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import WORK, markdown_table, timer, write_figures, write_result
from stackyard.config.model import DuckDBTarget, ProjectConfig
from stackyard.config.secrets import Secrets
from stackyard.console import NullConsole
from stackyard.monitors.suite import MonitorSuite
from stackyard.results import RunResult, SourceLoad, TableLoad
from stackyard.warehouse.duckdb import DuckDBWarehouse

SCHEMA = "bench"
# Column profiles and a dimension on every table, in both approaches.
WATCHED = {"columns": ["amount", "customer_id"], "dimensions": ["status"]}


def generate(path: Path, tables: int, rows: int) -> None:
    import duckdb

    path.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    con.execute(f"CREATE SCHEMA {SCHEMA}")
    for i in range(tables):
        con.execute(
            f"""
            CREATE TABLE {SCHEMA}.t{i:03d} AS
            SELECT range AS id,
                   (range * 7919) % 50000 AS customer_id,
                   CASE WHEN range % 50 = 0 THEN NULL ELSE (range % 997) / 10.0 END AS amount,
                   ['placed', 'shipped', 'completed', 'returned'][range % 4 + 1] AS status,
                   TIMESTAMP '2026-01-01' + to_seconds(CAST(range * 5184000 // {rows} AS BIGINT))
                       AS ordered_at,
                   now() AS _loaded_at,
                   '1767225600.0' AS _dlt_load_id
            FROM range({rows})
            """
        )
    con.close()


def hand_written(path: Path, tables: int) -> None:
    import duckdb

    con = duckdb.connect(str(path))
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0).isoformat()
    for i in range(tables):
        t = f"{SCHEMA}.t{i:03d}"
        con.execute(
            f"""
            SELECT 0, NULL::DATE, count(*), count(id), count(customer_id), count(amount),
                   count(status), count(ordered_at), count(id), count(DISTINCT id),
                   max(_loaded_at), count(*) FILTER (WHERE _loaded_at >= '{today}'::TIMESTAMPTZ),
                   NULL, NULL, NULL, NULL, NULL, NULL
            FROM {t}
            UNION ALL
            SELECT 1, ordered_at::DATE, count(*), NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                   NULL, NULL, count(DISTINCT amount), avg(amount), median(amount),
                   count(DISTINCT customer_id), avg(customer_id), median(customer_id)
            FROM {t} WHERE ordered_at IS NOT NULL GROUP BY 2
            UNION ALL
            SELECT 2, ordered_at::DATE, count(*), NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                   NULL, NULL, NULL, NULL, NULL, NULL, NULL, status
            FROM {t} WHERE ordered_at IS NOT NULL GROUP BY 2, status
            """
        ).fetchall()
    con.close()


def stackyard_suite(path: Path, tables: int) -> tuple[int, str]:
    names = [f"t{i:03d}" for i in range(tables)]
    project = ProjectConfig.model_validate(
        {
            "name": "bench",
            "sources": {
                SCHEMA: {
                    "kind": "sql_database",
                    "connection": "sqlite:///unused.sqlite",
                    "tables": {n: {"primary_key": "id"} for n in names},
                }
            },
            "monitors": {"defaults": WATCHED},
        }
    )
    warehouse = DuckDBWarehouse(
        "dev", DuckDBTarget(type="duckdb", path=str(path)), path.parent, Secrets(path.parent, {})
    )
    now = datetime.now(UTC)
    run = RunResult(
        run_id="bench-" + now.strftime("%H%M%S%f"),
        project="bench",
        target="dev",
        started_at=now,
        finished_at=now,
        loads=(SourceLoad(SCHEMA, SCHEMA, "loaded", tuple(TableLoad(n, 1) for n in names)),),
    )
    suite = MonitorSuite(
        project=project,
        project_dir=path.parent,
        transform_dir=path.parent / "transform",
        warehouse=warehouse,
        console=NullConsole(),
    )
    report = suite.check(run)
    warehouse.close()
    return len(report.tables), report.summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=100)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="10 tables × 200,000 rows")
    args = parser.parse_args()
    if args.quick:
        args.tables, args.rows, args.repeat = 10, 200_000, 2

    work = WORK / "monitors"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    db = work / "monitors.duckdb"
    with timer() as gen:
        generate(db, args.tables, args.rows)
    print(f"generated {args.tables} tables × {args.rows:,} rows in {gen['seconds']:.1f} s")

    # A first pass creates the stackyard tables and the first snapshots; not timed.
    checked, summary = stackyard_suite(db, args.tables)
    print(f"warm-up: {summary}")
    times: dict[str, list[float]] = {"stackyard": [], "hand-written": []}
    for _ in range(args.repeat):
        with timer() as t:
            hand_written(db, args.tables)
        times["hand-written"].append(t["seconds"])
        with timer() as t:
            checked, summary = stackyard_suite(db, args.tables)
        times["stackyard"].append(t["seconds"])
    assert checked == args.tables, summary
    best = {k: min(v) for k, v in times.items()}
    ratio = best["stackyard"] / best["hand-written"]
    rows = [
        [
            name,
            f"{best[name]:.2f}",
            f"{best[name] / args.tables * 1000:.1f}",
            f"{best[name] / best['hand-written']:.2f}x",
        ]
        for name in ("hand-written", "stackyard")
    ]
    table = markdown_table(["approach", "seconds (best)", "ms per table", "vs hand-written"], rows)
    print(table)
    verdict = (
        f"stackyard/hand-written = {ratio:.2f}x (goal ≤ 1.2x), "
        f"{best['stackyard'] / args.tables * 1000:.1f} ms per table (goal ≤ 50 ms)"
    )
    print(verdict)
    if args.quick:
        return
    text = f"""# Monitors: full suite vs hand-written aggregates

{args.tables} tables × {args.rows:,} rows on DuckDB ({platform.machine()}, \
{platform.python_version()}), best of {args.repeat} alternating runs; generated in \
{gen["seconds"]:.0f} s. Reproduce: `.venv/bin/python bench/monitors.py`.

{table}

{verdict}.

Last stackyard pass: {summary}.

- **hand-written**: one aggregate query per table for the same numbers (row count, non-NULLs
  per column, distinct keys, latest load, rows loaded today, rows per day, distinct count,
  mean and median per day of two columns, rows per day per status), fetched.
- **stackyard**: `MonitorSuite.check(run)` — the same query built with sqlglot, plus one
  `information_schema` query for all tables, the metric history read, every check judged
  (the anomaly detector on 60 days of volume, freshness, null rates, duplicates, schema
  drift, column profiles, the status dimension) and metrics, findings and snapshots written
  with batched INSERTs.
"""
    path = write_result("monitors", text)
    print(f"wrote {path}")
    per_table = best["stackyard"] / args.tables * 1000
    write_figures(
        "monitors",
        [
            [
                f"monitor suite, {args.tables} tables × {args.rows:,} rows vs hand-written "
                "aggregates",
                "≤ 1.2x",
                f"{ratio:.2f}x",
                "met" if ratio <= 1.2 else "not met",
            ],
            [
                "monitor suite per table",
                "≤ 50 ms",
                f"{per_table:.0f} ms",
                "met" if per_table <= 50 else "not met",
            ],
        ],
    )


if __name__ == "__main__":
    main()
