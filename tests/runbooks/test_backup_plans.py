"""Backup plans without a warehouse: Snowflake and BigQuery SQL against golden files (parsed
by sqlglot's dialects), the `backups:` config section, dry runs and usage errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp
from typer.testing import CliRunner

from stackyard.cli.main import app
from stackyard.context import Context
from stackyard.errors import UsageError
from stackyard.project import init_project
from stackyard.runbooks.backup_cloud import cloud_backup_plan, restore_table_sql

GOLDEN = Path(__file__).parent / "golden"
AT = datetime(2026, 12, 1, 10, 30, 0, tzinfo=UTC)
runner = CliRunner()

CLOUD_TARGETS = """
  sf:
    type: snowflake
    account: xy12345
    user: SVC_STACKYARD
    role: TRANSFORMER
    warehouse: TRANSFORMING
    database: ANALYTICS
    password: {secret: SF_PASSWORD}
  bq:
    type: bigquery
    project: shop-prod
    dataset: analytics
"""


@pytest.fixture()
def cloud_project(tmp_path: Path) -> Path:
    project = init_project(tmp_path / "shop", example="jaffle_shop").path
    config = project / "stackyard.yml"
    config.write_text(config.read_text().replace("targets:\n", "targets:" + CLOUD_TARGETS, 1))
    return project


def _golden(name: str, statements: list[str], dialect: str) -> None:
    for statement in statements:
        parsed = sqlglot.parse_one(statement, read=dialect)
        assert not isinstance(parsed, exp.Command), f"{dialect} did not parse: {statement}"
    text = ";\n".join(statements) + ";\n"
    path = GOLDEN / name
    if not path.exists():  # first run writes it; review and commit it
        path.write_text(text)
    assert text == path.read_text()


def test_snowflake_and_bigquery_backup_sql(cloud_project: Path) -> None:
    context = Context(cloud_project)
    sf = cloud_backup_plan(context.warehouse("sf"), AT)
    _golden("snowflake_backup.sql", list(sf.steps[0].sql), "snowflake")
    assert sf.steps[0].sql == (
        'CREATE DATABASE "ANALYTICS_BACKUP_20261201_103000" CLONE "ANALYTICS"',
    )
    files = context.backups("bq").files
    bq = cloud_backup_plan(context.warehouse("bq"), AT, files.known_tables())
    _golden("bigquery_backup.sql", list(bq.steps[0].sql), "bigquery")
    # Every loaded source table is cloned (the manifest's marts join once dbt has run).
    assert (
        "CREATE TABLE `shop-prod`.`backup_20261201_103000`.`shop_db__orders` CLONE "
        in "\n".join(bq.steps[0].sql)
    )


def test_restore_table_sql_reads_time_travel(cloud_project: Path) -> None:
    context = Context(cloud_project)
    sf = restore_table_sql(context.warehouse("sf"), "SHOP_DB", "ORDERS", AT)
    _golden("snowflake_restore_table.sql", list(sf.sql), "snowflake")
    bq = restore_table_sql(context.warehouse("bq"), "shop_db", "orders", AT)
    _golden("bigquery_restore_table.sql", list(bq.sql), "bigquery")
    # The swap replaces the rows in one transaction and keeps the table (its grants,
    # policies and the views over it), instead of dropping or swapping the table itself.
    for step, name, dialect in ((sf, "snowflake", "snowflake"), (bq, "bigquery", "bigquery")):
        swap = step.description.split("swap it in: ", 1)[1].split("; ")
        _golden(f"{name}_restore_swap.sql", swap, dialect)
        assert not any(s.startswith(("ALTER", "DROP TABLE")) for s in swap[:-1])
    with pytest.raises(UsageError, match="keeps no history"):
        restore_table_sql(context.warehouse("dev"), "shop_db", "orders", AT)


def test_cloud_backup_is_explained_not_run(cloud_project: Path) -> None:
    dry = runner.invoke(
        app, ["backup", "--project", str(cloud_project), "--target", "sf", "--dry-run"]
    )
    assert dry.exit_code == 0 and "CLONE" in dry.output
    real = runner.invoke(app, ["backup", "--project", str(cloud_project), "--target", "sf"])
    assert real.exit_code == 2 and "--dry-run" in real.output


def test_backups_section_rejects_unknown_keys(tmp_path: Path) -> None:
    project = init_project(tmp_path / "shop").path
    config = project / "stackyard.yml"
    config.write_text(config.read_text() + "backups:\n  keep: 3\n  retention_days: 9\n")
    result = runner.invoke(app, ["backup", "--project", str(project)])
    assert result.exit_code == 2
    assert "retention_days" in result.output


def test_dry_run_changes_nothing_and_keep_prunes(tmp_path: Path) -> None:
    project = init_project(tmp_path / "shop").path
    config = project / "stackyard.yml"
    config.write_text(config.read_text() + "backups:\n  keep: 2\n  dir: ../saved\n")
    runner.invoke(app, ["sql", "CREATE TABLE t AS SELECT 1 AS i", "--project", str(project)])
    dry = runner.invoke(app, ["backup", "--project", str(project), "--dry-run", "--json"])
    assert dry.exit_code == 0
    plan = json.loads(dry.output)
    assert [s["kind"] for s in plan["steps"]] == [
        "checkpoint",
        "copy_file",
        "copy_state",
        "write_manifest",
    ]
    assert not (tmp_path / "saved").exists()
    paths = []
    for _ in range(3):
        result = runner.invoke(app, ["backup", "--project", str(project), "--json"])
        assert result.exit_code == 0, result.output
        paths.append(json.loads(result.output)["path"])
    assert sorted(p.name for p in (tmp_path / "saved").iterdir()) == sorted(
        Path(p).name for p in paths[1:]
    )
    assert json.loads(result.output)["pruned"] == [paths[0]]
    # A DuckDB backup that deletes an older one reads its copy back first and records the
    # content; DuckDB's block checksums prove the bytes when read.
    (table,) = json.loads(result.output)["tables"]
    assert (table["table"], table["rows"]) == ("t", 1) and table["content_hash"]
    saved = Path(paths[-1]) / "warehouse.duckdb"
    assert json.loads(result.output)["files"]["warehouse.duckdb"] == (
        f"duckdb-block-checksums:{saved.stat().st_size}"
    )


def test_restore_usage_errors(tmp_path: Path) -> None:
    project = init_project(tmp_path / "shop").path
    missing = runner.invoke(app, ["restore", str(tmp_path / "nope"), "--project", str(project)])
    assert missing.exit_code == 2 and "no backup at" in missing.output
    latest = runner.invoke(app, ["restore", "latest", "--project", str(project)])
    assert latest.exit_code == 2 and "stackyard backup" in latest.output


def test_version() -> None:
    from stackyard import __version__

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"stackyard {__version__}"


def test_restore_into_another_target_leaves_dlt_state_alone(tmp_path: Path) -> None:
    project = init_project(tmp_path / "shop").path
    config = project / "stackyard.yml"
    config.write_text(
        config.read_text().replace(
            "targets:\n", "targets:\n  copy:\n    type: duckdb\n    path: .stackyard/copy.duckdb\n"
        )
    )
    runner.invoke(app, ["sql", "CREATE TABLE t AS SELECT 1 AS i", "--project", str(project)])
    pipeline = project / ".stackyard" / "pipelines" / "shop__app__dev"
    pipeline.mkdir(parents=True)
    made = runner.invoke(app, ["backup", "--project", str(project), "--json"])
    path = json.loads(made.output)["path"]
    plan = runner.invoke(
        app, ["restore", path, "--target", "copy", "--project", str(project), "--dry-run", "--json"]
    )
    data = json.loads(plan.output)
    assert "restore_state" not in [s["kind"] for s in data["steps"]]
    assert any("belong to target 'dev'" in n for n in data["notes"])
    done = runner.invoke(app, ["restore", path, "--target", "copy", "--project", str(project)])
    assert done.exit_code == 0, done.output
    assert pipeline.is_dir() and (project / ".stackyard" / "copy.duckdb").is_file()
    # Again, without --yes and without a terminal: the copy it replaces is kept aside.
    again = runner.invoke(app, ["restore", path, "--target", "copy", "--project", str(project)])
    assert again.exit_code == 0, again.output
    assert len(list((project / ".stackyard").glob("copy.duckdb.before-restore-*"))) == 1


def test_backup_before_any_data(tmp_path: Path) -> None:
    project = init_project(tmp_path / "shop").path
    result = runner.invoke(app, ["backup", "--project", str(project)])
    assert result.exit_code == 2 and "nothing to back up" in result.output
