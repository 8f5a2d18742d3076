"""The health of monitored tables: each check's verdict, each table's status, and the report
of one monitor pass. Immutable results, shared by the suite, ``stackyard health``, alerts and
the HTML report.

A table's status is the worst of its checks':

========== ===============================================================================
status     meaning
========== ===============================================================================
anomaly    something is wrong: a volume outside its band, a column gone NULL, duplicate
           keys, a removed column or changed type, a failing dbt test, data past its error
           age, or the table itself is gone (``missing``)
warn       worth a look, not an alert: data past its warn age, a load time in the future,
           a column added
error      the monitor could not measure the table (the message says why)
learning   fewer than 14 usable days of volume history: not judged yet
ok         every check passed
========== ===============================================================================
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any, Literal

from stackyard.errors import counted
from stackyard.monitors.anomaly.stats import whole_rows_band

CheckStatus = Literal["ok", "warn", "anomaly", "error", "learning", "missing"]
TableStatus = Literal["ok", "warn", "anomaly", "error", "learning", "missing"]
ReportStatus = Literal["ok", "warn", "anomaly"]

_RANK = {"ok": 0, "learning": 1, "warn": 2, "error": 3, "anomaly": 4, "missing": 5}
#: Statuses that raise an alert and make ``stackyard health`` exit 1.
ALERTING = ("anomaly", "missing")


@dataclass(frozen=True)
class Check:
    """One check's verdict on one table.

    Attributes:
        check: ``volume``, ``arrival``, ``freshness``, ``null_rate``, ``duplicates``, ``schema``,
            ``tests`` or ``table``.
        status: see the module docstring.
        reason: one sentence a person can act on.
        column: the column, for per-column checks.
        day: the day judged, for day-based checks.
        value: the measured value.
        expected: what the baseline predicted, when there is one.
        lower: lower edge of the normal band.
        upper: upper edge of the normal band.
    """

    check: str
    status: CheckStatus
    reason: str
    column: str | None = None
    day: date | None = None
    value: float | None = None
    expected: float | None = None
    lower: float | None = None
    upper: float | None = None

    @property
    def label(self) -> str:
        """The check and its column, e.g. ``null_rate(amount)``.

        >>> Check("null_rate", "ok", "", column="amount").label
        'null_rate(amount)'
        """
        return f"{self.check}({self.column})" if self.column else self.check


@dataclass(frozen=True)
class TableHealth:
    """Everything the monitors know about one table after a pass.

    Attributes:
        table: ``schema.name`` in the warehouse.
        kind: ``source`` or ``model``.
        node: the name people know it by (a model's name, ``source.table``).
        checks: every check's verdict, worst first.
        owners: who is told when it breaks.
        unique_id: dbt's id for it, when dbt knows it.
    """

    table: str
    kind: str
    node: str
    checks: tuple[Check, ...]
    owners: tuple[str, ...] = ()
    unique_id: str | None = None

    @property
    def status(self) -> TableStatus:
        """The worst status among the checks (``ok`` without checks)."""
        return worst(c.status for c in self.checks)

    @property
    def alerting(self) -> bool:
        """Whether this table's state raises an alert."""
        return self.status in ALERTING

    @property
    def problems(self) -> tuple[Check, ...]:
        """The checks that are not ``ok``, worst first."""
        return tuple(c for c in self.checks if c.status not in ("ok",))

    @property
    def findings(self) -> tuple[Check, ...]:
        """The problems an alert tells of: not ``ok`` and not still ``learning`` (a
        baseline being learnt is no finding)."""
        return tuple(c for c in self.problems if c.status != "learning")

    @property
    def volume(self) -> Check | None:
        """The volume check shown as the table's last value and band (the latest day judged,
        or the anomalous one)."""
        volumes = [c for c in self.checks if c.check == "volume"]
        return volumes[0] if volumes else None

    @property
    def why(self) -> str:
        """What is wrong, or why all is well, in one line.

        >>> TableHealth("a.b", "source", "a.b", (Check("volume", "ok", "100 rows is fine"),)).why
        '100 rows is fine'
        """
        problems = [c for c in self.checks if c.status == self.status]
        if not problems:
            return "no checks ran"
        if self.status == "ok":
            volume = self.volume
            return volume.reason if volume else problems[0].reason
        return "; ".join(f"{c.label}: {c.reason}" for c in problems)

    @property
    def short_why(self) -> str:
        """:attr:`why` for a narrow terminal: the checks at fault, the first one's gist
        (``stackyard health`` cuts it to the screen; ``--verbose`` shows it all).

        >>> TableHealth("a.b", "source", "a.b", (
        ...     Check("volume", "anomaly", "0 rows: an outage", day=date(2026, 3, 9), value=0,
        ...           lower=9, upper=35),
        ...     Check("duplicates", "anomaly", "40 rows repeat a key"))).short_why
        'volume 03-09: 0 rows, below 9–35, an outage; duplicates'
        >>> TableHealth("a.b", "model", "b", (Check("volume", "anomaly",
        ...     "0 rows on a table never empty before: an outage", day=date(2026, 3, 9),
        ...     value=0, lower=0.3, upper=20.2),)).short_why
        'volume 03-09: no rows, an outage'
        """
        problems = [c for c in self.checks if c.status == self.status]
        if self.status == "ok" or not problems:
            return self.why
        first, *others = problems
        gist = f"{first.label}: {first.reason}"
        if first.check == "volume" and None not in (first.value, first.lower, first.upper):
            value, lower, upper = float(first.value), float(first.lower), float(first.upper)  # type: ignore[arg-type]
            # In whole rows, as the detector judges and the band is said.
            low, high = math.floor(lower), math.ceil(upper)
            side = "below" if value < low else "above" if value > high else "within"
            day = f" {first.day:%m-%d}" if first.day else ""
            rows = f"{value:,.0f} row" + ("" if value == 1 else "s")
            gist = f"volume{day}: {rows}, {side} {whole_rows_band(lower, upper)}"
            if "outage" in first.reason:
                gist = f"volume{day}: no rows, an outage" if side == "within" else gist
                gist += ", an outage" if side != "within" else ""
        return "; ".join([gist, *(c.label for c in others)])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        volume = self.volume
        return {
            "table": self.table,
            "kind": self.kind,
            "node": self.node,
            "status": self.status,
            "why": self.why,
            "last_value": volume.value if volume else None,
            "expected": volume.expected if volume else None,
            "lower": volume.lower if volume else None,
            "upper": volume.upper if volume else None,
            "owners": list(self.owners),
            "checks": [_iso(asdict(c)) for c in self.checks],
        }


@dataclass(frozen=True)
class AlertOutcome:
    """What happened to one grouped alert on one channel."""

    key: str
    root_cause: str
    channel: str
    status: Literal["sent", "suppressed", "failed"]
    attempts: int = 0
    error: str | None = None
    title: str = ""


@dataclass(frozen=True)
class MonitorReport:
    """The result of one monitor pass.

    Attributes:
        tables: the health of every monitored table.
        alerts: each grouped alert's outcome per channel.
        run_id: the run the pass followed, or the on-demand pass's own id.
        measured_at: when the pass ran.
        notes: things the pass could not do, stated rather than raised.
    """

    tables: tuple[TableHealth, ...] = ()
    alerts: tuple[AlertOutcome, ...] = ()
    run_id: str = ""
    measured_at: datetime | None = None
    notes: tuple[str, ...] = ()

    @property
    def alerts_sent(self) -> int:
        """Alert messages delivered (per channel)."""
        return sum(1 for a in self.alerts if a.status == "sent")

    @property
    def alert_errors(self) -> tuple[str, ...]:
        """One line per channel that failed, with the error."""
        return tuple(
            f"{a.channel}: {a.error} (after {a.attempts} attempt(s))"
            for a in self.alerts
            if a.status == "failed"
        )

    @property
    def status(self) -> ReportStatus:
        """``anomaly`` when a table alerts, ``warn`` when one needs a look, else ``ok``."""
        statuses = {t.status for t in self.tables}
        if statuses & set(ALERTING):
            return "anomaly"
        if statuses & {"warn", "error"} or self.alert_errors:
            return "warn"
        return "ok"

    @property
    def summary(self) -> str:
        """One line: how many tables, how many in each state, alerts.

        >>> MonitorReport().summary
        'no tables monitored'
        """
        if not self.tables:
            return "no tables monitored" + (f" ({self.notes[0]})" if self.notes else "")
        counts: dict[str, int] = {}
        for t in self.tables:
            counts[t.status] = counts.get(t.status, 0) + 1
        order = sorted(counts, key=lambda s: -_RANK[s])
        parts = [f"{counts[s]} {s}" for s in order]
        line = f"{counted(len(self.tables), 'table')}: " + ", ".join(parts)
        if self.alerts:
            line += f"; {counted(self.alerts_sent, 'alert')} sent"
            suppressed = sum(1 for a in self.alerts if a.status == "suppressed")
            if suppressed:
                line += f", {suppressed} suppressed"
            if self.alert_errors:
                line += f", {len(self.alert_errors)} failed"
        return line

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "run_id": self.run_id,
            "measured_at": self.measured_at.isoformat() if self.measured_at else None,
            "status": self.status,
            "summary": self.summary,
            "alerts_sent": self.alerts_sent,
            "alert_errors": list(self.alert_errors),
            "alerts": [asdict(a) for a in self.alerts],
            "notes": list(self.notes),
            "tables": [t.to_dict() for t in self.tables],
        }


#: What health says before the first monitor pass on a target.
NO_PASS_YET = "no monitor pass yet on this target: `stackyard run` or `stackyard monitor`"
MONITORS_DISABLED = (
    "monitors are disabled (monitors.enabled: false in stackyard.yml): no table is judged, "
    "and the last pass is not shown as if it were current"
)


def worst(statuses: Any) -> TableStatus:
    """The most severe of some statuses (``ok`` for none).

    >>> worst(["ok", "warn", "learning"]), worst([])
    ('warn', 'ok')
    """
    found: TableStatus = "ok"
    for status in statuses:
        if _RANK[status] > _RANK[found]:
            found = status
    return found


# Among checks of one status, the table's own first: a whole-table outage is told as its
# volume, not as the first of its dimension values that went quiet with it.
_CHECK_ORDER = {
    name: i
    for i, name in enumerate(
        ("load", "table", "schema", "volume", "arrival", "freshness", "tests", "duplicates")
    )
}


def sort_checks(checks: list[Check]) -> tuple[Check, ...]:
    """Checks worst first, the table's own before its columns' and values', then by name,
    column and day."""
    return tuple(
        sorted(
            checks,
            key=lambda c: (
                -_RANK[c.status],
                _CHECK_ORDER.get(c.check, len(_CHECK_ORDER)),
                c.check,
                c.column or "",
                -(c.day.toordinal() if c.day else 0),
            ),
        )
    )


def _iso(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


@dataclass(frozen=True)
class HealthReport:
    """What ``stackyard health`` shows: every monitored table as of its latest pass.

    Attributes:
        tables: each table's health, alerting ones first.
        measured_at: when the latest pass ran, or ``None`` before the first.
        disabled: monitors are turned off in stackyard.yml (no table is shown: the last
            pass's verdicts, an anomaly among them, would page on as if current).
    """

    tables: tuple[TableHealth, ...] = ()
    measured_at: datetime | None = None
    disabled: bool = False

    @property
    def status(self) -> ReportStatus:
        """``anomaly`` when a table alerts, ``warn`` when one needs a look, else ``ok``."""
        return MonitorReport(tables=self.tables).status

    @property
    def exit_code(self) -> int:
        """1 when any table is anomalous or missing, else 0 (for scripts and CI)."""
        return 1 if self.status == "anomaly" else 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "measured_at": self.measured_at.isoformat() if self.measured_at else None,
            "status": self.status,
            # Before the first pass nothing was judged: "ok" alone read as "all healthy".
            "note": MONITORS_DISABLED
            if self.disabled
            else None
            if self.measured_at is not None
            else NO_PASS_YET,
            "tables": [t.to_dict() for t in self.tables],
        }


def health_from_findings(rows: list[dict[str, Any]]) -> tuple[TableHealth, ...]:
    """Rebuild each table's health from its stored findings (``monitor_findings`` rows).

    Returns:
        The tables, most severe first, then by name.
    """
    by_table: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_table.setdefault(row["table_name"], []).append(row)
    tables = []
    for name, found in by_table.items():
        checks = [
            Check(
                r["check_name"],
                r["status"],
                r["reason"],
                column=r["column_name"],
                day=r["day"],
                value=r["value"],
                expected=r["expected"],
                lower=r["lower_bound"],
                upper=r["upper_bound"],
            )
            for r in found
        ]
        tables.append(TableHealth(name, found[0]["kind"], found[0]["node"], sort_checks(checks)))
    return most_severe_first(tables)


def most_severe_first(tables: list[TableHealth]) -> tuple[TableHealth, ...]:
    """Tables in the order ``health`` and ``monitor`` list them: most severe, then by name."""
    return tuple(sorted(tables, key=lambda t: (-_RANK[t.status], t.table)))
