"""Run every benchmark with its documented arguments; each writes bench/results/<name>.md.

Usage: python bench/run_all.py [--quick]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent

BENCHMARKS = {
    "ingest_json": (["--rows", "1000000", "--dlt-rows", "200000"], ["--rows", "100000"]),
    "sql_postgres": (
        ["--rows", "2000000", "--dlt-rows", "100000"],
        ["--rows", "200000", "--dlt-rows", "20000"],
    ),
    "example_run": (["--scales", "1", "10", "50"], ["--scales", "1", "2", "--repeat", "1"]),
    "memory": ([], ["--rows", "100000", "1000000"]),
    "profile_run": (["--scale", "10"], ["--scale", "1"]),
    "spark": (["--scales", "1", "10", "50"], ["--scales", "1", "--repeat", "1"]),
    "anomaly_detector": (["--held-out"], ["--quick"]),
    "monitors": ([], ["--quick"]),
    "backup": ([], ["--rows", "200000", "--runs", "1"]),
    "orchestration": (["--steps", "100", "--runs", "3"], ["--steps", "20", "--runs", "1"]),
    "backfill": (
        ["--days", "30", "--rows-per-day", "20000", "--runs", "2"],
        ["--days", "5", "--rows-per-day", "1000", "--runs", "1"],
    ),
    "build_engine": (["--repeat", "3"], ["--repeat", "1"]),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    args = parser.parse_args()
    failed = []
    for name, (full, quick) in BENCHMARKS.items():
        print(f"== {name}", flush=True)
        done = subprocess.run(
            [sys.executable, str(HERE / f"{name}.py"), *(quick if args.quick else full)]
        )
        if done.returncode != 0:
            failed.append(name)
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
