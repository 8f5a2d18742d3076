"""Per-step overhead of each way of running a step, against calling the step directly.

One "step" is the same small function everywhere (it sums 1,000 integers), so what is timed
is the machinery around it, on a project of N steps (default 100):

- direct: a Python loop calling the steps;
- stackyard: as `stackyard run` wraps its loads: the run's leases (one per step and the
  transformation's) taken and given back in the DuckDB metadata schema, each attempt in its
  own thread under a deadline, the retry policy around it;
- prefect: a flow of N tasks (retries and timeout set), against a temporary local API;
- dagster: N assets materialised in process.

Usage: python bench/orchestration.py [--steps 100] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import WORK, best_of, markdown_table, write_figures, write_result


def step() -> int:
    return sum(range(1000))


def direct(n: int) -> None:
    for _ in range(n):
        step()


def stackyard_path(n: int, root: Path) -> None:
    from stackyard import Context
    from stackyard.config.orchestration import Retries
    from stackyard.ingest.attempts import retried, within_deadline
    from stackyard.metadata.run_leases import RunLeases

    with Context(root) as context:
        leases = RunLeases(context.warehouse())
        leases.ensure()
        policy = Retries()
        # as `stackyard run` does: every lease of the run taken once, each step under its
        # deadline and retry policy, the leases given back at the end
        names = [*(f"source:s{i}" for i in range(n)), "transformation"]
        leases.acquire(names, "bench", 3600)
        for i in range(n):
            what = f"step {i}"
            retried(
                lambda what=what: within_deadline(step, 60, what),
                lambda r: False,
                lambda r: False,
                policy,
            )
        leases.release(names, "bench")


def prefect_path(n: int) -> None:
    from prefect import flow, task

    work = task(retries=3, retry_delay_seconds=[10, 20, 40], timeout_seconds=60)(step)

    @flow(name="bench-steps")
    def steps() -> None:
        for _ in range(n):
            work()

    steps()


def dagster_path(n: int) -> None:
    import dagster as dg

    assets = []
    for i in range(n):

        @dg.asset(name=f"step_{i}", retry_policy=dg.RetryPolicy(max_retries=3, delay=10))
        def one() -> None:
            step()

        assets.append(one)
    result = dg.materialize(assets, raise_on_error=True)
    assert result.success


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    n = args.steps
    work = WORK / "orchestration"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    os.environ.setdefault("PREFECT_HOME", str(work / "prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    # the temporary API starts slowly on a busy machine
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.setdefault("DAGSTER_HOME", str(work / "dagster"))
    (work / "dagster").mkdir()

    from stackyard.project import init_project

    root = work / "project"
    init_project(root)

    timings = {"direct": best_of(args.runs, lambda: direct(n))}
    timings["stackyard"] = best_of(args.runs, lambda: stackyard_path(n, root))
    try:
        prefect_path(1)  # start the temporary API once, outside the timing
        timings["prefect"] = best_of(args.runs, lambda: prefect_path(n))
    except ImportError:
        print("prefect is not installed: pip install 'stackyard[prefect]'")
    try:
        timings["dagster"] = best_of(args.runs, lambda: dagster_path(n))
    except ImportError:
        print("dagster is not installed: pip install 'stackyard[dagster]'")

    rows = [
        (
            path,
            f"{seconds:.3f}",
            f"{(seconds - timings['direct']) / n * 1000:.1f}",
            f"{seconds / timings['stackyard']:.1f}x" if path != "direct" else "",
        )
        for path, seconds in timings.items()
    ]
    table = markdown_table(
        (
            "path",
            f"seconds for {n} steps (best of {args.runs})",
            "overhead per step, ms",
            "vs stackyard",
        ),
        rows,
    )
    command = f"python bench/orchestration.py --steps {n} --runs {args.runs}"
    text = f"# Orchestration: overhead per step\n\n`{command}`\n\n{table}\n"
    print(text)
    write_result("orchestration", text)
    per_step = (timings["stackyard"] - timings["direct"]) / n * 1000
    others = ", ".join(
        f"{path} {(seconds - timings['direct']) / n * 1000:.0f} ms"
        for path, seconds in timings.items()
        if path not in ("direct", "stackyard")
    )
    write_figures(
        "orchestration",
        [
            [
                "orchestration: stackyard's own runner, overhead per step",
                "≤ 10 ms",
                f"{per_step:.1f} ms" + (f" ({others})" if others else ""),
                "met" if per_step <= 10 else "not met",
            ]
        ],
    )


if __name__ == "__main__":
    main()
