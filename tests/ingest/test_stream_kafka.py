"""The ``stream`` kind over Kafka.

No Kafka broker can run where these tests run: the consumer group's logic (batches, offsets
committed only after the load, re-reading after a failure, rejected rows with topic,
partition and offset) is tested against an in-process fake of confluent-kafka's ``Consumer``
(tests/ingest/kafka_fake.py); the unreachable broker is tested for real, with
confluent-kafka against a closed port.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackyard import Context
from stackyard.project import init_project
from stackyard.results import SourceLoad

confluent_kafka = pytest.importorskip("confluent_kafka")

from tests.ingest.kafka_fake import FakeBroker  # noqa: E402

BIN = Path(sys.executable).parent


def stackyard(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "stackyard"), *args], cwd=project, capture_output=True, text=True
    )


def add_source(project: Path, url: str, subject: str, *extra: str) -> None:
    done = stackyard(
        project, "source", "add", "events", "--kind", "stream", "--url", url,
        "--subject", subject, "--table", "orders", "--primary-key", "event_id", "--no-load",
        *extra,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def set_options(project: Path, options: str) -> None:
    entry = project / "stackyard.yml"
    entry.write_text(entry.read_text().replace("kind: stream", f"kind: stream\n    {options}"))


def events(ids: range | list[int]) -> list[bytes]:
    return [json.dumps({"event_id": i, "amount": round(i * 1.25, 2)}).encode() for i in ids]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    init_project(tmp_path / "p")
    return tmp_path / "p"


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBroker]:
    fake = FakeBroker()
    monkeypatch.setattr(confluent_kafka, "Consumer", fake.consumer)
    yield fake


def run(project: Path) -> SourceLoad:
    with Context(project) as ctx:
        (load,) = ctx.run(select=["events"], retry_loads=False).loads
    return load


def rows(project: Path) -> list[tuple[object, ...]]:
    with Context(project) as ctx:
        return ctx.sql(
            "select event_id, _topic, _partition, _offset from events.orders order by event_id"
        ).rows


def test_batches_commit_after_the_load_and_rejected_rows_keep_partition_and_offset(
    project: Path, broker: FakeBroker
) -> None:
    broker.produce("orders", 0, [*events(range(0, 6)), b"{not json"])
    broker.produce("orders", 1, [*events(range(6, 10)), b"[1, 2]", b'{"x": 1}'])
    add_source(project, "kafka://127.0.0.1:9092", "orders")
    set_options(project, "batch_size: 4")

    load = run(project)
    assert load.status == "loaded" and load.rows == 10 and load.rejected == 3
    assert [r[0] for r in rows(project)] == list(range(10))
    assert rows(project)[7] == (7, "orders", 1, 1)
    # Batches of at most 4; one commit, after every batch was read (and loaded), then close.
    consumed = [e for e in broker.log if e[0] == "consume"]
    assert all(size == 4 for _, size, _ in consumed) and sum(n for *_, n in consumed) == 13
    assert [e[0] for e in broker.log[-2:]] == ["commit", "close"]
    assert broker.log[-2][1] == [("orders", 0, 7), ("orders", 1, 6)]
    config = broker.configs[0]
    assert config["group.id"] == "stackyard_events_dev" and config["enable.auto.commit"] is False
    assert config["bootstrap.servers"] == "127.0.0.1:9092"
    with Context(project) as ctx:
        rejected = ctx.sql(
            "select file, line, reason from events._rejected_rows order by 1, 2"
        ).rows
    assert [(f, line) for f, line, _ in rejected] == [
        ("orders/0", 6),
        ("orders/1", 4),
        ("orders/1", 5),
    ]
    assert "not JSON" in rejected[0][2] and "not an object" in rejected[1][2]
    assert "event_id" in rejected[2][2]

    # Nothing new: nothing read, nothing committed again.
    again = run(project)
    assert again.rows == 0 and broker.committed["stackyard_events_dev"][("orders", 0)] == 7
    broker.produce("orders", 0, events([3, 10]))  # 3 again: merged on the key, not added
    run(project)
    assert [r[0] for r in rows(project)] == list(range(11))


def test_a_load_that_fails_commits_nothing_and_the_next_run_reads_it_again(
    project: Path, broker: FakeBroker
) -> None:
    broker.produce("orders", 0, events(range(100)))
    add_source(project, "kafka://127.0.0.1:9092", "orders")
    set_options(project, "batch_size: 10")
    broker.fail_consume_after = 30  # the broker goes away mid-run
    failed = run(project)
    assert failed.status == "failed"
    assert not broker.committed.get("stackyard_events_dev")
    broker.fail_consume_after = None
    assert run(project).rows == 100
    assert [r[0] for r in rows(project)] == list(range(100))


def test_loaded_but_not_committed_is_read_again_and_kept_once(
    project: Path, broker: FakeBroker
) -> None:
    broker.produce("orders", 0, events(range(50)))
    add_source(project, "kafka://127.0.0.1:9092", "orders")
    broker.fail_commits = 1  # as a run killed between its load and its commit
    first = run(project)
    assert first.status == "failed" and "did not take the offsets" in (first.error or "")
    assert len(rows(project)) == 50 and not broker.committed.get("stackyard_events_dev")
    broker.produce("orders", 0, events(range(50, 60)))
    assert run(project).rows == 60
    ids = [r[0] for r in rows(project)]
    assert ids == list(range(60))  # each once, none missing
    assert broker.committed["stackyard_events_dev"][("orders", 0)] == 60


def test_a_pattern_reads_every_matching_topic_in_the_named_group(
    project: Path, broker: FakeBroker
) -> None:
    broker.produce("orders.eu", 0, events(range(5)))
    broker.produce("orders.us", 0, events(range(5, 8)))
    broker.produce("payments", 0, events(range(100, 103)))
    add_source(project, "kafka://127.0.0.1:9092", r"^orders\..*")
    set_options(project, "consumer: etl_orders")
    assert run(project).rows == 8
    assert set(broker.committed["etl_orders"]) == {("orders.eu", 0), ("orders.us", 0)}


def test_a_topic_the_broker_does_not_have_is_a_clear_error(
    project: Path, broker: FakeBroker
) -> None:
    add_source(project, "kafka://127.0.0.1:9092", "missing")
    load = run(project)
    assert load.status == "failed"
    assert "no topic 'missing' on the Kafka broker 127.0.0.1:9092" in (load.error or "")


def test_kafka_urls_and_topics_are_checked_when_the_source_is_added(project: Path) -> None:
    for url, subject, says in [
        ("kafka://127.0.0.1:9092", "orders.>", "not a Kafka topic name"),
        ("kafka://127.0.0.1:9092", "^orders[", "not a regular expression"),
        ("kafka://broker", "orders", "host:port"),
        ("amqp://127.0.0.1:5672", "orders", "starts with nats:// (or tls://) or kafka://"),
    ]:
        done = stackyard(
            project, "source", "add", "events", "--kind", "stream", "--url", url,
            "--subject", subject, "--primary-key", "event_id", "--no-load",
        )  # fmt: skip
        assert done.returncode == 2 and says in done.stdout + done.stderr, (url, subject)
    assert "events" not in (project / "stackyard.yml").read_text()


def test_an_unreachable_broker_fails_the_load_and_names_it(project: Path) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    add_source(project, f"kafka://127.0.0.1:{port}", "orders")
    set_options(project, "retries: {count: 0}")
    done = stackyard(project, "run", "--select", "events", "--json")
    assert done.returncode == 1, done.stdout + done.stderr
    error = json.loads(done.stdout)["loads"][0]["error"]
    assert f"cannot reach the Kafka broker 127.0.0.1:{port}" in error
    assert "rdkafka" not in done.stderr  # librdkafka's own log lines are not printed
