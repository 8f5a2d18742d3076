"""`stackyard backup` of a DuckDB target vs copying the database file, side by side in one run.

The raw baseline is what a careful person does by hand: CHECKPOINT, then copy the file. The
stackyard backup does that too, and also counts and hashes every table (the manifest a restore
verifies), hashes every file, and copies dlt's state. Also timed, to show why the file copy
was chosen: DuckDB's EXPORT DATABASE (Parquet) and COPY FROM DATABASE (a new DuckDB file).
Each is the best of N; the page cache is warm for all of them alike.

Usage: python bench/backup.py [--rows 5000000] [--runs 3]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import WORK, best_of, markdown_table, write_result


def make_project(root: Path, rows: int) -> Path:
    import duckdb

    from stackyard.project import init_project

    shutil.rmtree(root, ignore_errors=True)
    project = init_project(root).path
    (project / ".stackyard").mkdir(exist_ok=True)
    con = duckdb.connect(str(project / ".stackyard" / "dev.duckdb"))
    con.execute("CREATE SCHEMA raw")
    con.execute(
        "CREATE TABLE raw.events AS SELECT range AS id, range % 1000 AS customer_id, "
        "TIMESTAMP '2026-01-01' + to_seconds(range) AS at, "
        "md5(range::VARCHAR) AS payload, (range * 1.5)::DOUBLE AS amount "
        f"FROM range({rows})"
    )
    con.execute(
        "CREATE TABLE raw.customers AS SELECT range AS id, 'customer ' || range AS name "
        "FROM range(1000)"
    )
    con.execute("CHECKPOINT")
    con.close()
    return project


def main() -> None:
    import duckdb

    from stackyard.context import Context
    from stackyard.runbooks import backup_engines as engines

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    project = make_project(WORK / "backup", args.rows)
    database = project / ".stackyard" / "dev.duckdb"
    out = WORK / "backup-out"
    size_mb = database.stat().st_size / 1e6

    def fresh() -> None:
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)

    def file_copy() -> None:
        fresh()
        con = duckdb.connect(str(database))
        con.execute("CHECKPOINT")
        shutil.copyfile(database, out / "copy.duckdb")
        con.close()

    def stackyard_backup() -> None:
        fresh()
        context = Context(project)
        runbook = context.backups()
        runbook.run(runbook.plan(out))
        context.close()

    def fingerprints_only() -> None:
        con = duckdb.connect(str(database), read_only=True)
        engines.duckdb_fingerprints(con, engines.duckdb_catalog(con))
        con.close()

    def export_parquet() -> None:
        fresh()
        con = duckdb.connect(str(database))
        con.execute(f"EXPORT DATABASE '{out / 'export'}' (FORMAT parquet)")
        con.close()

    def copy_from_database() -> None:
        fresh()
        con = duckdb.connect(str(database))
        con.execute(f"ATTACH '{out / 'copy.duckdb'}' AS dest")
        con.execute("COPY FROM DATABASE dev TO dest")
        con.close()

    results = []
    base = 0.0
    for label, action in (
        ("CHECKPOINT + copy the file (raw baseline)", file_copy),
        ("stackyard backup (Python API)", stackyard_backup),
        ("  of which: row counts + content hashes", fingerprints_only),
        ("EXPORT DATABASE … (FORMAT parquet)", export_parquet),
        ("COPY FROM DATABASE to a new file", copy_from_database),
    ):
        seconds = best_of(args.runs, action)
        base = base or seconds
        results.append((label, f"{seconds:.3f}", f"{seconds / base:.2f}"))
        print(f"{label}: {seconds:.3f}s ({seconds / base:.2f}x)", flush=True)

    text = (
        f"# Backup of a DuckDB target ({args.rows:,} rows, {size_mb:.0f} MB file)\n\n"
        f"`python bench/backup.py --rows {args.rows} --runs {args.runs}` (best of {args.runs})\n\n"
        + markdown_table(("path", "seconds", "× file copy"), results)
        + "\n"
    )
    print(write_result("backup", text))


if __name__ == "__main__":
    main()
