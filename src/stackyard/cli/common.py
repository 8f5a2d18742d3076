"""What every command shares: the error boundary, the terminals, the common options.

Command modules import from here, never from each other, so any of them can be imported first.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console as RichTerminal

from stackyard.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    Interrupted,
    StackyardError,
)
from stackyard.warehouse.base import ExactTimestamp, JsonText

if TYPE_CHECKING:
    from stackyard.console import Console
    from stackyard.context import Context

_state: dict[str, bool] = {"debug": False}
#: 128 + SIGPIPE: what a shell reports for a writer whose reader went away.
EXIT_CLOSED_PIPE = 141


class _Terminal(RichTerminal):
    """Rich's console, but a reader that stops early (`stackyard health | head -1`) ends the
    command as a tool killed by SIGPIPE does (141), not with 1, the code of a failed step.
    SIGPIPE itself stays ignored: a closed socket must never kill a run."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Rich fixes the width at creation from COLUMNS, when this module is imported: a
        # command run later in the same process (a test's, an orchestrator's) was drawn at
        # that width instead of its own. Read live, as the terminal's own size is.
        self._width = self._height = None

    def on_broken_pipe(self) -> None:
        try:
            super().on_broken_pipe()
        except SystemExit:
            raise SystemExit(EXIT_CLOSED_PIPE) from None


#: Below this many columns nothing can be read: Rich drew a 0-column terminal as nothing at
#: all (errors included) and a 1-column one as a rule.
MIN_COLUMNS = 20


class _Environ(Mapping[str, str]):
    """The process's environment as Rich reads it, live, without a ``COLUMNS`` too narrow to
    print in (``COLUMNS=0``): the terminal's own width, or 80, is used instead."""

    def __getitem__(self, key: str) -> str:
        value = os.environ[key]
        if key == "COLUMNS" and value.isdigit() and int(value) < MIN_COLUMNS:
            raise KeyError(key)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(os.environ)

    def __len__(self) -> int:
        return len(os.environ)


out = _Terminal(_environ=_Environ())
err = _Terminal(stderr=True, _environ=_Environ())

ProjectOpt = Annotated[
    Path | None,
    typer.Option(
        "--project", "-p", help="Project folder (default: search upward from the current one)."
    ),
]


def _remember_target(value: str | None) -> str | None:
    # The commands a message suggests then name it too (see suggested).
    _given["target"] = value
    return value


TargetOpt = Annotated[
    str | None,
    typer.Option(
        "--target",
        "-t",
        help="Target in stackyard.yml (default: its defaults.target, else dev).",
        callback=_remember_target,
    ),
]
_given: dict[str, str | None] = {"target": None}


def suggested(text: str) -> str:
    """``text`` with the commands it suggests given the ``--target`` this command was given:
    a fix for a problem on prod, pasted as written, acted on the default target."""
    from stackyard.errors import on_target

    return on_target(text, _given["target"])


def _remember_json(value: bool) -> bool:
    # An error is then also printed as JSON on stdout (see _error).
    _state["json"] = bool(value)
    return value


JsonOpt = Annotated[
    bool,
    typer.Option("--json", help="Print a machine-readable result.", callback=_remember_json),
]

T = TypeVar("T")

# What a Ctrl-C that no command turned into ``Interrupted`` leaves, and what to do next.
# Only ``stackyard run`` has a next run that finishes what was cut short; other commands
# say no more than they know.
STOPPED: tuple[str, str | None] = ("nothing further was done", None)
RUN_STOPPED: tuple[str, str | None] = (
    "the warehouse is left readable",
    "run the command again: the next run completes any pending load without duplicates",
)


def _guard(action: Callable[[], T], stopped: tuple[str, str | None] = STOPPED) -> T:
    """The CLI's one error boundary: a clear message and an exit code, no traceback.

    Args:
        action: what the command does.
        stopped: the message and hint for a bare Ctrl-C (``RUN_STOPPED`` for ``run``).
    """
    try:
        return action()
    except StackyardError as exc:
        if _state["debug"]:
            raise
        _error("error: ", exc.message, exc.hint, exc.exit_code)
        raise typer.Exit(exc.exit_code) from None
    except Interrupted as exc:
        # what was running has stopped; the message says what was kept
        _error("interrupted: ", exc.message, exc.hint, EXIT_INTERRUPTED)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except KeyboardInterrupt:
        _error("interrupted: ", *stopped, EXIT_INTERRUPTED)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except Exception as exc:
        if str(exc) == "Query interrupted":
            # DuckDB's Ctrl-C, raised where it stopped a query outside the warehouse's session
            _error("interrupted: ", *stopped, EXIT_INTERRUPTED)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        if _state["debug"]:
            raise
        if "No space left on device" in str(exc):
            _error(
                "error: ",
                "the disk is full; what was being written was left unfinished",
                "free space and run the command again, or write elsewhere "
                "(`stackyard backup --to DIR` on another disk)",
                EXIT_FAILED,
            )
            raise typer.Exit(EXIT_FAILED) from None
        _error(
            "unexpected error: ",
            f"{type(exc).__name__}: {exc}",
            "re-run with --debug for the traceback, and please report it",
            EXIT_FAILED,
        )
        raise typer.Exit(EXIT_FAILED) from None


def _error(label: str, message: str, hint: str | None, code: int | None = None) -> None:
    """The message on stderr; with ``--json``, also as JSON on stdout (``code`` given), so a
    script reading the output gets an answer it can parse: ``{"ok": false, "error": …,
    "hint": …, "exit_code": …}``."""
    from rich.text import Text

    message, hint = suggested(message), suggested(hint) if hint else hint
    # soft_wrap: a message is never broken mid-line, so it can be grepped and copied.
    err.print(Text.assemble((label, "bold red"), message), soft_wrap=True)
    if hint:
        err.print(Text(f"  → {hint}"), soft_wrap=True)
    if code is not None and _json_requested():
        error = {"ok": False, "error": f"{label}{message}", "hint": hint, "exit_code": code}
        _print_json(error)


def _json_requested() -> bool:
    """Whether the command running was given ``--json``."""
    return _state.get("json", False)


def _context(project: Path | None, console: Console | None = None) -> Context:
    """The project's Context, closed when the command ends (a ``with`` block closes it
    sooner): a command run inside a process that lives on (an orchestrator's, a test's) kept
    its warehouse connections, and a DuckDB file stayed locked, until the process ended."""
    from stackyard.context import Context

    context = Context(project, console=console)
    _opened.append(context)
    return context


#: The contexts the running command opened (see :func:`close_opened`).
_opened: list[Context] = []


def close_opened() -> None:
    """Close every context the command opened; the CLI calls this as each command ends."""
    while _opened:
        _opened.pop().close()


def _with_context(project: Path | None, action: Callable[[Context], T]) -> T:
    """Open the project, do one thing with it and close its connections, inside the error
    boundary."""

    def run() -> T:
        with _context(project) as context:
            return action(context)

    return _guard(run)


def _confirm_or_stop(question: str) -> None:
    """Ask before a change; a "no" is the user's choice, not a failed step: nothing was
    attempted, so ``nothing done`` and exit 0 (every prompt of the CLI answers so)."""
    try:
        agreed = typer.confirm(question, default=False)
    except typer.Abort:
        # No answer at all (a script, stdin closed): nothing was attempted, and the script
        # must hear that it needs --yes, not see "Aborted." and a failed step.
        out.print("nothing done: no answer to the question (not run from a terminal?)")
        out.print("  → pass --yes to go ahead without asking")
        raise typer.Exit(EXIT_USAGE) from None
    if not agreed:
        out.print("nothing done")
        raise typer.Exit(0)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date | ExactTimestamp):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def exact_json(data: Any, indent: int | None = 2) -> str:
    """JSON text in which a ``Decimal`` is a number literal with every digit it has.

    The standard encoder knows no ``Decimal`` (and ``float()`` would round ``decimal(20,2)``
    values past 2**53), so each one goes through it as a marked string that is then unquoted;
    the mark holds a random part, so no value of the data can look like one.

    NaN and the infinities, which JSON has no literal for (Python's ``NaN`` is refused by
    strict parsers), are the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``.
    A :class:`JsonText` (a ``json`` column) is the JSON value it holds.

    >>> exact_json({"amount": Decimal("12345678901234567.89"), "n": 1.5}, indent=None)
    '{"amount": 12345678901234567.89, "n": 1.5}'
    >>> exact_json([float("nan"), Decimal("-Infinity")], indent=None)
    '["NaN", "-Infinity"]'
    """
    import re
    import uuid

    mark = f"decimal-{uuid.uuid4().hex}:"

    def default(value: Any) -> Any:
        if isinstance(value, Decimal):
            if not value.is_finite():
                return _not_finite(float(value))
            return mark + str(value)
        return _json_default(value)

    text = json.dumps(_finite(data), indent=indent, default=default, allow_nan=False)
    return re.sub(f'"{re.escape(mark)}([^"]*)"', r"\1", text)


def _not_finite(value: float) -> str:
    return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")


def _key(key: Any) -> Any:
    """A mapping's key as JSON takes it.

    >>> _key(date(2020, 1, 1)), _key(1), _key("a")
    ('2020-01-01', 1, 'a')
    """
    if key is None or isinstance(key, str | int | float | bool):
        return key
    text = _json_default(key)
    return text if isinstance(text, str) else str(text)


def _finite(data: Any) -> Any:
    """``data`` with every float that is not finite as its name (the encoder never calls
    ``default`` for a float)."""
    if isinstance(data, float):
        return data if math.isfinite(data) else _not_finite(data)
    if isinstance(data, JsonText):
        # The value it holds, its numbers as decimals: written with every digit it has.
        return _finite(json.loads(data, parse_float=Decimal))
    if isinstance(data, dict):
        # A key JSON has no place for (a DuckDB MAP keyed by dates) as its text, as values are.
        return {_key(k): _finite(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_finite(v) for v in data]
    return data


def _print_json(data: Any) -> None:
    try:
        sys.stdout.write(exact_json(data) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        out.on_broken_pipe()
