"""The ``stream`` source kind: events read from a message stream in micro-batches.

A stream source reads a NATS JetStream stream through a durable pull consumer, or a Kafka
topic through a consumer group. Each ``stackyard run`` drains what is pending, loads it, and
only then acknowledges the messages (commits the offsets), so a run that dies re-reads them
next time and the merge on the primary key keeps each event once. See
docs/runbooks/adding-data-sources.md ("Event streams").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from stackyard.config.base import SecretRef
from stackyard.config.source_options import _keys
from stackyard.config.sources import SourceBase, register_source_kind
from stackyard.errors import UsageError

# Schemes a stream URL may have: NATS JetStream (nats-py) and Kafka (confluent-kafka).
STREAM_SCHEMES = ("nats", "tls", "kafka")
# A Kafka topic name; a subject starting with ^ is a regular expression over topic names.
KAFKA_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")


class StreamSource(SourceBase):
    """Events from a NATS JetStream stream or Kafka topics, one table, merged on a key."""

    BUILDER: ClassVar[str] = "stackyard.ingest.streams:build_stream"
    CLI_OPTIONS: ClassVar[tuple[str, ...]] = ("url", "subject", "table", "primary_key")
    BARE_KEY: ClassVar[bool] = True
    READ_ONCE: ClassVar[bool] = True

    kind: Literal["stream"]
    url: str | SecretRef = Field(
        description="Server URL, e.g. nats://127.0.0.1:4222 or kafka://host:9092[,host2:9092], "
        "or {secret: NAME} for one with credentials in it."
    )
    subject: str = Field(
        description="NATS: subject filter, wildcards allowed, e.g. orders.>. Kafka: the topic, "
        "or a regular expression over topic names starting with ^ (e.g. ^orders\\..*)."
    )
    stream: str | None = Field(
        None, description="The JetStream stream; default: the one that captures the subject."
    )
    consumer: str | None = Field(
        None,
        description="Durable consumer name (Kafka: the consumer group); default: "
        "stackyard_<source>_<target>, one per target. A name set here is shared by every "
        "target: each would get only the events the others had not taken.",
    )
    table: str | None = Field(
        None,
        description="Table to load into; default: the subject's first word (orders.> → "
        "orders), or events.",
    )
    primary_key: str | list[str] = Field(
        description="The event's key: a message delivered twice is kept once."
    )
    batch_size: int = Field(1000, ge=1, le=100_000, description="Messages per fetch.")
    max_wait: float = Field(
        2.0,
        gt=0,
        le=300,
        description="Seconds a fetch waits for messages before the run "
        "decides the stream is drained.",
    )
    max_messages: int = Field(
        1_000_000, ge=1, description="Most messages one run loads; the rest wait for the next."
    )
    ack_wait: float = Field(
        900.0,
        ge=10,
        description="Seconds the server waits for a run's acknowledgement before it delivers "
        "the messages again; longer than a run's load takes. Kafka: the consumer's "
        "max.poll.interval.ms.",
    )

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str | SecretRef) -> str | SecretRef:
        if isinstance(value, SecretRef):
            return value
        check_stream_url(value)
        if re.match(r"^\w+://[^/@:]+:[^/@]+@", value):
            raise ValueError(
                "the URL holds a password; write url: {secret: NAME} and put the URL in the "
                "environment variable NAME or in .stackyard/secrets.toml"
            )
        return value

    @model_validator(mode="after")
    def _kafka_topic(self) -> StreamSource:
        if isinstance(self.url, str) and stream_scheme(self.url) == "kafka":
            check_kafka_topic(self.subject)
        return self

    def table_name(self) -> str:
        """The table the events land in.

        >>> StreamSource(kind="stream", url="nats://h:4222", subject="orders.>",
        ...              primary_key="id").table_name()
        'orders'
        """
        if self.table:
            return self.table
        first = self.subject.split(".")[0]
        return first.lower() if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", first) else "events"

    def declared_tables(self) -> tuple[str, ...]:
        return (self.table_name(),)

    def primary_keys(self) -> dict[str, tuple[str, ...]]:
        return _keys({self.table_name(): self.primary_key})

    @classmethod
    def entry_from_options(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        keys: Mapping[str, str] = options.get("primary_key") or {}
        tables = list(options.get("table") or [])
        if len(tables) > 1:
            raise UsageError("a stream source loads one table: give --table once")
        table = tables[0] if tables else None
        key = keys.get("") or (keys.get(table) if table else None)
        if not key and len(keys) == 1:
            key = next(iter(keys.values()))
        if not key:
            raise UsageError(
                "a stream source needs --primary-key COLUMN (the event's id)",
                hint="a message can be delivered twice (a run that stopped before "
                "acknowledging it); the key is how the second copy is recognised",
            )
        entry: dict[str, Any] = {
            "url": options.get("url"),
            "subject": options.get("subject"),
            "primary_key": key,
        }
        if table:
            entry["table"] = table
        return entry


def stream_scheme(url: str) -> str:
    """The URL's scheme, lower case ('' without one).

    >>> stream_scheme("KAFKA://broker:9092")
    'kafka'
    """
    return url.partition("://")[0].lower() if "://" in url else ""


def check_stream_url(url: str) -> None:
    """Refuse a stream URL whose scheme stackyard cannot read.

    >>> check_stream_url("nats://127.0.0.1:4222")
    >>> check_stream_url("kafka://127.0.0.1:9092,127.0.0.1:9093")
    >>> check_stream_url("amqp://guest:s3cret@127.0.0.1:5672/")
    Traceback (most recent call last):
    ...
    ValueError: a stream URL starts with nats:// (or tls://) or kafka://, got 'amqp://guest:***@127.0.0.1:5672/'

    Raises:
        ValueError: not a ``nats://``, ``tls://`` or ``kafka://`` URL, or a Kafka URL
            without host:port.
    """
    from stackyard.config.redact import redact_text

    scheme = stream_scheme(url)
    if scheme not in STREAM_SCHEMES:
        # The URL may carry a password: the message shows it without.
        raise ValueError(
            f"a stream URL starts with nats:// (or tls://) or kafka://, got '{redact_text(url)}'"
        )
    if scheme == "kafka":
        hosts = url.partition("://")[2].rstrip("/")
        if not hosts or not all(re.fullmatch(r"[^\s/:,]+:\d+", h) for h in hosts.split(",")):
            raise ValueError(
                f"a Kafka URL lists its brokers as host:port, e.g. "
                f"kafka://broker1:9092,broker2:9092; got '{redact_text(url)}'"
            )


def check_kafka_topic(subject: str) -> None:
    """A Kafka subject is a topic name, or a regular expression starting with ``^``.

    >>> check_kafka_topic("orders")
    >>> check_kafka_topic("^orders[.].*")

    Raises:
        ValueError: NATS wildcards, or characters no topic name can hold.
    """
    if subject.startswith("^"):
        try:
            re.compile(subject)
        except re.error as exc:
            raise ValueError(
                f"the topic pattern '{subject}' is not a regular expression: {exc}"
            ) from None
        return
    if not KAFKA_TOPIC.fullmatch(subject):
        raise ValueError(
            f"'{subject}' is not a Kafka topic name (letters, digits, '.', '_', '-'); to read "
            f"several topics give a regular expression starting with ^, e.g. '^orders\\..*' "
            f"(NATS wildcards such as > and * do not apply to Kafka)"
        )


register_source_kind(StreamSource)
