"""Alerts: one message per run and root cause, to a webhook and/or by e-mail.

* **Grouping.** Every alerting table is attributed to its root cause: the most upstream
  alerting table in the dbt lineage it descends from (itself when none). One message per
  root cause lists every finding of that table and of the tables downstream of it — an
  upstream rename that empties a column in a source, its staging view and a mart is one
  message, not three (and never one per column).
* **Suppression.** A message whose root cause and alerting findings (table, check, column,
  day) were all sent on that channel within ``suppress_hours`` — the same message, or one
  with fewer findings after one was marked as a known incident — is recorded as
  ``suppressed`` and not sent; a new finding makes it a new message.
* **Retries.** A channel that times out, refuses the connection or answers 429/5xx is retried
  with exponential backoff and jitter; other 4xx answers are not retried (the request itself
  is wrong). A channel that still fails is recorded with the error, never raised: alerting
  trouble never changes a run's result.

Webhooks get Slack-compatible JSON (``text`` plus ``blocks``; Slack, Mattermost, Rocket.Chat
and most chat tools accept it) through :mod:`urllib`; e-mail goes through :mod:`smtplib`.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from stackyard.config.monitors import AlertsConfig, EmailChannel, WebhookChannel
from stackyard.config.secrets import Secrets
from stackyard.errors import ConfigError, counted
from stackyard.metadata.monitors import MetricStore
from stackyard.monitors.health import ALERTING, AlertOutcome, TableHealth
from stackyard.monitors.lineage import Lineage

if TYPE_CHECKING:
    from email.message import EmailMessage

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# HTTP answers worth retrying: the receiver is overloaded or broken for now.
_RETRYABLE_STATUS = {408, 425, 429, 500, 502, 503, 504}


@dataclass(frozen=True)
class Alert:
    """One grouped alert: a root cause and every alerting table it explains.

    Attributes:
        key: identifies the root cause and its findings, for suppression.
        root_cause: the root cause table (``schema.name``).
        title: the one-line headline.
        tables: the root cause first, then the tables downstream of it.
        owners: who to tell (Slack handles and e-mail addresses).
        context: project, target and run, for the footer.
        findings: its alerting findings, ``table|check|day`` each, for suppression.
    """

    key: str
    root_cause: str
    title: str
    tables: tuple[TableHealth, ...]
    owners: tuple[str, ...]
    context: str
    root_tables: tuple[str, ...] = ()
    findings: tuple[str, ...] = ()

    def role(self, table: TableHealth) -> str:
        """``root cause`` or ``downstream``."""
        if table.table == self.root_cause or table.table in self.root_tables:
            return "root cause"
        return "downstream"

    def lines(self) -> list[str]:
        """The message body, one line per finding, grouped by table."""
        lines = []
        for table in self.tables:
            lines.append(f"{table.table} ({table.kind}, {self.role(table)}): {table.status}")
            for check in table.findings:
                lines.append(f"  - {check.label}: {check.reason}")
        return lines

    def text(self) -> str:
        """The plain-text message (the e-mail body, the webhook's fallback text)."""
        body = [self.title, "", *self.lines(), ""]
        if self.owners:
            body.append("owners: " + ", ".join(self.owners))
        body.append(self.context)
        body.append("details: stackyard health, stackyard report")
        return "\n".join(body)

    def slack_payload(self) -> dict[str, Any]:
        """Slack-compatible JSON: ``text`` for notifications, ``blocks`` for the layout."""
        sections: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": self.title[:150]}}
        ]
        for table in self.tables:
            role = self.role(table)
            items = "\n".join(f"• *{c.label}*: {c.reason}" for c in table.findings)
            sections.append(
                {
                    "type": "section",
                    "text": {
                        "type": "mrkdwn",
                        # Slack caps a section's text at 3,000 characters.
                        "text": f"*{table.table}* ({table.kind}, {role}): "
                        f"*{table.status}*\n{items}"[:3000],
                    },
                }
            )
        footer = self.context + (" · owners: " + ", ".join(self.owners) if self.owners else "")
        sections.append({"type": "context", "elements": [{"type": "mrkdwn", "text": footer}]})
        return {"text": self.text(), "blocks": sections}


def group_alerts(
    tables: Sequence[TableHealth],
    lineage: Lineage,
    *,
    owners: dict[str, tuple[str, ...]],
    context: str,
    groups: dict[str, str] | None = None,
) -> list[Alert]:
    """Group alerting tables by root cause: one :class:`Alert` per root cause.

    Tables that only warn ride along when they are downstream of an alerting root (an added
    column next to a column gone NULL), and never make an alert on their own.

    Args:
        tables: every monitored table's health.
        lineage: the dbt lineage (may be empty: then each table is its own root cause).
        owners: owners per table (``schema.name``).
        context: a footer line naming project, target and run.
        groups: a root cause shared by several tables, per table: every table of a source
            whose load failed has the root cause "source <name>".

    Returns:
        The alerts, root causes in name order.
    """
    shared = groups or {}
    found: dict[str, list[TableHealth]] = {}
    broken = {t.unique_id for t in tables if t.alerting and t.unique_id}
    by_uid = {t.unique_id: t for t in tables if t.unique_id}
    for table in tables:
        if not table.alerting:
            continue
        root_uid = lineage.root_cause(table.unique_id, broken)
        root = by_uid[root_uid].table if root_uid in by_uid else table.table
        root = shared.get(root, root)
        found.setdefault(root, []).append(table)
    # Warnings downstream of a root ride along: they are likely the same story.
    for table in tables:
        if table.status != "warn" or not table.unique_id:
            continue
        ancestors = lineage.ancestors(table.unique_id)
        for members in found.values():
            if any(t.unique_id in ancestors for t in members):
                members.append(table)
                break
    alerts = []
    for root, members in sorted(found.items()):
        members.sort(key=lambda t: (t.table != root and shared.get(t.table) != root, t.table))
        findings = sorted(
            f"{t.table}|{c.label}|{c.day or ''}"
            for t in members
            for c in t.findings
            if c.status in ALERTING
        )
        key = hashlib.sha256((f"{root}\n" + "\n".join(findings)).encode()).hexdigest()[:16]
        count = sum(len(t.findings) for t in members)
        roots = tuple(t.table for t in members if t.table == root or shared.get(t.table) == root)
        downstream = len(members) - len(roots)
        title = f"stackyard: {root} {members[0].status} — {counted(count, 'finding')}" + (
            f", {counted(downstream, 'downstream table')} affected" if downstream else ""
        )
        who = tuple(dict.fromkeys(o for t in members for o in owners.get(t.table, ())))
        alerts.append(Alert(key, root, title, tuple(members), who, context, roots, tuple(findings)))
    return alerts


class DeliveryError(Exception):
    """A channel did not take the alert (internal: recorded, never raised to the caller)."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class Notifier:
    """Sends grouped alerts to the configured channels, with suppression and retries.

    Args:
        config: the ``monitors.alerts`` section.
        store: where outcomes are recorded and suppression looks.
        secrets: resolves a webhook URL or SMTP password given as ``{secret: NAME}``.
        sleep: waits between retries (tests pass a fake).
        jitter: draws the jitter factor (tests pass a constant).
    """

    def __init__(
        self,
        config: AlertsConfig,
        store: MetricStore,
        secrets: Secrets,
        *,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self.store = store
        self.secrets = secrets
        self.sleep = sleep
        self.jitter = jitter

    def send(self, alerts: Sequence[Alert], run_id: str, now: datetime) -> list[AlertOutcome]:
        """Deliver every alert on every channel; record and return each outcome."""
        outcomes = []
        for alert in alerts:
            for name, channel in sorted(self.config.channels.items()):
                outcome = self._send_one(alert, name, channel, now)
                self.store.record_alert(
                    run_id=run_id,
                    sent_at=now,
                    key=alert.key,
                    root_cause=alert.root_cause,
                    channel=name,
                    status=outcome.status,
                    attempts=outcome.attempts,
                    error=outcome.error,
                    summary=alert.title,
                    findings=alert.findings,
                )
                outcomes.append(outcome)
        return outcomes

    def _send_one(
        self, alert: Alert, name: str, channel: WebhookChannel | EmailChannel, now: datetime
    ) -> AlertOutcome:
        last = self.store.last_sent(alert.key, name)
        window = timedelta(hours=self.config.suppress_hours)
        why = None
        if last is not None and now - last < window:
            why = f"same alert sent at {last.isoformat(timespec='seconds')}"
        # Fewer findings than an alert sent, and none new (one of them marked as a known
        # incident since): nothing to tell. It was sent again before.
        elif alert.findings and self.store.sent_findings(
            alert.root_cause, name, now - window
        ).issuperset(alert.findings):
            why = f"each finding already sent within {self.config.suppress_hours:g} h"
        if why is not None:
            title = f"{alert.title} ({why})"
            return AlertOutcome(alert.key, alert.root_cause, name, "suppressed", title=title)
        try:
            deliver = self._delivery(alert, name, channel)
        except ConfigError as exc:
            return AlertOutcome(alert.key, alert.root_cause, name, "failed", 0, exc.message)
        attempts = 0
        error = ""
        for attempt in range(self.config.retries + 1):
            attempts = attempt + 1
            try:
                deliver()
            except DeliveryError as exc:
                error = str(exc)
                if not exc.retryable or attempt == self.config.retries:
                    break
                # Exponential backoff with jitter (0.5×–1.5×), so that several stackyard
                # projects alerting to one broken receiver do not retry in lockstep.
                delay = self.config.backoff_seconds * (2**attempt) * (0.5 + self.jitter())
                self.sleep(delay)
            else:
                return AlertOutcome(
                    alert.key, alert.root_cause, name, "sent", attempts, None, alert.title
                )
        return AlertOutcome(
            alert.key, alert.root_cause, name, "failed", attempts, error, alert.title
        )

    def _delivery(
        self, alert: Alert, name: str, channel: WebhookChannel | EmailChannel
    ) -> Callable[[], None]:
        if isinstance(channel, WebhookChannel):
            url = channel.url
            if not isinstance(url, str):
                url = self.secrets.resolve(url, used_for=f"monitors.alerts.channels.{name}.url")
            payload = json.dumps(alert.slack_payload()).encode()
            resolved = url
            return lambda: post_webhook(resolved, payload, channel.timeout_seconds)
        password = None
        if channel.password is not None:
            password = self.secrets.resolve(
                channel.password, used_for=f"monitors.alerts.channels.{name}.password"
            )
        owners = [o for o in alert.owners if _EMAIL.match(o)]
        recipients = list(dict.fromkeys([*channel.to, *owners]))
        if not recipients:
            raise ConfigError(
                f"e-mail channel '{name}' has no recipient: set monitors.alerts.channels."
                f"{name}.to or give the tables owners with e-mail addresses"
            )
        from email.message import EmailMessage

        message = EmailMessage()
        message["Subject"] = alert.title
        message["From"] = channel.from_
        message["To"] = ", ".join(recipients)
        message.set_content(alert.text())
        return lambda: send_email(channel, password, message)


def post_webhook(url: str, payload: bytes, timeout: float) -> None:
    """POST a JSON payload.

    Raises:
        DeliveryError: the receiver timed out, was unreachable or did not answer 2xx.
    """
    # Imported here: a pass without alerts (every no-op run) never needs them.
    import http.client
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        url,
        data=payload,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "stackyard-monitors"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        raise DeliveryError(
            f"the webhook answered HTTP {exc.code} {exc.reason}",
            retryable=exc.code in _RETRYABLE_STATUS,
        ) from None
    except TimeoutError:
        raise DeliveryError(
            f"the webhook did not answer within {timeout:g} s", retryable=True
        ) from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            raise DeliveryError(
                f"the webhook did not answer within {timeout:g} s", retryable=True
            ) from None
        raise DeliveryError(f"cannot reach the webhook: {reason}", retryable=True) from None
    except (OSError, http.client.HTTPException) as exc:
        raise DeliveryError(f"the webhook connection failed: {exc}", retryable=True) from None


def send_email(channel: EmailChannel, password: str | None, message: EmailMessage) -> None:
    """Send one e-mail through the channel's SMTP server.

    Raises:
        DeliveryError: the server was unreachable, timed out or refused the message.
    """
    import smtplib

    try:
        with smtplib.SMTP(channel.host, channel.port, timeout=channel.timeout_seconds) as smtp:
            if channel.starttls:
                smtp.starttls()
            if channel.username and password is not None:
                smtp.login(channel.username, password)
            smtp.send_message(message)
    except smtplib.SMTPResponseException as exc:
        raise DeliveryError(
            f"the SMTP server {channel.host}:{channel.port} refused: {exc.smtp_code} "
            f"{exc.smtp_error!r}",
            retryable=exc.smtp_code >= 400 and exc.smtp_code < 500,
        ) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(
            f"cannot send through {channel.host}:{channel.port}: {exc or type(exc).__name__}",
            retryable=True,
        ) from None
