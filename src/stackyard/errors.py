"""The error tree every user-visible failure belongs to.

Each error carries three things a reader needs: what went wrong, where (file, line, key,
table, column — in the message), and what to do next (``hint``). The CLI is the only place
that turns them into text and an exit code; nothing else catches them broadly.

Exit codes are part of the contract with scripts:

* ``0`` success,
* ``1`` the run did its work and something in the data failed (a load, a model, a test),
* ``2`` usage or configuration: nothing was attempted, fix the input and retry,
* ``130`` interrupted (Ctrl-C): what finished is kept and recorded; run again to finish.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class StackyardError(Exception):
    """Base of every error stackyard reports to a user.

    Attributes:
        message: what went wrong, naming the file, key, table or column involved.
        hint: what to do next, or ``None`` when the message already says it.
        exit_code: the process exit code the CLI uses for this error.
        transient: ``True`` when retrying the same thing later may succeed (a network blip,
            a locked file); ``False`` when the input must change first.
    """

    exit_code: int = EXIT_FAILED
    transient: bool = False

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  → {self.hint}" if self.hint else self.message


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) stopped work after what was running had stopped cleanly.

    A ``KeyboardInterrupt``, so code that stops on one still stops; it says what was kept and
    what to do next, as an error does.

    Attributes:
        message: what was stopped, and what was kept.
        hint: what to do next.
        done: what finished before the interrupt (e.g. the sources that loaded), for the
            caller to record.
    """

    exit_code = EXIT_INTERRUPTED

    def __init__(self, message: str, *, hint: str | None = None, done: tuple[object, ...] = ()):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.done = done


class Abandoned(Interrupted):
    """Ctrl-C a second time (or the step's deadline) while waiting for interrupted work to
    stop: stackyard stopped waiting and the work may still be running (e.g. a query still
    finishing in the warehouse), so nothing else touches the warehouse before the exit."""


class ConfigError(StackyardError):
    """stackyard.yml (or a file it points to) is not what stackyard expects."""

    exit_code = EXIT_USAGE


class ProjectNotFoundError(ConfigError):
    """No stackyard.yml in the folder given or any folder above it."""


class SecretMissingError(ConfigError):
    """A secret named in stackyard.yml was found in none of the places it is looked up."""


class SecretBackendUnreachableError(SecretMissingError):
    """The secret manager a secret is kept in (AWS Secrets Manager, Vault) did not answer."""

    transient = True


class UsageError(StackyardError):
    """The command line itself is wrong (an unknown name, conflicting options)."""

    exit_code = EXIT_USAGE


class EngineRefusedError(UsageError):
    """``stackyard run --engine sql`` met a node only dbt can build: refused before the build
    starts, or (a microbatch model found unfit only when its turn comes) where it stands."""


class ReservedColumnError(ConfigError):
    """A source column has the name of a column dlt writes on every row itself
    (``_dlt_load_id``): loaded, its values would be replaced by dlt's."""


class PolicyViolationError(ConfigError):
    """An access plan breaks a policy rule, so it is not applied (nothing was attempted)."""


class WarehouseError(StackyardError):
    """The warehouse refused or failed a statement."""


class WarehouseUnreachableError(WarehouseError):
    """The warehouse could not be reached at all: nothing was changed."""

    exit_code = EXIT_USAGE
    transient = True


class WarehouseLockedError(WarehouseUnreachableError):
    """Another process holds the warehouse's file: DuckDB lets one process at a time open a
    file (https://duckdb.org/docs/current/connect/concurrency); or a run in progress holds
    leases on a warehouse a command would replace. Nothing was read or changed; retrying once
    that process or run ends succeeds."""


class LoadError(StackyardError):
    """A source failed to extract or load."""


class SourceUnreachableError(LoadError):
    """A source's server could not be reached: nothing was read from it."""

    transient = True


class TransformError(StackyardError):
    """dbt could not run the project (as opposed to a model or test failing in it)."""


class DeadlineExceededError(StackyardError):
    """A step was still running (or waiting on its upstream) when its deadline passed."""


class RunLeaseHeldError(StackyardError):
    """Another run of the same source or of the transformation holds its lease: two runs
    of one thing never overlap."""


class UserCodeError(StackyardError):
    """The user's own code (a Python source, a policy function) raised.

    Reported as theirs: the message names the file and the original exception.
    """


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """A ``did you mean …?`` suffix for an unknown name, or an empty string.

    Args:
        word: the name the user wrote.
        candidates: the names that would have been valid.

    Returns:
        ``" (did you mean 'x'?)"`` when a close match exists, else ``""``.

    >>> did_you_mean("sorces", ["sources", "targets"])
    " (did you mean 'sources'?)"
    >>> did_you_mean("zzz", ["sources"])
    ''
    """
    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{matches[0]}'?)" if matches else ""


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """A count and its noun, singular for one: what a message says of how many there are.

    Args:
        count: how many.
        noun: the noun for one (``violation``).
        plural: the noun for several when it is not ``noun`` + ``s`` (``policies``).

    >>> counted(1, "policy violation"), counted(2, "policy violation")
    ('1 policy violation', '2 policy violations')
    >>> counted(1, "policy", "policies"), counted(1_200, "row")
    ('1 policy', '1,200 rows')
    """
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"


# The commands that act on a target (and take --target), as suggested in backticks.
_SUGGESTED = re.compile(r"`(stackyard (?:run|reload|doctor|restore|backup|backfill)\b[^`]*)`")
_TARGET_GIVEN = re.compile(r"(?:^|\s)(?:-t|--target)(?:\s|=|$)")


def on_target(text: str, target: str | None) -> str:
    """``text`` with each command it suggests (```stackyard …``` in backticks) given
    ``--target target`` where it names none: a fix for a problem on ``prod``, pasted as
    written, acted on the default target instead. ``None``: ``text`` as it is.

    >>> on_target("run `stackyard reload shop --yes` or `stackyard run -t prod`", "prod")
    'run `stackyard reload shop --yes --target prod` or `stackyard run -t prod`'
    """
    if not target or not text:
        return text

    def with_target(found: re.Match[str]) -> str:
        command = found.group(1)
        if _TARGET_GIVEN.search(command):
            return found.group(0)
        return f"`{command} --target {target}`"

    return _SUGGESTED.sub(with_target, text)
