"""Events on the machine's NATS JetStream server (127.0.0.1:4222), for tests and the docs.

``python tests/ingest/jetstream.py --stream ORDERS --subject 'orders.>' --events 100`` creates
the stream afresh and publishes that many JSON order events (``event_id`` 0…n-1).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
from collections.abc import Iterable
from typing import Any

NATS_URL = os.environ.get("STACKYARD_TEST_NATS_URL", "nats://127.0.0.1:4222")


def event(i: int) -> dict[str, Any]:
    """Order event number ``i``: an id, an amount with cents and a nested customer."""
    return {"event_id": i, "amount": round(i * 1.25, 2), "customer": {"id": i % 97}}


async def _reset(stream: str, subject: str) -> None:
    import nats
    from nats.js.errors import NotFoundError

    nc = await nats.connect(NATS_URL, connect_timeout=3, allow_reconnect=False)
    js = nc.jetstream()
    with contextlib.suppress(NotFoundError):
        await js.delete_stream(stream)
    # A test stream left behind by an interrupted run may capture the subject too.
    with contextlib.suppress(NotFoundError):
        await js.delete_stream(await js.find_stream_name_by_subject(subject))
    await js.add_stream(name=stream, subjects=[subject])
    await nc.close()


async def _publish(subject: str, payloads: Iterable[bytes]) -> None:
    import nats

    nc = await nats.connect(NATS_URL, connect_timeout=3, allow_reconnect=False)
    js = nc.jetstream()
    for payload in payloads:
        await js.publish(subject, payload)
    await nc.close()


async def _delete(stream: str) -> None:
    import nats
    from nats.js.errors import NotFoundError

    nc = await nats.connect(NATS_URL, connect_timeout=3, allow_reconnect=False)
    with contextlib.suppress(NotFoundError):
        await nc.jetstream().delete_stream(stream)
    await nc.close()


async def _consumer(stream: str, durable: str) -> Any:
    import nats

    nc = await nats.connect(NATS_URL, connect_timeout=3, allow_reconnect=False)
    try:
        return await nc.jetstream().consumer_info(stream, durable)
    finally:
        await nc.close()


def reset_stream(stream: str, subject: str) -> None:
    """Delete the stream (and any other capturing ``subject``: this is for throwaway test
    streams) and create it empty, capturing ``subject``."""
    asyncio.run(_reset(stream, subject))


def publish(subject: str, payloads: Iterable[bytes]) -> None:
    """Publish each payload to ``subject`` (acknowledged by JetStream)."""
    asyncio.run(_publish(subject, payloads))


def publish_events(subject: str, ids: Iterable[int]) -> None:
    """Publish :func:`event` for each id."""
    publish(subject, (json.dumps(event(i)).encode() for i in ids))


def delete_stream(stream: str) -> None:
    """Delete the stream (and its consumers) if it exists."""
    asyncio.run(_delete(stream))


def consumer_info(stream: str, durable: str) -> Any:
    """The server's view of a durable consumer (pending, ack pending, ack floor)."""
    return asyncio.run(_consumer(stream, durable))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stream", required=True)
    parser.add_argument("--subject", required=True, help="what the stream captures, e.g. orders.>")
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--first", type=int, default=0, help="first event_id")
    parser.add_argument("--keep", action="store_true", help="add to the stream, do not reset it")
    args = parser.parse_args()
    if not args.keep:
        reset_stream(args.stream, args.subject)
    publish_subject = args.subject.replace(">", "created").replace("*", "created")
    publish_events(publish_subject, range(args.first, args.first + args.events))
    print(f"published {args.events} events to {publish_subject} (stream {args.stream})")


if __name__ == "__main__":
    main()
