"""How a monitor pass judges a table's volume and freshness against what earlier passes saw."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from stackyard.config.model import Freshness
from stackyard.config.monitors import MonitorsConfig
from stackyard.errors import counted
from stackyard.metadata.monitors import FindingRow, MetricRow, Snapshot
from stackyard.monitors.anomaly import AnomalyConfig
from stackyard.monitors.anomaly.stats import format_value
from stackyard.monitors.arrival import arrival_check
from stackyard.monitors.checks import (
    anomaly_config,
    emptied_until,
    fill_days,
    freshness_check,
    volume_checks,
    volume_history_start,
)
from stackyard.monitors.health import Check
from stackyard.monitors.metrics import TableMetrics, TableRef
from stackyard.monitors.reuse import Verdicts
from stackyard.results import RunResult


@dataclass
class Pass:
    """What one pass accumulates before it is written (internal)."""

    now: datetime
    metrics: list[MetricRow] = field(default_factory=list)
    findings: list[FindingRow] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)


@dataclass
class PassHistory:
    """Everything earlier passes left that this pass judges against (internal)."""

    volumes: dict[str, dict[date, float]]
    history: dict[tuple[str, str, str | None], list[tuple[date, float]]]
    alerted: dict[str, set[date]]
    incidents: dict[str, set[date]]
    arrivals: dict[str, dict[date, datetime]] = field(default_factory=dict)
    #: Days each column check found anomalous, per table and ``(check, column)``.
    alerted_columns: dict[str, dict[tuple[str, str], set[date]]] = field(default_factory=dict)

    def excluded(self, table: str) -> set[date]:
        """The days kept out of every baseline of a table: those its volume was alerted on
        (an outage of the whole table empties every column and value that day too) and its
        marked incidents."""
        return self.alerted.get(table, set()) | self.incidents.get(table, set())

    def alerted_series(self, table: str) -> dict[tuple[str, str], set[date]]:
        """The days each column or dimension series of a table was alerted on, per
        ``(check, column)`` (a dimension value's column is ``col=value``)."""
        return self.alerted_columns.get(table, {})


def future_rows(metrics: TableMetrics, today: date, time_column: str | None) -> Check | None:
    """A ``warn`` for rows dated after today by the time column (None when there are none):
    those days are left out until they come (:meth:`TableMetrics.up_to`). Judged, each was an
    outage (no rows yet), and the newest complete day was never looked at."""
    ahead = sum(n for d, n in metrics.days.items() if d > today)
    if not ahead:
        return None
    return Check(
        "volume",
        "warn",
        f"{counted(ahead, 'row')} dated after today by {time_column} (up to "
        f"{max(metrics.days)}): those days are judged once they have come",
        column=time_column,
    )


def judge_volume(
    monitors: MonitorsConfig,
    table: TableRef,
    time_column: str | None,
    metrics: TableMetrics,
    history: PassHistory,
    state: Pass,
    settings: Any,
    run: RunResult | None,
    loaded: bool,
    failed_source: str | None,
    verdicts: Verdicts | None = None,
    unusable_time_column: str | None = None,
) -> list[Check]:
    rel = table.relation
    if unusable_time_column:
        # Why the configured time column cannot be used, said as the config check says it.
        # Rows per load judged against the days the table had before would alert on a unit
        # change, and stored would mix the two: nothing is judged or kept until it is fixed.
        return [Check("volume", "ok", f"not judged: {unusable_time_column}; fix or remove it")]
    today = state.now.date()
    stored = history.volumes.get(rel, {})
    exclude = history.excluded(rel)
    config = anomaly_config(settings)
    holidays = monitors.holidays
    if time_column:
        if not metrics.days:
            # Rows counted before (by day, or in all for a table empty now: the days' counts
            # are 0 once a pass saw it emptied).
            counted = metrics.row_count == 0 and any(
                n > 0 for _, n in history.history.get((rel, "row_count", None), [])
            )
            if counted or any(v > 0 for v in stored.values()):
                # Every day lost its rows: each counted day is 0 now (the report drew the
                # counts they had, beside health's "no rows any more").
                since = volume_history_start(today, monitors)
                state.metrics.extend(
                    MetricRow(rel, "volume", 0, day=d)
                    for d, v in stored.items()
                    if v > 0 and since <= d <= today
                )
                return [
                    Check(
                        "volume",
                        "anomaly",
                        f"no row has a value in {time_column} any more (the table had rows before): "
                        "emptied or reloaded without data?",
                        day=today,
                        value=0,
                    )
                ]
            return [
                Check("volume", "ok", f"no row has a value in {time_column} yet: nothing to judge")
            ]
        # The table's own rows are the truth for every day they cover (deleted rows make
        # a day smaller, a day with none becomes 0); stored days before them remain.
        # Days an earlier pass counted after the newest row now there lost all their rows:
        # they are 0 now, not the count they had (which the report would go on drawing, and
        # a vanished yesterday would never be judged).
        fresh = fill_days(metrics.days, until=emptied_until(stored, metrics.days, today))
        first = min(fresh)
        series = {d: v for d, v in stored.items() if d < first} | fresh
        last = max(fresh)
        # The newest day is still arriving: judging it would alert every morning.
        window = [last - timedelta(days=i) for i in range(monitors.recheck_days, 0, -1)]
        # Every day of the window is judged on every pass, not only new or changed ones: a
        # day's verdict also depends on the settings and on the days alerted since, and an
        # unchanged day kept as "ok" from before `sensitivity` was raised hid the first days
        # of an outage the new settings call unusual (the later ones then read "alerted on
        # then", which nobody was).
        judge = _with_unseen_run(
            [d for d in window if d in series], series, history.alerted.get(rel, set())
        )
        since = volume_history_start(today, monitors)
        state.metrics.extend(
            MetricRow(rel, "volume", v, day=d)
            for d, v in fresh.items()
            if d >= since and stored.get(d) != v
        )
        if not judge:
            return [
                Check(
                    "volume",
                    "learning",
                    f"rows by {time_column} cover {len(fresh)} day(s): no complete day to "
                    "judge yet (the newest day is still arriving)",
                    day=last,
                    value=fresh[last],
                )
            ]
        checks = _volume_checks(
            verdicts,
            series,
            judge,
            unit=f"rows with {time_column} on",
            holidays=holidays,
            exclude=exclude,
            config=config,
            marked=history.incidents.get(rel, set()),
        )
        overdue = arrival_check(
            series, last, today, history.arrivals.get(rel, {}), holidays, time_column
        )
        return [*checks, overdue] if overdue is not None else checks
    if table.kind == "source" and metrics.rows_today is not None:
        value: float = metrics.rows_today
        unit = "rows loaded on"
        if failed_source is not None:
            return [
                Check(
                    "volume",
                    "ok",
                    f"not judged: the load of source '{failed_source}' failed in this run",
                )
            ]
        had = [(d, n) for d, n in history.history.get((rel, "row_count", None), []) if n > 0]
        if metrics.row_count == 0 and had:
            # Rows per load cannot see this (0 new rows is a quiet day): the table itself
            # is empty where earlier passes counted rows.
            when, rows = had[-1]
            return _emptied(
                state,
                rel,
                today,
                f"the table is empty (it had {format_value(rows)} rows on {when}): "
                "emptied or reloaded without data?",
            )
        if run is None and value == 0 and today not in stored:
            return [Check("volume", "ok", f"not judged: no load yet on {today}")]
        if run is not None and not loaded and value == 0 and today not in stored:
            return [Check("volume", "ok", f"not judged: this run did not load {rel}")]
    else:
        value = metrics.row_count
        unit = "rows after the build on" if table.kind == "model" else "rows on"
        counts = [n for _, n in history.history.get((rel, "row_count", None), [])]
        if value == 0 and counts and min(counts) > 0:
            # A table never empty before, emptied: said even while its history is too
            # short to judge (a model emptied read "learning the baseline" beside its
            # emptied source's anomaly). One that has been empty before is the detector's.
            return _emptied(
                state,
                rel,
                today,
                f"the table is empty (it had {format_value(counts[-1])} rows when last "
                "measured, and had never been empty): emptied, or built from no rows?",
            )
    state.metrics.append(MetricRow(rel, "volume", value, day=today))
    series = {d: v for d, v in stored.items() if d < today} | {today: value}
    return _volume_checks(
        verdicts,
        series,
        [today],
        unit=unit,
        holidays=holidays,
        exclude=exclude,
        config=config,
        marked=history.incidents.get(rel, set()),
    )


def _emptied(state: Pass, rel: str, today: date, reason: str) -> list[Check]:
    """The volume anomaly of a table emptied where earlier passes counted rows; today's 0
    is kept (the report draws it, not what was loaded)."""
    state.metrics.append(MetricRow(rel, "volume", 0, day=today))
    return [Check("volume", "anomaly", reason, day=today, value=0)]


def _volume_checks(
    verdicts: Verdicts | None,
    series: dict[date, float],
    judge: list[date],
    *,
    unit: str,
    holidays: list[date],
    exclude: set[date],
    config: AnomalyConfig,
    marked: set[date],
) -> list[Check]:
    """:func:`volume_checks`, its verdicts taken from the last pass when every input is
    the same (it is a pure function of them)."""

    def judged() -> list[Check]:
        return volume_checks(
            series,
            judge,
            unit=unit,
            holidays=holidays,
            exclude=exclude,
            config=config,
            known=marked,
        )

    if verdicts is None:
        return judged()
    inputs = [
        "volume",
        sorted((d.isoformat(), v) for d, v in series.items()),
        [d.isoformat() for d in judge],
        unit,
        sorted(str(d) for d in holidays),
        sorted(str(d) for d in exclude),
        config.model_dump(mode="json"),
        sorted(str(d) for d in marked),
    ]
    return verdicts.judged(inputs, judged)


def judge_freshness(
    freshness: Freshness,
    table: TableRef,
    metrics: TableMetrics,
    history: PassHistory,
    state: Pass,
    run: RunResult | None,
    built: set[str] | None,
) -> Check:
    fresh = freshness
    rel = table.relation
    if table.kind == "source":
        last, what = metrics.last_loaded_at, "loaded"
        if last is None and metrics.row_count == 0:
            # The load time is read from the rows' _loaded_at: "none known yet" read as if
            # the table had never been loaded.
            return Check(
                "freshness", "ok", "not judged: the table has no rows to read a load time from"
            )
    else:
        what = "built"
        if built is not None and (table.unique_id in built or "*" in built):
            last = state.now
        else:
            points = history.history.get((rel, "freshness", None), [])
            last = datetime.fromtimestamp(points[-1][1], UTC) if points else None
    if last is not None and table.kind == "model":
        state.metrics.append(MetricRow(rel, "freshness", last.timestamp(), day=last.date()))
    return freshness_check(
        last,
        state.now,
        warn_hours=fresh.warn_after_hours,
        error_hours=fresh.error_after_hours,
        what=what,
    )


def _with_unseen_run(
    judge: list[date], series: dict[date, float], alerted: set[date]
) -> list[date]:
    """The days to judge, led by the earlier days of a run of empty days that reaches into
    them when no day of that run was ever alerted on.

    The detector takes a run one of whose days it was told were alerted on as known, and
    each later day of it as the same news; a run that had become unusual more than a few
    days before its first judged day counts as reported too. Rows deleted weeks back at once,
    or monitors that did not run while a feed was down, left such a run that no pass had
    seen: every day of it read "alerted on then", which nobody was (ok, exit 0). Its first
    days are judged now, oldest first, and its first unusual day is the alert.
    """
    if not judge or series.get(judge[0]) != 0:
        return judge
    start = judge[0]
    while series.get(start - timedelta(days=1)) == 0:
        start -= timedelta(days=1)
    earlier = [start + timedelta(days=i) for i in range((judge[0] - start).days)]
    # A run that reaches back past the history read began before it: its alert, if any, is
    # older than what is kept, and the run is long known.
    if not earlier or start == min(series) or any(d in alerted for d in (*earlier, *judge)):
        return judge
    return [*earlier, *judge]
