"""``stackyard report``: one self-contained HTML file about the project's health.

Everything is inline — CSS, the data as JSON, and a small script that draws the charts as SVG
— so the file works offline, attached to a ticket or opened from a laptop without network
access. Sections: table health, the lineage graph (sources → staging → marts → reporting,
each node coloured by its health), each table's volume trend with its expected band and its
anomalies marked, freshness, null-rate changes, dbt test history and run history.

The expected band is replayed here with the same detector and settings a monitor uses, so the
chart shows the band every day had; anomaly markers are the days monitors actually flagged.
"""

from __future__ import annotations

import html
import json
import math
from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

from stackyard.config.model import ProjectConfig
from stackyard.metadata.history import History
from stackyard.metadata.monitors import MetricStore
from stackyard.monitors.anomaly import detect
from stackyard.monitors.checks import anomaly_config, volume_history_start
from stackyard.monitors.columns import COLUMN_CHECKS
from stackyard.monitors.health import TableHealth, health_from_findings
from stackyard.monitors.lineage import LAYERS, Lineage
from stackyard.warehouse.base import Warehouse

#: Days of history the charts show.
CHART_DAYS = 42
_COLOURS = {
    "ok": "#2e9e5b",
    "learning": "#7b8794",
    "warn": "#e0a000",
    "error": "#e0a000",
    "anomaly": "#d64545",
    "missing": "#d64545",
    "unmonitored": "#c5ccd3",
}


def build_report(
    *, project: ProjectConfig, warehouse: Warehouse, lineage: Lineage, now: datetime
) -> str:
    """The report as one HTML document.

    Args:
        project: the project's configuration (per-table detector settings, holidays).
        warehouse: the target whose ``stackyard`` schema holds the history.
        lineage: the dbt lineage, for the graph.
        now: the report's time.

    Returns:
        The HTML text.
    """
    data = report_data(project=project, warehouse=warehouse, lineage=lineage, now=now)
    payload = json.dumps(data, default=str, separators=(",", ":"))
    # "</" inside a <script> would end it early: JSON allows escaping the slash.
    payload = payload.replace("</", "<\\/")
    title = f"stackyard report — {html.escape(project.name)}"
    return (
        _asset("report.html")
        .replace("%%TITLE%%", title)
        .replace("%%CSS%%", _asset("report.css"))
        .replace("%%DATA%%", payload)
        .replace("%%SCRIPT%%", _asset("report.js"))
    )


def report_data(
    *, project: ProjectConfig, warehouse: Warehouse, lineage: Lineage, now: datetime
) -> dict[str, Any]:
    """Everything the report draws, as JSON-ready data."""
    store = MetricStore(warehouse)
    data: dict[str, Any] = {
        "project": project.name,
        "target": warehouse.target_name,
        "generated_at": now.isoformat(timespec="seconds"),
        "tables": [],
        "lineage": {"nodes": [], "edges": []},
        "runs": History(warehouse).run_rows(30),
        "tests": _tests(warehouse),
        "passes": [],
    }
    if not store.exists():
        data["lineage"] = _lineage(lineage, {})
        data["empty"] = "no monitor pass yet: run `stackyard run` or `stackyard monitor`"
        return data
    measured_at, rows = store.latest_findings()
    tables = health_from_findings(rows)
    relations = [t.table for t in tables]
    # The chart's first day is judged with as much history, and the same alerted days kept
    # out, as a pass gives health: the bands drawn are the ones health shows.
    since = volume_history_start(now.date() - timedelta(days=CHART_DAYS), project.monitors)
    volumes = store.volumes(relations, since)
    history = store.history(relations, ("null_rate",), now.date() - timedelta(days=CHART_DAYS))
    flagged: dict[str, set[str]] = defaultdict(set)
    for relation, days in store.alerted_days(relations, "volume", since).items():
        flagged[relation].update(d.isoformat() for d in days)
    incidents: dict[str, set[date]] = defaultdict(
        set, lineage.with_upstream_marks(store.marked_days())
    )
    data["measured_at"] = measured_at
    data["passes"] = [
        {k: p[k] for k in ("run_id", "measured_at", "trigger", "status", "summary")}
        for p in store.passes(30)
    ][::-1]
    for table in tables:
        data["tables"].append(
            _table(
                table,
                project,
                volumes.get(table.table, {}),
                flagged[table.table],
                incidents[table.table],
                {c: pts for (t, _, c), pts in history.items() if t == table.table and c},
            )
        )
    data["lineage"] = _lineage(lineage, {t.table: t for t in tables})
    return data


def _judged(table: TableHealth) -> dict[str, Any] | None:
    """The volume check's day, rows and band as ``stackyard health`` prints them."""
    from stackyard.monitors.anomaly.stats import whole_rows_band

    volume = table.volume
    if volume is None or volume.value is None:
        return None
    band = None
    if volume.lower is not None and volume.upper is not None:
        band = whole_rows_band(volume.lower, volume.upper)
    day = volume.day.isoformat() if isinstance(volume.day, date) else volume.day
    return {"day": day, "rows": f"{volume.value:,.0f}", "band": band}


def _table(
    table: TableHealth,
    project: ProjectConfig,
    series: dict[date, float],
    flagged: set[str],
    incidents: set[date],
    null_rates: dict[str, list[tuple[date, float]]],
) -> dict[str, Any]:
    settings = project.monitors.for_table(table.table, table.node)
    config = anomaly_config(settings)
    holidays = set(project.monitors.holidays)
    days = sorted(series)
    points = []
    excluded = set(incidents) | {date.fromisoformat(d) for d in flagged}
    start = days[-1] - timedelta(days=CHART_DAYS) if days else None
    for i, day in enumerate(days):
        if start is not None and day < start:
            continue
        verdict = detect(
            days[: i + 1],
            [series[d] for d in days[: i + 1]],
            holidays=holidays,
            exclude=excluded - {day},
            config=config,
        )
        points.append(
            {
                "day": day.isoformat(),
                "value": series[day],
                # Whole rows, as health gives the band.
                "lower": None if verdict.lower is None else math.floor(verdict.lower),
                "upper": None if verdict.upper is None else math.ceil(verdict.upper),
                "expected": verdict.expected,
                "anomaly": day.isoformat() in flagged,
                "holiday": day in holidays,
                "incident": day in incidents,
            }
        )
    freshness = next((c for c in table.checks if c.check == "freshness"), None)
    changes = []
    for column, pts in sorted(null_rates.items()):
        values = [v for _, v in pts]
        if values and max(values) - min(values) >= 0.01:
            changes.append(
                {"column": column, "points": [{"day": d.isoformat(), "value": v} for d, v in pts]}
            )
    return {
        "table": table.table,
        "kind": table.kind,
        "node": table.node,
        "status": table.status,
        "why": table.why,
        # The day health judged and its band, as health shows them (whole rows): the chart's
        # last point is today's, still arriving and not judged.
        "judged": _judged(table),
        "problems": [
            {"check": c.label, "status": c.status, "reason": c.reason} for c in table.problems
        ],
        "volume": points,
        "freshness": {
            "status": freshness.status,
            "reason": freshness.reason,
            "hours": freshness.value,
        }
        if freshness
        else None,
        "null_changes": changes,
        "columns": [
            {"check": c.label, "status": c.status, "reason": c.reason}
            for c in table.checks
            if c.check in COLUMN_CHECKS
        ],
    }


def _lineage(lineage: Lineage, health: dict[str, TableHealth]) -> dict[str, Any]:
    columns: dict[str, list[str]] = defaultdict(list)
    for uid, node in sorted(lineage.nodes.items(), key=lambda kv: kv[1].relation):
        columns[node.layer].append(uid)
    nodes = []
    used = [layer for layer in LAYERS if columns.get(layer)]
    for x, layer in enumerate(used):
        for y, uid in enumerate(columns[layer]):
            node = lineage.nodes[uid]
            table = health.get(node.relation)
            status = table.status if table else "unmonitored"
            nodes.append(
                {
                    "id": uid,
                    "label": node.relation if node.kind == "source" else node.name,
                    "relation": node.relation,
                    "layer": layer,
                    "x": x,
                    "y": y,
                    "status": status,
                    "colour": _COLOURS[status],
                    "why": table.why if table else _unmonitored(node),
                }
            )
    known = {n["id"] for n in nodes}
    edges = [
        {"from": p, "to": uid}
        for uid, node in lineage.nodes.items()
        for p in node.parents
        if p in known and uid in known
    ]
    return {"nodes": nodes, "edges": edges, "layers": used}


def _unmonitored(node: Any) -> str:
    """Why a node has no health: an ephemeral model has no table to watch, ever (it read "not
    monitored yet", as though a pass would come to it)."""
    if node.materialized == "ephemeral":
        return "ephemeral: built into the models that select from it, no table of its own"
    return "not monitored yet"


def _tests(warehouse: Warehouse) -> dict[str, Any]:
    run_ids, rows = History(warehouse).test_results(20)
    if not run_ids:
        return {"runs": [], "tests": []}
    by_test: dict[str, dict[str, str]] = defaultdict(dict)
    for run_id, name, status in rows:
        by_test[name][run_id] = status
    tests = [
        {"name": name, "results": [by_run.get(r, "") for r in run_ids]}
        for name, by_run in sorted(by_test.items())
    ]
    return {"runs": run_ids, "tests": tests}


def _asset(name: str) -> str:
    """A file of the report's page (HTML skeleton, CSS, script), shipped as package data."""
    from importlib.resources import files

    return (files("stackyard.monitors") / "report_assets" / name).read_text(encoding="utf-8")
