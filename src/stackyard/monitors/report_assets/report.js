
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
    ["table", "kind", "status", "rows judged", "expected band", "why"].forEach(function (h) { html("th", h, head); });
    var body = html("tbody", null, t);
    data.tables.forEach(function (tb) {
      var tr = html("tr", null, body), judged = tb.judged;
      tr.setAttribute("data-status", tb.status);
      html("td", tb.table, tr); html("td", tb.kind, tr); badge(tb.status, html("td", null, tr));
      html("td", judged ? judged.rows : "–", tr);
      html("td", judged && judged.band ? judged.band : "–", tr);
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
