"""Helpers shared by the benchmarks: timing, peak memory, markdown tables."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
WORK = Path(__file__).parent / ".work"


def _compile_stackyard() -> None:
    """Write stackyard's bytecode (``__pycache__``) before anything is timed.

    An installed stackyard has it (pip compiles a package's modules when it installs them);
    a checkout installed in editable mode gets it from the first import, unless
    PYTHONDONTWRITEBYTECODE is set, as on the development machine: then every process the
    benchmarks start compiled each stackyard module it imported from source again (about
    0.3 s a run, counted as "importing stackyard's own modules" in the profiles), which a
    user never pays.
    """
    import compileall

    import stackyard

    compileall.compile_dir(Path(stackyard.__file__).parent, quiet=1)


_compile_stackyard()


@contextmanager
def timer() -> Iterator[dict[str, float]]:
    """Wall-clock seconds of the block, in ``result["seconds"]``."""
    result: dict[str, float] = {}
    start = time.perf_counter()
    try:
        yield result
    finally:
        result["seconds"] = time.perf_counter() - start


def best_of(runs: int, action: Callable[[], Any]) -> float:
    """The fastest of ``runs`` timed calls (less noise from the other core's work)."""
    best = float("inf")
    for _ in range(runs):
        with timer() as t:
            action()
        best = min(best, t["seconds"])
    return best


def peak_rss_mb(children: bool = False) -> float:
    """Peak resident memory of this process (or its finished children), in MB."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_result(name: str, text: str) -> Path:
    """Save a benchmark's markdown report under bench/results/."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.md"
    path.write_text(text, encoding="utf-8")
    return path


FIGURES = RESULTS / "figures"


def write_figures(name: str, rows: Sequence[Sequence[str]]) -> Path:
    """Headline figures for bench/results/summary.md, which `run_all.py` writes from the
    benchmarks of one run: each row is (what, goal, measured, verdict)."""
    import json
    import os

    # run_all.py runs some scripts twice with other arguments, under a name of its own.
    name = os.environ.get("STACKYARD_BENCH_NAME", name)
    FIGURES.mkdir(parents=True, exist_ok=True)
    path = FIGURES / f"{name}.json"
    record = {
        "name": name,
        "written_at": time.time(),
        "loadavg": os.getloadavg()[0],
        "rows": [list(map(str, row)) for row in rows],
    }
    path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return path
