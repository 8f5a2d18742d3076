"""Alerts against real receivers: a local webhook (healthy, answering 500, timing out) and a
local SMTP server. Failures are recorded, never raised."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from stackyard.config.monitors import AlertsConfig
from stackyard.monitors.alerts import Notifier, group_alerts
from stackyard.monitors.health import Check, TableHealth
from stackyard.monitors.lineage import Lineage, LineageNode
from stackyard.monitors.store import MetricStore
from tests.monitors.conftest import Mailbox, Webhook, duckdb_warehouse, free_port

NOW = datetime(2026, 3, 10, 7, tzinfo=UTC)
LINEAGE = Lineage(
    nodes={
        "source.p.app.orders": LineageNode(
            "source.p.app.orders", "app.orders", "source", "app", "orders", "sources"
        ),
        "model.p.stg": LineageNode(
            "model.p.stg", "stg", "model", "staging", "stg", "staging", ("source.p.app.orders",)
        ),
        "model.p.mart": LineageNode(
            "model.p.mart", "mart", "model", "marts", "mart", "marts", ("model.p.stg",)
        ),
        "source.p.app.other": LineageNode(
            "source.p.app.other", "app.other", "source", "app", "other", "sources"
        ),
    }
)


def health(table: str, uid: str, *checks: Check) -> TableHealth:
    return TableHealth(
        table, "model" if uid.startswith("model") else "source", table, checks, (), uid
    )


BROKEN = [
    health(
        "app.orders",
        "source.p.app.orders",
        Check("null_rate", "anomaly", "every value is NULL", column="amount"),
        Check("null_rate", "anomaly", "every value is NULL", column="tax"),
        Check("schema", "warn", "column added (BIGINT)", column="amount_cents"),
    ),
    health(
        "staging.stg",
        "model.p.stg",
        Check("null_rate", "anomaly", "NULL", column="amount"),
        # a baseline still being learnt is no finding: not counted, not in the message
        Check("volume", "learning", "learning the baseline (3 of 14 usable days)"),
    ),
    health("marts.mart", "model.p.mart", Check("freshness", "warn", "late")),
    health("app.other", "source.p.app.other", Check("volume", "ok", "fine")),
]


def notifier(
    tmp_path: Path, channels: dict[str, object], **kw: object
) -> tuple[Notifier, list[float]]:
    store = MetricStore(duckdb_warehouse(tmp_path))
    store.ensure()
    config = AlertsConfig.model_validate({"channels": channels, "backoff_seconds": 0.5, **kw})
    slept: list[float] = []
    return Notifier(
        config, store, store.warehouse.secrets, sleep=slept.append, jitter=lambda: 0.5
    ), slept


def alerts() -> list:  # type: ignore[type-arg]
    return group_alerts(BROKEN, LINEAGE, owners={"app.orders": ("@app",)}, context="project p")


def test_one_message_per_root_cause_not_per_column_or_table() -> None:
    found = alerts()
    assert len(found) == 1
    alert = found[0]
    assert alert.root_cause == "app.orders"
    # the downstream model's anomaly and the mart's warning ride along; the healthy one not
    assert [t.table for t in alert.tables] == ["app.orders", "marts.mart", "staging.stg"]
    assert alert.title == "stackyard: app.orders anomaly — 5 findings, 2 downstream tables affected"
    text = alert.text()
    assert "null_rate(amount)" in text and "null_rate(tax)" in text and "owners: @app" in text
    assert "learning" not in text and "learning" not in json.dumps(alert.slack_payload())


def test_webhook_gets_slack_compatible_json_once_then_suppression(
    tmp_path: Path, webhook: Webhook
) -> None:
    send, _ = notifier(tmp_path, {"team": {"type": "webhook", "url": webhook.url}})
    first = send.send(alerts(), "r1", NOW)
    assert [o.status for o in first] == ["sent"]
    assert len(webhook.received) == 1
    body = webhook.received[0]
    assert body["text"].startswith("stackyard: app.orders anomaly")
    assert [b["type"] for b in body["blocks"]] == [
        "header",
        "section",
        "section",
        "section",
        "context",
    ]
    again = send.send(alerts(), "r2", NOW + timedelta(hours=2))
    assert [o.status for o in again] == ["suppressed"] and len(webhook.received) == 1
    # One finding marked as a known incident since: the rest were all sent, nothing to tell
    # (it paged again with the null rates alone). A new finding is news again.
    fewer = [BROKEN[0], replace(BROKEN[1], checks=BROKEN[1].checks[1:]), *BROKEN[2:]]
    narrowed = group_alerts(fewer, LINEAGE, owners={}, context="project p")
    assert narrowed[0].key != alerts()[0].key
    subset = send.send(narrowed, "r2b", NOW + timedelta(hours=3))
    assert [o.status for o in subset] == ["suppressed"] and len(webhook.received) == 1
    more = Check("duplicates", "anomaly", "12 duplicate keys")
    grown = [replace(BROKEN[0], checks=(*BROKEN[0].checks, more)), *BROKEN[1:]]
    grown_alerts = group_alerts(grown, LINEAGE, owners={}, context="p")
    news = send.send(grown_alerts, "r2c", NOW + timedelta(hours=4))
    assert [o.status for o in news] == ["sent"] and len(webhook.received) == 2
    later = send.send(alerts(), "r3", NOW + timedelta(hours=29))
    assert [o.status for o in later] == ["sent"] and len(webhook.received) == 3
    rows = send.store.warehouse.query(
        "SELECT run_id, status FROM stackyard.monitor_alerts ORDER BY sent_at"
    ).rows
    assert rows == (
        ("r1", "sent"),
        ("r2", "suppressed"),
        ("r2b", "suppressed"),
        ("r2c", "sent"),
        ("r3", "sent"),
    )


def test_a_webhook_answering_500_is_retried_with_backoff_then_recorded(
    tmp_path: Path, webhook: Webhook
) -> None:
    webhook.status = 500
    send, slept = notifier(tmp_path, {"team": {"type": "webhook", "url": webhook.url}}, retries=2)
    [outcome] = send.send(alerts(), "r1", NOW)
    assert outcome.status == "failed" and outcome.attempts == 3
    assert "HTTP 500" in (outcome.error or "")
    assert len(webhook.received) == 3
    assert slept == [0.5, 1.0]  # doubling, jitter fixed at 1.0x here
    # a failed alert is not a sent one: the next pass tries again
    webhook.status = 200
    [retry] = send.send(alerts(), "r2", NOW + timedelta(minutes=5))
    assert retry.status == "sent"


def test_a_webhook_that_times_out_or_is_down_is_a_stated_failure(
    tmp_path: Path, webhook: Webhook
) -> None:
    webhook.delay = 1.0
    send, _ = notifier(
        tmp_path,
        {
            "slow": {"type": "webhook", "url": webhook.url, "timeout_seconds": 0.2},
            "gone": {"type": "webhook", "url": f"http://127.0.0.1:{free_port()}/x"},
        },
        retries=1,
    )
    outcomes = {o.channel: o for o in send.send(alerts(), "r1", NOW)}
    assert outcomes["slow"].status == "failed" and "did not answer within 0.2 s" in str(
        outcomes["slow"].error
    )
    assert outcomes["gone"].status == "failed" and "cannot reach the webhook" in str(
        outcomes["gone"].error
    )
    assert outcomes["slow"].attempts == outcomes["gone"].attempts == 2


def test_a_client_error_is_not_retried(tmp_path: Path, webhook: Webhook) -> None:
    webhook.status = 404
    send, slept = notifier(tmp_path, {"team": {"type": "webhook", "url": webhook.url}})
    [outcome] = send.send(alerts(), "r1", NOW)
    assert (outcome.status, outcome.attempts, slept) == ("failed", 1, [])


def test_a_missing_secret_is_recorded_not_raised(tmp_path: Path) -> None:
    send, _ = notifier(tmp_path, {"team": {"type": "webhook", "url": {"secret": "NO_SUCH_HOOK"}}})
    [outcome] = send.send(alerts(), "r1", NOW)
    assert outcome.status == "failed" and "NO_SUCH_HOOK" in str(outcome.error)


def test_email_goes_to_the_channel_and_the_owners(tmp_path: Path, smtp_server: Mailbox) -> None:
    send, _ = notifier(
        tmp_path,
        {
            "mail": {
                "type": "email",
                "host": "127.0.0.1",
                "port": smtp_server.port,
                "from": "stackyard@example.com",
                "to": ["data@example.com"],
            }
        },
    )
    found = group_alerts(
        BROKEN, LINEAGE, owners={"app.orders": ("@app", "owner@example.com")}, context="project p"
    )
    [outcome] = send.send(found, "r1", NOW)
    assert outcome.status == "sent"
    [message] = smtp_server.messages
    assert message["Subject"].startswith("stackyard: app.orders anomaly")
    assert message["To"] == "data@example.com, owner@example.com"
    assert "null_rate(amount): every value is NULL" in message.get_payload()
