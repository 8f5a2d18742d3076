"""The ``stream`` source kind against the machine's NATS JetStream server: events land once
(at-least-once delivery, merged on the key), across a kill -9, with malformed ones kept."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackyard import Context
from stackyard.project import init_project
from tests.conftest import unavailable
from tests.ingest import jetstream

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.nats


class Stream:
    """A throwaway JetStream stream and a project with a stream source reading it."""

    def __init__(self, project: Path) -> None:
        tag = uuid.uuid4().hex[:10]
        self.name, self.prefix, self.project = f"SYT_{tag.upper()}", f"syt{tag}", project
        self.subject = f"{self.prefix}.created"

    def stackyard(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(BIN / "stackyard"), *args], cwd=self.project, capture_output=True, text=True
        )
        if check:
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return done

    def add_source(self, *extra: str) -> None:
        self.stackyard(
            "source", "add", "events", "--kind", "stream", "--url", jetstream.NATS_URL,
            "--subject", f"{self.prefix}.>", "--table", "orders", "--primary-key", "event_id",
            "--no-load", *extra,
        )  # fmt: skip

    def counts(self) -> tuple[int, int]:
        with Context(self.project) as ctx:
            row = ctx.sql("select count(*), count(distinct event_id) from events.orders").rows[0]
        return int(row[0]), int(row[1])


@pytest.fixture
def stream(tmp_path: Path) -> Iterator[Stream]:
    project = tmp_path / "p"
    init_project(project)
    s = Stream(project)
    try:
        jetstream.reset_stream(s.name, f"{s.prefix}.>")
    except Exception as exc:  # the server is a precondition, not the thing tested
        unavailable("NATS JetStream at " + jetstream.NATS_URL, repr(exc))
    yield s
    jetstream.delete_stream(s.name)


def test_events_load_once_and_malformed_ones_are_kept_with_their_sequence(
    stream: Stream,
) -> None:
    jetstream.publish_events(stream.subject, range(300))
    jetstream.publish(stream.subject, [b"{not json", b"[1, 2]", json.dumps({"x": 1}).encode()])
    jetstream.publish_events(stream.subject, range(300, 400))
    stream.add_source()
    first = stream.stackyard("run", "--select", "events", "--json", check=False)
    result = json.loads(first.stdout)
    assert stream.counts() == (400, 400)
    (load,) = result["loads"]
    assert load["rejected"] == 3 and sum(t["rows"] for t in load["tables"]) == 400
    with Context(stream.project) as ctx:
        rejected = ctx.sql(
            "select file, line, reason from events._rejected_rows order by line"
        ).rows
        amount = ctx.sql("select amount from events.orders where event_id = 7").rows[0][0]
    assert [(f, line) for f, line, _ in rejected] == [(stream.subject, n) for n in (301, 302, 303)]
    assert "not JSON" in rejected[0][2] and "not an object" in rejected[1][2]
    assert "event_id" in rejected[2][2]
    assert float(amount) == 8.75  # cents kept

    # Nothing new: nothing loaded, nothing left pending on the server.
    again = json.loads(stream.stackyard("run", "--select", "events", "--json").stdout)
    assert sum(t["rows"] for t in again["loads"][0]["tables"]) == 0
    info = jetstream.consumer_info(stream.name, "stackyard_events_dev")
    assert (info.num_pending, info.num_ack_pending) == (0, 0)

    # A message redelivered by the server (same key) is merged, not added.
    jetstream.publish_events(stream.subject, [5, 400])
    stream.stackyard("run", "--select", "events")
    assert stream.counts() == (401, 401)


def test_nested_and_optional_fields_load_and_a_rename_fails_every_run(stream: Stream) -> None:
    jetstream.publish_events(stream.subject, range(5))  # {"customer": {"id": …}} nested
    # Added with its first load: the staging model it writes selects customer__id.
    stream.stackyard(
        "source", "add", "events", "--kind", "stream", "--url", jetstream.NATS_URL,
        "--subject", f"{stream.prefix}.>", "--table", "orders", "--primary-key", "event_id",
    )  # fmt: skip

    # Events differ: a customer left null, a field only some events have. Each was checked
    # alone, nested objects unflattened: the run failed every other time.
    events = [
        {"event_id": 5, "amount": 1.0, "customer": None},
        {"event_id": 6, "amount": 2.0, "customer": {"id": 6}, "note": "gift"},
        {"event_id": 7, "amount": 3.0, "customer": {"id": 7}},
    ]
    jetstream.publish(stream.subject, [json.dumps(e).encode() for e in events])
    stream.stackyard("run")
    with Context(stream.project) as ctx:
        rows = ctx.sql("select event_id, customer__id from events.orders where event_id >= 5")
    assert sorted(rows.rows) == [(5, None), (6, 6), (7, 7)]

    # Renamed upstream: the load fails, and keeps failing until the model is fixed.
    jetstream.publish(stream.subject, [json.dumps({"event_id": 8, "client": {"id": 8}}).encode()])
    for _ in range(2):
        done = stream.stackyard("run", "--json", check=False)
        assert done.returncode == 1
        (load,) = json.loads(done.stdout)["loads"]
        assert "amount, customer__id are missing from the new data" in load["error"]
    assert stream.counts() == (8, 8)


def test_a_key_sent_twice_before_a_run_keeps_its_later_version(stream: Stream) -> None:
    versions = [
        {"event_id": 1, "amount": 1.0, "note": "first"},
        {"event_id": 1, "amount": 2.0, "note": "second"},
        {"event_id": 2, "amount": 5.0, "note": "only"},
        {"event_id": 1, "amount": 3.0, "note": "third"},
    ]
    jetstream.publish(stream.subject, [json.dumps(v).encode() for v in versions])
    stream.add_source()
    stream.stackyard("run", "--select", "events")
    with Context(stream.project) as ctx:
        rows = ctx.sql("select event_id, note, _sequence from events.orders order by 1").rows
    assert [(r[0], r[1], int(r[2])) for r in rows] == [(1, "third", 4), (2, "only", 3)]

    # A reload would drop the table and read nothing back (the events were acknowledged).
    for args in (("--dry-run",), ("--yes",)):
        refused = stream.stackyard("reload", "events", *args, check=False)
        assert refused.returncode == 2 and "is a stream" in refused.stderr
    assert stream.counts() == (2, 2)


@pytest.mark.slow
def test_kill_9_after_messages_were_delivered_then_rerun_loads_each_event_once(
    stream: Stream,
) -> None:
    jetstream.publish_events(stream.subject, range(10_000))
    stream.add_source()
    # Small batches, so the run is killed with messages delivered and not acknowledged.
    entry = stream.project / "stackyard.yml"
    entry.write_text(entry.read_text().replace("kind: stream", "kind: stream\n    batch_size: 500"))
    run = subprocess.Popen(
        [str(BIN / "stackyard"), "run", "--select", "events"],
        cwd=stream.project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and run.poll() is None:
        try:
            delivered = jetstream.consumer_info(stream.name, "stackyard_events_dev").num_ack_pending
        except Exception:  # the consumer does not exist until the run creates it
            delivered = 0
        if delivered:
            break
        time.sleep(0.05)
    assert run.poll() is None, "the run ended before any message was delivered"
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    assert jetstream.consumer_info(stream.name, "stackyard_events_dev").num_ack_pending > 0

    stream.stackyard("run", "--select", "events")
    assert stream.counts() == (10_000, 10_000)
    info = jetstream.consumer_info(stream.name, "stackyard_events_dev")
    assert (info.num_pending, info.num_ack_pending) == (0, 0)
    with Context(stream.project) as ctx:
        assert ctx.sql("select min(event_id), max(event_id) from events.orders").rows[0] == (
            0,
            9_999,
        )


def test_unreachable_server_fails_the_load_and_names_the_server(stream: Stream) -> None:
    stream.add_source()
    entry = stream.project / "stackyard.yml"
    entry.write_text(
        entry.read_text().replace(
            jetstream.NATS_URL, "nats://127.0.0.1:9\n    retries: {count: 1, backoff_factor: 0}"
        )
    )
    done = stream.stackyard("run", "--select", "events", "--json", check=False)
    assert done.returncode == 1
    error = json.loads(done.stdout)["loads"][0]["error"]
    assert "cannot reach the stream server nats://127.0.0.1:9" in error
    assert "(after 2 attempts)" in error  # an unreachable server is worth trying again


def test_subject_no_stream_captures_is_a_clear_error(stream: Stream) -> None:
    stream.stackyard(
        "source", "add", "events", "--kind", "stream", "--url", jetstream.NATS_URL,
        "--subject", "nothing_captures_this.>", "--primary-key", "event_id", "--no-load",
    )  # fmt: skip
    done = stream.stackyard("run", "--select", "events", "--json", check=False)
    assert done.returncode == 1
    error = json.loads(done.stdout)["loads"][0]["error"]
    assert "no JetStream stream captures subject 'nothing_captures_this.>'" in error


def test_stream_source_needs_a_key_and_a_known_url(stream: Stream) -> None:
    no_key = stream.stackyard(
        "source", "add", "events", "--kind", "stream", "--url", jetstream.NATS_URL,
        "--subject", "a.>", "--no-load", check=False,
    )  # fmt: skip
    assert no_key.returncode == 2 and "needs --primary-key" in no_key.stdout + no_key.stderr
    kafka = stream.stackyard(
        "source", "add", "events", "--kind", "stream", "--url", "kafka://127.0.0.1:9092",
        "--subject", "a.>", "--primary-key", "id", "--no-load", check=False,
    )  # fmt: skip
    assert kafka.returncode == 2 and "not a Kafka topic name" in kafka.stdout + kafka.stderr
    assert "events" not in (stream.project / "stackyard.yml").read_text()


def test_each_target_reads_every_event(stream: Stream) -> None:
    # One consumer for both targets split the stream between them, each run "succeeded".
    config = stream.project / "stackyard.yml"
    config.write_text(
        config.read_text().replace(
            "targets:\n",
            "targets:\n  other:\n    type: duckdb\n    path: .stackyard/other.duckdb\n",
            1,
        )
    )
    jetstream.publish_events(stream.subject, range(5))
    stream.add_source()
    stream.stackyard("run", "--select", "events")
    jetstream.publish_events(stream.subject, range(5, 8))
    stream.stackyard("run", "--select", "events", "--target", "other")
    stream.stackyard("run", "--select", "events")
    for target in ("dev", "other"):
        with Context(stream.project) as ctx:
            count = ctx.sql("select count(*) from events.orders", target=target).rows[0][0]
        assert count == 8, target


def test_a_source_removed_and_added_again_reads_the_stream_from_its_start(stream: Stream) -> None:
    jetstream.publish_events(stream.subject, range(4))
    add = (
        "source", "add", "events", "--kind", "stream", "--url", jetstream.NATS_URL,
        "--subject", f"{stream.prefix}.>", "--table", "orders", "--primary-key", "event_id",
    )  # fmt: skip
    stream.stackyard(*add)
    removed = stream.stackyard("source", "remove", "events", "--drop-data", "--yes")
    assert "stackyard_events_dev" in removed.stdout  # the consumer went with the source
    # The consumer had every event acknowledged: the new source's first load found none.
    stream.stackyard(*add)
    assert stream.counts() == (4, 4)


def test_numbers_no_column_holds_are_rejected_not_stuck_or_nulled(stream: Stream) -> None:
    # A 20-digit integer failed the load on every run (the stream stuck behind it), and NaN
    # or 1e400 was loaded as NULL without a word.
    jetstream.publish(
        stream.subject,
        [
            b'{"event_id": 1, "amount": 1.5}',
            b'{"event_id": 2, "amount": 12345678901234567890}',
            b'{"event_id": 3, "amount": NaN}',
            b'{"event_id": 4, "amount": 1e400}',
            b'{"event_id": 5, "amount": 2.5}',
            # More digits than a double keeps: it loaded rounded to 1.2345678901234567e+19.
            b'{"event_id": 6, "amount": 12345678901234567890.12}',
            # Seventeen digits a double printed are that double exactly: kept.
            b'{"event_id": 7, "amount": 0.30000000000000004}',
        ],
    )
    stream.add_source()
    for _ in range(2):
        stream.stackyard("run", "--select", "events")  # exit 0, every time
    assert stream.counts() == (3, 3)
    with Context(stream.project) as ctx:
        rejected = ctx.sql("select line, column_name, reason from events._rejected_rows order by 1")
        kept = ctx.sql("select amount from events.orders where event_id = 7").rows
    assert [(int(r[0]), r[1]) for r in rejected.rows] == [
        (2, "amount"),
        (3, "amount"),
        (4, "amount"),
        (6, "amount"),
    ]
    assert "wider than a 64-bit integer" in rejected.rows[0][2]
    assert "not a finite number" in rejected.rows[1][2]
    assert "more digits than a double-precision column keeps" in rejected.rows[3][2]
    assert [tuple(r) for r in kept] == [(0.30000000000000004,)]


def test_an_event_of_another_type_is_rejected_not_blocking_the_stream(stream: Stream) -> None:
    # dlt put "ten" in a variant column, which the frozen-types contract refused: nothing was
    # acknowledged, and every run failed on the same event, suggesting a reload a stream
    # cannot do.
    jetstream.publish(stream.subject, [b'{"event_id": 1, "amount": 10, "tags": [1, 2]}'])
    stream.add_source()
    stream.stackyard("run", "--select", "events")
    jetstream.publish(
        stream.subject,
        [
            b'{"event_id": 2, "amount": "ten"}',
            b'{"event_id": 3, "amount": "12", "tags": [3]}',
            b'{"event_id": 4, "amount": 4, "tags": [4, "four"]}',
            # Within one run too: the first event to carry a column sets its type.
            b'{"event_id": 5, "amount": 5, "size": 1}',
            b'{"event_id": 6, "amount": 6, "size": "large"}',
            b'{"event_id": 7, "amount": 7, "size": 2}',
        ],
    )
    for _ in range(2):
        done = json.loads(stream.stackyard("run", "--select", "events", "--json").stdout)
    assert done["loads"][0]["rejected"] == 0  # the second run had nothing left to read
    assert stream.counts() == (4, 4)
    with Context(stream.project) as ctx:
        kept = ctx.sql("select event_id, amount, size from events.orders order by 1").rows
        rejected = ctx.sql(
            "select line, column_name, reason from events._rejected_rows order by 1"
        ).rows
    assert [tuple(r) for r in kept] == [(1, 10, None), (3, 12, None), (5, 5, 1), (7, 7, 2)]
    assert [(int(r[0]), r[1]) for r in rejected] == [(2, "amount"), (4, "tags"), (6, "size")]
    assert "amount holds the text 'ten', which its bigint column cannot hold" in rejected[0][2]
    info = jetstream.consumer_info(stream.name, "stackyard_events_dev")
    assert (info.num_pending, info.num_ack_pending) == (0, 0)


def test_integers_then_fractions_in_a_first_run_load_as_exact_doubles(stream: Stream) -> None:
    # The first event typed amount bigint, and every later fraction was rejected as text
    # its bigint column could not hold; a fraction nested in a list's objects too.
    jetstream.publish(
        stream.subject,
        [
            b'{"event_id": 1, "amount": 10, "items": [{"qty": 1}]}',
            b'{"event_id": 2, "amount": 9.5, "items": [{"qty": 1.5}]}',
            b'{"event_id": 3, "amount": 0.1, "tags": [1, 2.5]}',
            b'{"event_id": 4, "amount": 0.30000000000000004}',
            # A double would round it (to 9007199254740992): set aside, never rounded.
            b'{"event_id": 5, "amount": 9007199254740993}',
            b'{"event_id": 6, "amount": -7}',
        ],
    )
    stream.add_source()
    done = json.loads(stream.stackyard("run", "--select", "events", "--json").stdout)
    assert done["loads"][0]["rejected"] == 1
    with Context(stream.project) as ctx:
        kept = ctx.sql("select event_id, amount from events.orders order by 1").rows
        qty = ctx.sql("select qty from events.orders__items order by 1").rows
        tags = ctx.sql("select value from events.orders__tags order by 1").rows
        rejected = ctx.sql("select line, column_name, reason from events._rejected_rows").rows
    assert [tuple(r) for r in kept] == [
        (1, 10.0),
        (2, 9.5),
        (3, 0.1),
        (4, 0.30000000000000004),
        (6, -7.0),
    ]
    assert all(type(r[1]) is float for r in kept)
    assert [r[0] for r in qty] == [1.0, 1.5]
    assert [r[0] for r in tags] == [1.0, 2.5]
    assert [(int(r[0]), r[1]) for r in rejected] == [(5, "amount")]
    assert "a double-precision column would round" in rejected[0][2]


def test_an_event_no_column_can_take_is_rejected_and_never_blocks_the_stream(
    stream: Stream,
) -> None:
    # Each of these failed the load (INT64 out of range, NOT NULL on the key, dlt's naming
    # on an empty name); never acknowledged, every later run failed on the same event and
    # said to reload, which a stream cannot do.
    jetstream.publish(stream.subject, [b'{"event_id": 1, "amount": 5}'])
    stream.add_source()
    stream.stackyard("run", "--select", "events")
    jetstream.publish(
        stream.subject,
        [
            b'{"event_id": 2, "amount": "9223372036854775808"}',
            b'{"event_id": 3, "amount": "-9223372036854775809"}',
            b'{"event_id": {"a": 1}, "amount": 3}',
            b'{"event_id": 5, "amount": 4, "": 3}',
            b'{"event_id": 6, "amount": "-9223372036854775808"}',
            b'{"event_id": 7, "amount": 7, "items": [{" ": 1}]}',
        ],
    )
    for _ in range(2):
        done = stream.stackyard("run", "--select", "events", "--json")  # exit 0, every time
    assert json.loads(done.stdout)["loads"][0]["rejected"] == 0  # nothing left to read
    with Context(stream.project) as ctx:
        kept = ctx.sql("select event_id, amount from events.orders order by 1").rows
        columns = ctx.sql(
            "select column_name from information_schema.columns "
            "where table_schema = 'events' and table_name = 'orders'"
        ).rows
        rejected = ctx.sql(
            "select line, column_name, reason from events._rejected_rows order by 1"
        ).rows
    assert [tuple(r) for r in kept] == [(1, 5), (6, -(2**63))]
    assert "event_id__a" not in {r[0] for r in columns}
    assert [int(r[0]) for r in rejected] == [2, 3, 4, 5, 7]
    assert "wider than its bigint column" in rejected[0][2] and rejected[1][1] == "amount"
    assert "the key column event_id holds an object, not a single value" in rejected[2][2]
    assert "has an empty name" in rejected[3][2]
    assert "a field inside items has a blank name" in rejected[4][2]
    info = jetstream.consumer_info(stream.name, "stackyard_events_dev")
    assert (info.num_pending, info.num_ack_pending) == (0, 0)


def test_text_a_double_column_would_round_is_rejected_and_the_advice_holds(stream: Stream) -> None:
    # Text in a double column was converted and loaded rounded without a word, though the
    # rejection of a number with too many digits advised sending it as a JSON string.
    jetstream.publish(stream.subject, [b'{"event_id": 1, "price": 1.5, "note": "a"}'])
    stream.add_source()
    stream.stackyard("run", "--select", "events")
    jetstream.publish(
        stream.subject,
        [
            b'{"event_id": 2, "price": "9007199254740993"}',
            b'{"event_id": 3, "price": "0.1234567890123456789"}',
            b'{"event_id": 4, "price": "12345678901234567890.12"}',
            b'{"event_id": 5, "price": "2.5"}',
            b'{"event_id": 6, "price": "NaN"}',
            # The advice: as a string in a text column, the number is kept as sent.
            b'{"event_id": 7, "price": 1, "note": "12345678901234567890.12"}',
            # Within one run: text of an integer past 2**53, then a fraction.
            b'{"event_id": 8, "price": 1, "total": 10}',
            b'{"event_id": 9, "price": 1, "total": "9007199254740993"}',
            b'{"event_id": 10, "price": 1, "total": 9.5}',
        ],
    )
    stream.stackyard("run", "--select", "events")
    with Context(stream.project) as ctx:
        kept = ctx.sql("select event_id, price, note, total from events.orders order by 1").rows
        rejected = ctx.sql(
            "select line, column_name, reason from events._rejected_rows order by 1"
        ).rows
    assert [tuple(r) for r in kept] == [
        (1, 1.5, "a", None),
        (5, 2.5, None, None),
        (7, 1.0, "12345678901234567890.12", None),
        (8, 1.0, None, 10),
        (9, 1.0, None, 9007199254740993),
    ]
    assert [(int(r[0]), r[1]) for r in rejected] == [
        (2, "price"),
        (3, "price"),
        (4, "price"),
        (6, "price"),
        (10, "total"),
    ]
    assert "more digits than its double-precision column keeps" in rejected[0][2]
    assert "(it would load as 0.12345678901234568)" in rejected[1][2]
    assert "a JSON string in a field whose values are all strings" in rejected[2][2]
    assert "not a finite number" in rejected[3][2]
    assert "an integer past 2**53" in rejected[4][2]


def test_fields_that_land_in_one_column_or_in_a_column_stackyard_writes_are_rejected(
    stream: Stream,
) -> None:
    # dlt kept one value of two fields landing in one column and dropped the other without a
    # word; a field named as a column dlt or stackyard writes had its value replaced.
    jetstream.publish(
        stream.subject,
        [
            b'{"event_id": 1, "amount": 1, "x": 1}',
            b'{"event_id": 2, "amount": 1, "A": 4, "a": 5}',
            b'{"event_id": 3, "amount": 1, "x": 2, "\xc3\x84": 6}',
            b'{"event_id": 4, "amount": 1, "_loaded_at": "2020-01-01"}',
            b'{"event_id": 5, "amount": 1, "_dlt_id": "mine"}',
            b'{"event_id": 6, "amount": 1, "_Sequence": 99}',
            b'{"event_id": 7, "amount": 1, "items": [{"_dlt_parent_id": "p"}]}',
            b'{"event_id": 8, "amount": 1, "c": {"B": 1, "b": 2}}',
        ],
    )
    stream.add_source()
    for _ in range(2):
        stream.stackyard("run", "--select", "events")  # exit 0, every time
    with Context(stream.project) as ctx:
        kept = ctx.sql("select event_id, x, _sequence from events.orders order by 1").rows
        rejected = ctx.sql(
            "select line, column_name, reason from events._rejected_rows order by 1"
        ).rows
    assert [(r[0], r[1], int(r[2])) for r in kept] == [(1, 1, 1)]
    assert [(int(r[0]), r[1]) for r in rejected] == [
        (2, "a"),
        (3, "x"),
        (4, "_loaded_at"),
        (5, "_dlt_id"),
        (6, "_sequence"),
        (7, "items___dlt_parent_id"),
        (8, "c__b"),
    ]
    assert "the fields 'A' and 'a' both load into the column a" in rejected[0][2]
    assert "the fields 'x' and 'Ä' both load into the column x" in rejected[1][2]
    assert "its value would be replaced; rename the field" in rejected[2][2]


def test_a_field_named_twice_in_one_event_is_rejected_not_loaded_with_one_value(
    stream: Stream,
) -> None:
    # JSON allows a name twice and Python's reader keeps the last value: the first was lost
    # without a word.
    jetstream.publish(
        stream.subject,
        [
            b'{"event_id": 1, "amount": 1}',
            b'{"event_id": 2, "amount": 1, "amount": 2}',
            b'{"event_id": 3, "amount": 3, "c": {"b": 1, "b": 2}}',
        ],
    )
    stream.add_source()
    stream.stackyard("run", "--select", "events")
    with Context(stream.project) as ctx:
        kept = ctx.sql("select event_id, amount from events.orders order by 1").rows
        rejected = ctx.sql(
            "select line, column_name, reason from events._rejected_rows order by 1"
        ).rows
    assert [(int(r[0]), int(r[1])) for r in kept] == [(1, 1)]
    assert [(int(r[0]), r[1]) for r in rejected] == [(2, "amount"), (3, "b")]
    assert "the field amount appears twice in one object" in rejected[0][2]
