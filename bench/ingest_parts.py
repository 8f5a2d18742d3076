"""Where the native time of the JSON ingest goes: the stackyard load step's parts, each timed
alone on the same file, beside the raw baseline (DuckDB ``read_json`` into a table).

The profile of the load step (profile-ingest-json.md) sees only Python; most of the step is
native work outside the interpreter lock. This times that work piece by piece, in the order
the load step does it:

1. DuckDB reads the file into a scratch in-memory table and hands it out as Arrow batches of
   100,000 rows (stackyard's ``filesystem`` reader, ``ingest/file_stream.py``), after a scan
   for JSON numbers no column holds as written (``ingest/json_numbers.py``), also timed alone;
2. pyarrow writes the batches as one Parquet file (dlt's load package; uncompressed, as
   stackyard asks dlt for a DuckDB target);
3. DuckDB reads that Parquet file into a table of the target database (dlt's DuckDB loader).

Usage: python bench/ingest_parts.py [--rows 1000000] [--repeat 5]
Writes bench/results/ingest_json-parts.md. Run it after ``bench/ingest_json.py`` (same file).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _common import WORK, best_of, markdown_table, write_figures, write_result


def main() -> None:
    import duckdb
    import pyarrow.parquet as pq

    from ingest_json import make_file
    from stackyard.ingest.json_numbers import unfit_lines

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    work = WORK / "ingest_json"
    work.mkdir(parents=True, exist_ok=True)
    data = work / f"orders_{args.rows}.jsonl"
    if not data.exists():
        make_file(data, args.rows)
    read = f"read_json('{data}', format='newline_delimited')"
    package = work / "parts.parquet"
    batches: list[Any] = []

    def fresh(name: str) -> Any:
        path = work / name
        path.unlink(missing_ok=True)
        return duckdb.connect(str(path))

    def raw() -> None:
        con = fresh("parts_raw.duckdb")
        con.execute(f"CREATE TABLE orders AS SELECT * FROM {read}")
        con.close()

    def numbers() -> None:
        con = duckdb.connect(":memory:")
        assert unfit_lines(con, str(data), "orders", data.name) == []
        con.close()

    def reader() -> None:
        con = duckdb.connect(":memory:")
        assert unfit_lines(con, str(data), "orders", data.name) == []
        con.execute(f"CREATE TABLE file_0 AS SELECT * FROM {read}")
        batches[:] = list(con.sql("SELECT * FROM file_0").to_arrow_reader(100_000))
        con.close()

    def parquet() -> None:
        writer = pq.ParquetWriter(package, batches[0].schema, compression="none")
        for batch in batches:
            writer.write_batch(batch)
        writer.close()

    def load() -> None:
        con = fresh("parts_load.duckdb")
        con.execute(f"CREATE TABLE orders AS SELECT * FROM read_parquet('{package}')")
        con.close()

    parts: list[tuple[str, Callable[[], None]]] = [
        ("raw baseline: read_json into a table", raw),
        (
            "1. the reader: numbers checked, the file into a scratch table, out as Arrow batches",
            reader,
        ),
        ("   of which the scan for numbers no column holds", numbers),
        ("2. the load package: the batches written as Parquet", parquet),
        ("3. the load: the Parquet file into the target's table", load),
    ]
    seconds = {name: best_of(args.repeat, action) for name, action in parts}
    base = seconds[parts[0][0]]
    steps = sum(seconds[name] for name, _ in parts[1:] if not name.startswith(" "))
    rows = [[name, f"{s:.3f}", f"{s / base:.2f}"] for name, s in seconds.items()]
    rows.append(["1 + 2 + 3", f"{steps:.3f}", f"{steps / base:.2f}"])
    text = (
        f"# The JSON ingest's native parts ({args.rows:,} rows), best of {args.repeat}\n\n"
        + markdown_table(["part", "seconds", "× raw"], rows)
        + f"\n\nReproduce: `python bench/ingest_parts.py --rows {args.rows}`\n"
    )
    print(text)
    write_result("ingest_json-parts", text)
    write_figures(
        "ingest_parts",
        [
            [
                "JSON ingest's native parts (reader + Parquet + load)",
                "—",
                f"{steps / base:.2f}x raw",
                "measured",
            ]
        ],
    )


if __name__ == "__main__":
    main()
