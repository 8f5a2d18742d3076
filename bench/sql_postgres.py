"""sql_database from the local Postgres into DuckDB: N narrow rows three ways, side by side.

1. stackyard: a `sql_database` source (default settings: ConnectorX streaming Arrow batches,
   dlt Parquet load packages), loaded by stackyard's Loader.
2. raw baseline: a hand-written script — psycopg `COPY … TO STDOUT` (CSV) → pyarrow → DuckDB.
3. dlt's default sql_database settings (SQLAlchemy backend, Python rows, INSERT VALUES), on a
   slice of the rows (it is slow), its time scaled to N.

Each variant runs in its own process so its peak memory (max RSS) is its own.
Usage: python bench/sql_postgres.py [--rows 2000000] [--dlt-rows 200000]
Needs the Postgres server at 127.0.0.1:5432 (or STACKYARD_TEST_PG_DSN).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import (
    WORK,
    markdown_table,
    peak_rss_mb,
    timer,
    write_figures,
    write_result,
)
from _profile import profiled

DSN = os.environ.get("STACKYARD_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


def setup(database: str, rows: int) -> None:
    import psycopg

    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    with psycopg.connect(DSN.rsplit("/", 1)[0] + f"/{database}", autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int, amount numeric(10,2), "
            "status text, updated_at timestamptz)"
        )
        conn.execute(
            "INSERT INTO orders SELECT g, g % 50000, (g % 1000) / 10.0, "
            "(ARRAY['placed','shipped','completed'])[1 + g % 3], "
            f"timestamptz '2025-01-01' + g * interval '1 second' FROM generate_series(1, {rows}) g"
        )
        conn.execute("ANALYZE orders")


def drop(database: str) -> None:
    import psycopg

    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def variant_stackyard(database: str, work: Path) -> dict[str, float]:
    from datetime import UTC, datetime

    from stackyard import Context
    from stackyard.ingest.loader import Loader
    from stackyard.project import init_project

    project = work / "stackyard_project"
    shutil.rmtree(project, ignore_errors=True)
    init_project(project)
    url = DSN.rsplit("/", 1)[0] + f"/{database}"
    text = (
        (project / "stackyard.yml")
        .read_text()
        .replace(
            "sources: {}\n",
            f"sources:\n  app:\n    kind: sql_database\n    connection: {url}\n"
            "    tables:\n      orders: {primary_key: id, cursor: updated_at}\n",
        )
    )
    (project / "stackyard.yml").write_text(text)
    ctx = Context(project)
    loader = Loader(ctx.session())
    # The raw script and dlt's defaults import their libraries before their clocks start;
    # this path does the same, so the ratio compares the loads. What the imports cost is
    # reported beside it (in a run, they are part of its fixed cost: example_run.py).
    with timer() as imports:
        import connectorx  # noqa: F401
        import duckdb  # noqa: F401
        import pyarrow.compute  # noqa: F401
        import sqlalchemy  # noqa: F401
        from dlt.destinations import duckdb as dlt_duckdb  # noqa: F401
        from dlt.sources import sql_database  # noqa: F401
    with timer() as t:
        result = loader.load(["app"], datetime.now(UTC))[0]
    assert result.status == "loaded", result.error
    rows = ctx.sql("select count(*) from app.orders").rows[0][0]
    ctx.close()
    return {"seconds": t["seconds"], "rows": rows, "imports": imports["seconds"]}


def variant_raw(database: str, work: Path) -> dict[str, float]:
    import io

    import duckdb
    import psycopg
    import pyarrow.csv as pacsv

    db = work / "raw.duckdb"
    db.unlink(missing_ok=True)
    with timer() as t:
        buffer = io.BytesIO()
        query = "COPY (SELECT * FROM orders) TO STDOUT WITH (FORMAT csv, HEADER true)"
        with (
            psycopg.connect(DSN.rsplit("/", 1)[0] + f"/{database}") as conn,
            conn.cursor().copy(query) as copy,
        ):
            for chunk in copy:
                buffer.write(chunk)
        buffer.seek(0)
        table = pacsv.read_csv(buffer)
        con = duckdb.connect(str(db))
        con.register("incoming", table)
        con.execute("CREATE TABLE orders AS SELECT * FROM incoming")
        rows = con.execute("select count(*) from orders").fetchone()[0]
        con.close()
    return {"seconds": t["seconds"], "rows": rows}


def variant_dlt_default(database: str, work: Path, rows: int) -> dict[str, float]:
    import dlt
    from dlt.sources.sql_database import sql_table

    db = work / "dlt_default.duckdb"
    db.unlink(missing_ok=True)
    shutil.rmtree(work / "dlt_pipelines", ignore_errors=True)
    url = DSN.rsplit("/", 1)[0] + f"/{database}"
    resource = sql_table(
        credentials=url,
        table="orders",
        query_adapter_callback=lambda query, table: query.where(table.c.id <= rows),
    )
    pipeline = dlt.pipeline(
        "bench_default_sql",
        destination=dlt.destinations.duckdb(str(db)),
        dataset_name="app",
        pipelines_dir=str(work / "dlt_pipelines"),
    )
    with timer() as t:
        pipeline.run(resource)
    return {"seconds": t["seconds"], "rows": rows}


def profile_stackyard(database: str, work: Path) -> dict[str, float]:
    """The stackyard path once more, untimed, under the profiler."""
    with profiled("sql-postgres"):
        return variant_stackyard(database, work)


def run_variant(name: str, database: str, dlt_rows: int) -> dict[str, float]:
    done = subprocess.run(
        [
            sys.executable,
            __file__,
            "--variant",
            name,
            "--database",
            database,
            "--dlt-rows",
            str(dlt_rows),
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"variant {name} failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--dlt-rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3, help="best of N for the fast paths")
    parser.add_argument("--variant")
    parser.add_argument("--database")
    args = parser.parse_args()
    work = WORK / "sql_postgres"
    work.mkdir(parents=True, exist_ok=True)
    if args.variant:
        action = {
            "stackyard": lambda: variant_stackyard(args.database, work),
            "profile": lambda: profile_stackyard(args.database, work),
            "raw": lambda: variant_raw(args.database, work),
            "dlt_default": lambda: variant_dlt_default(args.database, work, args.dlt_rows),
        }[args.variant]
        result = action()
        result["peak_mb"] = peak_rss_mb()
        print(json.dumps(result))
        return

    database = f"stackyard_bench_{uuid.uuid4().hex[:8]}"
    setup(database, args.rows)
    try:
        # A 2-core VM's speed drifts from minute to minute: alternate the two fast paths
        # and keep each one's best of three, so the ratio compares like with like.
        raws, ourses = [], []
        for _ in range(args.repeat):
            raws.append(run_variant("raw", database, args.dlt_rows))
            ourses.append(run_variant("stackyard", database, args.dlt_rows))
        raw = min(raws, key=lambda r: r["seconds"])
        ours = min(ourses, key=lambda r: r["seconds"])
        run_variant("profile", database, args.dlt_rows)
        default = run_variant("dlt_default", database, args.dlt_rows)
    finally:
        drop(database)
    assert raw["rows"] == ours["rows"] == args.rows
    scaled = default["seconds"] * args.rows / args.dlt_rows
    n = args.rows
    table = markdown_table(
        ["path", "seconds", "rows/s", "peak memory (MB)", "× raw time"],
        [
            [
                "psycopg COPY → Arrow → DuckDB (raw script)",
                f"{raw['seconds']:.2f}",
                f"{n / raw['seconds']:,.0f}",
                f"{raw['peak_mb']:.0f}",
                "1.00",
            ],
            [
                "stackyard sql_database",
                f"{ours['seconds']:.2f}",
                f"{n / ours['seconds']:,.0f}",
                f"{ours['peak_mb']:.0f}",
                f"{ours['seconds'] / raw['seconds']:.2f}",
            ],
            [
                f"dlt default settings ({args.dlt_rows:,} rows, scaled)",
                f"{scaled:.2f}",
                f"{args.dlt_rows / default['seconds']:,.0f}",
                f"{default['peak_mb']:.0f}",
                f"{scaled / raw['seconds']:.2f}",
            ],
        ],
    )
    text = (
        f"# sql_database: {n:,} narrow rows from Postgres into DuckDB\n\n"
        f"Best of {args.repeat} alternating runs for the first two rows.\n\n{table}\n\n"
        f"stackyard vs the raw script: {ours['seconds'] / raw['seconds']:.2f}x its time "
        f"(goal ≤ 1.5x); vs dlt defaults: {scaled / ours['seconds']:.1f}x faster (goal ≥ 5x); "
        f"peak memory {ours['peak_mb']:.0f} MB (goal < 1024 MB). Every path's imports are "
        f"outside its clock; stackyard's (dlt, its sql_database source, ConnectorX, "
        f"SQLAlchemy, pyarrow) took {ours['imports']:.2f} s in the run kept.\n\n"
        f"Reproduce: `python bench/sql_postgres.py --rows {n} --dlt-rows {args.dlt_rows}`\n"
    )
    print(text)
    write_result("sql_postgres", text)
    ratio = ours["seconds"] / raw["seconds"]
    write_figures(
        "sql_postgres",
        [
            [
                f"Postgres → DuckDB, {n:,} narrow rows vs psycopg COPY → Arrow → DuckDB "
                f"(best of {args.repeat})",
                "≤ 1.5x",
                f"{ratio:.2f}x ({ours['seconds']:.2f} s vs {raw['seconds']:.2f} s)",
                "met" if ratio <= 1.5 else "not met",
            ],
            [
                "the same vs dlt's default sql_database",
                "≥ 5x faster",
                f"{scaled / ours['seconds']:.0f}x faster",
                "met" if scaled / ours["seconds"] >= 5 else "not met",
            ],
            [
                "the same, peak memory",
                "< 1 GB",
                f"{ours['peak_mb']:.0f} MB",
                "met" if ours["peak_mb"] < 1024 else "not met",
            ],
        ],
    )


if __name__ == "__main__":
    main()
