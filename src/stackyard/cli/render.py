"""Rich rendering for the terminal: a live step display and result tables."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console as RichTerminal
from rich.console import ConsoleOptions, Group, RenderableType, RenderResult
from rich.live import Live
from rich.measure import Measurement
from rich.rule import Rule
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from stackyard.cli.common import suggested
from stackyard.metadata.history import RunSummary
from stackyard.metadata.run_leases import Lease
from stackyard.results import RunResult
from stackyard.warehouse.base import QueryResult

_STYLES = {
    "ok": "green",
    "warn": "yellow",
    "failed": "red",
    "skipped": "dim",
    "interrupted": "yellow",
}
_ICONS = {"ok": "✔", "warn": "!", "failed": "✘", "skipped": "–", "interrupted": "■"}


@dataclass
class _Step:
    name: str
    status: str = "running"
    detail: str = ""
    started: float = field(default_factory=time.monotonic)
    seconds: float = 0.0
    done: int = 0


class RichConsole:
    """A :class:`stackyard.console.Console` drawing a live table of steps."""

    def __init__(self, terminal: RichTerminal, redact: Any = None) -> None:
        self.terminal = terminal
        self._steps: dict[str, _Step] = {}
        self._lock = threading.Lock()
        self._live: Live | None = None
        self._redact = redact or (lambda s: s)

    def __enter__(self) -> RichConsole:
        self._live = Live(self, console=self.terminal, refresh_per_second=8, transient=False)
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)
            self._live = None

    def __rich__(self) -> Table:
        table = Table.grid(padding=(0, 1))
        table.add_column(width=1, no_wrap=True)
        table.add_column(min_width=16, no_wrap=True)
        table.add_column(justify="right", min_width=6, no_wrap=True)
        # Wrappable, so that the table fits a narrow terminal and a failure's row can wrap;
        # each row's Text says whether it wraps (a failure) or ends in an ellipsis.
        table.add_column(max_width=90)
        with self._lock:
            steps = list(self._steps.values())
        for step in steps:
            if step.status == "running":
                icon: Any = Spinner("dots", style="cyan")
                seconds = time.monotonic() - step.started
            else:
                icon = Text(_ICONS.get(step.status, "?"), style=_STYLES.get(step.status, ""))
                seconds = step.seconds
            # A failure is said whole, wrapped: dbt's reason (which model, which ref) and the
            # hint follow its first line, and a cut row said "Compilation Error" alone. So is
            # every row written to a file or a pipe (a scheduler's log), which has no width
            # to fit: Rich's 80 columns cut "(of 84 nodes, 83 run…" there.
            whole = step.status == "failed" or not self.terminal.is_terminal
            detail = Text(step.detail, no_wrap=not whole, overflow="fold" if whole else "ellipsis")
            table.add_row(icon, Text(step.name, style="bold"), f"{seconds:5.1f}s", detail)
        return table

    def step_started(self, step: str, detail: str = "") -> None:
        with self._lock:
            self._steps[step] = _Step(step, detail=self._redact(detail))

    def step_progress(self, step: str, detail: str) -> None:
        with self._lock:
            current = self._steps.setdefault(step, _Step(step))
            current.done += 1
            current.detail = self._redact(detail)

    def step_finished(self, step: str, status: str, detail: str = "") -> None:
        with self._lock:
            current = self._steps.setdefault(step, _Step(step))
            current.status = status
            # A finished step's row is one line, but a failure's row carries all of it.
            shown = detail if status == "failed" else (detail.splitlines() or [""])[0]
            current.detail = self._redact(suggested(shown))
            current.seconds = time.monotonic() - current.started

    def message(self, level: str, text: str) -> None:
        style = {"warning": "yellow", "error": "red"}.get(level, "")
        self.terminal.print(Text(self._redact(text), style=style))


def run_summary(result: RunResult) -> Group:
    """The end-of-run summary: loads per table, dbt results, failures with their reasons
    (:func:`run_verdict` follows it)."""
    parts: list[Any] = []
    loads = Table(title="Loaded", title_justify="left", show_edge=False, header_style="bold")
    for column in ("source", "table", "rows", "status"):
        loads.add_column(column, justify="right" if column == "rows" else "left")
    for load in result.loads:
        style = _STYLES["failed" if load.status == "failed" else "ok"]
        if not load.tables:
            loads.add_row(load.source, "–", "0", Text(load.status, style=style))
        for t in load.tables:
            loads.add_row(load.source, t.table, f"{t.rows:,}", Text(load.status, style=style))
        if load.rejected:
            loads.add_row(
                load.source,
                "_rejected_rows",
                f"{load.rejected:,}",
                Text("rejected", style=_STYLES["warn"]),
            )
    if result.loads:
        parts.append(loads)
    problems = [n for n in result.nodes if n.failed or n.status == "warn"]
    for node in problems:
        style = "yellow" if node.status == "warn" else "red"
        # dbt's first line names the node; the cause follows on the next lines.
        detail = " ".join(ln.strip() for ln in node.message.strip().splitlines()[:4])
        parts.append(Text(f"{node.resource_type} {node.name}: {node.status} {detail}", style=style))
    for load in result.loads:
        if load.status == "failed":
            parts.append(Text(suggested(f"source {load.source} failed: {load.error}"), style="red"))
        for note in load.notes:
            parts.append(Text(f"source {load.source}: {note}", style="yellow"))
    for skipped in result.skipped:
        parts.append(Text(f"skipped model {skipped.name}: {skipped.reason}", style="yellow"))
    for f in result.freshness:
        if f.status != "pass":
            age = f"{f.age_hours:.1f} h old" if f.age_hours is not None else f.message
            parts.append(
                Text(
                    f"freshness {f.source}.{f.table}: {f.status} ({age})",
                    style="yellow" if f.status == "warn" else "red",
                )
            )
    report = result.monitors
    if report is not None:
        for table in report.tables:
            if table.alerting:
                why = suggested(f"monitor {table.table}: {table.status}: {table.why}")
                parts.append(Text(why, style="yellow"))
        # What the pass could not do (an alert with no channel, a setting naming no table),
        # as `stackyard monitor` shows it.
        for note in report.notes:
            parts.append(Text(f"monitors: {note}", style="yellow"))
        # An alert that never reached its channel is said with its error, not only counted:
        # nobody else will hear of it.
        for problem in report.alert_errors:
            parts.append(Text(f"alert failed: {problem}", style="yellow"))
    return Group(*parts)


def run_verdict(result: RunResult) -> Text:
    """The run's last line, with its counts and run id: print it with ``soft_wrap=True``,
    so that it stays one line to grep (it was broken before the run id at 80 columns)."""
    return Text(
        f"{'✔ run succeeded' if result.ok else '✘ run failed'}: {result.counts.text()} "
        f"· run {result.run_id}",
        style="bold green" if result.ok else "bold red",
    )


def status_table(runs: list[RunSummary]) -> Fitted:
    """``stackyard status``: recent runs.

    A run id is never split: people copy it into ``incident open --run`` and search logs for
    it. In a narrow terminal the table drops its cell padding before anything is cut, the
    target and the tests wrap, and the figures stay whole: an ellipsis inside a row count
    would show a count the warehouse does not hold.
    """
    return Fitted(_status_grid(runs, padding=(0, 1)), _status_grid(runs, padding=(0, 0)))


def _status_grid(runs: list[RunSummary], padding: tuple[int, int]) -> Table:
    table = Table(show_edge=False, header_style="bold", padding=padding)
    # The run id starts with its UTC start time (20261122T063955-…), so no separate column.
    table.add_column("run (started UTC)", no_wrap=True)
    table.add_column("target", overflow="fold")
    for column in ("status", "took", "rows", "models"):
        table.add_column(column, no_wrap=True)
    table.add_column("tests", min_width=8)
    for r in runs:
        took = (r.finished_at - r.started_at).total_seconds()
        style = {"success": "green", "interrupted": "yellow"}.get(r.status, "red")
        table.add_row(
            r.run_id,
            r.target,
            Text(r.status, style=style),
            f"{took:.1f}s",
            f"{r.rows_loaded:,}",
            str(r.models_built),
            f"{r.tests_passed} passed, {r.tests_failed} failed",
        )
    return table


def lease_table(leases: list[Lease]) -> Table:
    """``stackyard status``: what is being run now, and by whom."""
    table = Table(show_edge=False, header_style="bold", title="held leases", title_justify="left")
    for column in ("lease", "holder", "since (UTC)", "ends by (UTC)"):
        table.add_column(column, no_wrap=column != "holder")
    for lease in leases:
        table.add_row(
            lease.name,
            lease.holder,
            f"{lease.acquired_at:%Y-%m-%d %H:%M:%S}",
            f"{lease.expires_at:%Y-%m-%d %H:%M:%S}",
        )
    return table


#: What ``stackyard sql`` shows for NULL.
NULL_SHOWN = "∅"


def shown_value(value: Any) -> str:
    """A value of a query's answer as text: an array, a struct, a map or a row as the JSON
    ``--json`` writes for it, bytes as hex, anything else as its ``str``. Python's own
    text for them (``[datetime.date(2020, 1, 1)]``, ``[Decimal('1.10')]``, ``[None, 1]``,
    ``b'\\x00'``) shows the driver's classes, not the values.

    >>> shown_value([None, 1, "a"]), shown_value(b"\\x00\\xff"), shown_value(1.5)
    ('[null, 1, "a"]', '\\\\x00ff', '1.5')
    """
    from stackyard.cli.common import exact_json

    if isinstance(value, list | tuple | dict):
        return exact_json(value, indent=None)
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    return str(value)


def query_table(result: QueryResult, limit: int = 200) -> Fitted:
    """A query result (its first ``limit`` rows) as a table, or, when the table is wider than
    the terminal, one block per row with a line per column (psql's expanded display): a table
    squeezed into 80 columns cut every value to a letter and an ellipsis."""
    # Values as plain text: a value like '[a]' or '[bold]x' is data, not Rich markup (it
    # printed as an empty cell or lost its brackets). NULL is a dim ∅: a dimmed NULL read as the
    # text 'NULL' wherever the style is lost (a pipe, a log, a pasted table), and an empty cell
    # as the empty text.
    rows = [
        [Text(NULL_SHOWN, style="dim") if v is None else Text(shown_value(v)) for v in row]
        for row in result.rows[:limit]
    ]
    caption = (
        f"{limit} of {len(result.rows)} rows shown; use --json for all"
        if len(result.rows) > limit
        else None
    )
    table = Table(show_edge=False, header_style="bold", caption=caption)
    for column in result.columns:
        table.add_column(Text(column))
    for cells in rows:
        table.add_row(*cells)
    records: list[RenderableType] = []
    for number, cells in enumerate(rows, start=1):
        record = Table.grid(padding=(0, 2))
        record.add_column(style="bold", no_wrap=True)
        record.add_column(overflow="fold")
        for column, cell in zip(result.columns, cells, strict=True):
            record.add_row(Text(column), cell)
        records += [Rule(f"row {number}", align="left", style="dim"), record]
    if caption:
        records.append(Text(caption, style="dim"))
    return Fitted(table, Group(*records), whole=True)


_UNBOUNDED = 100_000


class Fitted:
    """The first of several layouts that fits the terminal's width, else the last one.

    Args:
        layouts: from the most to the least preferred.
        whole: a layout fits when every cell fits on one line; without it, when the layout
            fits with its cells wrapped at their words.
    """

    def __init__(self, *layouts: RenderableType, whole: bool = False) -> None:
        self.layouts = layouts
        self.whole = whole

    def __rich_console__(self, console: RichTerminal, options: ConsoleOptions) -> RenderResult:
        # Measured unbounded: Rich measures a table at the widths it would squeeze it to.
        unbounded = options.update_width(_UNBOUNDED)
        for layout in self.layouts[:-1]:
            needs = Measurement.get(console, unbounded, layout)
            if (needs.maximum if self.whole else needs.minimum) <= options.max_width:
                yield layout
                return
        yield self.layouts[-1]


def whole_values_table(
    columns: list[str], rows: list[list[str]], *, right: tuple[str, ...] = ()
) -> Fitted:
    """Rows whose every value is shown whole: a table while its columns fit the terminal with
    each word whole, else one block per row with a line per column (folded, never cut).

    A name or location cut to ``customer_…`` is one the user cannot read or copy, and
    ``source list`` and ``source show`` exist to say which source and table is which.

    Args:
        columns: the headings.
        rows: the values, as text (shown as they are, never read as Rich markup).
        right: the columns of figures, aligned right.
    """
    table = Table(show_edge=False, header_style="bold")
    for column in columns:
        table.add_column(column, justify="right" if column in right else "left", overflow="fold")
    for row in rows:
        table.add_row(*(Text(v) for v in row))
    records: list[RenderableType] = []
    for row in rows:
        record = Table.grid(padding=(0, 2))
        record.add_column(style="bold", no_wrap=True)
        record.add_column(overflow="fold")
        for column, value in zip(columns, row, strict=True):
            record.add_row(Text(column), Text(value))
        records += [Rule(style="dim"), record]
    return Fitted(table, Group(*records))
