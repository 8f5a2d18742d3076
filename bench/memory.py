"""Peak memory of a load against its size: 1M vs 10M rows of the same shape, three kinds.

Each load is a `stackyard run` of a project with one source (and an empty dbt project) in its
own process, so its peak resident memory (max RSS, from the kernel's accounting of that
process) is its own. Shapes: a CSV file with a primary key, a Parquet file, a SQLite table
read incrementally. Goal: the 10M-row load peaks no more than 300 MB above the 1M-row one.

Usage: python bench/memory.py [--rows 1000000 10000000] [--kinds csv parquet sqlite]
       [--memory-limit 256MB]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import WORK, markdown_table, write_figures, write_result

_COLUMNS = (
    "i AS id, i % 50000 AS customer_id, ['placed', 'shipped', 'completed'][i % 3 + 1] AS status, "
    "(i % 100000) / 100.0 AS amount, TIMESTAMP '2025-01-01' + to_seconds(i) AS updated_at"
)

_SOURCES = {
    "csv": "kind: filesystem\n    url: sources/files\n    tables:\n"
    "      orders: {glob: '*.csv', primary_key: id}\n",
    "parquet": "kind: filesystem\n    url: sources/files\n    tables:\n"
    "      orders: {glob: '*.parquet'}\n",
    "sqlite": "kind: sql_database\n    connection: sqlite:///sources/app.sqlite\n    tables:\n"
    "      orders: {primary_key: id, cursor: updated_at}\n",
}


def make_data(kind: str, rows: int, folder: Path) -> None:
    """Write ``rows`` generated rows as the kind's source under ``folder``."""
    import duckdb

    (folder / "files").mkdir(parents=True, exist_ok=True)
    query = f"SELECT {_COLUMNS} FROM range({rows}) t(i)"
    if kind in ("csv", "parquet"):
        duckdb.sql(f"COPY ({query}) TO '{folder / 'files' / f'orders.{kind}'}'")
        return
    db = sqlite3.connect(folder / "app.sqlite")
    db.execute(
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, status TEXT, "
        "amount REAL, updated_at TEXT)"
    )
    db.execute(
        "INSERT INTO orders WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n "
        f"WHERE i + 1 < {rows}) SELECT i, i % 50000, "
        "CASE i % 3 WHEN 0 THEN 'placed' WHEN 1 THEN 'shipped' ELSE 'completed' END, "
        "(i % 100000) / 100.0, datetime('2025-01-01', '+' || i || ' seconds') FROM n"
    )
    db.commit()
    db.close()


def project_for(kind: str, rows: int, work: Path, memory_limit: str | None = None) -> Path:
    from stackyard.project import init_project

    project = work / f"{kind}_{rows}"
    shutil.rmtree(project, ignore_errors=True)
    init_project(project)
    make_data(kind, rows, project / "sources")
    config = (project / "stackyard.yml").read_text()
    source = "sources:\n  shop:\n    " + _SOURCES[kind]
    config = config.replace("sources: {}\n", source)
    if memory_limit:
        path = "    path: .stackyard/dev.duckdb\n"
        config = config.replace(path, path + f"    memory_limit: {memory_limit}\n")
    (project / "stackyard.yml").write_text(config)
    return project


def child(project: Path) -> None:
    """In the measured process: one run, then its reported row count and the warehouse's."""
    from stackyard import Context

    ctx = Context(project)
    result = ctx.run()
    assert result.ok, result.to_dict()
    (stored,) = ctx.sql("SELECT count(*) FROM shop.orders").rows[0]
    print(json.dumps({"rows": sum(x.rows for x in result.loads), "stored": stored}))


def measure(project: Path) -> dict[str, float]:
    """Run the load in its own process; its rows, peak RSS in MB and wall seconds."""
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, __file__, "--child", str(project)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
    )
    assert process.stdout is not None
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"the load of {project.name} failed")
    counts = json.loads(out.strip().splitlines()[-1])
    if counts["rows"] != counts["stored"]:
        raise SystemExit(
            f"{project.name}: {counts['rows']} rows reported, {counts['stored']} stored"
        )
    rows = counts["rows"]
    seconds = time.perf_counter() - start
    return {"rows": rows, "peak_mb": usage.ru_maxrss / 1024, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs=2, default=[1_000_000, 10_000_000])
    parser.add_argument("--kinds", nargs="+", default=list(_SOURCES), choices=list(_SOURCES))
    parser.add_argument(
        "--memory-limit", help="the DuckDB target's memory_limit (default: DuckDB's own)"
    )
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child:
        child(Path(args.child))
        return
    work = WORK / "memory"
    table = []
    small, large = args.rows
    for kind in args.kinds:
        found = {}
        for rows in (small, large):
            project = project_for(kind, rows, work, args.memory_limit)
            found[rows] = measure(project)
            assert found[rows]["rows"] == rows, found
            shutil.rmtree(project, ignore_errors=True)
        grew = found[large]["peak_mb"] - found[small]["peak_mb"]
        table.append(
            [
                kind,
                f"{found[small]['peak_mb']:.0f}",
                f"{found[large]['peak_mb']:.0f}",
                f"**{grew:+.0f}**",
                f"{found[small]['seconds']:.1f} / {found[large]['seconds']:.1f}",
                "met" if grew <= 300 else "not met",
            ]
        )
        print(" | ".join(table[-1]), flush=True)
    text = (
        f"# Peak memory of a load: {small:,} vs {large:,} rows\n\n"
        + f"DuckDB target's memory_limit: {args.memory_limit or 'unset (DuckDB default)'}\n\n"
        + markdown_table(
            [
                "source",
                f"peak RSS, {small:,} rows (MB)",
                f"peak RSS, {large:,} rows (MB)",
                "difference (MB)",
                "run seconds (small / large)",
                "≤ 300 MB",
            ],
            table,
        )
        + f"\n\nLoad average at the end: {os.getloadavg()[0]:.1f} (2 cores).\n"
        + f"\nReproduce: `python bench/memory.py --rows {small} {large}"
        + (f" --memory-limit {args.memory_limit}" if args.memory_limit else "")
        + "`\n"
    )
    print(text)
    limit = args.memory_limit
    write_result(f"memory-limit-{limit}" if limit else "memory", text)
    write_figures(
        "memory",
        [
            [
                f"peak memory of a load, {large:,} vs {small:,} rows: {row[0]} "
                f"(DuckDB memory_limit {limit or 'unset'})",
                "≤ +300 MB",
                f"{row[3].strip('*')} MB ({row[1]} → {row[2]} MB)",
                row[5],
            ]
            for row in table
        ],
    )


if __name__ == "__main__":
    main()
