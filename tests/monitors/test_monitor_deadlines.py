"""Alert channels have deadlines: an SMTP server or webhook host that takes the connection and
never answers is a stated failure after ``timeout_seconds``, not a hung run."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.monitors.test_monitor_alerts import NOW, alerts, notifier


@pytest.fixture()
def silent_port() -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def test_silent_smtp_and_webhook_fail_after_their_timeout(tmp_path: Path, silent_port: int) -> None:
    send, _ = notifier(
        tmp_path,
        {
            "mail": {
                "type": "email",
                "host": "127.0.0.1",
                "port": silent_port,
                "from": "stackyard@example.com",
                "to": ["data@example.com"],
                "timeout_seconds": 0.5,
            },
            "hook": {
                "type": "webhook",
                "url": f"http://127.0.0.1:{silent_port}/hook",
                "timeout_seconds": 0.5,
            },
        },
        retries=0,
    )
    outcomes = {o.channel: o for o in send.send(alerts(), "r1", NOW)}
    assert outcomes["mail"].status == "failed" and "timed out" in str(outcomes["mail"].error)
    assert outcomes["hook"].status == "failed" and "did not answer within 0.5 s" in str(
        outcomes["hook"].error
    )
