"""A run stopped by Ctrl-C: recorded as it stands, with the rows it loaded.

Loaded rows belong to a run: a source that finished before the interrupt counts in this run
(its load package is done, so no later run counts it), and ``stackyard status`` shows the run
as ``interrupted`` with them. A source stopped mid-load left a pending package, which the next
run finishes and counts.
"""

from __future__ import annotations

from collections.abc import Callable

from stackyard.errors import Interrupted, StackyardError
from stackyard.metadata.history import History
from stackyard.results import RunResult

HINT = (
    "run `stackyard run` again: it finishes any load left pending (without duplicate rows) "
    "and builds on what is loaded"
)


def record_interrupted(
    history: History, result: RunResult, step: str, redact: Callable[[str], str]
) -> Interrupted:
    """Write an interrupted run to the history tables.

    Args:
        history: the target's history tables.
        result: the run as it stood, its last step ``interrupted``.
        step: the step Ctrl-C stopped.
        redact: hides secrets in a message.

    Returns:
        The exception to raise: what was kept, whether it is recorded, what to do next.
    """
    rows = f"{result.counts.rows_loaded:,} rows loaded"
    try:
        history.record(result)
    except StackyardError as error:
        return Interrupted(
            f"run {result.run_id} interrupted during {step} ({rows}); it could not be "
            f"recorded: {redact(error.message)}",
            hint=HINT,
            done=(result,),
        )
    return Interrupted(
        f"run {result.run_id} interrupted during {step}; recorded as interrupted with {rows}",
        hint=HINT,
        done=(result,),
    )


def monitors_interrupted(recorded: RunResult) -> Interrupted:
    """Ctrl-C during the monitor pass: the run itself finished and is recorded as it ended."""
    return Interrupted(
        f"interrupted during the monitor pass: run {recorded.run_id} itself finished and is "
        f"recorded as {recorded.status}",
        hint="the next `stackyard run` measures the tables again",
        done=(recorded,),
    )
