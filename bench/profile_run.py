"""Where a `stackyard run` spends its time: pyinstrument profiles of the example project's
first run and of a second run with nothing new, kept under bench/results/.

Each profile is taken in a fresh Python process that imports nothing before the profiler
starts, so imports are part of it (as they are of a real `stackyard run`). Writes
``profile-first-run.{txt,html}`` and ``profile-noop-run.{txt,html}``.

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
from _common import RESULTS, WORK

BIN = Path(sys.executable).parent

# Runs in the child: profile `stackyard run` called as the command line calls it.
_CHILD = """
import sys
from pyinstrument import Profiler

profiler = Profiler(interval=0.001)
profiler.start()
sys.argv = ["stackyard", "run", "--project", sys.argv[1]]
try:
    from stackyard.cli.main import main
    main()
except SystemExit as exc:
    if exc.code:
        raise
finally:
    profiler.stop()
out = {out!r}
open(out + ".txt", "w").write(profiler.output_text(unicode=True, color=False, short_mode=False))
open(out + ".html", "w").write(profiler.output_html())
"""


def profile(project: Path, name: str) -> None:
    """Profile one `stackyard run` of ``project`` into bench/results/profile-<name>.*"""
    RESULTS.mkdir(parents=True, exist_ok=True)
    code = _CHILD.format(out=str(RESULTS / f"profile-{name}"))
    subprocess.run(
        [sys.executable, "-c", code, str(project)],
        check=True,
        env={**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
        stdout=subprocess.DEVNULL,
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
    profile(project, "first-run")
    profile(project, "noop-run")
    print(f"profiles written to {RESULTS}/profile-*.txt and .html")


if __name__ == "__main__":
    main()
