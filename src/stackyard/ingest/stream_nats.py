"""NATS JetStream transport of the ``stream`` kind: a durable pull consumer.

A run that dies leaves its messages unacknowledged. The next run finds them pending
acknowledgement and, since runs of one source do not overlap, knows nobody is working on them:
it restarts the consumer just after its acknowledgement floor so they are delivered again at
once (instead of after ``ack_wait``).

nats-py is asyncio; dlt's extraction calls generators synchronously, so the transport owns a
private event loop and runs each network call to completion on it.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from stackyard.config.streams import StreamSource
from stackyard.errors import ConfigError, SourceUnreachableError
from stackyard.ingest.streams import Event

CONNECT_TIMEOUT = 5.0
# Columns stackyard adds to each event: where it came from in the stream.
SUBJECT, SEQUENCE, PUBLISHED_AT = "_subject", "_sequence", "_published_at"


class NatsTransport:
    """One run's connection to a JetStream stream."""

    position_column = SEQUENCE

    def __init__(self, name: str, config: StreamSource, url: str, consumer: str) -> None:
        self.name, self.config, self.url = name, config, url
        self.durable = consumer
        self._loop: asyncio.AbstractEventLoop | None = None
        self._nc: Any = None
        self._sub: Any = None
        self.redelivered = 0

    def open(self) -> None:
        self._run(self._open())

    def fetch(self, size: int) -> list[Event]:
        return [_event(msg) for msg in self._run(self._fetch(size))]

    def pending(self) -> int:
        return int(self._run(self._pending()))

    def commit(self, events: list[Event]) -> None:
        self._run(self._ack_all([e.handle for e in events]))

    def forget(self) -> bool:
        """Delete the durable consumer; whether there was one."""
        try:
            return bool(self._run(self._forget()))
        finally:
            self.close()

    def close(self) -> None:
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
        from nats.js.errors import NotFoundError

        await self._connect()
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

    async def _forget(self) -> bool:
        from nats.js.errors import NotFoundError

        await self._connect()
        js = self._nc.jetstream()
        try:
            stream = self.config.stream or await js.find_stream_name_by_subject(self.config.subject)
            await js.delete_consumer(stream, self.durable)
        except NotFoundError:
            return False
        return True

    async def _connect(self) -> None:
        """Connect, or raise :class:`SourceUnreachableError` naming the server.

        nats-py reports each failed try to ``error_cb``; its default logs the whole traceback
        on stderr, so every path that connects (a run, a first load, a removal deleting the
        consumer) passes its own, which keeps the error for the message instead.
        """
        import nats

        errors: list[BaseException] = []
        refused = asyncio.Event()

        async def keep(exc: BaseException) -> None:
            errors.append(exc)
            if isinstance(exc, OSError):
                refused.set()

        try:
            # nats-py keeps retrying a first connection that is refused, whatever
            # allow_reconnect says: the deadline is ours, and a refused connection (nothing
            # listens there) ends the attempt at once instead of at the deadline.
            self._nc = await _first(
                nats.connect(
                    self.url,
                    connect_timeout=CONNECT_TIMEOUT,
                    allow_reconnect=False,
                    max_reconnect_attempts=0,
                    error_cb=keep,
                ),
                refused,
                timeout=CONNECT_TIMEOUT * 2,
            )
        except (OSError, TimeoutError, nats.errors.Error) as exc:
            cause = errors[-1] if errors else exc
            raise _unreachable(self.name, self.url, cause) from cause

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


def _event(msg: Any) -> Event:
    sequence = int(msg.metadata.sequence.stream)
    published = msg.metadata.timestamp or datetime.now(UTC)
    columns = {SUBJECT: msg.subject, SEQUENCE: sequence, PUBLISHED_AT: published}
    return Event(msg.data, msg.subject, sequence, columns, msg)


def _unreachable(name: str, url: str, cause: BaseException) -> SourceUnreachableError:
    """The error of a server that could not be reached, saying why in words.

    >>> _unreachable("events", "nats://t@h:4299", ConnectionRefusedError(111, "refused")).message
    "source 'events': cannot reach the stream server nats://h:4299: connection refused (nothing listens at h:4299)"
    """
    server = _safe(url)
    if isinstance(cause, ConnectionRefusedError):
        address = server.partition("://")[2] or server
        why = f"connection refused (nothing listens at {address})"
    elif isinstance(cause, TimeoutError):
        why = f"no answer within {CONNECT_TIMEOUT * 2:g} s"
    else:
        why = f"{type(cause).__name__}: {cause}"
    return SourceUnreachableError(
        f"source '{name}': cannot reach the stream server {server}: {why}",
        hint="check that the NATS server runs there with JetStream on (nats-server -js) and "
        "that url: in stackyard.yml (nats://host:4222) is right; nothing was read",
    )


def _safe(url: str) -> str:
    """The URL without credentials, for messages. Unlike ``redact_text`` (which keeps a
    user name) all of the user part goes: NATS also takes a bare token there
    (``nats://TOKEN@host``).

    >>> _safe("nats://user:pw@host:4222")
    'nats://host:4222'
    """
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}" if sep else url


async def _first(connect: Any, refused: asyncio.Event, timeout: float) -> Any:
    """The connection, or TimeoutError when ``refused`` is set or ``timeout`` passes first."""
    task = asyncio.ensure_future(connect)
    stop = asyncio.ensure_future(refused.wait())
    try:
        done, _ = await asyncio.wait({task, stop}, timeout=timeout, return_when="FIRST_COMPLETED")
        if task in done:
            return task.result()
        raise TimeoutError("connection refused" if stop in done else "no answer")
    finally:
        for pending in (task, stop):
            if not pending.done():
                pending.cancel()
        await asyncio.gather(task, stop, return_exceptions=True)
