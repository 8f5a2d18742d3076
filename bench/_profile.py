"""Whole-process profiles for the benchmarks: where a path's Python time goes, every thread.

stackyard runs dlt and dbt in worker threads, and dbt runs its nodes in threads of its own, so
a profiler of the main thread sees them only as a wait. py-spy samples every thread from outside
the process; it keeps only the thread holding the GIL (``--gil``) at each sample, so the
samples add up to the time spent running Python code, one thread at a time, and a thread that
waits (on a queue, a lock or the GIL) is never counted. (Without ``--gil`` its idle detection
counted waiting threads on this VM: 91 s of samples in a 21 s run.) Native work done without
the GIL (DuckDB executing a query, ConnectorX reading) is not in the samples. Each profile is
kept as gzipped collapsed stacks (bench/results/profile-<name>.collapsed.gz: unzip it and open
it in speedscope.app, or draw it with flamegraph.pl) and summed into
bench/results/profile-<name>.md: the seconds of samples in each part of the work.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from _common import RESULTS, markdown_table

RATE = 250  # samples a second in each thread

# Imports are split by the library a stack is importing: the outermost module being executed
# that is not stackyard's own (stackyard importing dbt's CLI, which imports agate, counts as
# importing dbt), so that the floor of a first run (importing dbt) reads off the table.
IMPORTED = (
    ("importing dbt (dbt-core, its adapters)", ("dbt", "dbt_common")),
    ("importing dlt", ("dlt",)),
    ("importing pyarrow", ("pyarrow",)),
    ("importing SQLAlchemy, ConnectorX, DuckDB", ("sqlalchemy", "connectorx", "duckdb")),
    (
        "importing the CLI and config (typer, rich, pydantic)",
        ("typer", "rich", "click", "pydantic"),
    ),
)
IMPORTS_OTHER = "importing other modules (the standard library, sqlglot, …)"
IMPORTS_OWN = "importing stackyard's own modules"
DBT = (  # within dbt, the first of these found anywhere in the stack
    ("dbt: parsing the project", ("dbt/parser/", "dbt/contracts/graph/manifest.py")),
    (
        "dbt: SQL on the warehouse (the warehouse's own time included)",
        ("dbt/adapters/duckdb/connections.py", "dbt/adapters/sql/connections.py"),
    ),
    (
        "dbt: rendering Jinja and compiling nodes",
        ("jinja2/", "dbt/clients/jinja", "dbt/compilation.py", "dbt_common/clients/jinja"),
    ),
    ("dbt: everything else (events, graph, results, artifacts)", ("dbt/", "dbt_common/")),
)
DEEPEST = (  # otherwise, the frame nearest the leaf that names one of these
    (
        "reading the sources (stackyard's readers: DuckDB, ConnectorX, SQLAlchemy)",
        "stackyard/ingest/",
    ),
    (
        "reading the sources (stackyard's readers: DuckDB, ConnectorX, SQLAlchemy)",
        "dlt/sources/",
    ),
    (
        "dlt: loading its files into the warehouse (the warehouse's own time included)",
        "dlt/destinations/",
    ),
    ("dlt: normalizing (its schema, the load package)", "dlt/normalize/"),
    ("dlt: extracting (state, schema, writing Parquet)", "dlt/"),
    ("stackyard's own build engine (compiled SQL on the engine)", "stackyard/runner/sql_"),
    ("stackyard: monitors", "stackyard/monitors/"),
    ("stackyard: everything else (config, history, freshness, SQL)", "stackyard/"),
)
# Leaf frames of a thread that waits (py-spy's idle detection misses some of them): a pool's
# idle worker, a timer, a display's refresh loop, a queue or pipe with nothing in it yet.
WAITING = (
    "_worker (concurrent/futures/thread.py",
    "worker (multiprocessing/pool.py",
    "Pool._handle_",
    "sleep (<built-in>",
    "Condition.wait (threading.py",
    "Condition._acquire_restore (threading.py",
    "Event.wait (threading.py",
    "_PollLikeSelector.select (selectors.py",
    "select (selectors.py",
)
OTHER = "other (interpreter, the benchmark's own setup)"


def classify(stack: str) -> str | None:
    """The part of the work one sampled stack (root to leaf, ';'-separated) belongs to;
    None for a thread pool's worker waiting for work."""
    frames = stack.split(";")
    if frames[-1].startswith(WAITING):
        return None
    if "_find_and_load (" in stack:
        return _imported(frames)
    if "dbt/" in stack or "dbt_common/" in stack:
        return next(part for part, marks in DBT if any(m in stack for m in marks))
    for frame in reversed(frames):
        for part, mark in DEEPEST:
            # the package inside the path: "dlt/" must not match ".../stackyard/ingest/dlt_x"
            if "/" + mark in frame or "(" + mark in frame:
                return part
    return OTHER


def _imported(frames: list[str]) -> str:
    """The import part of a stack: by the outermost module being executed that is not
    stackyard's own, after the first import frame."""
    first = next(i for i, frame in enumerate(frames) if frame.startswith("_find_and_load ("))
    for frame in frames[first:]:
        if frame.startswith("<module> (") and not frame.startswith("<module> (stackyard"):
            top = frame[len("<module> (") : -1].split("/")[0].removesuffix(".py")
            return next((part for part, tops in IMPORTED if top in tops), IMPORTS_OTHER)
    return IMPORTS_OWN


def _pyspy() -> str:
    found = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if not found:
        raise SystemExit("py-spy is not installed: `make install` installs the dev tools")
    return found


def _record(out: Path, *target: str) -> list[str]:
    """py-spy's command line recording ``target`` (``--pid N`` or ``-- command …``) to ``out``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    rate = ["--rate", str(RATE), "--format", "raw", "--output", str(out)]
    return [_pyspy(), "record", "--gil", *rate, *target]


def record_command(name: str, command: Sequence[str], **popen: object) -> Path:
    """Run ``command`` under py-spy; return the table of parts' path."""
    out = RESULTS / f"profile-{name}.collapsed"
    subprocess.run(_record(out, "--", *command), check=True, capture_output=True, **popen)  # type: ignore[call-overload]
    return write_parts(name, out)


@contextmanager
def profiled(name: str) -> Iterator[None]:
    """Profile this process while the block runs (py-spy attached from outside)."""
    out = RESULTS / f"profile-{name}.collapsed"
    spy = subprocess.Popen(
        _record(out, "--pid", str(os.getpid())),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # let it attach before the work starts
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)  # py-spy writes its file on an interrupt
        spy.wait(timeout=60)
        write_parts(name, out)


def compact(collapsed: Path) -> Path:
    """Drop line numbers from py-spy's frames, merge the stacks that become equal and keep the
    result gzipped (``.collapsed.gz``, a few hundred KB instead of several MB)."""
    import gzip
    import re

    merged: dict[str, int] = {}
    for line in collapsed.read_text(encoding="utf-8").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack:
            stack = re.sub(r":\d+\)", ")", stack)
            merged[stack] = merged.get(stack, 0) + int(count)
    kept = collapsed.with_name(collapsed.name + ".gz")
    with gzip.open(kept, "wt", encoding="utf-8") as handle:
        handle.writelines(f"{stack} {count}\n" for stack, count in sorted(merged.items()))
    collapsed.unlink()
    return kept


def parts(collapsed: Path) -> dict[str, float]:
    """Seconds of samples in each part, from (gzipped) collapsed stacks."""
    import gzip

    seconds: dict[str, float] = {}
    with gzip.open(collapsed, "rt", encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    for line in lines:
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        part = classify(stack)
        if part is not None:
            seconds[part] = seconds.get(part, 0.0) + int(count) / RATE
    return seconds


def write_parts(name: str, collapsed: Path) -> Path:
    """bench/results/profile-<name>.md: the parts, largest first."""
    found = parts(compact(collapsed) if collapsed.suffix != ".gz" else collapsed)
    total = sum(found.values()) or 1.0
    rows = [
        [part, f"{value:.2f}", f"{100 * value / total:.0f} %"]
        for part, value in sorted(found.items(), key=lambda kv: -kv[1])
    ]
    text = (
        f"# Where the time goes: {name}\n\n"
        f"py-spy, {RATE} samples a second, the thread holding the GIL at each (Python code "
        "running; native work without the GIL, such as DuckDB executing a query, is not "
        "counted). Collapsed stacks: "
        f"`profile-{name}.collapsed.gz`.\n\n"
        + markdown_table(["part", "seconds", "share"], rows)
        + f"\n\nIn all: {total:.2f} s of samples.\n"
    )
    path = RESULTS / f"profile-{name}.md"
    path.write_text(text, encoding="utf-8")
    return path
