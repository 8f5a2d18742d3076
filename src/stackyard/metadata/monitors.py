"""Monitor history (every query on the monitor tables), kept in the ``stackyard`` schema of the target warehouse.

Beside the run history (``stackyard.runs`` …) live the monitors' own tables:

* ``monitor_runs`` — one row per monitor pass (after a run or on demand);
* ``monitor_metrics`` — every measured value: rows per day (``volume``), ``row_count``,
  ``null_rate`` per column, ``duplicates``, ``freshness`` (epoch seconds of the last load or
  build), ``tests_failed``. Append-only; for a ``volume`` day the latest measurement wins
  (late rows change past days);
* ``monitor_findings`` — each check's verdict: status, value, expected band and reason
  (what ``stackyard health`` and the report show);
* ``monitor_schemas`` — the latest column snapshot of each table, for schema drift;
* ``monitor_incidents`` — declared incident periods, kept out of every baseline;
* ``monitor_alerts`` — each alert per channel: sent, suppressed or failed, with the error.

Writes are batched (a few multi-row INSERTs per pass, whatever the number of tables) and only
portable SQL is used, so the same tables exist on DuckDB and Postgres.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from stackyard.metadata.schema import (
    MONITOR_TABLES,
    ensure_tables,
    existing_tables,
    insert_rows,
    relation,
)
from stackyard.warehouse.base import Warehouse


@dataclass(frozen=True)
class MetricRow:
    """One measured value, as stored."""

    table: str
    metric: str
    value: float
    column: str | None = None
    day: date | None = None


@dataclass(frozen=True)
class FindingRow:
    """One check's verdict on one table, as stored."""

    table: str
    kind: str
    node: str
    check: str
    status: str
    reason: str
    column: str | None = None
    day: date | None = None
    value: float | None = None
    expected: float | None = None
    lower: float | None = None
    upper: float | None = None


@dataclass(frozen=True)
class Snapshot:
    """The columns a table had when it was last measured."""

    table: str
    kind: str
    node: str
    unique_id: str | None
    columns: dict[str, str]
    captured_at: datetime | None


@dataclass(frozen=True)
class Incident:
    """A declared incident: the table's values in these days are kept out of baselines."""

    table: str
    start: date
    end: date
    note: str = ""
    #: When the same table and days had been marked already (so nothing new was stored).
    marked_before: datetime | None = None
    #: When it was marked (read back from the store; ``None`` on one not stored yet).
    marked_at: datetime | None = None

    def covers(self, day: date) -> bool:
        """Whether a day falls in the incident.

        >>> Incident("a.b", date(2026, 1, 1), date(2026, 1, 3)).covers(date(2026, 1, 2))
        True
        """
        return self.start <= day <= self.end

    def days(self) -> list[date]:
        """Every day of the incident."""
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]


class MetricStore:
    """Reads and writes the monitor tables of one warehouse."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse

    # ------------------------------------------------------------------ schema

    def ensure(self) -> None:
        """Create the metadata schema and tables, and add columns newer versions need."""
        ensure_tables(self.warehouse, MONITOR_TABLES)

    def exists(self) -> bool:
        """Whether monitors have ever run on this warehouse."""
        return "monitor_runs" in existing_tables(self.warehouse)

    # ------------------------------------------------------------------ writes

    def record_pass(
        self,
        *,
        run_id: str,
        measured_at: datetime,
        trigger: str,
        status: str,
        tables_checked: int,
        anomalies: int,
        summary: str,
        metrics: Sequence[MetricRow],
        findings: Sequence[FindingRow],
        snapshots: Sequence[Snapshot],
    ) -> None:
        """Write one monitor pass: its metrics, findings and the tables' new snapshots."""
        self._insert(
            "monitor_runs",
            [(run_id, measured_at, trigger, status, tables_checked, anomalies, summary)],
        )
        self._insert(
            "monitor_metrics",
            [(run_id, measured_at, m.table, m.metric, m.column, m.day, m.value) for m in metrics],
        )
        self._insert(
            "monitor_findings",
            [
                (
                    run_id,
                    measured_at,
                    f.table,
                    f.kind,
                    f.node,
                    f.check,
                    f.column,
                    f.day,
                    f.status,
                    f.value,
                    f.expected,
                    f.lower,
                    f.upper,
                    f.reason,
                )
                for f in findings
            ],
        )
        if snapshots:
            w = self.warehouse
            names = [s.table for s in snapshots]
            for chunk in _chunks(names, 1000):
                marks = ", ".join([w.param()] * len(chunk))
                w.execute(
                    f"DELETE FROM {self._name('monitor_schemas')} WHERE table_name IN ({marks})",
                    chunk,
                )
            self._insert(
                "monitor_schemas",
                [
                    (s.table, s.kind, s.node, s.unique_id, column, data_type, i, s.captured_at)
                    for s in snapshots
                    for i, (column, data_type) in enumerate(s.columns.items())
                ],
            )

    def add_incident(self, incident: Incident, marked_at: datetime) -> datetime | None:
        """Record a declared incident, once per table and days.

        Returns:
            ``None`` when it was recorded; when the same table and days were marked already,
            when that was (nothing new is stored; a new, non-empty note replaces the old one).
        """
        self.ensure()
        w = self.warehouse
        p = w.param()
        where = f"WHERE table_name = {p} AND start_day = {p} AND end_day = {p}"
        key = (incident.table, incident.start, incident.end)
        found = w.query(
            f"SELECT min(marked_at), count(*) FROM {self._name('monitor_incidents')} {where}", key
        ).rows
        earlier, count = found[0] if found else (None, 0)
        if not count:
            self._insert("monitor_incidents", [(*key, incident.note, marked_at)])
            return None
        if incident.note:
            w.execute(
                f"UPDATE {self._name('monitor_incidents')} SET note = {p} {where}",
                (incident.note, *key),
            )
        if isinstance(earlier, datetime) and earlier.tzinfo is not None:
            return earlier.astimezone(UTC)
        return earlier if isinstance(earlier, datetime) else marked_at

    def record_alert(
        self,
        *,
        run_id: str,
        sent_at: datetime,
        key: str,
        root_cause: str,
        channel: str,
        status: str,
        attempts: int,
        error: str | None,
        summary: str,
        findings: Sequence[str] = (),
    ) -> None:
        """Record what happened to one alert on one channel, with its findings (one per
        line: ``table|check|day``), which suppression reads."""
        row = (run_id, sent_at, key, root_cause, channel, status, attempts, error, summary)
        self._insert("monitor_alerts", [(*row, "\n".join(findings) or None)])

    # ------------------------------------------------------------------ reads

    def snapshots(self) -> dict[str, Snapshot]:
        """The latest column snapshot of every table ever monitored here."""
        result = self.warehouse.query(
            "SELECT table_name, kind, node, unique_id, column_name, data_type, captured_at "
            f"FROM {self._name('monitor_schemas')} ORDER BY table_name, position"
        )
        columns: dict[str, dict[str, str]] = defaultdict(dict)
        meta: dict[str, tuple[Any, ...]] = {}
        for table, kind, node, unique_id, column, data_type, captured_at in result.rows:
            columns[table][column] = data_type
            meta[table] = (kind, node, unique_id, captured_at)
        return {t: Snapshot(t, m[0], m[1], m[2], columns[t], m[3]) for t, m in sorted(meta.items())}

    def volumes(self, tables: Iterable[str], since: date) -> dict[str, dict[date, float]]:
        """Rows per day of each table since a day; the latest measurement of each day wins."""
        series: dict[str, dict[date, float]] = defaultdict(dict)
        for table, day, value, _ in self._metric_rows(tables, ("volume",), since):
            series[table][day] = value
        return {t: dict(sorted(s.items())) for t, s in series.items()}

    def arrivals(self, tables: Iterable[str], since: date) -> dict[str, dict[date, datetime]]:
        """When each day of each table first had rows (its first non-zero ``volume``
        measurement), for days since ``since`` first seen after the table's first pass: the
        days a first pass found all at once say nothing of how soon rows arrive."""
        wanted = set(tables)
        if not wanted:
            return {}
        w = self.warehouse
        metrics = self._name("monitor_metrics")
        rows = w.query(
            "SELECT m.table_name, m.day, min(m.measured_at) FROM "
            f"{metrics} AS m JOIN (SELECT table_name, min(measured_at) AS first_pass "
            f"FROM {metrics} WHERE metric = 'volume' GROUP BY table_name) AS f "
            "ON f.table_name = m.table_name "
            f"WHERE m.metric = 'volume' AND m.value > 0 AND m.day >= {w.param()} "
            "GROUP BY m.table_name, m.day, f.first_pass "
            "HAVING min(m.measured_at) > f.first_pass",
            (since,),
        ).rows
        found: dict[str, dict[date, datetime]] = defaultdict(dict)
        for table, day, first in rows:
            if table in wanted:
                found[table][_as_date(day)] = first
        return dict(found)

    def history(
        self,
        tables: Iterable[str],
        metrics: Sequence[str],
        since: date,
        alerted_since: date | None = None,
    ) -> dict[tuple[str, str, str | None], list[tuple[date, float]]]:
        """Measurements per ``(table, metric, column)``, oldest first, since a day; with
        ``alerted_since``, those its pass found anomalous (the check of the metric's name)
        on or after that day are left out."""
        found: dict[tuple[str, str, str | None], list[tuple[date, float]]] = defaultdict(list)
        w = self.warehouse
        wanted = list(tables)
        if not wanted:
            return {}
        p = w.param()
        alerted = (
            f"AND NOT (m.day >= {p} AND EXISTS (SELECT 1 FROM {self._name('monitor_findings')} f "
            "WHERE f.run_id = m.run_id AND f.table_name = m.table_name "
            "AND f.check_name = m.metric AND f.status = 'anomaly' "
            "AND coalesce(f.column_name, '') = coalesce(m.column_name, ''))) "
            if alerted_since is not None
            else ""
        )
        rows = w.query(
            "SELECT m.table_name, m.metric, m.column_name, m.day, m.value "
            f"FROM {self._name('monitor_metrics')} m WHERE m.day >= {p} "
            f"AND m.metric IN ({', '.join([p] * len(metrics))}) {alerted}"
            "ORDER BY m.measured_at",
            (since, *metrics, *(() if alerted_since is None else (alerted_since,))),
        ).rows
        keep = set(wanted)
        for table, metric, column, day, value in rows:
            if table in keep:
                found[(table, metric, column)].append((_as_date(day), float(value)))
        return dict(found)

    def alerted_days(self, tables: Iterable[str], check: str, since: date) -> dict[str, set[date]]:
        """Days a check has found anomalous on each table (kept out of later baselines)."""
        w = self.warehouse
        p = w.param()
        keep = set(tables)
        rows = w.query(
            f"SELECT DISTINCT table_name, day FROM {self._name('monitor_findings')} "
            f"WHERE check_name = {p} AND status = 'anomaly' AND day >= {p}",
            (check, since),
        ).rows
        days: dict[str, set[date]] = defaultdict(set)
        for table, day in rows:
            if table in keep and day is not None:
                days[table].add(_as_date(day))
        return dict(days)

    def alerted_columns(
        self, tables: Iterable[str], checks: Sequence[str], since: date
    ) -> dict[str, dict[tuple[str, str], set[date]]]:
        """Days each column check has found anomalous, per table and ``(check, column)``; a
        dimension's column is ``col=value`` (kept out of that series' later baselines)."""
        wanted = list(checks)
        if not wanted:
            return {}
        w = self.warehouse
        p = w.param()
        keep = set(tables)
        rows = w.query(
            "SELECT DISTINCT table_name, check_name, column_name, day FROM "
            f"{self._name('monitor_findings')} WHERE check_name IN "
            f"({', '.join([p] * len(wanted))}) AND status = 'anomaly' AND day >= {p}",
            (*wanted, since),
        ).rows
        days: dict[str, dict[tuple[str, str], set[date]]] = defaultdict(dict)
        for table, check, column, day in rows:
            if table in keep and column is not None and day is not None:
                days[table].setdefault((check, column), set()).add(_as_date(day))
        return dict(days)

    def incidents(self, tables: Iterable[str] | None = None) -> list[Incident]:
        """Declared incidents, optionally only those of some tables."""
        w = self.warehouse
        if "monitor_incidents" not in existing_tables(w):
            return []
        rows = w.query(
            "SELECT table_name, start_day, end_day, note, marked_at FROM "
            f"{self._name('monitor_incidents')} ORDER BY table_name, start_day, end_day"
        ).rows
        keep = set(tables) if tables is not None else None
        return [
            Incident(r[0], _as_date(r[1]), _as_date(r[2]), r[3] or "", marked_at=_utc(r[4]))
            for r in rows
            if keep is None or r[0] in keep
        ]

    def marked_days(self) -> dict[str, set[date]]:
        """Every table's days marked as a known incident."""
        days: dict[str, set[date]] = defaultdict(set)
        for incident in self.incidents():
            days[incident.table].update(incident.days())
        return dict(days)

    def remove_incident(self, table: str, start: date, end: date) -> int:
        """Forget a declared incident (its days join the baselines again from the next pass).

        Returns:
            How many records were removed: 0 when no mark has this table and days.
        """
        w = self.warehouse
        if "monitor_incidents" not in existing_tables(w):
            return 0
        p = w.param()
        where = f"WHERE table_name = {p} AND start_day = {p} AND end_day = {p}"
        key = (table, start, end)
        found = w.query(f"SELECT count(*) FROM {self._name('monitor_incidents')} {where}", key)
        count = int(found.rows[0][0]) if found.rows else 0
        if count:
            w.execute(f"DELETE FROM {self._name('monitor_incidents')} {where}", key)
        return count

    def latest_findings(self) -> tuple[datetime | None, list[dict[str, Any]]]:
        """Every finding of the latest monitor pass, and that pass's time (``None`` before
        the first pass).

        Only the latest pass: every pass watches every table still monitored, so a table
        missing from it was disabled or is no longer declared, and its old findings (an
        anomaly, say) must not stay in `stackyard health` and its exit code for ever.
        """
        w = self.warehouse
        latest = w.query(
            f"SELECT run_id, measured_at FROM {self._name('monitor_runs')} "
            "ORDER BY measured_at DESC LIMIT 1"
        ).as_dicts()
        if not latest:
            return None, []
        rows = w.query(
            f"SELECT * FROM {self._name('monitor_findings')} WHERE run_id = {w.param()} "
            "ORDER BY table_name, check_name, column_name, day",
            (latest[0]["run_id"],),
        ).as_dicts()
        return latest[0]["measured_at"], rows

    def passes(self, limit: int = 30) -> list[dict[str, Any]]:
        """The latest monitor passes, newest first."""
        return self.warehouse.query(
            f"SELECT * FROM {self._name('monitor_runs')} ORDER BY measured_at DESC "
            f"LIMIT {int(limit)}"
        ).as_dicts()

    def last_sent(self, key: str, channel: str) -> datetime | None:
        """When an alert with this key last went out on a channel, or ``None``."""
        w = self.warehouse
        p = w.param()
        row = w.query(
            f"SELECT max(sent_at) FROM {self._name('monitor_alerts')} "
            f"WHERE alert_key = {p} AND channel = {p} AND status = 'sent'",
            (key, channel),
        ).rows[0]
        return row[0]

    def sent_findings(self, root_cause: str, channel: str, since: datetime) -> set[str]:
        """Every finding of the alerts on this root cause sent on a channel since then."""
        w = self.warehouse
        p = w.param()
        rows = w.query(
            f"SELECT findings FROM {self._name('monitor_alerts')} WHERE root_cause = {p} "
            f"AND channel = {p} AND status = 'sent' AND sent_at >= {p} "
            "AND findings IS NOT NULL",
            (root_cause, channel, since),
        ).rows
        return {f for (text,) in rows for f in str(text).split("\n")}

    # ------------------------------------------------------------------ helpers

    def _metric_rows(
        self, tables: Iterable[str], metrics: Sequence[str], since: date
    ) -> list[tuple[str, date, float, str | None]]:
        found = self.history(tables, metrics, since)
        return [
            (table, day, value, column)
            for (table, _, column), points in found.items()
            for day, value in points
        ]

    def _name(self, table: str) -> str:
        return relation(self.warehouse, table)

    def _insert(self, table: str, rows: Sequence[tuple[Any, ...]]) -> None:
        insert_rows(self.warehouse, table, rows)


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _as_date(value: Any) -> date:
    return value.date() if isinstance(value, datetime) else value


def _utc(value: Any) -> datetime | None:
    # DuckDB hands TIMESTAMPTZ back in the session's zone, Postgres in the server's.
    if not isinstance(value, datetime):
        return None
    return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
