"""Where a `stackyard run` spends its time: whole-process profiles (every thread, imports
included) of the example project's first run with each build engine and of a second run with
nothing new, kept under bench/results/ (see _profile.py).

Writes ``profile-first-run``, ``profile-noop-run`` and ``profile-first-run-auto`` (each
``.collapsed.gz`` stacks and an ``.md`` table of parts), and ``profile-dbt-build.md``: dbt's own
account of its build of the project (import, parse, each node's compile and execute).

Usage: python bench/profile_run.py [--scale 10]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import RESULTS, WORK, write_figures
from _profile import parts, record_command

BIN = Path(sys.executable).parent

# stackyard runs dbt in process, in a worker thread, and dbt runs its nodes in threads of its
# own, which a sampling profiler of the main thread does not follow. dbt's own timings say where
# its time goes instead: the import, the parse (the invocation before the build task starts),
# and each node's compile and execute phases from run_results.json.
_DBT_CHILD = """
import json, sys, time
start = time.perf_counter()
from dbt.cli.main import dbtRunner
imported = time.perf_counter()
done = dbtRunner().invoke(["build", "--quiet", "--project-dir", sys.argv[1],
                           "--profiles-dir", sys.argv[1]])
finished = time.perf_counter()
assert done.success, done.exception
print(json.dumps({{"import": imported - start, "invoke": finished - imported}}))
"""


def _seconds(timing: list[dict], phase: str) -> float:
    from datetime import datetime

    for part in timing:
        if part["name"] == phase:
            began = datetime.fromisoformat(part["started_at"].replace("Z", "+00:00"))
            ended = datetime.fromisoformat(part["completed_at"].replace("Z", "+00:00"))
            return (ended - began).total_seconds()
    return 0.0


def profile_dbt(project: Path) -> None:
    """Where dbt's build of the project spends its time: bench/results/profile-dbt-build.md."""
    import json

    transform = project / "transform"
    done = subprocess.run(
        [sys.executable, "-c", _DBT_CHILD.format(), str(transform)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
    )
    outer = json.loads(done.stdout.strip().splitlines()[-1])
    results = json.loads((transform / "target/run_results.json").read_text())
    kinds: dict[str, list[float]] = {}
    for node in results["results"]:
        kind = node["unique_id"].split(".")[0]
        compile_s = _seconds(node["timing"], "compile")
        execute_s = _seconds(node["timing"], "execute")
        total = kinds.setdefault(kind, [0, 0.0, 0.0, 0.0])
        total[0] += 1
        total[1] += compile_s
        total[2] += execute_s
        total[3] += node["execution_time"]
    build = results["elapsed_time"]
    rows = [
        f"| import dbt | {outer['import']:.2f} | |",
        f"| parse and set up (the invocation before the build task) | "
        f"{outer['invoke'] - build:.2f} | |",
        f"| build task (its nodes run in dbt's worker threads) | {build:.2f} | |",
    ]
    for kind, (count, compile_s, execute_s, whole) in sorted(kinds.items()):
        rows.append(
            f"| {count} {kind}s: compile / execute / whole node, summed over threads | "
            f"{compile_s:.2f} / {execute_s:.2f} / {whole:.2f} | "
            f"{1000 * whole / count:.0f} ms a node |"
        )
    text = (
        "# Where dbt's build of the example project goes\n\n"
        "`dbt build` in process (dbtRunner, as stackyard runs it) in a fresh Python process; "
        "seconds from dbt's own run_results.json. A node's execute phase includes dbt's "
        "materialization macros (rendering the wrapper SQL, the adapter's cache, renames) as well "
        "as the warehouse's own time.\n\n| part | seconds | |\n|---|---|---|\n"
        + "\n".join(rows)
        + "\n"
    )
    (RESULTS / "profile-dbt-build.md").write_text(text, encoding="utf-8")


def profile(project: Path, name: str, *options: str) -> None:
    """Profile one `stackyard run` of ``project``: bench/results/profile-<name>.*"""
    record_command(
        name,
        [str(BIN / "stackyard"), "run", "--project", str(project), *options],
        env={**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=int, default=10)
    args = parser.parse_args()
    work = WORK / "profile"
    project = work / f"jaffle_{args.scale}"
    shutil.rmtree(project, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    command = ["init", str(project), "--example", "jaffle_shop", "--scale", str(args.scale)]
    subprocess.run(
        [str(BIN / "stackyard"), *command, "--seed", "42"], check=True, stdout=subprocess.DEVNULL
    )
    profile(project, "first-run", "--engine", "dbt")
    profile(project, "noop-run")
    profile_dbt(project)
    for state in (project / ".stackyard", project / "transform/target"):
        shutil.rmtree(state)
    profile(project, "first-run-auto", "--engine", "auto")
    print(f"profiles written to {RESULTS}/profile-*.md and .collapsed.gz")
    rows = []
    for name in ("first-run", "first-run-auto", "noop-run"):
        found = parts(RESULTS / f"profile-{name}.collapsed.gz")
        total = sum(found.values()) or 1.0
        top = sorted(found.items(), key=lambda kv: -kv[1])[:2]
        rows.append(
            [
                f"where the time of a {name.replace('-', ' ')} goes (scale {args.scale}, "
                f"profile-{name}.md)",
                "(profile)",
                "; ".join(f"{part}: {100 * value / total:.0f} %" for part, value in top),
                "",
            ]
        )
    write_figures("profile_run", rows)


if __name__ == "__main__":
    main()
