"""Run every benchmark with its documented arguments, then write bench/results/summary.md.

Each benchmark writes bench/results/<name>.md and its headline figures (bench/results/figures/);
the summary puts the figures of this one run side by side, with the load average each ran at.

Usage: python bench/run_all.py [--quick] [--only NAME ...] [--with-spark]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import FIGURES, RESULTS, markdown_table

HERE = Path(__file__).parent

# name: (script, full arguments, --quick arguments). Spark is opt-in (--with-spark): it starts a
# JVM for each run and takes longer than everything else together.
BENCHMARKS: dict[str, tuple[str, list[str], list[str]]] = {
    "example_run": (
        "example_run",
        ["--scales", "1", "10", "50", "--repeat", "2"],
        ["--scales", "1", "2", "--repeat", "1"],
    ),
    "build_engine": ("build_engine", ["--repeat", "3"], ["--repeat", "1"]),
    "ingest_json": (
        "ingest_json",
        ["--rows", "1000000", "--dlt-rows", "200000"],
        ["--rows", "100000"],
    ),
    # after ingest_json: the same file, its native parts timed one by one
    "ingest_parts": ("ingest_parts", ["--rows", "1000000"], ["--rows", "100000", "--repeat", "1"]),
    "sql_postgres": (
        "sql_postgres",
        ["--rows", "2000000", "--dlt-rows", "100000"],
        ["--rows", "200000", "--dlt-rows", "20000"],
    ),
    "memory": ("memory", [], ["--rows", "100000", "1000000"]),
    "memory_limit": (
        "memory",
        ["--memory-limit", "256MB"],
        ["--rows", "100000", "1000000", "--memory-limit", "256MB"],
    ),
    "profile_run": ("profile_run", ["--scale", "10"], ["--scale", "1"]),
    "anomaly_detector": ("anomaly_detector", ["--held-out", "--tables", "40"], ["--quick"]),
    "anomaly_bound": (
        "anomaly_bound",
        ["--tables", "40"],
        ["--seeds", "tuning", "--tables", "3", "--draws", "1"],
    ),
    "monitors": ("monitors", [], ["--quick"]),
    "backup": ("backup", [], ["--rows", "200000", "--runs", "1"]),
    "orchestration": (
        "orchestration",
        ["--steps", "100", "--runs", "3"],
        ["--steps", "20", "--runs", "1"],
    ),
    "backfill": (
        "backfill",
        ["--days", "30", "--rows-per-day", "20000", "--runs", "2"],
        ["--days", "5", "--rows-per-day", "1000", "--runs", "1"],
    ),
}
SPARK = {"spark": ("spark", ["--scales", "1", "10", "50"], ["--scales", "1", "--repeat", "1"])}


def summary(
    ran: dict[str, tuple[float, float, int]],
    started: float,
    quick: bool,
    command: str = "make bench",
) -> str:
    """bench/results/summary.md: every headline figure this run wrote, side by side."""
    rows = []
    for name, (seconds, load, code) in ran.items():
        path = FIGURES / f"{name}.json"
        record = json.loads(path.read_text()) if path.exists() else None
        if code != 0 or record is None or record["written_at"] < started:
            why = f"failed (exit {code})" if code else "wrote no figures"
            rows.append([name, why, "", "", "", f"{seconds:.0f}", f"{load:.1f}"])
            continue
        for what, goal, measured, verdict in record["rows"]:
            rows.append([name, what, goal, measured, verdict, f"{seconds:.0f}", f"{load:.1f}"])
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started))
    total = sum(seconds for seconds, _, _ in ran.values())
    return (
        f"# Benchmarks: one run{' (--quick: small sizes, not the documented figures)' if quick else ''}\n\n"
        f"Started {when} on {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"{total / 60:.0f} minutes in all. Each benchmark runs stackyard and its raw baseline "
        "side by side and reports the ratio; its full table is in bench/results/<name>.md. "
        "The load average (1 minute) is the machine's when the benchmark ended.\n\n"
        + markdown_table(
            ["benchmark", "what", "goal", "measured", "", "seconds", "load average"], rows
        )
        + f"\n\nReproduce: `{command}`\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these benchmarks")
    parser.add_argument("--with-spark", action="store_true", help="add the Spark comparison")
    args = parser.parse_args()
    chosen = {**BENCHMARKS, **(SPARK if args.with_spark else {})}
    if args.only:
        unknown = set(args.only) - set(chosen) - set(SPARK)
        if unknown:
            parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
        chosen = {n: spec for n, spec in {**BENCHMARKS, **SPARK}.items() if n in args.only}
    started = time.time()
    ran: dict[str, tuple[float, float, int]] = {}
    for name, (script, full, quick) in chosen.items():
        print(f"== {name}", flush=True)
        began = time.perf_counter()
        done = subprocess.run(
            [sys.executable, str(HERE / f"{script}.py"), *(quick if args.quick else full)],
            env={**os.environ, "STACKYARD_BENCH_NAME": name},
        )
        ran[name] = (time.perf_counter() - began, os.getloadavg()[0], done.returncode)
    command = " ".join(["python bench/run_all.py", *sys.argv[1:]]) if sys.argv[1:] else "make bench"
    text = summary(ran, started, args.quick, command)
    if not args.quick:
        (RESULTS / "summary.md").write_text(text, encoding="utf-8")
    print(text)
    failed = [name for name, (_, _, code) in ran.items() if code != 0]
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
