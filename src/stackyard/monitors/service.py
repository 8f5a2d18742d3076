"""The monitoring façade the Context hands out: ``Context(...).monitoring().health()``.

Every monitoring command (``stackyard monitor``, ``health``, ``incident mark``, ``report``)
calls one method here and renders what it returns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

from stackyard.config.project import Project
from stackyard.errors import UsageError, did_you_mean
from stackyard.metadata.monitors import Incident, MetricStore
from stackyard.monitors.health import (
    HealthReport,
    MonitorReport,
    TableHealth,
    health_from_findings,
)
from stackyard.monitors.lineage import Lineage
from stackyard.monitors.suite import MonitorSuite
from stackyard.monitors.targets import stored_table, table_owners
from stackyard.session import Session, Sessions


class Monitoring:
    """Runs monitors on demand, answers health questions, records incidents, writes reports.

    Args:
        project: the loaded project.
        sessions: its sessions, one per target (their owner closes them).
        present: raises when a target's warehouse was lost after it was loaded (a DuckDB
            file deleted, a database dropped and created again), before anything opens it
            and creates it empty; see :meth:`stackyard.Context.warehouse_intact`.
    """

    def __init__(
        self,
        project: Project,
        sessions: Sessions,
        present: Callable[[str | None], object] = lambda target: True,
    ) -> None:
        self.project = project
        self.sessions = sessions
        self.present = present

    def _session(self, target: str | None) -> Session:
        # A lost warehouse is named, not opened: opening would create it empty, and the
        # report, the monitors and the marks would then speak of an empty warehouse.
        self.present(target)
        return self.sessions.get(target)

    def suite(self, target: str | None = None) -> MonitorSuite:
        """The monitor suite of a target."""
        session = self._session(target)
        return MonitorSuite(
            project=self.project.config,
            project_dir=self.project.project_dir,
            transform_dir=self.project.transform_dir,
            warehouse=session.warehouse,
            console=session.console,
        )

    def run_now(self, target: str | None = None) -> MonitorReport:
        """Measure and judge every monitored table now, outside a run; alerts as a run would.

        Args:
            target: target name; default ``defaults.target``.

        Returns:
            The pass's report.
        """
        session = self._session(target)
        try:
            return self.suite(target).check(None)
        finally:
            session.release()

    def health(self, target: str | None = None) -> HealthReport:
        """Every monitored table's status as of its latest monitor pass (no new measurement).

        Returns:
            The report; empty (with ``measured_at`` ``None``) before the first pass.
        """
        config = self.project.config
        if not config.monitors.enabled:
            return HealthReport(disabled=True)
        store = MetricStore(self._session(target).warehouse)
        if not store.exists():
            return HealthReport()
        measured_at, rows = store.latest_findings()
        tables = tuple(
            replace(t, owners=table_owners(config, stored_table(t.table, t.kind, t.node)))
            for t in health_from_findings(rows)
        )
        return HealthReport(tables=tables, measured_at=measured_at)

    def table_health(self, target: str | None, table: str) -> TableHealth:
        """One monitored table's every check as of its latest monitor pass.

        Args:
            target: target name; default ``defaults.target``.
            table: ``schema.table`` or a dbt model name.

        Returns:
            The table's health, its owners included.

        Raises:
            UsageError: no monitored table has that name (with a "did you mean").
        """
        report = self.health(target)
        tables = report.tables
        found = next((t for t in tables if table in (t.table, t.node)), None)
        if found is None and tables:
            # dbt's name of a source table (dlt_shop_db.orders), as lineage and incidents
            # give it: its measured relation.
            snapshots = MetricStore(self._session(target).warehouse).snapshots()
            by_dbt = {dbt_source_name(s.unique_id): rel for rel, s in snapshots.items()}
            found = next((t for t in tables if t.table == by_dbt.get(table)), None)
        if found is not None:
            return found
        names = sorted({t.table for t in tables} | {t.node for t in tables if t.node})
        raise UsageError(
            f"no monitored table '{table}'{did_you_mean(table, names)}",
            # The hint names the command that lists them all: a list cut to a few names
            # looked like the whole of what is monitored.
            hint=f"give schema.table or a model name: `stackyard health` lists the "
            f"{len(tables)} monitored tables"
            if tables
            else "monitors are disabled (monitors.enabled: false in stackyard.yml)"
            if report.disabled
            else "the latest monitor pass watched no table"
            if report.measured_at is not None
            else "no monitor pass yet on this target: run `stackyard run` or `stackyard monitor`",
        )

    def mark_incident(
        self,
        target: str | None,
        table: str,
        start: date | str,
        end: date | str,
        note: str = "",
    ) -> Incident:
        """Record a known incident: the table's values in these days leave every baseline.

        Args:
            target: target name; default ``defaults.target``.
            table: ``schema.table`` or a dbt model name, among the monitored tables.
            start: first day of the incident (a date or ``YYYY-MM-DD``).
            end: last day, inclusive.
            note: what happened, for the record.

        Returns:
            The incident as recorded; ``marked_before`` says when, if the same table and
            days were marked already (then no second record is stored).

        Raises:
            UsageError: the dates are invalid or reversed, or the table is unknown.
        """
        first, last = _day(start, "--start"), _day(end, "--end")
        if last < first:
            raise UsageError(
                f"the incident ends ({last}) before it starts ({first})",
                hint="--start is the first day, --end the last day (inclusive)",
            )
        today = datetime.now(UTC).date()
        if last > today:
            # Days not yet seen would leave every baseline unannounced when they come.
            raise UsageError(
                f"the incident ends ({last}) after today ({today})",
                hint="--end is the last day it affected; mark the days after it when they "
                "have happened",
            )
        session = self._session(target)
        store = MetricStore(session.warehouse)
        store.ensure()
        relation = self._relation(table, store)
        incident = Incident(relation, first, last, note)
        before = store.add_incident(incident, datetime.now(UTC))
        session.release()
        return replace(incident, marked_before=before)

    def marks(self, target: str | None = None, table: str | None = None) -> list[Incident]:
        """The incidents marked with :meth:`mark_incident`, oldest day first per table.

        Args:
            target: target name; default ``defaults.target``.
            table: only this table's (``schema.table`` or a dbt model name).
        """
        session = self._session(target)
        store = MetricStore(session.warehouse)
        marked = store.incidents()
        if table is not None:
            relation = self._marked_relation(table, marked, store)
            marked = [m for m in marked if m.table == relation]
        session.release()
        return marked

    def unmark_incident(
        self, target: str | None, table: str, start: date | str, end: date | str
    ) -> Incident:
        """Forget a marked incident: its days join the table's baselines from the next pass.

        Returns:
            The mark removed.

        Raises:
            UsageError: the dates are invalid, or no mark has this table and days.
        """
        first, last = _day(start, "--start"), _day(end, "--end")
        session = self._session(target)
        store = MetricStore(session.warehouse)
        marked = store.incidents()
        relation = self._marked_relation(table, marked, store)
        found = [m for m in marked if (m.table, m.start, m.end) == (relation, first, last)]
        if not found:
            own = [m for m in marked if m.table == relation]
            spans = ", ".join(f"{m.start} to {m.end}" for m in own[:5])
            # A list cut short says so: five spans must not read as all of them.
            spans += f" and {len(own) - 5} more" if len(own) > 5 else ""
            raise UsageError(
                f"no incident on {relation} is marked from {first} to {last}",
                hint=f"its marks: {spans} (give a mark's --start and --end exactly)"
                if own
                else "`stackyard incident marks` lists every mark",
            )
        store.remove_incident(relation, first, last)
        session.release()
        return found[0]

    def report(self, target: str | None = None, out: Path | str = "report.html") -> Path:
        """Write the self-contained HTML report (no CDN; works offline).

        Args:
            target: target name; default ``defaults.target``.
            out: the file to write.

        Returns:
            The file written.

        Raises:
            UsageError: ``out`` is a folder, or the file cannot be written there.
        """
        from stackyard.monitors.report import build_report

        path = Path(out)
        if path.is_dir():
            raise UsageError(
                f"--out {path} is a folder, not a file",
                hint=f"give the report's file name, e.g. --out {path / 'report.html'}",
            )
        if path.is_file() and not _is_html(path):
            # A typo in --out must not replace the warehouse or stackyard.yml with a page.
            raise UsageError(
                f"--out {path} exists and is not an HTML page: not replaced",
                hint="give --out a new file name, e.g. --out report.html",
            )
        above = next((p for p in path.parents if p.is_file()), None)
        if above is not None:
            raise UsageError(
                f"cannot write the report to {path}: {above} is a file, not a folder",
                hint="give --out a file in a folder you can write to",
            )
        session = self._session(target)
        html = build_report(
            project=self.project.config,
            warehouse=session.warehouse,
            lineage=Lineage.load(self.project.transform_dir, session.target),
            now=datetime.now(UTC),
        )
        session.release()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(html, encoding="utf-8")
        except OSError as exc:
            raise UsageError(
                f"cannot write the report to {path}: {exc.strerror or exc}",
                hint="give --out a file in a folder you can write to",
            ) from None
        return path

    def _relation(self, table: str, store: MetricStore) -> str:
        snapshots = store.snapshots()
        if table in snapshots:
            return table
        by_node = {s.node: rel for rel, s in snapshots.items()}
        by_node |= {
            name: rel for rel, s in snapshots.items() if (name := dbt_source_name(s.unique_id))
        }
        if table in by_node:
            return by_node[table]
        known = sorted({*snapshots, *by_node})
        raise UsageError(
            f"'{table}' is not a monitored table{did_you_mean(table, known)}",
            hint="give schema.table or a model name from `stackyard health`"
            if known
            else "no table has been monitored yet: run `stackyard run` or `stackyard monitor`",
        )

    def _marked_relation(self, table: str, marked: list[Incident], store: MetricStore) -> str:
        # A mark outlives its table's monitor (a model renamed or dropped): its stored name
        # is accepted as it is, so the mark can still be listed and removed.
        if any(m.table == table for m in marked):
            return table
        return self._relation(table, store)


def dbt_source_name(unique_id: str | None) -> str:
    """A source table's name as dbt (and lineage, and incidents) give it, from its unique id;
    ``""`` for a model.

    >>> dbt_source_name("source.shop.dlt_shop_db.orders"), dbt_source_name("model.shop.orders")
    ('dlt_shop_db.orders', '')
    """
    if not unique_id or not unique_id.startswith("source."):
        return ""
    return ".".join(unique_id.split(".")[-2:])


def _day(value: date | str, option: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"{option} '{value}' is not a date", hint="write it as YYYY-MM-DD, e.g. 2026-03-01"
        ) from None


def _is_html(path: Path) -> bool:
    """Whether ``path`` holds an HTML page (an earlier report), by its first bytes."""
    try:
        with path.open("rb") as f:
            head = f.read(64).lstrip().lower()
    except OSError:
        return False
    return head.startswith((b"<!doctype html", b"<html")) or not head
