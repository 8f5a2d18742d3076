"""Kafka transport of the ``stream`` kind: a consumer group read with confluent-kafka.

The consumer group is the source's durable name (``consumer:``, default
``stackyard_<source>_<target>``). Automatic offset commits are off: a run commits, per
partition, the offset after the last event it read, and only once the load is in the warehouse. A run that
dies commits nothing, so the group's next run starts again from the last commit and the merge
on the key keeps re-read events single. ``auto.offset.reset`` is ``earliest``: a new group
reads the topic from its start.

The subject is one topic, or a regular expression over topic names when it starts with ``^``
(librdkafka's regex subscription: topics created later that match are picked up too).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from stackyard.config.streams import StreamSource
from stackyard.errors import ConfigError, LoadError, SourceUnreachableError
from stackyard.ingest.streams import Event

CONNECT_TIMEOUT = 5.0
# Columns stackyard adds to each event: where it came from.
TOPIC, PARTITION, OFFSET, PUBLISHED_AT = "_topic", "_partition", "_offset", "_published_at"
# librdkafka's own log lines (a refused connection, a retry) are debug output here: what
# matters of them reaches the user through the error they end in.
LOG = logging.getLogger("stackyard.ingest.kafka")


class _DebugLog:
    """Where confluent-kafka sends librdkafka's log (it calls ``log(level, fmt, *args)``)."""

    def log(self, level: int, msg: str, *args: Any) -> None:
        LOG.debug(msg, *args)


class KafkaTransport:
    """One run's consumer in the source's consumer group."""

    position_column = OFFSET

    def __init__(self, name: str, config: StreamSource, url: str, consumer: str) -> None:
        self.name, self.config = name, config
        self.brokers = url.partition("://")[2].rstrip("/")
        self.group = consumer
        self.redelivered = 0
        self._consumer: Any = None
        self._errors: list[Any] = []

    def open(self) -> None:
        import confluent_kafka

        self._consumer = confluent_kafka.Consumer(
            {
                "bootstrap.servers": self.brokers,
                "group.id": self.group,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "max.poll.interval.ms": int(self.config.ack_wait * 1000),
                "socket.connection.setup.timeout.ms": int(CONNECT_TIMEOUT * 1000),
                "error_cb": self._errors.append,
                "logger": _DebugLog(),
            }
        )
        try:
            # librdkafka connects in the background and retries forever: asking for the
            # cluster's metadata is how a run learns, within a deadline, that nobody answers.
            metadata = self._consumer.list_topics(timeout=CONNECT_TIMEOUT)
        except confluent_kafka.KafkaException as exc:
            error = self._errors[-1] if self._errors else exc.args[0]
            cause = error.str() if hasattr(error, "str") else error
            self.close()
            raise SourceUnreachableError(
                f"source '{self.name}': cannot reach the Kafka broker {self.brokers} ({cause})",
                hint="check that the broker runs and the URL (kafka://host:9092) is right; "
                "nothing was read",
            ) from exc
        topic = self.config.subject
        if not topic.startswith("^") and topic not in metadata.topics:
            self.close()
            raise ConfigError(
                f"sources.{self.name}: no topic '{topic}' on the Kafka broker {self.brokers}",
                hint="create it, or check the name (a pattern over topic names starts with ^)",
            )
        self._consumer.subscribe([topic])

    def fetch(self, size: int) -> list[Event]:
        from confluent_kafka import KafkaError

        events: list[Event] = []
        for msg in self._consumer.consume(num_messages=size, timeout=self.config.max_wait):
            error = msg.error()
            if error is None:
                events.append(_event(msg))
            elif error.code() != KafkaError._PARTITION_EOF:
                raise LoadError(
                    f"source '{self.name}': Kafka broker {self.brokers} refused a read "
                    f"({error.str()})",
                    hint="nothing of this run was committed; the next run reads it again",
                )
        return events

    def pending(self) -> int:
        """Events after the group's position in the partitions assigned to this run."""
        from confluent_kafka import OFFSET_INVALID

        assigned = self._consumer.assignment()
        if not assigned:
            return 1  # still joining the group: nothing known yet, keep waiting
        positions = self._consumer.position(assigned)
        committed = {
            (tp.topic, tp.partition): tp.offset
            for tp in self._consumer.committed(assigned, timeout=CONNECT_TIMEOUT)
        }
        behind = 0
        for tp in positions:
            low, high = self._consumer.get_watermark_offsets(tp, timeout=CONNECT_TIMEOUT)
            at = tp.offset
            if at == OFFSET_INVALID:
                at = committed.get((tp.topic, tp.partition), OFFSET_INVALID)
            behind += max(0, high - (low if at == OFFSET_INVALID else at))
        return behind

    def commit(self, events: list[Event]) -> None:
        from confluent_kafka import KafkaException, TopicPartition

        after: dict[tuple[str, int], int] = {}
        for event in events:
            where = (event.columns[TOPIC], event.columns[PARTITION])
            after[where] = max(after.get(where, 0), event.position + 1)
        offsets = [TopicPartition(t, p, o) for (t, p), o in sorted(after.items())]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            raise LoadError(
                f"source '{self.name}': loaded, but the Kafka broker {self.brokers} did not "
                f"take the offsets ({exc.args[0]})",
                hint="the next run reads these events again and the merge on the key keeps "
                "each once",
            ) from exc

    def forget(self) -> bool:
        """Delete the consumer group (its committed offsets); whether there was one."""
        from confluent_kafka.admin import AdminClient

        settings: dict[str, Any] = {"bootstrap.servers": self.brokers, "logger": _DebugLog()}
        admin = AdminClient(settings)
        futures = admin.delete_consumer_groups([self.group], request_timeout=CONNECT_TIMEOUT)
        try:
            futures[self.group].result()
        except Exception as exc:  # the admin API reports a missing group as an error
            if "GROUP_ID_NOT_FOUND" in str(exc):
                return False
            raise
        return True

    def close(self) -> None:
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            consumer.close()


def _event(msg: Any) -> Event:
    from confluent_kafka import TIMESTAMP_NOT_AVAILABLE

    topic, partition, offset = msg.topic(), int(msg.partition()), int(msg.offset())
    kind, millis = msg.timestamp()
    published = (
        datetime.now(UTC)
        if kind == TIMESTAMP_NOT_AVAILABLE
        else datetime.fromtimestamp(millis / 1000, UTC)
    )
    columns = {TOPIC: topic, PARTITION: partition, OFFSET: offset, PUBLISHED_AT: published}
    return Event(msg.value() or b"", f"{topic}/{partition}", offset, columns, None)
