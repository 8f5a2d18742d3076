"""Monitors: checks that watch the warehouse's tables and say when something looks wrong.

- :mod:`~stackyard.monitors.suite` — :func:`monitor_run`, the pass run after every
  ``stackyard run`` (and on demand): list, measure, judge, record, alert;
- :mod:`~stackyard.monitors.metrics` — one batched aggregate query per table (sqlglot);
- :mod:`~stackyard.monitors.anomaly` — judges a table's daily volume against its own history;
- :mod:`~stackyard.monitors.checks` — freshness, null rates, duplicates, schema drift, tests;
- :mod:`~stackyard.metadata.monitors` — metric history, findings, snapshots, incidents, alert log
  in the ``stackyard`` schema;
- :mod:`~stackyard.monitors.alerts` — one message per root cause to webhooks and e-mail;
- :mod:`~stackyard.monitors.lineage` — table-level lineage from dbt's manifest;
- :mod:`~stackyard.monitors.health` — the immutable results; :mod:`~stackyard.monitors.report`
  — the self-contained HTML report; :mod:`~stackyard.monitors.service` — the façade the
  Context hands out.
"""
