"""Attempts of a step: each bounded by a deadline, retried with backoff and jitter.

A step that hangs (a source stuck waiting on a socket, an upstream "rescheduled" forever)
must not hold the run: each attempt runs in its own daemon thread and is given up when its
deadline passes, with an error naming the step and the deadline. Python cannot stop a
thread, so a given-up attempt may still finish in the background until the process exits;
its dlt package is then loaded by the next run (see :mod:`stackyard.ingest.loader`), and the
attempt is never retried in the same process, so two attempts never write at once.

Ctrl-C reaches the main thread only, which is waiting on the attempt: it asks the attempt to
stop (``interrupt``: a query cancelled, dlt told to stop) and waits until it has, so no
connection is closed or shared under a running query and the process does not exit with a
thread still inside a native driver. A second Ctrl-C, or the attempt's deadline passing,
ends that wait: the user asked twice, or the work ignores being asked (:class:`Abandoned`).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, wait
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from stackyard.config.orchestration import Retries
from stackyard.errors import Abandoned, DeadlineExceededError

T = TypeVar("T")


@dataclass
class _Outcome(Generic[T]):
    value: T | None = None
    error: BaseException | None = None
    # An event, not Thread.join: a join cut by Ctrl-C can mark a running thread as stopped
    # (CPython 3.11's _wait_for_tstate_lock releases the lock the running thread holds).
    done: threading.Event = field(default_factory=threading.Event)


def within_deadline(
    action: Callable[[], T],
    seconds: float,
    what: str,
    interrupt: Callable[[], None] | None = None,
    give_up: threading.Event | None = None,
) -> T:
    """Run ``action`` and return its result, or fail when it takes longer than ``seconds``.

    Args:
        action: the work; its exceptions are raised here as they are.
        seconds: the deadline.
        what: the step, as the error names it, e.g. ``source 'shop'``.
        interrupt: asks the work to stop soon (called from this thread on Ctrl-C); without
            it, the work runs to its end before the interrupt is raised.
        give_up: set by another thread (the main one, on a second Ctrl-C) to stop waiting
            for the work: :class:`Abandoned` is raised here at once.

    Raises:
        DeadlineExceededError: the action was still running at the deadline.
        KeyboardInterrupt: Ctrl-C, raised once the action has stopped.
        Abandoned: Ctrl-C, then a second one (or the deadline) before the action stopped;
            it may still be running.

    >>> within_deadline(lambda: 42, 5, "the answer")
    42
    """
    outcome: _Outcome[T] = _Outcome()

    def work() -> None:
        try:
            outcome.value = action()
        except BaseException as exc:  # handed to the caller's thread as it is
            outcome.error = exc
        finally:
            outcome.done.set()

    thread = threading.Thread(target=work, name=f"stackyard-step {what}", daemon=True)
    until = time.monotonic() + seconds
    thread.start()
    try:
        _wait(outcome.done, until, give_up, what)
    except Abandoned:
        raise  # given up on: nothing is waited for any more
    except KeyboardInterrupt:
        _stop(outcome.done, interrupt, until, what)
        raise
    if not outcome.done.is_set():
        raise DeadlineExceededError(
            f"{what} did not finish within its deadline of {_seconds(seconds)}; it was given "
            "up (still running or stuck waiting on its upstream)",
            hint="find what it waits on (the source system, a lock, a network path); raise "
            "deadline: in stackyard.yml only if it is really that slow",
        )
    if outcome.error is not None:
        raise outcome.error
    return outcome.value  # type: ignore[return-value]


def _wait(done: threading.Event, until: float, give_up: threading.Event | None, what: str) -> None:
    """Wait for ``done`` until ``until`` (a ``time.monotonic()``), or until ``give_up``."""
    while not done.is_set():
        left = until - time.monotonic()
        if left <= 0:
            return
        if give_up is not None and give_up.is_set():
            raise _abandoned(what)
        # In slices only when someone may give up: a thread stuck in user code (a source
        # sleeping between items) cannot be told to stop, only left behind.
        done.wait(min(left, 0.25) if give_up is not None else left)


def _abandoned(what: str) -> Abandoned:
    return Abandoned(
        f"interrupted while waiting for {what} to stop: stopped waiting; it may still be "
        "finishing in the warehouse",
        hint="check what is still running in the warehouse, and run again once it is idle",
    )


def _stop(
    done: threading.Event, interrupt: Callable[[], None] | None, until: float, what: str
) -> None:
    """Ask the work to stop, and wait until it has, or until a second Ctrl-C or the deadline
    (``until``, a ``time.monotonic()``) ends the wait.

    Raises:
        Abandoned: the work had not stopped when the wait ended.
    """
    if interrupt is not None:
        interrupt()
    try:
        done.wait(max(0.0, until - time.monotonic()))
    except KeyboardInterrupt:
        if interrupt is not None:
            interrupt()  # asked once more on the way out
    if done.is_set():
        return
    raise _abandoned(what) from None


def stop_all(
    futures: Sequence[Future[T]],
    interrupt: Callable[[], None],
    give_up: threading.Event | None = None,
    what: str = "the work",
) -> None:
    """Cancel the work that has not started, ask the rest to stop and wait until it has.

    A second Ctrl-C asks again; with ``give_up`` (the event the work's
    :func:`within_deadline` watches), it stops waiting instead: work stuck in user code
    (a source sleeping between two items) never sees a request to stop, and the run waited
    for it as long as its deadline, hours by default, with Ctrl-C ignored.

    Raises:
        Abandoned: a second Ctrl-C with ``give_up``.
    """
    for future in futures:
        future.cancel()
    while not all(f.done() for f in futures):
        interrupt()
        try:
            wait(futures)
        except KeyboardInterrupt:
            if give_up is None:
                continue
            give_up.set()
            wait(futures)  # each stops waiting for its work at once
            raise _abandoned(what) from None


@dataclass(frozen=True)
class Attempts(Generic[T]):
    """What came of a retried step: the last result and how many attempts it took."""

    result: T
    attempts: int


def retried(
    attempt: Callable[[], T],
    failed: Callable[[T], bool],
    policy_of: Callable[[T], Retries | None],
    on_retry: Callable[[int, T, float], None] = lambda n, r, w: None,
    sleep: Callable[[float], None] = time.sleep,
) -> Attempts[T]:
    """Call ``attempt`` until it does not fail, it fails for good, or retries run out.

    Args:
        attempt: one try; returns a result (failures are results, not exceptions).
        failed: whether a result is a failure.
        policy_of: how a failure is tried again (count, backoff factor and jitter), or
            ``None`` when it cannot go away on its own (bad config, not a network blip); see
            :func:`retry_policy`.
        on_retry: told ``(retry number, failed result, wait in seconds)`` before each wait.
        sleep: waits between attempts.

    >>> tries = iter([1, 1, 0])
    >>> retried(lambda: next(tries), bool, lambda r: Retries(backoff_factor=0), sleep=print)
    0.0
    0.0
    Attempts(result=0, attempts=3)
    """
    result = attempt()
    tries = 1
    while failed(result) and (policy := policy_of(result)) and tries <= policy.count:
        wait = policy.delay(tries)
        on_retry(tries, result, wait)
        sleep(wait)
        result = attempt()
        tries += 1
    return Attempts(result, tries)


# A refused connection: nothing listens at the address. A server being restarted listens
# again within seconds; a stopped server, or a wrong host or port, never does, and a step's
# own backoff (10 s, 20 s and 40 s by default, each up to half again) only made the user
# wait up to 105 s for the same answer.
REFUSED_RETRIES = Retries(count=2, backoff_factor=1.0, jitter=0.0)


def retry_policy(exc: BaseException, policy: Retries, transient: bool) -> Retries | None:
    """How a step that failed with ``exc`` is tried again: not at all when it is not
    ``transient`` (bad input fails the same way every time), for a few seconds at most when
    the connection was refused, else by the step's own ``policy``.

    >>> retry_policy(ValueError("bad row"), Retries(), False) is None
    True
    >>> retry_policy(ConnectionResetError(), Retries(), True).base_delays()
    [10.0, 20.0, 40.0]
    >>> retry_policy(ConnectionRefusedError(111, "refused"), Retries(), True).base_delays()
    [1.0, 2.0]
    >>> retry_policy(ConnectionRefusedError(111, "refused"), Retries(count=0), True).count
    0
    """
    if not transient:
        return None
    if not is_refused(exc):
        return policy
    return Retries(
        count=min(policy.count, REFUSED_RETRIES.count),
        backoff_factor=min(policy.backoff_factor, REFUSED_RETRIES.backoff_factor),
        jitter=min(policy.jitter, REFUSED_RETRIES.jitter),
    )


def is_refused(exc: BaseException) -> bool:
    """Whether a failure is a refused connection, somewhere in its chain of causes (drivers
    that wrap the socket's error keep only its words: libpq's "Connection refused").

    >>> wrapped = RuntimeError("extract failed")
    >>> wrapped.__cause__ = OSError('connection to server at "h", port 5 failed: '
    ...                             "Connection refused")
    >>> is_refused(wrapped), is_refused(ConnectionResetError()), is_refused(TimeoutError())
    (True, False, False)
    """
    return any(
        isinstance(inner, ConnectionRefusedError) or "connection refused" in str(inner).lower()
        for inner in _chain(exc)
    )


def refused_message(exc: BaseException, url: str | None = None) -> str:
    """What a refused connection means and what to check, naming the address the driver
    named (libpq's own advice, on a line of its own, is left out: this says it), else the
    one in the source's connection ``url`` (PyMySQL names the host only).

    >>> refused_message(OSError('connection to server at "127.0.0.1", port 5499 failed: '
    ...                         "Connection refused"))
    'connection refused at 127.0.0.1:5499 (nothing listens there): check that the server runs and the host and port the source connects to'
    >>> refused_message(ConnectionRefusedError(111, "Connection refused"),
    ...                 "mysql+pymysql://root:pw@db.example:3399/shop")  # doctest: +ELLIPSIS
    'connection refused at db.example:3399 (nothing listens there): ...'
    """
    address = ""
    for inner in _chain(exc):
        found = next((m for p in _ADDRESS if (m := p.search(str(inner)))), None)
        if found:
            address = f" at {found['host']}:{found['port']}"
            break
    if not address and url:
        address = _url_address(url)
    return (
        f"connection refused{address} (nothing listens there): check that the server runs "
        "and the host and port the source connects to"
    )


# Where drivers name the address they could not reach: libpq, urllib3, Python's sockets.
_ADDRESS = (
    re.compile(r'server at "(?P<host>[^"]+)", port (?P<port>\d+)'),
    re.compile(r"host='(?P<host>[^']+)', port=(?P<port>\d+)"),
    re.compile(r"\('(?P<host>[^']+)', (?P<port>\d+)\)"),
)


# The port a driver connects to when the URL names none.
_DEFAULT_PORTS = {"mysql": 3306, "mariadb": 3306, "postgresql": 5432, "postgres": 5432}


def _url_address(url: str) -> str:
    """`` at host:port`` for a connection URL naming a host, else "".

    >>> _url_address("mariadb+pymysql://root@127.0.0.1/test"), _url_address("sqlite:///a.db")
    (' at 127.0.0.1:3306', '')
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return ""
    port = parsed.port or _DEFAULT_PORTS.get(parsed.get_backend_name())
    if not parsed.host:
        return ""
    return f" at {parsed.host}:{port}" if port else f" at {parsed.host}"


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps: dlt's ``exception``, the cause or the context."""
    seen: list[BaseException] = []
    inner: BaseException | None = exc
    while inner is not None and all(inner is not s for s in seen):
        seen.append(inner)
        nested = getattr(inner, "exception", None) or inner.__cause__ or inner.__context__
        inner = nested if isinstance(nested, BaseException) else None
    return seen


# Words in a driver's "operational" error that mean the connection, not the query, failed.
_CONNECTION_WORDS = ("connect", "timeout", "timed out", "closed", "reset", "refused", "lock")


def looks_transient(exc: BaseException) -> bool:
    """Whether a failure may pass if the same thing is tried again later: a refused or cut
    connection, a timeout, a locked file; not bad input (a malformed row, a missing file or
    table, a broken contract), which fails the same way every time.

    >>> looks_transient(ConnectionResetError()), looks_transient(ValueError("bad row"))
    (True, False)
    """
    seen: set[int] = set()
    inner: BaseException | None = exc
    while inner is not None and id(inner) not in seen:
        seen.add(id(inner))
        if isinstance(inner, ConnectionError | TimeoutError):
            return True
        name = type(inner).__name__
        if name in ("ConnectTimeout", "ReadTimeout", "Timeout") or (
            name in ("OperationalError", "ConnectionError", "IOException")
            and any(word in str(inner).lower() for word in _CONNECTION_WORDS)
        ):
            return True
        inner = getattr(inner, "exception", None) or inner.__cause__ or inner.__context__
    return False


def _seconds(seconds: float) -> str:
    """A deadline as people write it.

    >>> _seconds(7200), _seconds(90), _seconds(0.5)
    ('2h', '90s', '0.5s')
    """
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def succeeded_after(attempts: int, failures: list[str]) -> str:
    """The note of a step that succeeded after ``failures`` (their errors, in order).

    >>> succeeded_after(3, ["timed out", "refused"])
    'loaded on attempt 3; 2 attempts failed before, the first: timed out'
    """
    before = (
        "attempt 1 failed"
        if len(failures) == 1
        else f"{len(failures)} attempts failed before, the first"
    )
    return f"loaded on attempt {attempts}; {before}: {failures[0]}"
