"""Backfill overhead on Postgres: stackyard's ledgered partitions against a raw per-day loop.

Setup: a throwaway Postgres database with ``src.events`` (``--days`` × ``--rows-per-day``
rows), a project whose ``sql_database`` source reads it into ``app.events`` (cursor
``updated_at``), a staging view and a daily microbatch model ``daily_events``.

1. model: ``stackyard backfill daily_events`` with 1 and 4 workers on the SQL path (the model
   compiled once by dbt, then per day one DELETE and one INSERT … SELECT in a transaction;
   ledger, pre-images, validation) and with ``--engine dbt`` (one in-process dbt run per run of
   consecutive days), against a raw loop in one psycopg connection: per day, BEGIN; DELETE the
   day; INSERT the day's aggregate; COMMIT — and against the hand-written bash loop of the
   backfill playbook: one ``dbt run --event-time-start/--event-time-end`` process per day
   (timed over ``--bash-days`` days and scaled: a cold dbt process costs seconds).
2. source table: ``stackyard backfill app.events`` (one dlt pipeline run per worker extracts its
   run of days, one transaction per day swaps it in) with 1 and with 4 workers, against a raw
   loop: per day, BEGIN; DELETE the day; INSERT … SELECT the day from ``src.events``; COMMIT.

Overhead per partition = (stackyard − raw) / partitions. Best of ``--runs``.
Usage: python bench/backfill.py [--days 30] [--rows-per-day 20000] [--runs 2]
       [--only all|model|source] [--bash-days 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import textwrap
import uuid
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import WORK, best_of, markdown_table, write_figures, write_result

DSN = os.environ.get("STACKYARD_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
FIRST = date(2024, 1, 1)


def setup(database: str, days: int, per_day: int) -> Path:
    import psycopg

    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    url = DSN.rsplit("/", 1)[0] + f"/{database}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA src")
        conn.execute(
            "CREATE TABLE src.events (id bigint PRIMARY KEY, kind text, amount bigint, "
            "updated_at timestamp)"
        )
        conn.execute(
            "INSERT INTO src.events SELECT g, (ARRAY['a','b','c'])[1 + g % 3], g % 1000, "
            f"timestamp '{FIRST}' + (g * 86400.0 / {per_day}) * interval '1 second' "
            f"FROM generate_series(0, {days * per_day - 1}) g"
        )
        conn.execute("CREATE INDEX ON src.events (updated_at)")
        conn.execute("ANALYZE src.events")
    root = WORK / "backfill" / database
    shutil.rmtree(root, ignore_errors=True)
    (root / "transform" / "models").mkdir(parents=True)
    (root / "stackyard.yml").write_text(
        textwrap.dedent(f"""
        name: bench
        targets:
          pg: {{type: postgres, host: 127.0.0.1, user: postgres, database: {database}}}
        sources:
          app:
            kind: sql_database
            connection: postgresql://postgres@127.0.0.1:5432/{database}
            source_schema: src
            tables:
              events: {{primary_key: id, cursor: updated_at}}
        defaults: {{target: pg}}
        """)
    )
    t = root / "transform"
    (t / "dbt_project.yml").write_text(
        "name: bench\nversion: '1.0.0'\nprofile: stackyard\nmodels:\n  bench:\n    +schema: marts\n"
    )
    macros = Path(__file__).parents[1] / "src/stackyard/examples/jaffle_shop/transform/macros"
    (t / "macros").mkdir()
    for name in ("generate_schema_name.sql", "microbatch_delete_insert.sql"):
        shutil.copy(macros / name, t / "macros" / name)
    (t / "models" / "sources.yml").write_text(
        "version: 2\nsources:\n  - name: dlt_app\n    schema: app\n    tables:\n"
        "      - name: events\n        config: {event_time: updated_at}\n"
    )
    (t / "models" / "daily_events.sql").write_text(
        "{{ config(materialized='incremental', incremental_strategy='microbatch', "
        # begin: yesterday, so the setup's first run builds two batches, not years of them.
        "event_time='event_day', batch_size='day', "
        "begin=(modules.datetime.date.today() - modules.datetime.timedelta(days=1)).isoformat()"
        ") }}\n"
        "select cast(date_trunc('day', updated_at) as timestamp) as event_day, kind, "
        "count(*) as events, sum(amount) as amount from {{ source('dlt_app', 'events') }} "
        "group by 1, 2\n"
    )
    return root


def raw_model_loop(url: str, days: int) -> None:
    import psycopg

    with psycopg.connect(url) as conn:
        for d in range(days):
            lo, hi = FIRST + timedelta(days=d), FIRST + timedelta(days=d + 1)
            with conn.transaction():
                conn.execute(
                    "DELETE FROM marts.daily_events WHERE event_day >= %s AND event_day < %s",
                    (lo, hi),
                )
                conn.execute(
                    "INSERT INTO marts.daily_events SELECT date_trunc('day', updated_at), kind, "
                    "count(*), sum(amount) FROM app.events WHERE updated_at >= %s "
                    "AND updated_at < %s GROUP BY 1, 2",
                    (lo, hi),
                )


def raw_source_loop(url: str, days: int) -> None:
    import psycopg

    with psycopg.connect(url) as conn:
        for d in range(days):
            lo, hi = FIRST + timedelta(days=d), FIRST + timedelta(days=d + 1)
            with conn.transaction():
                conn.execute(
                    "DELETE FROM app.events WHERE updated_at >= %s AND updated_at < %s", (lo, hi)
                )
                conn.execute(
                    "INSERT INTO app.events (id, kind, amount, updated_at, _loaded_at, _dlt_load_id) "
                    "SELECT id, kind, amount, updated_at, now(), 'raw' FROM src.events "
                    "WHERE updated_at >= %s AND updated_at < %s",
                    (lo, hi),
                )


def bash_dbt_loop(root: Path, days: int) -> None:
    """The playbook's way: a shell loop running one dbt process per day."""
    import subprocess

    dbt = Path(sys.executable).parent / "dbt"
    script = (
        f"for d in $(seq 0 {days - 1}); do\n"
        f'  lo=$(date -u -d "{FIRST} + $d day" +%F); hi=$(date -u -d "{FIRST} + $d day + 1 day" +%F)\n'
        f'  "{dbt}" run --quiet --select daily_events --target pg --profiles-dir . '
        '--event-time-start "$lo" --event-time-end "$hi"\n'
        "done\n"
    )
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1"}
    subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=root / "transform", env=env, check=True
    )


def stackyard_backfill(
    root: Path, target: str, days: int, workers: int, engine: str = "auto"
) -> None:
    from stackyard import Context
    from stackyard.runbooks.backfill.job import BackfillOptions

    ctx = Context(root)
    end = FIRST + timedelta(days=days)
    options = BackfillOptions(
        target=target, start=str(FIRST), end=str(end), workers=workers, force=True, engine=engine
    )
    result = ctx.backfill().run(options)
    ctx.close()
    assert result.ok, result.to_dict()["validation"]
    assert engine == "auto" or result.engine == engine, (result.engine, result.engine_note)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--rows-per-day", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument(
        "--only", choices=("all", "model", "source"), default="all", help="which half to run"
    )
    parser.add_argument(
        "--bash-days",
        type=int,
        default=3,
        help="days the bash loop of dbt processes runs (it costs seconds per day; its time "
        "per partition is compared)",
    )
    args = parser.parse_args()
    database = f"stackyard_bench_backfill_{uuid.uuid4().hex[:8]}"
    root = setup(database, args.days, args.rows_per_day)
    url = DSN.rsplit("/", 1)[0] + f"/{database}"
    n, runs = args.days, args.runs
    times: dict[str, float] = {}
    try:
        from stackyard import Context

        ctx = Context(root)
        assert ctx.run().ok
        ctx.close()
        if args.only in ("all", "model"):
            times["raw model loop"] = best_of(runs, lambda: raw_model_loop(url, n))
            for workers in (1, 4):
                times[f"stackyard model, SQL path, {workers} worker(s)"] = best_of(
                    runs, lambda w=workers: stackyard_backfill(root, "daily_events", n, w, "sql")
                )
            times["stackyard model, --engine dbt, 1 worker"] = best_of(
                runs, lambda: stackyard_backfill(root, "daily_events", n, 1, "dbt")
            )
            if args.bash_days:
                bash = best_of(1, lambda: bash_dbt_loop(root, args.bash_days))
                times["bash loop of dbt runs (model)"] = bash / args.bash_days * n
        if args.only in ("all", "source"):
            times["raw source loop"] = best_of(runs, lambda: raw_source_loop(url, n))
            for workers in (1, 4):
                times[f"stackyard source, {workers} worker(s)"] = best_of(
                    runs, lambda w=workers: stackyard_backfill(root, "app.events", n, w)
                )
    finally:
        import psycopg

        with psycopg.connect(DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    rows = []
    for name, seconds in times.items():
        base = times["raw model loop"] if "model" in name else times["raw source loop"]
        overhead = (seconds - base) / n * 1000
        rows.append(
            (
                name + (f" (timed over {args.bash_days} days, scaled)" if "bash" in name else ""),
                f"{seconds:.2f}",
                f"{seconds / base:.2f}x",
                f"{overhead:.0f}" if name[:3] != "raw" else "",
            )
        )
    report = (
        f"{n} daily partitions × {args.rows_per_day:,} rows on Postgres, best of {runs}\n\n"
        + markdown_table(["variant", "seconds", "vs raw loop", "overhead ms/partition"], rows)
        + "\n"
    )
    one, four = "stackyard model, SQL path, 1 worker(s)", "stackyard model, SQL path, 4 worker(s)"
    if one in times:
        report += f"\n4 workers vs 1 (model, SQL path): {times[one] / times[four]:.2f}x\n"
        dbt = times["stackyard model, --engine dbt, 1 worker"]
        report += f"SQL path vs --engine dbt (model, 1 worker): {dbt / times[one]:.1f}x faster\n"
        if "bash loop of dbt runs (model)" in times:
            bash = times["bash loop of dbt runs (model)"]
            report += f"SQL path vs the bash loop of dbt runs: {bash / times[one]:.0f}x faster\n"
    one, four = "stackyard source, 1 worker(s)", "stackyard source, 4 worker(s)"
    if one in times:
        report += f"4 workers vs 1 (source table): {times[one] / times[four]:.2f}x\n"
    print(report)
    write_result("backfill", report)
    figures = []
    for what, one, four, raw in (
        (
            "a model",
            "stackyard model, SQL path, 1 worker(s)",
            "stackyard model, SQL path, 4 worker(s)",
            "raw model loop",
        ),
        (
            "a source table",
            "stackyard source, 1 worker(s)",
            "stackyard source, 4 worker(s)",
            "raw source loop",
        ),
    ):
        if one not in times:
            continue
        ratio, overhead = times[one] / times[raw], (times[one] - times[raw]) / n * 1000
        faster = times[one] / times[four]
        figures += [
            [
                f"backfill of {what} on Postgres, per-partition overhead ({n} days)",
                "≤ 50 ms, ≤ 1.2x a raw per-day SQL loop",
                f"{overhead:.0f} ms, {ratio:.2f}x",
                "met" if overhead <= 50 and ratio <= 1.2 else "not met",
            ],
            [
                f"backfill of {what}, 4 workers vs 1",
                "≥ 1.8x faster",
                f"{faster:.2f}x",
                "met" if faster >= 1.8 else "not met",
            ],
        ]
    write_figures("backfill", figures)


if __name__ == "__main__":
    main()
