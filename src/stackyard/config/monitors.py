"""The ``monitors:`` section of stackyard.yml: what is watched, how it is judged, who is told.

Everything is optional. Without the section every table stackyard loads or builds is
monitored with defaults that work untuned (volume, freshness, null rates, duplicate keys,
schema drift, dbt tests); alerts need at least one channel.

.. code-block:: yaml

    monitors:
      holidays: [2026-12-25, 2027-01-01]
      tables:
        app.orders: {time_column: ordered_at, key: id, sensitivity: high}
        customer_orders: {direction: drop}          # a dbt model, by name
      alerts:
        suppress_hours: 12
        channels:
          team: {type: webhook, url: {secret: SLACK_WEBHOOK_URL}}
          mail: {type: email, host: smtp.example.com, port: 587, from: stackyard@example.com,
                 to: [data@example.com], username: stackyard, password: {secret: SMTP_PASSWORD}}
        owners:
          app: ["@data-eng", data-eng@example.com]  # a source: all its tables
          customer_orders: [analytics@example.com]  # a model
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Literal

from pydantic import Field, PositiveFloat, field_validator, model_validator

from stackyard.config.base import SecretRef, StrictModel

# "schema.table" for a source table or a model's relation, or a bare dbt model name.
_TABLE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$")


def dlt_spelling(key: str) -> str | None:
    """The ``schema.table`` dlt loads a ``schema.table`` key into, when dlt's snake_case
    naming spells it another way (a table declared ``Événements`` loads as ``_v_nements``),
    else ``None``.

    >>> dlt_spelling("uni.Événements"), dlt_spelling("app.my-table"), dlt_spelling("a.b.c")
    ('uni._v_nements', 'app.my_table', None)
    """
    schema, dot, table = key.partition(".")
    if not (dot and schema and table) or "." in table:
        return None
    # Only on a key already refused: importing dlt costs about a second of start-up.
    from dlt.common.normalizers.naming.snake_case import NamingConvention

    spell = NamingConvention().normalize_table_identifier
    spelt = f"{spell(schema)}.{spell(table)}"
    return spelt if spelt != key and _TABLE_KEY.match(spelt) else None


class TableMonitor(StrictModel):
    """How one table is monitored; every field has a default that works untuned."""

    enabled: bool = Field(True, description="false: do not monitor this table at all.")
    sensitivity: Literal["low", "medium", "high"] | PositiveFloat = Field(
        "medium",
        description="Volume band half-width: 'high' alerts on smaller deviations, 'low' only "
        "on large ones; a number is the half-width in robust standard deviations (medium = 4).",
    )
    direction: Literal["both", "drop", "spike"] = Field(
        "both", description="Alert on volume drops, spikes or both."
    )
    seasonality: Literal["weekly", "none"] = Field(
        "weekly", description="'weekly' learns a usual level per weekday."
    )
    time_column: str | None = Field(
        None,
        description="Date or timestamp column to count rows per day by. Default: found from "
        "the table's columns (created_at, order_date …); without one, volume is rows per load.",
    )
    key: str | list[str] | None = Field(
        None,
        description="Column(s) that identify a row, for the duplicate check. Default: the "
        "source's primary_key, or the column of a model's dbt `unique` test.",
    )
    owner: str | list[str] | None = Field(
        None,
        description="Who is told when this table alerts (a Slack handle or an e-mail), on top "
        "of the source's `owner` and `monitors.alerts.owners`.",
    )
    columns: list[str] = Field(
        default_factory=list,
        description="Columns to profile per day by the time column: distinct count, and for "
        "numeric columns the mean and median (not for ids: `id`, `…_id` or the key), each judged "
        "against its own history.",
    )
    dimensions: list[str] = Field(
        default_factory=list,
        description="Low-cardinality columns (status, country …) whose rows per value per day "
        "are each judged like a volume: a value that stops arriving or floods is an anomaly.",
    )
    null_rate_increase: float = Field(
        0.1,
        gt=0,
        le=1,
        description="A column's null rate alerts when it rises this much (0.1 = 10 percentage "
        "points) above its recent median.",
    )

    @field_validator("columns", "dimensions")
    @classmethod
    def _once_each(cls, value: list[str]) -> list[str]:
        # Listed twice, a column was judged twice, and one problem counted twice in an alert.
        twice = sorted({c for c in value if value.count(c) > 1})
        if twice:
            raise ValueError(f"{', '.join(twice)} listed more than once: list each column once")
        return value


class WebhookChannel(StrictModel):
    """A webhook that takes Slack-compatible JSON (``text`` and ``blocks``)."""

    type: Literal["webhook"]
    url: str | SecretRef = Field(
        description="https://hooks.slack.com/… or any endpoint; {secret: NAME} keeps it out of "
        "stackyard.yml."
    )
    timeout_seconds: PositiveFloat = Field(10.0, description="Per attempt.")

    @field_validator("url")
    @classmethod
    def _http(cls, value: str | SecretRef) -> str | SecretRef:
        if isinstance(value, str) and not value.startswith(("http://", "https://")):
            raise ValueError(f"webhook url must start with http:// or https://, got '{value}'")
        return value


class EmailChannel(StrictModel):
    """An SMTP server that relays alert e-mails."""

    type: Literal["email"]
    host: str = "127.0.0.1"
    port: int = Field(25, ge=1, le=65535)
    from_: str = Field(alias="from", description="Sender address.")
    to: list[str] = Field(
        default_factory=list, description="Recipients of every alert; owners are added."
    )
    username: str | None = None
    password: SecretRef | None = None
    starttls: bool = Field(False, description="Upgrade the connection with STARTTLS.")
    timeout_seconds: PositiveFloat = 10.0

    @field_validator("from_", "to")
    @classmethod
    def _addresses(cls, value: str | list[str]) -> str | list[str]:
        # A server may well accept "data-team" as an address and the mail then goes nowhere:
        # refused here, before the first alert is lost.
        for address in [value] if isinstance(value, str) else value:
            name, at, domain = address.rpartition("@")
            if not (name and at and domain) or any(c.isspace() for c in address):
                raise ValueError(f"'{address}' is not an e-mail address (name@example.com)")
        return value

    @model_validator(mode="after")
    def _login_pairs(self) -> EmailChannel:
        if (self.username is None) != (self.password is None):
            given, missing = ("username", "password") if self.username else ("password", "username")
            raise ValueError(
                f"{given} is set but {missing} is not: the server is logged in to with both, "
                "or with neither"
            )
        return self


Channel = Annotated[WebhookChannel | EmailChannel, Field(discriminator="type")]


class AlertsConfig(StrictModel):
    """Where alerts go, how often, and how hard to try."""

    channels: dict[str, Channel] = Field(default_factory=dict)
    owners: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Owners per source name or model name: Slack handles (@team) are "
        "mentioned, e-mail addresses also receive the e-mail alert.",
    )
    suppress_hours: float = Field(
        24.0,
        ge=0,
        description="An alert with the same root cause and the same findings is not sent "
        "again within this many hours.",
    )
    retries: int = Field(3, ge=0, le=10, description="Retries of a failing channel.")
    backoff_seconds: float = Field(
        1.0, ge=0, le=60, description="First retry delay; doubles each retry, with jitter."
    )

    @field_validator("owners", mode="before")
    @classmethod
    def _owner_lists(cls, value: object) -> object:
        if isinstance(value, dict):
            return {k: [v] if isinstance(v, str) else v for k, v in value.items()}
        return value


class MonitorsConfig(StrictModel):
    """The ``monitors:`` section: defaults that work untuned, overrides per table."""

    enabled: bool = Field(True, description="false: no monitors after `stackyard run`.")
    defaults: TableMonitor = Field(
        default_factory=TableMonitor,
        description="Settings for every table; an entry under `tables` overrides only the "
        "settings it names.",
    )
    tables: dict[str, TableMonitor] = Field(
        default_factory=dict,
        description="Overrides per table: 'schema.table' or a dbt model name.",
    )
    holidays: list[date] = Field(
        default_factory=list,
        description="The business calendar: these days are not judged and never enter a baseline.",
    )
    recheck_days: int = Field(
        7,
        ge=1,
        le=60,
        description="For tables counted by a time column: how many recent complete days are "
        "judged on every run (late or deleted rows change past days).",
    )
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)

    @field_validator("tables")
    @classmethod
    def _table_keys(cls, value: dict[str, TableMonitor]) -> dict[str, TableMonitor]:
        for key in value:
            if _TABLE_KEY.match(key):
                continue
            spelt = dlt_spelling(key)
            if spelt is not None:
                raise ValueError(
                    f"'{key}' is not a table as loaded: a table is named as dlt spells it "
                    f"(did you mean '{spelt}'?)"
                )
            raise ValueError(
                f"'{key}' is not a table: write 'schema.table' (e.g. app.orders) or a dbt "
                "model name (e.g. customer_orders)"
            )
        return value

    @model_validator(mode="after")
    def _owners_are_plain(self) -> MonitorsConfig:
        for name, owners in self.alerts.owners.items():
            if not owners:
                raise ValueError(f"alerts.owners.{name} is empty: list at least one owner")
        return self

    def for_table(self, relation: str, name: str | None = None) -> TableMonitor:
        """The settings of one table: ``defaults``, overridden by the settings its
        ``schema.table`` entry (else its model name's entry) names.

        An entry overrides only what it sets: listing a table to give it an owner must not
        put its direction or sensitivity back to the built-in ones.

        >>> cfg = MonitorsConfig(
        ...     defaults=TableMonitor(direction="drop"),
        ...     tables={"app.orders": TableMonitor(key="id")},
        ... )
        >>> orders = cfg.for_table("app.orders")
        >>> orders.key, orders.direction, cfg.for_table("app.customers").key
        ('id', 'drop', None)
        """
        entry = self.tables.get(relation)
        if entry is None and name is not None:
            entry = self.tables.get(name)
        if entry is None:
            return self.defaults
        return self.defaults.model_copy(
            update={field: getattr(entry, field) for field in entry.model_fields_set}
        )
