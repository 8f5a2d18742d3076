"""The ``stream`` kind: events read from a message stream in micro-batches.

Delivery is at least once and the table is merged on the event's key, which together keep
each event exactly once in the warehouse:

- a run fetches what is pending in batches and loads it; only after the load (and the
  rejected rows) are in the warehouse does it tell the server the events are done with (a
  NATS acknowledgement, a Kafka offset commit);
- a run that dies tells the server nothing, so the next run reads those events again; a copy
  that was loaded already is merged onto itself by its key.

Each transport is one module behind :class:`Transport`: :mod:`stackyard.ingest.stream_nats`
(NATS JetStream) and :mod:`stackyard.ingest.stream_kafka` (Kafka).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from stackyard.config.base import SecretRef
from stackyard.config.streams import StreamSource, stream_scheme
from stackyard.errors import SourceUnreachableError
from stackyard.ingest.json_numbers import NamedTwice, each_name_once, float_or_unheld, unfit_value
from stackyard.ingest.reserved_columns import (
    WRITTEN,
    loaded_name,
    own_column_reason,
    written_column,
)
from stackyard.ingest.stream_types import TEXT_ADVICE, ColumnTypes
from stackyard.results import RejectedRow

if TYPE_CHECKING:
    from stackyard.config.secrets import Secrets
    from stackyard.ingest.sources import BuildContext

# Empty fetches in a row, while the server says events are pending, before a run gives up
# and leaves them for the next one.
EMPTY_FETCHES = 5


@dataclass
class Event:
    """One message, as every transport hands it over."""

    data: bytes
    origin: str  # where it is kept: the NATS subject, or Kafka's ``topic/partition``
    position: int  # its place there: the stream sequence, or the partition offset
    columns: dict[str, Any] = field(default_factory=dict)  # added to its row
    handle: Any = None  # the client's own message, for the transport to acknowledge


class Transport(Protocol):
    """What the batching loop needs from a stream client."""

    #: The column of an event's place in the stream (a NATS sequence, a Kafka offset): of
    #: two versions of one key loaded together, the later one is kept.
    position_column: str

    def open(self) -> None:
        """Connect and join the durable consumer (group); raise a typed error if not."""

    def fetch(self, size: int) -> list[Event]:
        """Up to ``size`` events, waiting at most ``max_wait``; empty if none came."""

    def pending(self) -> int:
        """Events the server still holds for this consumer (0: drained)."""

    def commit(self, events: list[Event]) -> None:
        """The events are in the warehouse: never deliver them to this consumer again."""

    def forget(self) -> bool:
        """Delete the durable consumer (group) from the server; whether there was one."""

    def close(self) -> None:
        """Disconnect; events not committed are read again by the next run."""


def build_stream(name: str, config: StreamSource, context: BuildContext) -> list[Any]:
    """The dlt resource of one stream source; commits after the load (see module)."""
    import dlt

    url = (
        context.secrets.resolve(config.url, used_for=f"sources.{name}.url")
        if isinstance(config.url, SecretRef)
        else config.url
    )
    transport = open_transport(name, config, url, consumer_name(name, config, context.target))
    reader = StreamReader(transport, config)
    context.build.after_load(reader.acknowledge)
    context.build.on_close(reader.close)
    table = config.table_name()
    key = [config.primary_key] if isinstance(config.primary_key, str) else config.primary_key

    # One key twice in a run (an event updated, both versions pending) is merged to one row:
    # without an order dlt keeps either, and the older version won as often as not.
    latest: dict[str, Any] = {transport.position_column: {"dedup_sort": "desc"}}
    types = ColumnTypes(context.known_columns)

    @dlt.resource(name=table, primary_key=key, write_disposition="merge", columns=latest)
    def events() -> Iterator[Any]:
        hinted: dict[tuple[str, ...], dict[str, str]] = {}
        for batch in reader.batches():
            rows, rejected = decode(table, batch, key, types)
            if rejected:
                context.build.reject(rejected)
            if not rows:
                continue
            # A column the run typed bigint that a fraction widened to double: dlt types a
            # column by the first value it normalizes, and put the fractions in a variant
            # column, which the frozen-types contract refused.
            widened = types.widened(table)
            if widened != hinted:
                hinted = widened
                yield dlt.mark.with_hints(rows, _type_hints(widened))
            else:
                yield rows

    return [events]


def _type_hints(widened: dict[tuple[str, ...], dict[str, str]]) -> Any:
    """dlt hints giving the columns ``widened`` names their types (see ``ColumnTypes``)."""
    import dlt

    def columns(types: dict[str, str]) -> dict[str, Any]:
        return {name: {"data_type": kind} for name, kind in types.items()}

    nested: dict[str | Sequence[str], Any] = {
        path: dlt.mark.make_nested_hints(columns=columns(types))
        for path, types in widened.items()
        if path
    }
    return dlt.mark.make_hints(
        columns=columns(widened[()]) if () in widened else None, nested_hints=nested or None
    )


def consumer_name(name: str, config: StreamSource, target: str) -> str:
    """The durable consumer (Kafka: the consumer group) a source reads through on a target:
    ``consumer:`` as set, else ``stackyard_<source>_<target>``. One per target: two targets
    sharing one consumer each got the events the other had not taken, and every run said
    it succeeded.

    >>> from stackyard.config.streams import StreamSource
    >>> source = StreamSource(kind="stream", url="nats://h:4222", subject="orders.>",
    ...     primary_key="id")
    >>> consumer_name("events", source, "prod")
    'stackyard_events_prod'
    """
    if config.consumer:
        return config.consumer
    return f"stackyard_{name}_{target}" if target else f"stackyard_{name}"


def forget_consumers(
    name: str, config: StreamSource, targets: Iterable[str], secrets: Secrets
) -> list[str]:
    """Delete the source's consumer on each target (``source remove``): a source added again
    reads the stream from its start. Before, the consumer kept every event acknowledged and
    the new source's first load found none. A server that cannot be reached is named.

    Returns:
        What was deleted, and what could not be, as lines for the user.
    """
    url = (
        secrets.resolve(config.url, used_for=f"sources.{name}.url")
        if isinstance(config.url, SecretRef)
        else config.url
    )
    done = []
    for target in targets:
        consumer = consumer_name(name, config, target)
        try:
            if open_transport(name, config, url, consumer).forget():
                done.append(f"stream consumer {consumer} deleted")
        except SourceUnreachableError as exc:  # a removal goes on; the line says what may be left
            done.append(
                f"stream consumer {consumer} not checked ({exc.message}): if the server still "
                "has it, delete it before adding the source again, or its first load reads "
                "nothing"
            )
        except Exception as exc:  # a removal goes on; the line says what is left behind
            done.append(
                f"stream consumer {consumer} NOT deleted ({type(exc).__name__}: {exc}): delete "
                "it before adding the source again, or its first load reads nothing"
            )
    return done


def open_transport(name: str, config: StreamSource, url: str, consumer: str) -> Transport:
    """The transport the URL's scheme names (checked again here: it may come from a secret)."""
    if stream_scheme(url) == "kafka":
        from stackyard.ingest.stream_kafka import KafkaTransport

        return KafkaTransport(name, config, url, consumer)
    from stackyard.ingest.stream_nats import NatsTransport

    return NatsTransport(name, config, url, consumer)


def decode(
    table: str, events: list[Event], key: list[str], types: ColumnTypes | None = None
) -> tuple[list[dict[str, Any]], list[RejectedRow]]:
    """JSON objects with the key's columns become rows; anything else is rejected, with where
    the message is kept (subject and sequence; topic/partition and offset) to find it again.
    With ``types``, so is an event holding a value its column's type cannot hold."""
    rows: list[dict[str, Any]] = []
    rejected: list[RejectedRow] = []
    for event in events:
        raw = event.data.decode("utf-8", errors="replace")
        where = (table, event.origin, event.position)
        try:
            payload = json.loads(
                event.data, parse_float=float_or_unheld, object_pairs_hook=each_name_once
            )
        except NamedTwice as exc:
            reason = exc.reason
            rejected.append(RejectedRow(*where, exc.name, reason, raw))
            continue
        except ValueError as exc:
            rejected.append(RejectedRow(*where, None, f"not JSON: {exc}", raw))
            continue
        if not isinstance(payload, dict):
            reason = f"a JSON {type(payload).__name__}, not an object"
            rejected.append(RejectedRow(*where, None, reason, raw))
            continue
        missing = [c for c in key if payload.get(c) in (None, "")]
        if missing:
            reason = f"no value for the key column {missing[0]}"
            rejected.append(RejectedRow(*where, missing[0], reason, raw))
            continue
        # dlt flattens an object into columns of its own (id__a) and leaves the key NULL,
        # which failed the load (NOT NULL) on every run; a list would become a child table.
        nested = [c for c in key if isinstance(payload[c], dict | list)]
        if nested:
            kind = "an object" if isinstance(payload[nested[0]], dict) else "a list"
            reason = f"the key column {nested[0]} holds {kind}, not a single value"
            rejected.append(RejectedRow(*where, nested[0], reason, raw))
            continue
        own = written_column(payload, (*WRITTEN, *event.columns))
        if own is not None:
            column = loaded_name(own)
            reason = own_column_reason(own, column)
            rejected.append(RejectedRow(*where, column, reason, raw))
            continue
        unfit = unfit_value(payload, advice=TEXT_ADVICE) or (
            types.misfit(table, payload) if types else None
        )
        if unfit is not None:
            rejected.append(RejectedRow(*where, unfit[0], unfit[1], raw))
            continue
        payload.update(event.columns)
        rows.append(payload)
    return rows, rejected


class StreamReader:
    """One run's reading of a stream: fetch in batches, then commit or leave for next time."""

    def __init__(self, transport: Transport, config: StreamSource) -> None:
        self.transport, self.config = transport, config
        self._uncommitted: list[Event] = []
        self._opened = False

    def batches(self) -> Iterator[list[Event]]:
        """Fetch until nothing is pending or ``max_messages`` are read."""
        self.transport.open()
        self._opened = True
        taken, idle = 0, 0
        while taken < self.config.max_messages:
            size = min(self.config.batch_size, self.config.max_messages - taken)
            batch = self.transport.fetch(size)
            if not batch:
                # A fetch can come back empty while the server still counts events as
                # pending (a consumer just restarted or joining its group, a busy server):
                # drained means none left.
                idle += 1
                if not self.transport.pending() or idle >= EMPTY_FETCHES:
                    return
                continue
            idle = 0
            taken += len(batch)
            self._uncommitted.extend(batch)
            yield batch

    def acknowledge(self) -> None:
        """Called once the load is in the warehouse: the events are done with."""
        if self._uncommitted:
            self.transport.commit(self._uncommitted)
            self._uncommitted = []

    def close(self) -> None:
        """Disconnect; events not committed are read again by the next run."""
        if self._opened:
            self._opened = False
            self.transport.close()
