"""An in-process stand-in for a Kafka broker behind confluent-kafka's ``Consumer``.

No Kafka broker runs where these tests run, so the consumer is the one thing faked: just the
calls the ``stream`` kind makes (``list_topics``, ``subscribe``, ``consume``, ``assignment``,
``position``, ``committed``, ``get_watermark_offsets``, ``commit``, ``close``), over topics
held in memory and offsets committed per consumer group. ``TopicPartition`` and the
exceptions are confluent-kafka's own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from confluent_kafka import (
    OFFSET_INVALID,
    TIMESTAMP_CREATE_TIME,
    KafkaError,
    KafkaException,
    TopicPartition,
)


@dataclass
class FakeMessage:
    _topic: str
    _partition: int
    _offset: int
    _value: bytes

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes:
        return self._value

    def error(self) -> None:
        return None

    def timestamp(self) -> tuple[int, int]:
        return TIMESTAMP_CREATE_TIME, 1_767_225_600_000 + self._offset  # 2026-01-01


@dataclass
class FakeBroker:
    """Topics (partitions of message values) and each group's committed offsets."""

    topics: dict[str, list[list[bytes]]] = field(default_factory=dict)
    committed: dict[str, dict[tuple[str, int], int]] = field(default_factory=dict)
    log: list[tuple[Any, ...]] = field(default_factory=list)
    configs: list[dict[str, Any]] = field(default_factory=list)
    fail_commits: int = 0  # the next commits fail (the broker went away after the load)
    fail_consume_after: int | None = None  # consume raises once this many were delivered

    def produce(self, topic: str, partition: int, values: list[bytes]) -> None:
        parts = self.topics.setdefault(topic, [])
        while len(parts) <= partition:
            parts.append([])
        parts[partition].extend(values)

    def consumer(self, config: dict[str, Any]) -> FakeConsumer:
        return FakeConsumer(self, config)


class FakeConsumer:
    def __init__(self, broker: FakeBroker, config: dict[str, Any]) -> None:
        self.broker, self.group = broker, config["group.id"]
        broker.configs.append(config)
        self.positions: dict[tuple[str, int], int] = {}
        self.delivered = 0

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> Any:
        return SimpleNamespace(topics={name: SimpleNamespace() for name in self.broker.topics})

    def subscribe(self, topics: list[str]) -> None:
        (pattern,) = topics
        names = [
            t
            for t in self.broker.topics
            if (re.fullmatch(pattern, t) if pattern.startswith("^") else t == pattern)
        ]
        done = self.broker.committed.get(self.group, {})
        for name in names:
            for p in range(len(self.broker.topics[name])):
                self.positions[(name, p)] = done.get((name, p), 0)
        self.broker.log.append(("subscribe", self.group, pattern))

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[FakeMessage]:
        limit = self.broker.fail_consume_after
        if limit is not None and self.delivered >= limit:
            raise KafkaException(KafkaError(KafkaError._TRANSPORT))
        out: list[FakeMessage] = []
        for (topic, p), at in sorted(self.positions.items()):
            values = self.broker.topics[topic][p]
            take = values[at : at + num_messages - len(out)]
            out += [FakeMessage(topic, p, at + i, v) for i, v in enumerate(take)]
            self.positions[(topic, p)] = at + len(take)
        self.delivered += len(out)
        self.broker.log.append(("consume", num_messages, len(out)))
        return out

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition(t, p) for t, p in sorted(self.positions)]

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        return [
            TopicPartition(tp.topic, tp.partition, self.positions[(tp.topic, tp.partition)])
            for tp in partitions
        ]

    def committed(self, partitions: list[TopicPartition], timeout: float = -1) -> list[Any]:
        done = self.broker.committed.get(self.group, {})
        return [
            TopicPartition(
                tp.topic, tp.partition, done.get((tp.topic, tp.partition), OFFSET_INVALID)
            )
            for tp in partitions
        ]

    def get_watermark_offsets(self, partition: TopicPartition, **_: Any) -> tuple[int, int]:
        return 0, len(self.broker.topics[partition.topic][partition.partition])

    def commit(self, offsets: list[TopicPartition], asynchronous: bool = True) -> None:
        assert asynchronous is False, "offsets are committed synchronously, after the load"
        if self.broker.fail_commits:
            self.broker.fail_commits -= 1
            raise KafkaException(KafkaError(KafkaError._TRANSPORT))
        done = self.broker.committed.setdefault(self.group, {})
        for tp in offsets:
            done[(tp.topic, tp.partition)] = tp.offset
        self.broker.log.append(("commit", [(tp.topic, tp.partition, tp.offset) for tp in offsets]))

    def close(self) -> None:
        self.broker.log.append(("close",))
