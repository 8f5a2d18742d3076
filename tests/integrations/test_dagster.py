"""The Dagster definitions, executed in process: one asset per source table and dbt model,
the monitors as asset checks, the schedules and retry policy from stackyard.yml; materialising
everything is one `stackyard run`, recorded in `stackyard.runs`."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackyard import Context
from stackyard.project import init_project

dg = pytest.importorskip("dagster", reason="pip install 'stackyard[dagster]'")

MODEL = "select count(*) as orders, sum(amount) as amount from {{ source('orders', 'orders') }}\n"
SOURCES_YML = """version: 2
sources:
  - name: orders
    schema: orders
    tables:
      - name: orders
"""


def make_project(root: Path) -> Path:
    init_project(root)
    files = root / "sources" / "files"
    files.mkdir(parents=True, exist_ok=True)
    (files / "orders.csv").write_text("id,amount\n1,10\n2,20\n3,30\n")
    (root / "transform" / "models" / "order_totals.sql").write_text(MODEL)
    (root / "transform" / "models" / "_sources.yml").write_text(SOURCES_YML)
    entry = (
        "sources:\n  orders:\n    kind: filesystem\n    url: sources/files\n"
        "    tables: {orders: {glob: orders.csv, primary_key: id}}\n"
        "    schedule: {cron: '30 6 * * 1-5', timezone: Europe/Berlin}\n"
    )
    text = (root / "stackyard.yml").read_text().replace("sources: {}\n", entry)
    (root / "stackyard.yml").write_text(text)
    return root


def test_definitions_have_every_table_and_model_with_checks_and_schedules(
    tmp_path: Path,
) -> None:
    from stackyard.integrations.dagster import definitions

    root = make_project(tmp_path / "shop")
    defs = definitions(root)
    (assets,) = list(defs.assets)
    keys = {tuple(k.path) for k in assets.keys}
    assert keys == {("orders", "orders"), ("order_totals",)}
    checks = {(tuple(c.asset_key.path), c.name) for c in assets.check_keys}
    assert checks == {(k, "stackyard_monitors") for k in keys}
    deps = assets.asset_deps[dg.AssetKey(["order_totals"])]
    assert dg.AssetKey(["orders", "orders"]) in deps
    policy = assets.op.retry_policy
    assert (policy.max_retries, policy.delay, policy.backoff) == (3, 10.0, dg.Backoff.EXPONENTIAL)
    (schedule,) = list(defs.schedules)
    assert (schedule.cron_schedule, schedule.execution_timezone) == (
        "30 6 * * 1-5",
        "Europe/Berlin",
    )


def test_materialising_everything_is_one_stackyard_run(tmp_path: Path) -> None:
    from stackyard.integrations.dagster import definitions

    root = make_project(tmp_path / "shop")
    defs = definitions(root)
    result = dg.materialize(list(defs.assets), raise_on_error=False)
    assert result.success
    materialised = {tuple(e.asset_key.path) for e in result.get_asset_materialization_events()}
    assert materialised == {("orders", "orders"), ("order_totals",)}
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == 2
    with Context(root) as context:
        runs = context.sql("select status, selected, rows_loaded from stackyard.runs").rows
        totals = context.sql("select orders, amount from order_totals").rows
    assert list(runs) == [("success", "", 3)]
    assert list(totals) == [(3, 60)]


def test_the_file_dagster_dev_loads_validates(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from stackyard.integrations.dagster import definitions_file

    root = make_project(tmp_path / "shop")
    entry = definitions_file(root)
    dagster = Path(sys.executable).parent / "dagster"
    done = subprocess.run(
        [str(dagster), "definitions", "validate", "-f", str(entry)],
        cwd=root,
        env={**os.environ, "DAGSTER_HOME": str(entry.parent)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_stackyards_dagster_home_reports_no_usage_and_keeps_a_choice_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`stackyard serve --orchestrator dagster` started Dagster with usage reporting on (its
    banner said so), though stackyard keeps dbt's and dlt's off. Read as Dagster reads it."""
    from dagster_shared.telemetry import get_telemetry_enabled_from_dagster_yaml

    from stackyard.integrations.dagster import definitions_file

    root = make_project(tmp_path / "shop")
    entry = definitions_file(root)
    monkeypatch.setenv("DAGSTER_HOME", str(entry.parent))
    assert get_telemetry_enabled_from_dagster_yaml() is False
    # Written once, and other settings already there are kept.
    settings = entry.parent / "dagster.yaml"
    settings.write_text("run_monitoring:\n  enabled: true\n", encoding="utf-8")
    definitions_file(root)
    definitions_file(root)
    assert settings.read_text(encoding="utf-8").count("telemetry:") == 1
    assert "run_monitoring" in settings.read_text(encoding="utf-8")
    assert get_telemetry_enabled_from_dagster_yaml() is False
    # Someone who turned it on on purpose keeps it on.
    settings.write_text("telemetry:\n  enabled: true\n", encoding="utf-8")
    definitions_file(root)
    assert get_telemetry_enabled_from_dagster_yaml() is True


@pytest.mark.parametrize(("error", "attempts"), [("ValueError", 1), ("ConnectionResetError", 3)])
def test_a_failure_another_attempt_would_repeat_skips_the_retry_policy(
    tmp_path: Path, error: str, attempts: int
) -> None:
    from stackyard.integrations.dagster import definitions
    from tests.ingest.test_attempts import attempts as counted
    from tests.ingest.test_attempts import project

    root = project(tmp_path / "p", f"{{fails: 99, error: {error}}}", "    retries: {count: 0}\n")
    config = root / "stackyard.yml"
    policy = "transform:\n  retries: {count: 2, backoff_factor: 0.01, jitter: 0}\n"
    config.write_text(config.read_text() + policy)
    models = root / "transform" / "models"
    (models / "_sources.yml").write_text(SOURCES_YML.replace("orders", "events"))
    (models / "event_count.sql").write_text(
        "select count(*) as n from {{ source('events', 'events') }}\n"
    )
    result = dg.materialize(list(definitions(root).assets), raise_on_error=False)
    assert not result.success
    # Bad input fails the same way again: one attempt; a network blip: the policy's three.
    assert counted(root) == attempts
