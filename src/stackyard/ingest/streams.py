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
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from stackyard.config.base import SecretRef
from stackyard.config.streams import StreamSource, stream_scheme
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

    @dlt.resource(name=table, primary_key=key, write_disposition="merge", columns=latest)
    def events() -> Iterator[list[dict[str, Any]]]:
        for batch in reader.batches():
            rows, rejected = decode(table, batch, key)
            if rejected:
                context.build.reject(rejected)
            if rows:
                yield rows

    return [events]


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
    table: str, events: list[Event], key: list[str]
) -> tuple[list[dict[str, Any]], list[RejectedRow]]:
    """JSON objects with the key's columns become rows; anything else is rejected, with where
    the message is kept (subject and sequence; topic/partition and offset) to find it again."""
    rows: list[dict[str, Any]] = []
    rejected: list[RejectedRow] = []
    for event in events:
        raw = event.data.decode("utf-8", errors="replace")
        where = (table, event.origin, event.position)
        try:
            payload = json.loads(event.data, parse_float=_float_or_unheld)
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
        unfit = _unfit(payload)
        if unfit is not None:
            rejected.append(RejectedRow(*where, unfit[0], unfit[1], raw))
            continue
        payload.update(event.columns)
        rows.append(payload)
    return rows, rejected


# The widest integer a warehouse column holds (BIGINT). JSON allows any: a wider one made the
# load fail on every run after, the message never acknowledged and the stream stuck behind it.
_INT64 = (-(2**63), 2**63 - 1)


# Any decimal of at most this many significant digits comes back from a double unchanged
# (DBL_DIG); a longer one does only when it is how a double prints itself.
_DOUBLE_DIGITS = 15


class _Unheld(str):
    """A JSON number a double cannot hold without rounding, kept as its text to be rejected."""


def _float_or_unheld(token: str) -> float | _Unheld:
    """A JSON decimal as a float, or as :class:`_Unheld` when a float would round it: a
    double keeps 15 to 17 significant digits, and an amount written with more (or an
    integer part past 2**53) was loaded rounded without a word.

    Seventeen-digit text a double printed (``0.30000000000000004``, or C's ``%.17g`` of 0.1)
    is that double exactly, and is kept.

    >>> _float_or_unheld("0.1"), _float_or_unheld("0.10000000000000001")
    (0.1, 0.1)
    >>> _float_or_unheld("12345678901234567890.12"), _float_or_unheld("1e-400")
    ('12345678901234567890.12', '1e-400')
    """
    number = float(token)
    plain = "e" not in token and "E" not in token
    if (plain and len(token) <= _DOUBLE_DIGITS) or not math.isfinite(number):
        return number
    from decimal import Decimal

    exact = Decimal(token)
    # With an exponent, a short number may still be out of range (1e-400 reads as 0.0).
    if plain and len(exact.normalize().as_tuple().digits) <= _DOUBLE_DIGITS:
        return number
    if exact in (Decimal(repr(number)), Decimal(format(number, ".17g"))):
        return number
    return _Unheld(token)


def _unfit(payload: dict[str, Any], prefix: str = "") -> tuple[str, str] | None:
    """The first value no warehouse column can hold as it is, and why: an integer wider than
    64 bits, a decimal with more digits than a double keeps (:func:`_float_or_unheld`), or a
    number that is not finite (JSON's NaN and Infinity, or 1e400), which would otherwise be
    loaded as NULL without a word.

    >>> _unfit({"id": 1, "big": 12345678901234567890})
    ('big', 'big is 12345678901234567890, wider than a 64-bit integer column holds')
    >>> _unfit({"id": 1, "amount": {"net": float("nan")}})
    ('amount__net', 'amount__net is nan, not a finite number')
    """
    for name, value in payload.items():
        column = f"{prefix}{name}"
        # A list is a child table: its objects' values are columns there, its scalars `value`.
        inside = value if isinstance(value, list) else [value] if isinstance(value, dict) else []
        for item in inside:
            found = _unfit(item if isinstance(item, dict) else {"value": item}, f"{column}__")
            if found is not None:
                return found
        if isinstance(value, bool):
            continue
        elif isinstance(value, int) and not _INT64[0] <= value <= _INT64[1]:
            return column, f"{column} is {value}, wider than a 64-bit integer column holds"
        elif isinstance(value, float) and not math.isfinite(value):
            return column, f"{column} is {value}, not a finite number"
        elif isinstance(value, _Unheld):
            return column, (
                f"{column} is {value}, more digits than a double-precision column keeps (it "
                f"would load as {float(value)!r}); send it as a JSON string to keep it exact"
            )
    return None


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
