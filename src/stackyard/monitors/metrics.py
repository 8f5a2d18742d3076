"""Metrics of one table, computed inside the warehouse with one query.

Every metric a monitor needs — row count, nulls per column, duplicate keys, the latest load
time, rows loaded today, rows per day by a time column — comes from a single batched
aggregate query per table, built with sqlglot from quoted identifiers and rendered in the
warehouse's dialect. No row leaves the warehouse: the answer is one row of aggregates plus
one row per day. The query is a ``UNION ALL`` of two aggregates over the same table (totals,
and counts grouped by day), which DuckDB and Postgres both run as plain scans.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Literal

from stackyard.errors import did_you_mean
from stackyard.monitors.time_columns import find_time_column as find_time_column
from stackyard.monitors.time_columns import is_temporal as is_temporal
from stackyard.monitors.time_columns import time_column_problem
from stackyard.warehouse.base import QueryResult

if TYPE_CHECKING:
    from sqlglot import exp

TableKind = Literal["source", "model"]

#: The column stackyard stamps on every loaded row (docs/architecture.md, "_loaded_at").
LOADED_AT = "_loaded_at"

# Columns that dlt and stackyard add for their own bookkeeping: not the user's data, so their
# null rates are not watched.
_INTERNAL = re.compile(r"^_dlt_|^_loaded_at$")
_NUMERIC = re.compile(
    r"^(tiny|small|medium|big|huge|u)?int(eger)?\d*\b|^(decimal|numeric|real|float|double|"
    r"number)\b",
    re.I,
)
# Numeric columns that name rows rather than measure them: their mean and median move with
# how ids are handed out, never with the data, so they get a distinct count only.
_IDENTIFIER = re.compile(r"(^|_)id$", re.I)


@dataclass(frozen=True)
class TableRef:
    """A table stackyard monitors.

    Attributes:
        schema: the warehouse schema.
        name: the relation's name in that schema.
        kind: ``source`` (loaded by stackyard) or ``model`` (built by dbt).
        node: the name people know it by: the model's name, or ``source.table``.
        owner_keys: names owners are declared under (the source or the model name).
        unique_id: dbt's id for it (``source.p.dlt_app.orders``), when dbt knows it.
        key: columns identifying a row, when known (primary key, a ``unique`` test).
    """

    schema: str
    name: str
    kind: TableKind
    node: str = ""
    owner_keys: tuple[str, ...] = ()
    unique_id: str | None = None
    key: tuple[str, ...] = ()

    @property
    def relation(self) -> str:
        """``schema.name``, the table's name in messages, config and the metric store.

        >>> TableRef("app", "orders", "source").relation
        'app.orders'
        """
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class MetricPlan:
    """What to compute for one table, decided from its columns and its settings.

    Attributes:
        table: the table.
        columns: ``{column: data type}`` as the warehouse reports them.
        time_column: the column to count rows per day by, or ``None``.
        loaded_column: the load-time column (``_loaded_at``), or ``None``.
        key: the key columns for the duplicate count (empty: no duplicate check).
        null_columns: the columns whose nulls are counted.
        today: start of the current day (UTC); rows loaded since then are "today's load".
        notes: why a setting was not used (a configured time column that is not there).
        unusable_time_column: why the configured time column cannot be used, or ``None``.
        profile_columns: columns whose distinct count (and, when numeric and not an id, mean
            and median) are measured per day by the time column.
        numeric_columns: which of those get a mean and median: numeric, not an id.
        dimensions: low-cardinality columns whose rows are counted per value per day.
    """

    table: TableRef
    columns: Mapping[str, str]
    time_column: str | None
    loaded_column: str | None
    key: tuple[str, ...]
    null_columns: tuple[str, ...]
    today: datetime
    notes: tuple[str, ...] = ()
    unusable_time_column: str | None = None
    profile_columns: tuple[str, ...] = ()
    numeric_columns: frozenset[str] = frozenset()
    dimensions: tuple[str, ...] = ()


@dataclass(frozen=True)
class TableMetrics:
    """The measured state of one table.

    Attributes:
        row_count: rows in the table.
        nulls: ``{column: null count}`` for each watched column.
        duplicates: rows whose key repeats another row's (``None`` without a key).
        last_loaded_at: the latest load time (``None`` without a load-time column or rows).
        rows_today: rows loaded since the start of today (``None`` without a load column).
        days: rows per day by the time column (empty without one).
        profiles: ``{(column, "distinct" | "mean" | "median"): {day: value}}``.
        dimensions: ``{(column, value): {day: rows}}`` (the value as :func:`value_label`
            names it: a NULL is ``"NULL"``, the text ``NULL`` is ``"'NULL'"``).
    """

    row_count: int
    nulls: Mapping[str, int] = field(default_factory=dict)
    duplicates: int | None = None
    last_loaded_at: datetime | None = None
    rows_today: int | None = None
    days: Mapping[date, int] = field(default_factory=dict)
    profiles: Mapping[tuple[str, str], Mapping[date, float]] = field(default_factory=dict)
    dimensions: Mapping[tuple[str, str], Mapping[date, int]] = field(default_factory=dict)

    def up_to(self, today: date) -> TableMetrics:
        """These metrics without the days after ``today`` (rows dated in the future): no
        day is judged before it has come, and the newest complete day is still judged.

        >>> m = TableMetrics(3, days={date(2026, 1, 1): 2, date(2026, 1, 9): 1})
        >>> m.up_to(date(2026, 1, 2)).days
        {datetime.date(2026, 1, 1): 2}
        """

        def kept(series: Mapping[date, Any]) -> dict[date, Any]:
            return {d: v for d, v in series.items() if d <= today}

        return replace(
            self,
            days=kept(self.days),
            profiles={k: kept(v) for k, v in self.profiles.items()},
            dimensions={k: kept(v) for k, v in self.dimensions.items()},
        )

    def null_rate(self, column: str) -> float | None:
        """The fraction of NULLs in a column; ``None`` for an empty table.

        >>> TableMetrics(4, {"a": 1}).null_rate("a"), TableMetrics(0, {"a": 0}).null_rate("a")
        (0.25, None)
        """
        if self.row_count == 0 or column not in self.nulls:
            return None
        return self.nulls[column] / self.row_count


def is_numeric(data_type: str) -> bool:
    """Whether a warehouse type holds numbers a mean makes sense of.

    >>> is_numeric("BIGINT"), is_numeric("numeric(12,2)"), is_numeric("double precision")
    (True, True, True)
    >>> is_numeric("VARCHAR"), is_numeric("BOOLEAN")
    (False, False)
    """
    return bool(_NUMERIC.match(data_type.strip()))


def is_identifier(column: str, key: Sequence[str] = ()) -> bool:
    """Whether a column names rows (an id or part of the key) rather than measures them.

    >>> is_identifier("customer_id"), is_identifier("ID"), is_identifier("sku", ["sku"])
    (True, True, True)
    >>> is_identifier("order_total"), is_identifier("paid")
    (False, False)
    """
    return column in key or bool(_IDENTIFIER.search(column))


def plan_metrics(
    table: TableRef,
    columns: Mapping[str, str],
    *,
    time_column: str | None,
    key: Sequence[str],
    today: datetime,
    profile: Sequence[str] = (),
    dimensions: Sequence[str] = (),
) -> MetricPlan:
    """Decide what to measure on a table from its columns.

    Args:
        table: the table.
        columns: its ``{column: data type}``.
        time_column: the configured time column, or ``None`` to find one.
        key: the configured or known key columns (may be empty).
        today: start of the current day, UTC.
        profile: columns to profile per day (distinct count; mean and median if numeric and
            not an identifier: see :func:`is_identifier`).
        dimensions: low-cardinality columns to count rows per value per day.

    Returns:
        The plan; settings that do not fit the table are dropped with a note saying why.
    """
    notes: list[str] = []
    chosen = find_time_column(columns) if time_column is None else time_column
    unusable = time_column_problem(table.relation, columns, time_column)
    if unusable:
        chosen = None
        # Volume is not counted per load instead: against the days counted before, that
        # would be a unit change read as an anomaly.
        per_day = [n for n, names in (("columns", profile), ("dimensions", dimensions)) if names]
        judged = " and ".join([", ".join(["volume", *per_day[:-1]]), *per_day[-1:]])
        are = "are" if per_day else "is"
        notes.append(f"{unusable}: {judged} {are} not judged until it is fixed or removed")
    missing = [k for k in key if k not in columns]
    if missing:
        notes.append(
            f"key column(s) {_named(missing, columns)} not in {table.relation}; duplicates "
            "not counted"
        )
    watched: dict[str, tuple[str, ...]] = {
        "columns": tuple(profile),
        "dimensions": tuple(dimensions),
    }
    for setting, names in watched.items():
        unknown = [c for c in names if c not in columns]
        if unknown:
            notes.append(
                f"{setting} {_named(unknown, columns)} not in {table.relation}; not monitored"
            )
        if names and chosen is None and not unusable:
            notes.append(
                f"{setting} are measured per day and {table.relation} has no time column; "
                "set time_column to monitor them"
            )
        watched[setting] = tuple(c for c in names if c in columns) if chosen else ()
    return MetricPlan(
        table=table,
        columns=dict(columns),
        time_column=chosen,
        loaded_column=LOADED_AT if LOADED_AT in columns else None,
        key=() if missing else tuple(key),
        null_columns=tuple(c for c in columns if not _INTERNAL.search(c)),
        today=today,
        notes=tuple(notes),
        unusable_time_column=unusable,
        profile_columns=watched["columns"],
        numeric_columns=frozenset(
            c for c in watched["columns"] if is_numeric(columns[c]) and not is_identifier(c, key)
        ),
        dimensions=watched["dimensions"],
    )


def metrics_query(plan: MetricPlan, dialect: str) -> str:
    """The one query that measures a table.

    The first row (``m = 0``) carries the totals; each further row (``m = 1``) one day's row
    count by the time column.

    Args:
        plan: what to measure.
        dialect: the sqlglot dialect of the warehouse.

    Returns:
        The SQL text.

    >>> from datetime import datetime, UTC
    >>> p = plan_metrics(TableRef("app", "t", "source"), {"id": "BIGINT"}, time_column=None,
    ...                  key=["id"], today=datetime(2026, 1, 1, tzinfo=UTC))
    >>> metrics_query(p, "duckdb")
    'SELECT 0 AS m, CAST(NULL AS DATE) AS d, COUNT(*) AS n, COUNT("id") AS c0, COUNT("id") AS kn, COUNT(DISTINCT "id") AS kd FROM "app"."t"'
    """

    # Built node by node without sqlglot's defensive copies: the builder helpers deep-copy
    # every argument, which made this function cost more than the query on small tables.
    # sqlglot is imported here: a pass that reuses every table's measurements never needs it.
    from sqlglot import exp

    def table() -> exp.Table:
        return exp.Table(
            this=exp.to_identifier(plan.table.name, quoted=True),
            db=exp.to_identifier(plan.table.schema, quoted=True),
        )

    one = exp.Literal.number
    totals: list[Any] = [
        _as(one(0), "m"),
        _as(exp.Cast(this=exp.Null(), to=exp.DataType.build("DATE")), "d"),
        _as(exp.Count(this=exp.Star()), "n"),
    ]
    for i, column in enumerate(plan.null_columns):
        totals.append(_as(exp.Count(this=_col(column)), f"c{i}"))
    if plan.key:
        if len(plan.key) == 1:
            totals.append(_as(exp.Count(this=_col(plan.key[0])), "kn"))
            keyed: Any = _col(plan.key[0])
        else:
            # A composite key counts when none of its parts is NULL; DuckDB would otherwise
            # count (2, NULL) as a distinct row value where Postgres ignores it.
            def present() -> Any:
                return exp.and_(*[_not_null(k) for k in plan.key], copy=False)

            keyed = exp.Case(
                ifs=[
                    exp.If(this=present(), true=exp.Tuple(expressions=[_col(k) for k in plan.key]))
                ]
            )
            totals.append(
                _as(exp.Count(this=exp.Case(ifs=[exp.If(this=present(), true=one(1))])), "kn")
            )
        totals.append(_as(exp.Count(this=exp.Distinct(expressions=[keyed])), "kd"))
    if plan.loaded_column:
        since = exp.Cast(
            this=exp.Literal.string(plan.today.isoformat()), to=exp.DataType.build("TIMESTAMPTZ")
        )
        is_today = exp.GTE(this=_col(plan.loaded_column), expression=since)
        totals.append(_as(exp.Max(this=_col(plan.loaded_column)), "ml"))
        totals.append(_as(exp.Count(this=exp.Case(ifs=[exp.If(this=is_today, true=one(1))])), "lt"))
    # Per-day column profiles, then the dimension's value: NULL in the totals row.
    profile: list[Any] = []
    for column in plan.profile_columns:
        profile.append(exp.Count(this=exp.Distinct(expressions=[_col(column)])))
        if column in plan.numeric_columns:
            profile.append(exp.Avg(this=_col(column)))
            # MEDIAN renders as PERCENTILE_CONT(0.5) WITHIN GROUP on Postgres; DuckDB's own
            # median() is far cheaper than its ordered-aggregate form.
            profile.append(exp.Median(this=_col(column)))
        else:
            profile += [exp.Null(), exp.Null()]

    # The dimension's index and value, NULL outside its branches. Typed: Postgres settles an
    # untyped NULL column of two branches as text, and the index's integer then fails.
    def no_dimension() -> list[Any]:
        return [
            exp.Cast(this=exp.Null(), to=exp.DataType.build("INT")),
            exp.Cast(this=exp.Null(), to=exp.DataType.build("VARCHAR")),
        ]

    tail = len(profile) + (2 if plan.dimensions else 0)
    nulls = [exp.Null() for _ in profile] + (no_dimension() if plan.dimensions else [])
    totals += [_as(null, f"x{i}") for i, null in enumerate(nulls)]
    query: Any = exp.Select(expressions=totals, from_=exp.From(this=table()))
    if plan.time_column:
        day = exp.Cast(this=_col(plan.time_column), to=exp.DataType.build("DATE"))
        fixed = len(totals) - 3 - tail
        per_day: list[Any] = [one(1), day, exp.Count(this=exp.Star())]
        per_day += [exp.Null() for _ in range(fixed)] + profile
        per_day += no_dimension() if plan.dimensions else []
        by_day = exp.Select(
            expressions=per_day,
            where=exp.Where(this=_not_null(plan.time_column)),
            group=exp.Group(expressions=[one(2)]),
            from_=exp.From(this=table()),
        )
        query = exp.Union(this=query, expression=by_day, distinct=False)
        # One branch per dimension: rows per day per value, the value as text.
        for i, column in enumerate(plan.dimensions):
            value = exp.Cast(this=_col(column), to=exp.DataType.build("VARCHAR"))
            per_value: list[Any] = [one(2), day.copy(), exp.Count(this=exp.Star())]
            per_value += [exp.Null() for _ in range(fixed + len(profile))]
            per_value += [one(i), value]
            by_value = exp.Select(
                expressions=per_value,
                where=exp.Where(this=_not_null(plan.time_column)),
                group=exp.Group(expressions=[one(2), one(len(per_value))]),
                from_=exp.From(this=table()),
            )
            query = exp.Union(this=query, expression=by_value, distinct=False)
    return query.sql(dialect=dialect)


def _named(unknown: Sequence[str], columns: Mapping[str, str]) -> str:
    """Names a table does not have, each with the column it likely meant.

    >>> _named(["customer_idd", "zzz"], {"customer_id": "BIGINT"})
    "customer_idd (did you mean 'customer_id'?), zzz"
    """
    return ", ".join(f"{name}{did_you_mean(name, columns)}" for name in unknown)


def value_label(value: Any) -> str:
    """How a dimension's value names its series: a NULL is ``NULL``; a text that could be
    taken for it or for nothing (``'NULL'``, ``''``) is quoted, as is one that starts with a
    quote, so two values never share a series (their counts were merged before).

    >>> [value_label(v) for v in (None, "NULL", "", "web", "it's", 3)]
    ['NULL', "'NULL'", "''", 'web', "it's", '3']
    """
    if value is None:
        return "NULL"
    text = str(value)
    if text.strip() == "" or text.upper() == "NULL" or text.startswith("'"):
        return "'" + text.replace("'", "''") + "'"
    return text


def parse_metrics(plan: MetricPlan, result: QueryResult) -> TableMetrics:
    """Turn the rows of :func:`metrics_query` into :class:`TableMetrics`.

    Args:
        plan: the plan the query was built from.
        result: its rows.

    Returns:
        The table's metrics.
    """
    total: tuple[Any, ...] = ()
    days: dict[date, int] = {}
    fixed = 3 + len(plan.null_columns) + (2 if plan.key else 0) + (2 if plan.loaded_column else 0)
    profiles: dict[tuple[str, str], dict[date, float]] = {}
    dimensions: dict[tuple[str, str], dict[date, int]] = {}
    for row in result.rows:
        kind = int(row[0])
        if kind == 0:
            total = row
            continue
        if row[1] is None:
            continue
        day = row[1].date() if isinstance(row[1], datetime) else row[1]
        if kind == 1:
            days[day] = days.get(day, 0) + int(row[2])
            for i, column in enumerate(plan.profile_columns):
                for j, metric in enumerate(("distinct", "mean", "median")):
                    cell = row[fixed + 3 * i + j]
                    if cell is not None:
                        profiles.setdefault((column, metric), {})[day] = float(cell)
        else:
            column = plan.dimensions[int(row[-2])]
            counts = dimensions.setdefault((column, value_label(row[-1])), {})
            counts[day] = counts.get(day, 0) + int(row[2])
    n = int(total[2]) if total else 0
    nulls = {c: n - int(total[3 + i] or 0) for i, c in enumerate(plan.null_columns)}
    i = 3 + len(plan.null_columns)
    duplicates = None
    if plan.key:
        duplicates = int(total[i] or 0) - int(total[i + 1] or 0)
        i += 2
    last_loaded_at = rows_today = None
    if plan.loaded_column:
        last_loaded_at = _as_utc(total[i])
        rows_today = int(total[i + 1] or 0)
    return TableMetrics(
        row_count=n,
        nulls=nulls,
        duplicates=duplicates,
        last_loaded_at=last_loaded_at,
        rows_today=rows_today,
        days=dict(sorted(days.items())),
        profiles={k: dict(sorted(v.items())) for k, v in profiles.items()},
        dimensions={k: dict(sorted(v.items())) for k, v in dimensions.items()},
    )


def _col(name: str) -> exp.Column:
    from sqlglot import exp

    return exp.Column(this=exp.to_identifier(name, quoted=True))


def _as(expression: exp.Expression, alias: str) -> exp.Alias:
    from sqlglot import exp

    return exp.Alias(this=expression, alias=exp.to_identifier(alias))


def _not_null(name: str) -> exp.Expression:
    from sqlglot import exp

    return exp.Not(this=exp.Is(this=_col(name), expression=exp.Null()))


def _as_utc(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
