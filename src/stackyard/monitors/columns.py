"""Column and dimension monitors: judged from the per-day numbers the batched query returns.

* **Column profiles** (``monitors.tables.<t>.columns``): each column's distinct count per day
  is judged like a volume (:func:`~stackyard.monitors.anomaly.detect`: log or count bands),
  and a numeric column's daily mean and median with additive bands
  (:func:`~stackyard.monitors.anomaly.detect_level`).
* **Dimensions** (``monitors.tables.<t>.dimensions``): the rows per day of each value of a
  low-cardinality column, each judged like a volume — a value that goes quiet (``status =
  'returned'`` stops arriving) or floods shows up even when the table's total looks normal,
  as Elementary's dimension anomalies do.

The judged day is the latest complete one, the day before the newest day with rows (which is
still arriving) or the newest day an earlier pass counted rows on, as for volume: a day whose
rows are all gone is not skipped for an older one: it is the table's outage (or a usual
empty day), which volume judges, so these checks say so for that day and add no finding of
their own (a dozen values gone quiet with the table are one outage). Days with no
rows count 0 in distinct counts and dimensions, as in volume; a mean or median has no value
on them. A series is rebuilt from the table itself on every pass, so these monitors need no
stored history and are judged on the first pass once the table holds two weeks of days. What
earlier passes found is kept out of them, as out of volume: the days the table's volume was
alerted on and its marked incidents leave every series, and each series' own alerted days its
baseline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import date, timedelta

from stackyard.errors import counted
from stackyard.monitors.anomaly import AnomalyConfig, Verdict, detect, detect_level
from stackyard.monitors.health import Check
from stackyard.monitors.metrics import MetricPlan, TableMetrics

#: The checks these monitors produce (the report groups them).
COLUMN_CHECKS = ("distinct", "mean", "median", "dimension")
#: A dimension with more values than this is not low-cardinality: only the busiest are judged.
MAX_DIMENSION_VALUES = 50

_STATUS = {"ok": "ok", "anomaly": "anomaly", "insufficient_history": "learning"}


def column_checks(
    plan: MetricPlan,
    metrics: TableMetrics,
    *,
    holidays: Iterable[date],
    config: AnomalyConfig,
    until: date | None = None,
    unusable: Iterable[date] = (),
    alerted: Mapping[tuple[str, str], Iterable[date]] | None = None,
) -> list[Check]:
    """Judge every profiled column and every dimension of one table.

    Args:
        plan: what was measured.
        metrics: the measurements (per day).
        holidays: the business calendar.
        config: the table's detector settings.
        until: the newest day an earlier pass counted rows on, when it has none now
            (:func:`~stackyard.monitors.checks.emptied_until`): the judged day follows it.
        unusable: days left out of every series of the table (the days its volume was
            alerted on, its marked incidents): an outage of the whole table emptied every
            column and value that day, which says nothing of any of them. Kept in as an
            excluded day, a second outage of one value read as usual ("the value was empty
            before … (alerted on then)"); in the baseline, it widened every band.
        alerted: the days each series was alerted on itself, per ``(check, column)`` (a
            dimension value's column is ``col=value``): excluded from that series' baseline,
            as volume excludes the days it alerted on.

    Returns:
        One check per profiled metric; per dimension, one check per anomalous value, or one
        ``ok`` (or ``learning``) check saying how many values were judged.
    """
    with_rows = sorted(metrics.days)
    if len(with_rows) < 2:
        # Said, so that a declaration is seen to be read (it showed nothing at all).
        reason = "not judged yet: the table has rows on fewer than two days"
        return [
            *(Check("distinct", "learning", reason, column=c) for c in plan.profile_columns),
            *(Check("dimension", "learning", reason, column=c) for c in plan.dimensions),
        ]
    judged = max(with_rows[-1], until or with_rows[-1]) - timedelta(days=1)
    # Every calendar day from the first with rows to the judged one: a day without rows
    # between them counts 0 (a day dropped upstream is an outage, not a gap).
    skipped = set(unusable) - {judged}
    days = [
        day
        for day in (
            with_rows[0] + timedelta(days=i) for i in range((judged - with_rows[0]).days + 1)
        )
        if day not in skipped
    ]
    if judged >= with_rows[0] and judged not in metrics.days:
        # No row at all that day: every distinct count and every value is 0 because the
        # table is, which its volume check judges (an outage there, or a usual empty day).
        # Told again per column and per value, one outage read as a dozen findings.
        return _table_empty(plan, judged)
    holiday_list = list(holidays)
    per_series = alerted or {}

    def kept_out(check: str, column: str) -> set[date]:
        return set(per_series.get((check, column), ()))

    checks: list[Check] = []
    for column in plan.profile_columns:
        for metric in ("distinct", "mean", "median"):
            series = metrics.profiles.get((column, metric), {})
            if not series:
                continue
            if metric == "distinct":
                upto = [d for d in days if d >= min(series)]
                values = [float(series.get(d, 0)) for d in upto]
            elif judged in series:
                upto = [d for d in series if d <= judged and d not in skipped]
                values = [series[d] for d in upto]
            else:
                continue  # no rows that day: no mean or median (volume and distinct say so)
            if metric == "distinct":
                verdict = detect(
                    upto,
                    values,
                    holidays=holiday_list,
                    exclude=kept_out(metric, column),
                    config=config,
                )
                what = f"{verdict.value:,.0f} distinct value" + ("" if verdict.value == 1 else "s")
                # The detector calls a count near zero empty: one value left is not none.
                gone = "has no values" if verdict.value == 0 else "has almost no distinct values"
                about = _about(_counted(verdict, what), "the column", gone)
                reason = f"{judged}: {_of_values(about)}"
            else:
                verdict = detect_level(
                    upto,
                    values,
                    holidays=holiday_list,
                    exclude=kept_out(metric, column),
                    config=config,
                    what=f"the {metric} of {column}",
                )
                reason = f"{judged}: {verdict.reason}"
            checks.append(_check(metric, column, verdict, reason))
    for column in plan.dimensions:
        checks.extend(_dimension(column, metrics, days, judged, holiday_list, config, kept_out))
    return checks


def _table_empty(plan: MetricPlan, judged: date) -> list[Check]:
    """One check per distinct count and per dimension on a day the table has no rows."""
    reason = f"{judged}: not judged: the table has no rows that day (volume judges it)"
    return [
        *(Check("distinct", "ok", reason, column=c, day=judged) for c in plan.profile_columns),
        *(Check("dimension", "ok", reason, column=c, day=judged) for c in plan.dimensions),
    ]


def _dimension(
    column: str,
    metrics: TableMetrics,
    days: list[date],
    judged: date,
    holidays: list[date],
    config: AnomalyConfig,
    kept_out: Callable[[str, str], set[date]],
) -> list[Check]:
    per_value: Mapping[str, Mapping[date, int]] = {
        value: counts for (col, value), counts in metrics.dimensions.items() if col == column
    }
    busiest = sorted(per_value, key=lambda v: -sum(per_value[v].values()))
    note = ""
    if len(busiest) > MAX_DIMENSION_VALUES:
        note = (
            f" ({len(busiest):,} values: only the {MAX_DIMENSION_VALUES} busiest are judged; "
            "a dimension should have few values)"
        )
        busiest = busiest[:MAX_DIMENSION_VALUES]
    upto = [d for d in days if d <= judged]
    found: list[Check] = []
    judged_values = learning = 0
    for value in busiest:
        counts = per_value[value]
        first = min(counts)
        series = [d for d in upto if d >= first]
        if not series or series[-1] != judged:
            continue
        verdict = detect(
            series,
            [float(counts.get(d, 0)) for d in series],
            holidays=holidays,
            exclude=kept_out("dimension", f"{column}={value}"),
            config=config,
        )
        if verdict.status == "insufficient_history":
            learning += 1
            continue
        judged_values += 1
        if verdict.is_anomaly:
            about = _about(verdict.reason, "the value", "stopped arriving")
            reason = f"{judged}: {column} = {value}: {about}"
            found.append(_check("dimension", f"{column}={value}", verdict, reason))
    if found:
        return found
    if judged_values == 0:
        return [
            Check(
                "dimension",
                "learning",
                f"{judged}: {counted(len(busiest), 'value')} of {column}, none with two weeks of "
                f"history yet{note}",
                column=column,
                day=judged,
            )
        ]
    newer = f"; {counted(learning, 'newer value')} still learning" if learning else ""
    return [
        Check(
            "dimension",
            "ok",
            f"{judged}: rows of each of {counted(judged_values, 'value')} of {column} within their "
            f"bands{newer}{note}",
            column=column,
            day=judged,
            value=judged_values,
        )
    ]


def _counted(verdict: Verdict, what: str) -> str:
    """The detector's reason with its count of rows said as ``what`` (a distinct count is
    not rows), whether it wrote "1 row" or "1 rows".

    >>> from datetime import date
    >>> from stackyard.monitors.anomaly.config import Verdict
    >>> said = Verdict("anomaly", "1 rows is below the band", date(2026, 12, 6), 1.0)
    >>> _counted(said, "1 distinct value")
    '1 distinct value is below the band'
    """
    number = f"{verdict.value:,.0f}"
    for rows in (f"{number} rows", f"{number} row"):
        if rows in verdict.reason:
            return verdict.reason.replace(rows, what, 1)
    return verdict.reason


def _of_values(reason: str) -> str:
    """A distinct count's reason: its empty days are days without values, not without rows
    (a column NULL on every row read "56 of 56 days in the baseline had no rows").

    >>> _of_values("0 rows; empty days are usual here (9 of 56 days in the baseline had no rows)")
    '0 rows; days without values are usual here (9 of 56 days in the baseline had none)'
    """
    return (
        reason.replace("empty days are usual here", "days without values are usual here")
        .replace("in the baseline had no rows", "in the baseline had none")
        .replace("no rows for ", "no values for ")
    )


def _about(reason: str, subject: str, gone: str) -> str:
    """The detector's reason, about ``subject`` rather than the table.

    The detector speaks of a table's volume; on one value of a dimension or a column's
    distinct count, "the table looks empty" is untrue (the table has its rows).

    >>> _about("0 rows is below 7–51: the table looks empty, an outage", "the value",
    ...        "stopped arriving")
    '0 rows is below 7–51: the value stopped arriving, an outage'
    >>> _about("0 rows: the table has never been empty before", "the value", "stopped arriving")
    '0 rows: the value has never been empty before'
    """
    reason = reason.replace("the table looks empty", f"{subject} {gone}")
    return reason.replace("the table ", f"{subject} ").replace("for this table", f"for {subject}")


def _check(check: str, column: str, verdict: Verdict, reason: str) -> Check:
    if verdict.status == "insufficient_history":
        reason = f"{reason.split(':', 1)[0]}: learning ({verdict.reason})"
    return Check(
        check,
        _STATUS[verdict.status],  # type: ignore[arg-type]
        reason,
        column=column,
        day=verdict.day,
        value=verdict.value,
        expected=verdict.expected,
        lower=verdict.lower,
        upper=verdict.upper,
    )
