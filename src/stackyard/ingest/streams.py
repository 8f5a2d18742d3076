"""The ``stream`` kind: a NATS JetStream durable pull consumer read in micro-batches.

Delivery is at least once and the table is merged on the event's key, which together keep
each event exactly once in the warehouse:

- a run fetches what is pending in batches and loads it; only after the load (and the
  rejected rows) are in the warehouse are the messages acknowledged;
- a run that dies leaves its messages unacknowledged. The next run finds them pending
  acknowledgement and, since runs of one source do not overlap, knows nobody is working on
  them: it restarts the consumer just after its acknowledgement floor so they are delivered
  again at once (instead of after ``ack_wait``); a copy that was loaded already is merged onto
  itself by its key.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from stackyard.config.base import SecretRef
from stackyard.config.streams import StreamSource
from stackyard.errors import ConfigError, SourceUnreachableError
from stackyard.results import RejectedRow

if TYPE_CHECKING:
    from stackyard.ingest.sources import BuildContext

CONNECT_TIMEOUT = 5.0
# Empty fetches in a row, while the server says messages are pending, before a run gives up
# and leaves them for the next one.
EMPTY_FETCHES = 5
# Columns stackyard adds to each event: where it came from in the stream.
SUBJECT, SEQUENCE, PUBLISHED_AT = "_subject", "_sequence", "_published_at"


def build_stream(name: str, config: StreamSource, context: BuildContext) -> list[Any]:
    """The dlt resource of one stream source; acknowledges after the load (see module)."""
    import dlt

    url = (
        context.secrets.resolve(config.url, used_for=f"sources.{name}.url")
        if isinstance(config.url, SecretRef)
        else config.url
    )
    reader = StreamReader(name, config, url)
    context.build.after_load(reader.acknowledge)
    context.build.on_close(reader.close)
    table = config.table_name()
    key = [config.primary_key] if isinstance(config.primary_key, str) else config.primary_key

    @dlt.resource(name=table, primary_key=key, write_disposition="merge")
    def events() -> Iterator[list[dict[str, Any]]]:
        for batch in reader.batches():
            rows, rejected = decode(table, batch, key)
            if rejected:
                context.build.reject(rejected)
            if rows:
                yield rows

    return [events]


def decode(
    table: str, messages: list[Any], key: list[str]
) -> tuple[list[dict[str, Any]], list[RejectedRow]]:
    """JSON objects with the key's columns become rows; anything else is rejected, with the
    message's subject and stream sequence so it can be found again."""
    rows: list[dict[str, Any]] = []
    rejected: list[RejectedRow] = []
    for msg in messages:
        sequence = int(msg.metadata.sequence.stream)
        raw = msg.data.decode("utf-8", errors="replace")
        try:
            payload = json.loads(msg.data)
        except ValueError as exc:
            rejected.append(
                RejectedRow(table, msg.subject, sequence, None, f"not JSON: {exc}", raw)
            )
            continue
        if not isinstance(payload, dict):
            reason = f"a JSON {type(payload).__name__}, not an object"
            rejected.append(RejectedRow(table, msg.subject, sequence, None, reason, raw))
            continue
        missing = [c for c in key if payload.get(c) in (None, "")]
        if missing:
            reason = f"no value for the key column {missing[0]}"
            rejected.append(RejectedRow(table, msg.subject, sequence, missing[0], reason, raw))
            continue
        payload[SUBJECT] = msg.subject
        payload[SEQUENCE] = sequence
        payload[PUBLISHED_AT] = msg.metadata.timestamp or datetime.now(UTC)
        rows.append(payload)
    return rows, rejected


class StreamReader:
    """One run's connection to the stream: fetch, then acknowledge or leave for next time.

    nats-py is asyncio; dlt's extraction calls generators synchronously, so the reader owns a
    private event loop and runs each network call to completion on it.
    """

    def __init__(self, name: str, config: StreamSource, url: str) -> None:
        self.name, self.config, self.url = name, config, url
        self.durable = config.consumer or f"stackyard_{name}"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._nc: Any = None
        self._sub: Any = None
        self._unacked: list[Any] = []
        self.redelivered = 0

    # ------------------------------------------------------------------ the run's steps

    def batches(self) -> Iterator[list[Any]]:
        """Fetch until nothing is pending or ``max_messages`` are read."""
        self._run(self._open())
        taken, idle = 0, 0
        while taken < self.config.max_messages:
            size = min(self.config.batch_size, self.config.max_messages - taken)
            batch = self._run(self._fetch(size))
            if not batch:
                # A fetch can come back empty while the server still counts messages as
                # pending (a consumer just restarted, a busy server): drained means none left.
                idle += 1
                if not self._run(self._pending()) or idle >= EMPTY_FETCHES:
                    return
                continue
            idle = 0
            taken += len(batch)
            self._unacked.extend(batch)
            yield batch

    def acknowledge(self) -> None:
        """Called once the load is in the warehouse: the messages are done with."""
        if self._unacked:
            self._run(self._ack_all(self._unacked))
            self._unacked = []

    def close(self) -> None:
        """Disconnect; unacknowledged messages are read again by the next run."""
        if self._loop is None:
            return
        try:
            if self._nc is not None and not self._nc.is_closed:
                self._run(self._nc.close())
        finally:
            self._loop.close()
            self._loop = None

    # ------------------------------------------------------------------ nats-py

    def _run(self, coro: Any) -> Any:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(coro)

    async def _open(self) -> None:
        import nats
        from nats.js.errors import NotFoundError

        errors: list[BaseException] = []

        async def keep(exc: BaseException) -> None:  # instead of nats-py logging a traceback
            errors.append(exc)

        try:
            # nats-py keeps retrying a first connection that is refused, whatever
            # allow_reconnect says: the deadline is ours.
            self._nc = await asyncio.wait_for(
                nats.connect(
                    self.url,
                    connect_timeout=CONNECT_TIMEOUT,
                    allow_reconnect=False,
                    max_reconnect_attempts=0,
                    error_cb=keep,
                ),
                timeout=CONNECT_TIMEOUT * 2,
            )
        except (OSError, TimeoutError, nats.errors.Error) as exc:
            cause = errors[-1] if errors else exc
            raise SourceUnreachableError(
                f"source '{self.name}': cannot reach the stream server {_safe(self.url)} "
                f"({type(cause).__name__}: {cause})",
                hint="check that the server runs and the URL (nats://host:4222) is right; "
                "nothing was read",
            ) from exc
        js = self._nc.jetstream()
        try:
            stream = self.config.stream or await js.find_stream_name_by_subject(self.config.subject)
        except NotFoundError:
            raise ConfigError(
                f"sources.{self.name}: no JetStream stream captures subject "
                f"'{self.config.subject}' on {_safe(self.url)}",
                hint="create one (e.g. `nats stream add ORDERS --subjects 'orders.>'`), or name "
                "it with stream: in stackyard.yml",
            ) from None
        await self._consumer(js, stream)
        self._sub = await js.pull_subscribe_bind(durable=self.durable, stream=stream)

    async def _consumer(self, js: Any, stream: str) -> None:
        """Create the durable consumer, or restart it after a run that died mid-batch."""
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
        from nats.js.errors import NotFoundError

        config = ConsumerConfig(
            durable_name=self.durable,
            filter_subject=self.config.subject,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.config.ack_wait,
            max_ack_pending=-1,
            deliver_policy=DeliverPolicy.ALL,
        )
        try:
            info = await js.consumer_info(stream, self.durable)
        except NotFoundError:
            await js.add_consumer(stream, config)
            return
        if not info.num_ack_pending:
            return
        # Messages delivered to a run that never acknowledged them: that run is gone (runs of
        # a source do not overlap), so deliver them again now, from just after the floor.
        floor = info.ack_floor.stream_seq if info.ack_floor else 0
        self.redelivered = int(info.num_ack_pending)
        await js.delete_consumer(stream, self.durable)
        await js.add_consumer(
            stream,
            config,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=floor + 1,
        )

    async def _fetch(self, size: int) -> list[Any]:
        try:
            batch: list[Any] = await self._sub.fetch(batch=size, timeout=self.config.max_wait)
        except TimeoutError:  # nats-py: no message within max_wait (its own and asyncio's)
            return []
        return batch

    async def _pending(self) -> int:
        """Messages the server has not delivered yet to this consumer."""
        info = await self._sub.consumer_info()
        return int(info.num_pending or 0)

    async def _ack_all(self, messages: list[Any]) -> None:
        for msg in messages:
            await msg.ack()
        await self._nc.flush(timeout=30)


def _safe(url: str) -> str:
    """The URL without credentials, for messages. Unlike ``redact_text`` (which keeps a
    user name) all of the user part goes: NATS also takes a bare token there
    (``nats://TOKEN@host``).

    >>> _safe("nats://user:pw@host:4222")
    'nats://host:4222'
    """
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}" if sep else url
