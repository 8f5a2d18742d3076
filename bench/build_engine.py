"""The forced build of the example project with each build engine: `stackyard run
--force-build` (nothing new to load) with `--engine dbt` and `--engine auto`, alternating,
whole processes, best of N each.

Reports each engine's best wall time, CPU time (user + system of the process) and the
`dbt build` step's own seconds, with the machine's load average around the runs. The first
`--engine auto` run compiles the project and keeps the plan; the runs measured after it reuse
it (an unchanged project), as a scheduled run would.

Usage: python bench/build_engine.py [--repeat 3] [--scale 1]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import WORK, markdown_table, timer, write_figures, write_result

BIN = Path(sys.executable).parent


def timed(command: list[str], cwd: Path) -> tuple[float, float, str]:
    """One process: its wall seconds, its CPU seconds (user + system) and its output."""
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with timer() as t:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return t["seconds"], cpu, done.stdout


def run(engine: str, project: Path) -> tuple[float, float, float]:
    """One forced run: wall seconds, CPU seconds, the build step's seconds."""
    command = [str(BIN / "stackyard"), "run", "--force-build", "--engine", engine, "--json"]
    wall, cpu, out = timed(command, project)
    build = next(s["seconds"] for s in json.loads(out)["steps"] if s["name"] == "dbt build")
    return wall, cpu, build


def dbt_cli(project: Path) -> tuple[float, float, float]:
    """Plain `dbt build` in the project's dbt folder (the profile stackyard wrote), as a user
    would type it: wall seconds, CPU seconds, and the wall seconds again as its build step."""
    wall, cpu, _ = timed([str(BIN / "dbt"), "build", "--quiet"], project / "transform")
    return wall, cpu, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scale", type=int, default=1)
    args = parser.parse_args()
    project = WORK / f"build_engine_{args.scale}"
    shutil.rmtree(project, ignore_errors=True)
    WORK.mkdir(parents=True, exist_ok=True)
    init = [str(BIN / "stackyard"), "init", str(project), "--example", "jaffle_shop"]
    subprocess.run([*init, "--scale", str(args.scale)], check=True, capture_output=True)
    run("dbt", project)  # the first run loads the data
    run("auto", project)  # compiles once and keeps the plan
    loads = [os.getloadavg()[0]]
    paths = {
        "`stackyard run --force-build --engine dbt`": lambda: run("dbt", project),
        "`stackyard run --force-build --engine auto`": lambda: run("auto", project),
        "plain `dbt build` (CLI, in transform/)": lambda: dbt_cli(project),
    }
    best: dict[str, list[tuple[float, float, float]]] = {name: [] for name in paths}
    for _ in range(args.repeat):
        for name, action in paths.items():
            best[name].append(action())
            loads.append(os.getloadavg()[0])
    rows = []
    walls = {}
    for name, runs in best.items():
        wall, cpu, build = (min(r[i] for r in runs) for i in range(3))
        walls[name] = wall
        rows.append([name, f"{wall:.2f}", f"{cpu:.2f}", f"{build:.2f}"])
    table = markdown_table(["path", "wall (s)", "CPU (s)", "build step (s)"], rows)
    dbt, auto, cli = walls.values()
    write_figures(
        "build_engine",
        [
            [
                f"example project, forced build with nothing to load (scale {args.scale}), "
                "`--engine auto`",
                "≤ 3 s, twice as fast as the plain dbt CLI",
                f"{auto:.2f} s; plain `dbt build` {cli:.2f} s ({cli / auto:.1f}x as long); "
                f"`--engine dbt` {dbt:.2f} s",
                "met" if auto <= 3 and cli / auto >= 2 else "not met",
            ]
        ],
    )
    text = (
        f"# Forced build of the example (scale {args.scale}), best of {args.repeat}\n\n"
        f"{table}\n\nLoad average (1 min) during the runs: {min(loads):.1f}–{max(loads):.1f} "
        f"on {os.cpu_count()} cores.\n"
    )
    print(text)
    write_result("build_engine", text)


if __name__ == "__main__":
    main()
