"""Reusing a table's last measurements when nothing can have changed it since.

A monitor pass measures each table with one aggregate query (:mod:`.metrics`). After a run
that changed nothing — every source skipped or found nothing new, ``dbt build`` skipped as
unchanged — those queries would return what the previous pass's returned, so the pass takes
the previous pass's measurements instead. Everything else is done as on any pass: the
tables' columns are read, every check is judged again at the current time (freshness ages,
today's volume), and the pass, its metrics and findings are recorded. The report, the
findings and ``stackyard health`` are therefore the same as a pass that measured.

A table's measurements are reused only when all of these hold:

- this pass follows a run that loaded no rows into any table and skipped its build
  (:class:`Unchanged`, built by the runner), and the project has no source another tool loads;
- the measurements were kept by the pass of the latest run before this one, on this target;
- the warehouse's write stamp (:meth:`Warehouse.write_stamp`: the DuckDB file's and its
  log's size and modification time) is the one taken when that run ended, so nothing — a
  backfill, ``dbt run`` by hand, a restore, another tool — wrote to it in between. Engines
  without a stamp (Postgres, the cloud warehouses) measure every table on every pass;
- the table's measurement plan is the same: its columns, the time column, the key, the
  profiled columns and dimensions, and the day (a new UTC day measures again: "rows loaded
  today" depends on it).

The kept measurements live in ``.stackyard/monitor_measurements.json``: one target's, written
by each run's pass and sealed with the write stamp when the run has closed the warehouse.

Beside them are the detector's verdicts (:class:`Verdicts`): the volume and column checks are
pure functions of their inputs (the series, the days judged, the excluded days, the calendar
and the settings), so a verdict is taken from the last pass only when every input is equal,
and judged otherwise. The clock never enters them: freshness and the other checks are always
judged again.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from stackyard.config.private import FILE_MODE, PRIVATE_DIR, private_dir
from stackyard.monitors.health import Check
from stackyard.monitors.metrics import MetricPlan, TableMetrics

CACHE_FILE = "monitor_measurements.json"


@dataclass(frozen=True)
class Unchanged:
    """A run that changed no table: what a pass after it needs to reuse measurements.

    Attributes:
        previous_run: the latest run before this one, as the target's history records it.
        stamp: the warehouse's write stamp, taken before this run wrote anything.
    """

    previous_run: str
    stamp: str


class MeasurementCache:
    """The measurements the last run's pass took (or reused), per table, for one target.

    Args:
        project_dir: the project folder.
        target: the target's name.
    """

    def __init__(self, project_dir: Path, target: str) -> None:
        self.path = project_dir / PRIVATE_DIR / CACHE_FILE
        self.project_dir = project_dir
        self.target = target

    def reusable(self, since: Unchanged | None) -> dict[str, dict[str, Any]]:
        """``{table: {"plan": …, "metrics": …}}`` a pass after ``since`` may reuse; empty
        unless the entries were kept by ``since.previous_run``'s pass and sealed with the
        stamp ``since`` holds."""
        if since is None:
            return {}
        kept = self._read().get(self.target)
        if not isinstance(kept, dict):
            return {}
        if kept.get("run_id") != since.previous_run or kept.get("stamp") != since.stamp:
            return {}
        tables = kept.get("tables")
        return tables if isinstance(tables, dict) else {}

    def keep(self, run_id: str, tables: dict[str, dict[str, Any]]) -> None:
        """Keep a pass's measurements, unsealed: reusable only once :meth:`seal` ran."""
        self._update({"run_id": run_id, "stamp": None, "tables": tables})

    def kept_by(self, run_id: str) -> bool:
        """Whether the kept measurements are ``run_id``'s pass's."""
        kept = self._read().get(self.target)
        return isinstance(kept, dict) and kept.get("run_id") == run_id

    def seal(self, run_id: str, stamp: str | None) -> None:
        """Stamp the entries kept by ``run_id``'s pass with the warehouse's write stamp,
        taken after the run's last write; without a stamp they are dropped."""
        kept = self._read().get(self.target)
        if not isinstance(kept, dict) or kept.get("run_id") != run_id:
            return
        self._update({**kept, "stamp": stamp} if stamp is not None else None)

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # none yet, or unreadable: every table is measured
        return data if isinstance(data, dict) else {}

    def _update(self, entry: dict[str, Any] | None) -> None:
        data = self._read()
        if entry is None:
            if data.pop(self.target, None) is None:
                return
        else:
            data[self.target] = entry
        folder = private_dir(self.project_dir)
        temporary = folder / (CACHE_FILE + ".tmp")
        temporary.write_text(json.dumps(data), encoding="utf-8")  # dicts keep their order
        os.chmod(temporary, FILE_MODE)
        os.replace(temporary, self.path)


def plan_key(plan: MetricPlan) -> str:
    """A digest of everything a table's measurement depends on besides its rows.

    >>> from datetime import UTC
    >>> from stackyard.monitors.metrics import TableRef, plan_metrics
    >>> def key(day: int) -> str:
    ...     table = TableRef("app", "t", "source")
    ...     when = datetime(2026, 1, day, tzinfo=UTC)
    ...     return plan_key(plan_metrics(table, {"id": "BIGINT"}, time_column=None, key=(),
    ...                                  today=when))
    >>> key(1) == key(1), key(1) == key(2)
    (True, False)
    """
    t = plan.table
    fields = [
        [t.schema, t.name, t.kind],
        list(plan.columns.items()),
        plan.time_column,
        plan.loaded_column,
        list(plan.key),
        list(plan.null_columns),
        plan.today.isoformat(),
        list(plan.profile_columns),
        sorted(plan.numeric_columns),
        list(plan.dimensions),
    ]
    return hashlib.sha256(json.dumps(fields).encode()).hexdigest()


def metrics_to_json(metrics: TableMetrics) -> dict[str, Any]:
    """:class:`TableMetrics` as JSON values; :func:`metrics_from_json` reads them back equal.

    >>> m = TableMetrics(3, {"a": 1}, 0, None, 2, {date(2026, 1, 1): 3},
    ...                  {("a", "mean"): {date(2026, 1, 1): 1.5}}, {("s", "x"): {}})
    >>> metrics_from_json(json.loads(json.dumps(metrics_to_json(m)))) == m
    True
    """

    def days(series: Any) -> list[list[Any]]:
        return [[d.isoformat(), v] for d, v in series.items()]

    last = metrics.last_loaded_at
    return {
        "row_count": metrics.row_count,
        "nulls": dict(metrics.nulls),
        "duplicates": metrics.duplicates,
        "last_loaded_at": last.isoformat() if last is not None else None,
        "rows_today": metrics.rows_today,
        "days": days(metrics.days),
        "profiles": [[list(k), days(v)] for k, v in metrics.profiles.items()],
        "dimensions": [[list(k), days(v)] for k, v in metrics.dimensions.items()],
    }


def reused_metrics(kept: dict[str, Any] | None, plan: str) -> TableMetrics | None:
    """A table's kept measurements if they were taken with the same plan (:func:`plan_key`);
    ``None`` when there are none, the plan differs or the file was changed by hand."""
    if not isinstance(kept, dict) or kept.get("plan") != plan:
        return None
    try:
        return metrics_from_json(kept["metrics"])
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def metrics_from_json(data: dict[str, Any]) -> TableMetrics:
    """The :class:`TableMetrics` :func:`metrics_to_json` wrote."""

    def days(pairs: list[list[Any]]) -> dict[date, Any]:
        return {date.fromisoformat(d): v for d, v in pairs}

    last = data["last_loaded_at"]
    return TableMetrics(
        row_count=data["row_count"],
        nulls=dict(data["nulls"]),
        duplicates=data["duplicates"],
        last_loaded_at=datetime.fromisoformat(last) if last is not None else None,
        rows_today=data["rows_today"],
        days=days(data["days"]),
        profiles={(k[0], k[1]): days(v) for k, v in data["profiles"]},
        dimensions={(k[0], k[1]): days(v) for k, v in data["dimensions"]},
    )


class Verdicts:
    """Checks the last pass judged, by a digest of every input that judged them.

    Args:
        kept: ``{digest: [check, …]}`` as the last pass left them (empty: judge everything).
    """

    def __init__(self, kept: dict[str, list[dict[str, Any]]] | None = None) -> None:
        self.kept = kept if isinstance(kept, dict) else {}
        self.used: dict[str, list[dict[str, Any]]] = {}

    def judged(self, inputs: Any, judge: Callable[[], list[Check]]) -> list[Check]:
        """The checks ``judge()`` returns for these inputs: kept ones when the inputs are
        equal to the last pass's, else judged now.

        Args:
            inputs: every value ``judge`` depends on, as JSON (dates as ISO text).
            judge: the pure function to call when nothing is kept for ``inputs``.

        >>> v = Verdicts()
        >>> first = v.judged(["x", 1], lambda: [Check("volume", "ok", "fine")])
        >>> Verdicts(v.used).judged(["x", 1], lambda: []) == first
        True
        """
        digest = hashlib.sha256(
            json.dumps(inputs, default=str, sort_keys=True).encode()
        ).hexdigest()
        checks = _checks(self.kept.get(digest))
        if checks is None:
            checks = judge()
        self.used[digest] = [_check_to_json(c) for c in checks]
        return checks


def _checks(kept: Any) -> list[Check] | None:
    """Kept checks, or ``None`` when there are none or the file was changed by hand."""
    if not isinstance(kept, list):
        return None
    try:
        return [_check_from_json(c) for c in kept]
    except (KeyError, TypeError, ValueError):
        return None


def _check_to_json(check: Check) -> dict[str, Any]:
    data = asdict(check)
    data["day"] = check.day.isoformat() if check.day is not None else None
    return data


def _check_from_json(data: dict[str, Any]) -> Check:
    day = data["day"]
    return Check(**{**data, "day": date.fromisoformat(day) if day is not None else None})
