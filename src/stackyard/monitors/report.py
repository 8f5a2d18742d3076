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
from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

from stackyard.config.model import ProjectConfig
from stackyard.monitors.anomaly import detect
from stackyard.monitors.checks import anomaly_config
from stackyard.monitors.columns import COLUMN_CHECKS
from stackyard.monitors.health import TableHealth, health_from_findings
from stackyard.monitors.lineage import LAYERS, Lineage
from stackyard.monitors.store import METADATA_SCHEMA, MetricStore
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
        _TEMPLATE.replace("%%TITLE%%", title)
        .replace("%%CSS%%", _CSS)
        .replace("%%DATA%%", payload)
        .replace("%%SCRIPT%%", _SCRIPT)
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
        "runs": _runs(warehouse),
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
    since = now.date() - timedelta(days=CHART_DAYS + 70)
    volumes = store.volumes(relations, since)
    history = store.history(relations, ("null_rate",), now.date() - timedelta(days=CHART_DAYS))
    findings = store.findings_since(now - timedelta(days=CHART_DAYS + 14))
    flagged: dict[str, set[str]] = defaultdict(set)
    for f in findings:
        if f["check_name"] == "volume" and f["status"] == "anomaly" and f["day"] is not None:
            flagged[f["table_name"]].add(str(f["day"]))
    incidents: dict[str, set[date]] = defaultdict(set)
    for incident in store.incidents(relations):
        incidents[incident.table].update(incident.days())
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
                "lower": verdict.lower,
                "upper": verdict.upper,
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
                    "why": table.why if table else "not monitored yet",
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


def _runs(warehouse: Warehouse) -> list[dict[str, Any]]:
    if "runs" not in _tables(warehouse):
        return []
    rows = warehouse.query(
        "SELECT run_id, status, started_at, finished_at, rows_loaded, models_built, "
        f"tests_passed, tests_failed FROM {warehouse.quote(METADATA_SCHEMA, 'runs')} "
        "ORDER BY started_at DESC LIMIT 30"
    ).as_dicts()
    for row in rows:
        started, finished = row["started_at"], row["finished_at"]
        row["seconds"] = (finished - started).total_seconds() if started and finished else None
    return rows[::-1]


def _tests(warehouse: Warehouse) -> dict[str, Any]:
    if not {"runs", "node_results"} <= _tables(warehouse):
        return {"runs": [], "tests": []}
    runs = warehouse.query(
        f"SELECT run_id FROM {warehouse.quote(METADATA_SCHEMA, 'runs')} "
        "WHERE tests_passed + tests_failed > 0 ORDER BY started_at DESC LIMIT 20"
    ).rows
    run_ids = [r[0] for r in runs][::-1]
    if not run_ids:
        return {"runs": [], "tests": []}
    p = warehouse.param()
    rows = warehouse.query(
        f"SELECT run_id, name, status, failures FROM "
        f"{warehouse.quote(METADATA_SCHEMA, 'node_results')} WHERE resource_type = 'test' "
        f"AND run_id IN ({', '.join([p] * len(run_ids))})",
        run_ids,
    ).rows
    by_test: dict[str, dict[str, str]] = defaultdict(dict)
    for run_id, name, status, _ in rows:
        by_test[name][run_id] = status
    tests = [
        {"name": name, "results": [by_run.get(r, "") for r in run_ids]}
        for name, by_run in sorted(by_test.items())
    ]
    return {"runs": run_ids, "tests": tests}


def _tables(warehouse: Warehouse) -> set[str]:
    if not warehouse.schema_exists(METADATA_SCHEMA):
        return set()
    return set(warehouse.tables_in(METADATA_SCHEMA))


_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>%%TITLE%%</title>
<style>%%CSS%%</style></head>
<body>
<header><h1>%%TITLE%%</h1><p id="meta"></p></header>
<main>
<section><h2>Table health</h2><div id="health"></div></section>
<section><h2>Lineage</h2><p class="note">sources → staging → marts → reporting; each node
coloured by its health (hover for why).</p><div id="lineage"></div></section>
<section><h2>Volume</h2><p class="note">rows per day (or per load), the expected band in
grey, anomalies in red.</p><div id="volume" class="grid"></div></section>
<section><h2>Freshness</h2><div id="freshness"></div></section>
<section><h2>Columns and dimensions</h2><p class="note">distinct counts, means and medians
per column, rows per value of each dimension (monitors.tables.&lt;table&gt;.columns and
.dimensions).</p><div id="columns"></div></section>
<section><h2>Null-rate changes</h2><div id="nulls" class="grid"></div></section>
<section><h2>dbt test history</h2><div id="tests"></div></section>
<section><h2>Run history</h2><div id="runs"></div></section>
</main>
<script type="application/json" id="report-data">%%DATA%%</script>
<script>%%SCRIPT%%</script>
</body></html>
"""

_CSS = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1f2933;
background:#f5f7fa}
header{background:#1f2933;color:#fff;padding:16px 24px}header h1{margin:0;font-size:20px}
#meta{margin:4px 0 0;color:#cbd2d9}main{padding:8px 24px 40px}
section{background:#fff;border-radius:6px;padding:12px 16px;margin:16px 0;
box-shadow:0 1px 2px rgba(0,0,0,.08)}h2{font-size:16px;margin:0 0 8px}
.note{color:#616e7c;margin:0 0 8px;font-size:12px}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:4px 8px;
border-bottom:1px solid #e4e7eb;vertical-align:top}th{font-size:12px;color:#616e7c}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:12px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:12px}
.card{border:1px solid #e4e7eb;border-radius:6px;padding:8px}.card h3{font-size:13px;
margin:0 0 4px}.why{font-size:12px;color:#3e4c59}svg text{font:11px system-ui,sans-serif}
.cell{display:inline-block;width:12px;height:12px;margin-right:2px;border-radius:2px}
"""

_SCRIPT = r"""
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var NS = "http://www.w3.org/2000/svg";
  var COLOURS = {ok: "#2e9e5b", learning: "#7b8794", warn: "#e0a000", error: "#e0a000",
    anomaly: "#d64545", missing: "#d64545", unmonitored: "#c5ccd3", pass: "#2e9e5b",
    fail: "#d64545", success: "#2e9e5b", failed: "#d64545", "": "#e4e7eb"};
  var drawn = 0;

  function el(name, attrs, parent) {
    var node = document.createElementNS(NS, name);
    for (var k in attrs) node.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(node);
    return node;
  }
  function html(tag, text, parent, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (cls) node.className = cls;
    if (parent) parent.appendChild(node);
    return node;
  }
  function badge(status, parent) {
    var b = html("span", status, parent, "badge");
    b.style.background = COLOURS[status] || "#7b8794";
    return b;
  }
  function fmt(v) {
    if (v === null || v === undefined) return "–";
    return Math.abs(v) >= 100 ? Math.round(v).toLocaleString("en") : (+v.toFixed(3)).toString();
  }
  function svg(parent, w, h) {
    return el("svg", {width: w, height: h, viewBox: "0 0 " + w + " " + h,
      role: "img", "class": "chart"}, parent);
  }
  function scale(d0, d1, r0, r1) {
    return function (v) { return d1 === d0 ? (r0 + r1) / 2 : r0 + (v - d0) * (r1 - r0) / (d1 - d0); };
  }

  function meta() {
    var m = document.getElementById("meta");
    m.textContent = "project " + data.project + " · target " + data.target + " · generated " +
      data.generated_at + (data.measured_at ? " · last monitor pass " + data.measured_at : "") +
      (data.empty ? " · " + data.empty : "");
  }

  function health() {
    var root = document.getElementById("health");
    if (!data.tables.length) { html("p", "no monitored tables yet", root); return; }
    var t = html("table", null, root), head = html("tr", null, html("thead", null, t));
    ["table", "kind", "status", "last value", "expected band", "why"].forEach(function (h) { html("th", h, head); });
    var body = html("tbody", null, t);
    data.tables.forEach(function (tb) {
      var tr = html("tr", null, body), last = tb.volume.length ? tb.volume[tb.volume.length - 1] : null;
      tr.setAttribute("data-status", tb.status);
      html("td", tb.table, tr); html("td", tb.kind, tr); badge(tb.status, html("td", null, tr));
      html("td", last ? fmt(last.value) : "–", tr);
      html("td", last && last.lower !== null ? fmt(last.lower) + "–" + fmt(last.upper) : "–", tr);
      html("td", tb.why, tr, "why");
    });
  }

  function lineage() {
    var root = document.getElementById("lineage"), g = data.lineage;
    if (!g.nodes.length) { html("p", "no dbt manifest yet (transform/target/manifest.json)", root); return; }
    var colW = 230, rowH = 44, boxW = 190, boxH = 30, rows = 0;
    g.nodes.forEach(function (n) { rows = Math.max(rows, n.y + 1); });
    var s = svg(root, Math.max(g.layers.length * colW, 300), rows * rowH + 30);
    s.setAttribute("id", "lineage-graph");
    g.layers.forEach(function (layer, i) {
      var t = el("text", {x: i * colW + 10, y: 14, fill: "#616e7c"}, s); t.textContent = layer;
    });
    var pos = {};
    g.nodes.forEach(function (n) { pos[n.id] = {x: n.x * colW + 10, y: n.y * rowH + 24}; });
    g.edges.forEach(function (e) {
      var a = pos[e.from], b = pos[e.to];
      var x1 = a.x + boxW, y1 = a.y + boxH / 2, x2 = b.x, y2 = b.y + boxH / 2, mx = (x1 + x2) / 2;
      el("path", {d: "M" + x1 + "," + y1 + " C" + mx + "," + y1 + " " + mx + "," + y2 + " " + x2 + "," + y2,
        fill: "none", stroke: "#9aa5b1", "class": "edge"}, s);
    });
    g.nodes.forEach(function (n) {
      var p = pos[n.id], grp = el("g", {"class": "node", "data-status": n.status,
        "data-relation": n.relation}, s);
      el("rect", {x: p.x, y: p.y, width: boxW, height: boxH, rx: 5, fill: n.colour}, grp);
      var t = el("text", {x: p.x + 8, y: p.y + 19, fill: "#fff"}, grp);
      t.textContent = n.label.length > 28 ? n.label.slice(0, 27) + "…" : n.label;
      var tip = el("title", {}, grp); tip.textContent = n.relation + ": " + n.status + " — " + n.why;
    });
    drawn++;
  }

  function volume() {
    var root = document.getElementById("volume");
    data.tables.forEach(function (tb) {
      if (!tb.volume.length) return;
      var card = html("div", null, root, "card"); html("h3", tb.table + " ", card);
      badge(tb.status, card.firstChild);
      var w = 330, h = 130, pad = 34, pts = tb.volume;
      var s = svg(card, w, h); s.setAttribute("data-table", tb.table);
      s.setAttribute("class", "chart volume-chart");
      var hi = 0;
      pts.forEach(function (p) { hi = Math.max(hi, p.value, p.upper || 0); });
      var x = scale(0, pts.length - 1, pad, w - 8), y = scale(0, hi || 1, h - 18, 8);
      var band = [], top = [], bottom = [];
      pts.forEach(function (p, i) {
        if (p.lower !== null && p.upper !== null) { top.push([x(i), y(p.upper)]); bottom.unshift([x(i), y(p.lower)]); }
      });
      if (top.length > 1) {
        band = top.concat(bottom);
        el("polygon", {points: band.map(function (q) { return q.join(","); }).join(" "),
          fill: "#cbd2d9", opacity: 0.6, "class": "band"}, s);
      }
      el("polyline", {points: pts.map(function (p, i) { return x(i) + "," + y(p.value); }).join(" "),
        fill: "none", stroke: "#1f2933", "stroke-width": 1.5, "class": "line"}, s);
      pts.forEach(function (p, i) {
        if (p.anomaly) el("circle", {cx: x(i), cy: y(p.value), r: 4, fill: "#d64545", "class": "anomaly"}, s)
          .appendChild(document.createElementNS(NS, "title")).textContent = p.day + ": " + fmt(p.value);
        else if (p.incident) el("circle", {cx: x(i), cy: y(p.value), r: 3, fill: "#e0a000", "class": "incident"}, s);
      });
      var t0 = el("text", {x: 2, y: 12, fill: "#616e7c"}, s); t0.textContent = fmt(hi);
      var t1 = el("text", {x: pad, y: h - 4, fill: "#616e7c"}, s); t1.textContent = pts[0].day;
      var t2 = el("text", {x: w - 70, y: h - 4, fill: "#616e7c"}, s); t2.textContent = pts[pts.length - 1].day;
      html("div", tb.why, card, "why");
      drawn++;
    });
    if (!root.children.length) html("p", "no volume history yet", root);
  }

  function freshness() {
    var root = document.getElementById("freshness");
    var t = html("table", null, root), head = html("tr", null, t);
    ["table", "status", "age (h)", "why"].forEach(function (h) { html("th", h, head); });
    data.tables.forEach(function (tb) {
      if (!tb.freshness) return;
      var tr = html("tr", null, t);
      html("td", tb.table, tr); badge(tb.freshness.status, html("td", null, tr));
      html("td", fmt(tb.freshness.hours), tr); html("td", tb.freshness.reason, tr, "why");
    });
  }

  function columns() {
    var root = document.getElementById("columns"), t = null;
    data.tables.forEach(function (tb) {
      tb.columns.forEach(function (c) {
        if (!t) {
          t = html("table", null, root);
          var head = html("tr", null, t);
          ["table", "check", "status", "why"].forEach(function (h) { html("th", h, head); });
        }
        var tr = html("tr", null, t);
        html("td", tb.table, tr); html("td", c.check, tr); badge(c.status, html("td", null, tr));
        html("td", c.reason, tr, "why");
      });
    });
    if (!t) html("p", "no column or dimension monitors declared", root);
  }

  function nulls() {
    var root = document.getElementById("nulls");
    data.tables.forEach(function (tb) {
      tb.null_changes.forEach(function (c) {
        var card = html("div", null, root, "card"); html("h3", tb.table + "." + c.column, card);
        var w = 330, h = 70, s = svg(card, w, h);
        s.setAttribute("class", "chart null-chart");
        var x = scale(0, c.points.length - 1, 30, w - 8), y = scale(0, 1, h - 14, 6);
        el("polyline", {points: c.points.map(function (p, i) { return x(i) + "," + y(p.value); }).join(" "),
          fill: "none", stroke: "#d64545", "stroke-width": 1.5, "class": "line"}, s);
        var t = el("text", {x: 0, y: 12, fill: "#616e7c"}, s); t.textContent = "100%";
        var b = el("text", {x: 0, y: h - 4, fill: "#616e7c"}, s); b.textContent = "0%";
        drawn++;
      });
    });
    if (!root.children.length) html("p", "no column's null rate changed in the last weeks", root);
  }

  function tests() {
    var root = document.getElementById("tests"), tt = data.tests;
    if (!tt.tests.length) { html("p", "no dbt test results recorded yet", root); return; }
    var w = 520 + tt.runs.length * 14, h = tt.tests.length * 16 + 10, s = svg(root, w, h);
    s.setAttribute("class", "chart tests-chart");
    tt.tests.forEach(function (test, i) {
      var label = el("text", {x: 0, y: i * 16 + 16}, s);
      label.textContent = test.name.length > 80 ? test.name.slice(0, 79) + "…" : test.name;
      test.results.forEach(function (r, j) {
        var cell = el("rect", {x: 520 + j * 14, y: i * 16 + 5, width: 12, height: 12, rx: 2,
          fill: COLOURS[r] || "#e0a000", "class": "cell-" + (r || "none")}, s);
        el("title", {}, cell).textContent = tt.runs[j] + ": " + (r || "not run");
      });
    });
    drawn++;
  }

  function runs() {
    var root = document.getElementById("runs"), rs = data.runs;
    if (!rs.length) { html("p", "no runs recorded yet", root); return; }
    var w = Math.max(rs.length * 22 + 40, 200), h = 110, s = svg(root, w, h);
    s.setAttribute("class", "chart runs-chart");
    var hi = 0; rs.forEach(function (r) { hi = Math.max(hi, r.seconds || 0); });
    var y = scale(0, hi || 1, h - 16, 6);
    rs.forEach(function (r, i) {
      var bar = el("rect", {x: 30 + i * 22, y: y(r.seconds || 0), width: 16,
        height: Math.max(h - 16 - y(r.seconds || 0), 1), fill: COLOURS[r.status] || "#7b8794",
        "class": "run"}, s);
      el("title", {}, bar).textContent = r.run_id + ": " + r.status + ", " + fmt(r.seconds) +
        " s, " + fmt(r.rows_loaded) + " rows, tests " + r.tests_passed + " passed / " + r.tests_failed + " failed";
    });
    var t = el("text", {x: 0, y: 12, fill: "#616e7c"}, s); t.textContent = fmt(hi) + " s";
    drawn++;
  }

  [meta, health, lineage, volume, freshness, columns, nulls, tests, runs].forEach(function (f) { f(); });
  document.body.setAttribute("data-charts-drawn", String(drawn));
})();
"""
