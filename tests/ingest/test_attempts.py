"""Retries and deadlines of source loads in `stackyard run`, from each source's `retries:` and
`deadline:` in stackyard.yml (small waits set through the config)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackyard import Context
from stackyard.config.orchestration import Retries
from stackyard.console import CaptureConsole
from stackyard.ingest.attempts import looks_transient, retried
from stackyard.project import init_project

# A Python source that fails its first FAILS attempts with ERROR, then yields three rows;
# every attempt is counted in attempts.txt next to it.
SOURCE = """
import dlt
from pathlib import Path

COUNTER = Path(__file__).with_name("attempts.txt")


@dlt.source
def flaky(fails: int = 1, error: str = "ConnectionResetError", hang: int = 0):
    @dlt.resource(primary_key="id", write_disposition="merge")
    def events():
        n = int(COUNTER.read_text()) + 1 if COUNTER.exists() else 1
        COUNTER.write_text(str(n))
        if hang:
            import time
            time.sleep(hang)
        if n <= fails:
            raise {
                "ConnectionResetError": ConnectionResetError,
                "ConnectionRefusedError": ConnectionRefusedError,
                "ValueError": ValueError,
            }[error](f"attempt {n} went wrong")
        yield from ({"id": i, "n": n} for i in range(3))

    return events
"""


def project(root: Path, options: str, policy: str) -> Path:
    init_project(root)
    (root / "sources").mkdir(exist_ok=True)
    (root / "sources" / "flaky.py").write_text(SOURCE)
    text = (root / "stackyard.yml").read_text()
    entry = (
        "sources:\n  events:\n    kind: python\n    path: sources/flaky.py\n"
        f"    function: flaky\n    options: {options}\n{policy}"
    )
    (root / "stackyard.yml").write_text(text.replace("sources: {}\n", entry))
    return root


def attempts(root: Path) -> int:
    return int((root / "sources" / "attempts.txt").read_text())


def test_a_transient_failure_is_retried_and_the_rows_land_once(tmp_path: Path) -> None:
    root = project(
        tmp_path / "p", "{fails: 2}", "    retries: {count: 3, backoff_factor: 0.01, jitter: 0.5}\n"
    )
    console = CaptureConsole()
    with Context(root, console=console) as context:
        result = context.run()
        (load,) = result.loads
        assert load.status == "loaded", load.error
        assert load.rows == 3
        assert attempts(root) == 3
        rows = context.sql("select count(*), min(n), max(n) from events.events").rows
    assert list(rows) == [(3, 3, 3)]
    said = console.text()
    assert "attempt 1 failed" in said and "attempt 2 failed" in said, said
    # Kept where logs and --json see it: only a progress line said so, overwritten in a
    # terminal and never written to a log or to --json.
    (note,) = load.notes
    assert note.startswith("loaded on attempt 3; 2 attempts failed before, the first:"), note
    assert "attempt 1 went wrong" in note


def test_retries_run_out_and_the_load_fails_naming_the_attempts(tmp_path: Path) -> None:
    root = project(tmp_path / "p", "{fails: 99}", "    retries: {count: 2, backoff_factor: 0.01}\n")
    with Context(root) as context:
        result = context.run()
    (load,) = result.loads
    assert load.status == "failed"
    assert "attempt 3 went wrong" in (load.error or "")
    assert "after 3 attempts" in (load.error or "")
    assert attempts(root) == 3
    assert result.exit_code == 1


def test_bad_input_is_not_retried(tmp_path: Path) -> None:
    root = project(
        tmp_path / "p",
        "{fails: 99, error: ValueError}",
        "    retries: {count: 3, backoff_factor: 0.01}\n",
    )
    with Context(root) as context:
        (load,) = context.run().loads
    assert load.status == "failed"
    assert "attempt 1 went wrong" in (load.error or "")
    assert attempts(root) == 1


def test_a_hanging_source_fails_at_its_deadline_naming_it(tmp_path: Path) -> None:
    root = project(
        tmp_path / "p", "{fails: 0, hang: 600}", "    deadline: 2s\n    retries: {count: 3}\n"
    )
    with Context(root) as context:
        result = context.run()
    (load,) = result.loads
    assert load.status == "failed"
    assert "loading source 'events' did not finish within its deadline of 2s" in (load.error or "")
    assert attempts(root) == 1  # a given-up attempt is never run twice at once
    assert result.exit_code == 1


def test_the_defaults_are_the_runbooks() -> None:
    assert Retries().base_delays() == [10.0, 20.0, 40.0]
    waits = [Retries().delay(n) for n in (1, 2, 3)]
    assert all(base <= w <= base * 1.5 for base, w in zip([10, 20, 40], waits, strict=True))


def test_retried_stops_at_a_success() -> None:
    results = iter([True, False, True])
    waited: list[float] = []
    outcome = retried(lambda: next(results), bool, lambda r: Retries(jitter=0), sleep=waited.append)
    assert (outcome.result, outcome.attempts, waited) == (False, 2, [10.0])


@pytest.fixture()
def refuse_once_proxy(pg_database: dict[str, object]) -> Iterator[int]:
    """A TCP port in front of the test Postgres that cuts the first connection at once and
    forwards the rest: a database that blinks."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    seen = {"n": 0}

    def pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                s.close()

    def serve() -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            seen["n"] += 1
            if seen["n"] == 1:
                client.close()
                continue
            upstream = socket.create_connection(
                (str(pg_database["host"]), int(str(pg_database["port"])))
            )
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=pipe, args=(a, b), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


@pytest.mark.postgres
def test_a_database_that_drops_the_first_connection_is_read_on_retry(
    tmp_path: Path, pg_database: dict[str, object], refuse_once_proxy: int
) -> None:
    import psycopg

    dsn = (
        f"host={pg_database['host']} port={pg_database['port']} user={pg_database['user']} "
        f"dbname={pg_database['database']}"
    )
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("create table orders (id int primary key, amount int)")
        conn.execute("insert into orders select g, g * 10 from generate_series(1, 5) g")
    root = tmp_path / "p"
    init_project(root)
    url = (
        f"postgresql://{pg_database['user']}@127.0.0.1:{refuse_once_proxy}/"
        f"{pg_database['database']}"
    )
    entry = (
        f"sources:\n  app:\n    kind: sql_database\n    backend: pyarrow\n    connection: {url}\n"
        "    tables: {orders: {primary_key: id}}\n"
        "    retries: {count: 2, backoff_factor: 0.01}\n"
    )
    text = (root / "stackyard.yml").read_text().replace("sources: {}\n", entry)
    (root / "stackyard.yml").write_text(text)
    with Context(root) as context:
        (load,) = context.run().loads
        assert load.status == "loaded", load.error
        assert context.sql("select count(*), sum(amount) from app.orders").rows[0] == (5, 150)


def test_what_counts_as_transient() -> None:
    wrapped = RuntimeError("extract failed")
    wrapped.__cause__ = TimeoutError("read timed out")
    assert looks_transient(wrapped)
    assert not looks_transient(FileNotFoundError("no such file"))
    assert not looks_transient(KeyError("id"))


def _ctrl_c_soon() -> None:
    """SIGINT to the main thread, once it is waiting again (a real signal: it wakes a wait)."""
    import signal
    import time

    def press() -> None:
        time.sleep(0.2)
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    threading.Thread(target=press, daemon=True).start()


def test_a_second_ctrl_c_stops_waiting_for_work_that_does_not_stop() -> None:
    """Work asked to stop that keeps running (a query finishing in the warehouse) no longer
    holds the process: a second Ctrl-C ends the wait (was: it only asked again)."""
    from stackyard.errors import Abandoned
    from stackyard.ingest.attempts import within_deadline

    release = threading.Event()
    asked: list[str] = []

    def ignores_being_asked() -> int:
        release.wait(20)  # a failsafe only: the old wait ended here
        return 1

    def interrupt() -> None:
        asked.append("stop")
        if len(asked) == 1:
            _ctrl_c_soon()

    _ctrl_c_soon()
    try:
        with pytest.raises(Abandoned, match="may still be finishing in the warehouse"):
            within_deadline(ignores_being_asked, 3600, "the dbt build", interrupt)
    finally:
        release.set()
    assert Abandoned.exit_code == 130
    assert asked == ["stop", "stop"]


def test_a_refused_connection_is_tried_again_for_seconds_not_minutes() -> None:
    # Nothing listening was retried as a blip: 10 s, 20 s and 40 s (each up to half again),
    # so a stopped database or a wrong port took about 95 s to fail.
    from stackyard.ingest.attempts import is_refused, retry_policy

    refused = RuntimeError("extract failed")  # dlt's wrapping of the driver's error
    refused.__cause__ = OSError(
        'connection failed: connection to server at "127.0.0.1", port 5499 failed: '
        "Connection refused\n\tIs the server running on that host and accepting TCP/IP "
        "connections?"
    )
    assert is_refused(refused) and is_refused(ConnectionRefusedError(111, "refused"))
    assert not is_refused(ConnectionResetError()) and not is_refused(TimeoutError())
    waited: list[float] = []
    outcome = retried(
        lambda: refused, bool, lambda e: retry_policy(e, Retries(), True), sleep=waited.append
    )
    assert outcome.attempts == 3 and sum(waited) <= 3.0, (outcome.attempts, waited)
    # a refused connection is never tried more than the source allows
    assert retry_policy(refused, Retries(count=1), True) == Retries(
        count=1, backoff_factor=1.0, jitter=0.0
    )
    assert retry_policy(refused, Retries(count=0), True) == Retries(
        count=0, jitter=0.0, backoff_factor=1.0
    )
    # a cut connection or a timeout may be a blip: the source's own backoff holds
    assert retry_policy(ConnectionResetError(), Retries(), True) == Retries()
    assert retry_policy(refused, Retries(), False) is None  # bad input is never tried again
