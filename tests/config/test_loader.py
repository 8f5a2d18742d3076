"""stackyard.yml validation: every error names the file, the line, the key and the fix."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stackyard.config import SecretRef, Secrets, find_project_file, load_project_config
from stackyard.errors import ConfigError, ProjectNotFoundError, SecretMissingError
from tests.conftest import write

GOOD = """
name: shop
targets:
  dev: {type: duckdb}
  prod:
    type: postgres
    user: loader
    database: analytics
    password: {secret: PROD_PG_PASSWORD}
sources:
  app:
    kind: sql_database
    connection: sqlite:///sources/app.sqlite
    tables:
      orders: {primary_key: id, cursor: updated_at}
"""


def load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    return load_project_config(write(tmp_path / "stackyard.yml", text))


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return str(info.value)


def test_a_valid_file_loads_with_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, GOOD)
    assert config.defaults.target == "dev"
    assert config.defaults.freshness.warn_after_hours == 24
    assert config.sources["app"].schedule.cron == "0 7 * * *"
    assert config.dataset_for("app") == "app"


def test_unknown_key_names_line_and_suggests(tmp_path: Path) -> None:
    text = GOOD.replace("    tables:\n      orders", "    tabels:\n      orders")
    message = error_of(tmp_path, text)
    assert "stackyard.yml:13: sources.app.tabels: unknown key (did you mean 'tables'?)" in message
    assert "sources.app.tables: this key is required" in message


def test_unknown_source_kind_lists_the_kinds(tmp_path: Path) -> None:
    message = error_of(tmp_path, GOOD.replace("kind: sql_database", "kind: sql_databse"))
    assert "stackyard.yml:11: sources.app.kind" in message
    assert "unknown value 'sql_databse' (did you mean 'sql_database'?)" in message
    assert "filesystem" in message


def test_unknown_target_type(tmp_path: Path) -> None:
    message = error_of(tmp_path, GOOD.replace("type: duckdb", "type: duck"))
    assert "targets.dev" in message and "did you mean 'duckdb'" in message


def test_two_spark_targets_on_one_folder_are_refused(tmp_path: Path) -> None:
    # Both on the default folders: the second's first run doubled the first's tables.
    spark = "  spark: {type: spark}\n  spark2: {type: spark, threads: 2}\n"
    message = error_of(tmp_path, GOOD.replace("targets:\n", "targets:\n" + spark, 1))
    assert "targets 'spark' and 'spark2' both keep their data in '.stackyard/spark/lakehouse'" in (
        message
    )
    apart = (
        "  spark: {type: spark}\n  spark2: {type: spark, lakehouse: .stackyard/s2/lake, "
        "warehouse_dir: .stackyard/s2/wh, metastore_dir: .stackyard/s2/ms}\n"
    )
    assert set(load(tmp_path, GOOD.replace("targets:\n", "targets:\n" + apart, 1)).targets) == {
        "dev", "prod", "spark", "spark2"
    }  # fmt: skip


def test_spark_settings_may_be_numbers_and_booleans(tmp_path: Path) -> None:
    spark = (
        "  spark:\n    type: spark\n    conf: {spark.sql.shuffle.partitions: 4, "
        "spark.sql.adaptive.enabled: true, spark.memory.fraction: 0.6}\n"
    )
    config = load(tmp_path, GOOD.replace("targets:\n", "targets:\n" + spark, 1))
    assert config.targets["spark"].conf == {
        "spark.sql.shuffle.partitions": "4",
        "spark.sql.adaptive.enabled": "true",
        "spark.memory.fraction": "0.6",
    }


def test_password_in_url_is_refused(tmp_path: Path) -> None:
    text = GOOD.replace(
        "sqlite:///sources/app.sqlite", "postgresql://app:hunter2@db.internal:5432/app"
    )
    message = error_of(tmp_path, text)
    assert "stackyard.yml:12: sources.app.connection" in message
    assert "secrets never live in stackyard.yml" in message


def test_plain_string_password_is_refused(tmp_path: Path) -> None:
    message = error_of(tmp_path, GOOD.replace("{secret: PROD_PG_PASSWORD}", "hunter2"))
    assert "targets.prod.password" in message


def test_duplicate_key_and_bad_yaml(tmp_path: Path) -> None:
    message = error_of(tmp_path, GOOD + "name: again\n")
    assert "key 'name' appears twice" in message
    message = error_of(tmp_path, "name: [unclosed\n")
    assert "stackyard.yml:2: not valid YAML" in message


def test_an_impossible_date_is_named_as_a_date_not_a_yaml_tag(tmp_path: Path) -> None:
    message = error_of(tmp_path, GOOD + "monitors:\n  holidays: [2026-12-25, 2026-13-01]\n")
    assert "stackyard.yml:16: '2026-13-01' is not a date: month must be in 1..12" in message
    assert "write a date as YYYY-MM-DD" in message and "YAML tags" not in message


def test_a_value_that_fits_no_branch_is_one_problem_said_as_meant(tmp_path: Path) -> None:
    """`sensitivity` is a name or a number: a misspelt name is not also "not a number"."""
    table = "monitors:\n  tables:\n    app.orders: {sensitivity: %s}\n"
    message = error_of(tmp_path, GOOD + table % "medum")
    assert "sensitivity: Input should be 'low', 'medium' or 'high'" in message
    assert "did you mean 'medium'?" in message
    assert "problems" not in message and "constrained-float" not in message
    message = error_of(tmp_path, GOOD + table % "-3")
    assert "sensitivity: Input should be greater than 0 (found: -3)" in message
    assert "'low'" not in message
    load(tmp_path, GOOD + table % "2.5")


def test_a_yes_no_is_not_read_as_a_number(tmp_path: Path) -> None:
    """`sensitivity: true` once loaded as a band one noise unit wide."""
    table = "monitors:\n  tables:\n    app.orders: {sensitivity: %s}\n"
    message = error_of(tmp_path, GOOD + table % "true")
    assert "sensitivity: true is a yes/no" in message and "stackyard.yml:17" in message
    message = error_of(tmp_path, GOOD + "monitors:\n  alerts:\n    suppress_hours: false\n")
    assert "suppress_hours: false is a yes/no" in message
    load(tmp_path, GOOD + "monitors:\n  tables:\n    app.orders: {enabled: false}\n")


def test_an_email_channel_needs_addresses_and_a_whole_login(tmp_path: Path) -> None:
    channel = "monitors:\n  alerts:\n    channels:\n      mail: {type: email, %s}\n"
    message = error_of(tmp_path, GOOD + channel % "from: stackyard, to: [data@example.com]")
    assert "'stackyard' is not an e-mail address" in message
    message = error_of(tmp_path, GOOD + channel % "from: a@example.com, to: [data team]")
    assert "'data team' is not an e-mail address" in message
    message = error_of(tmp_path, GOOD + channel % "from: a@example.com, username: alerts")
    assert "username is set but password is not" in message
    load(tmp_path, GOOD + channel % "from: a@example.com, to: [b@example.com]")


def test_default_target_must_exist(tmp_path: Path) -> None:
    message = error_of(tmp_path, GOOD + "defaults: {target: staging}\n")
    assert "defaults.target is 'staging'" in message


def test_bad_names_and_cron(tmp_path: Path) -> None:
    message = error_of(tmp_path, GOOD.replace("  app:\n", "  App-1:\n"))
    assert "'App-1' is not a valid name" in message
    message = error_of(tmp_path, GOOD + "    schedule: daily\n")
    assert "5-field cron" in message


def test_find_project_searches_upward(tmp_path: Path) -> None:
    write(tmp_path / "stackyard.yml", GOOD)
    (tmp_path / "transform" / "models").mkdir(parents=True)
    assert find_project_file(tmp_path / "transform" / "models") == tmp_path / "stackyard.yml"
    with pytest.raises(ProjectNotFoundError, match="stackyard init"):
        find_project_file(tmp_path.parent / "elsewhere-that-is-not-a-project")


def test_missing_secret_says_where_it_looked(tmp_path: Path) -> None:
    secrets = Secrets(tmp_path, environ={})
    with pytest.raises(SecretMissingError) as info:
        secrets.resolve(SecretRef(secret="PROD_PG_PASSWORD"), used_for="targets.prod.password")
    message = str(info.value)
    assert "environment variable PROD_PG_PASSWORD (not set)" in message
    assert ".stackyard/secrets.toml (does not exist)" in message
    assert "targets.prod.password" in message


def test_secrets_file_must_be_private(tmp_path: Path) -> None:
    path = write(tmp_path / ".stackyard" / "secrets.toml", 'PROD_PG_PASSWORD = "s3cret-value"\n')
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        Secrets(tmp_path, environ={}).resolve(SecretRef(secret="PROD_PG_PASSWORD"), used_for="x")
    os.chmod(path, 0o600)
    secrets = Secrets(tmp_path, environ={})
    assert secrets.resolve(SecretRef(secret="PROD_PG_PASSWORD"), used_for="x") == "s3cret-value"
    assert secrets.redact("password=s3cret-value;") == "password=***;"


def test_environment_wins_over_file(tmp_path: Path) -> None:
    path = write(tmp_path / ".stackyard" / "secrets.toml", 'TOKEN = "from-file"\n')
    os.chmod(path, 0o600)
    secrets = Secrets(tmp_path, environ={"TOKEN": "from-env"})
    assert secrets.resolve(SecretRef(secret="TOKEN"), used_for="x") == "from-env"


def test_access_names_that_differ_only_in_case_are_one_name(tmp_path: Path) -> None:
    # FINANCE and finance became one role on the warehouse, one entry's grants lost, and
    # `policy check` passed.
    roles = "access:\n  roles:\n    FINANCE: {member_of: [REPORTING_READER]}\n    finance: {}\n"
    message = error_of(tmp_path, GOOD + roles)
    assert "'FINANCE' and 'finance' differ only in case" in message
    people = "access:\n  people:\n    alice: {}\n    ALICE: {}\n"
    assert "'alice' and 'ALICE' differ only in case" in error_of(tmp_path, GOOD + people)
