"""``stackyard adopt dbt`` reads the team's dbt profile: its outputs become targets of the
same names, secrets stay out of stackyard.yml, and an output it cannot take as it is is
named with the reason instead of being adopted half right."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import psycopg
import pytest
import yaml

from stackyard.runbooks.adopt_profiles import profiles_file
from tests.runbooks.test_adopt import FIXTURES, stackyard

pytestmark = pytest.mark.slow


def _profile(db: dict[str, object]) -> dict[str, object]:
    pg = {"type": "postgres", "host": db["host"], "port": db["port"], "user": db["user"],
          "dbname": db["database"], "threads": 2}  # fmt: skip
    return {
        "plain_shop": {
            "target": "dev",
            "outputs": {
                "dev": {**pg, "schema": "dbt_dev", "password": "{{ env_var('DBT_PG_PW') }}"},
                "prod": {**pg, "schema": "analytics", "pass": 'hun"ter2'},
                "numeric": {**pg, "schema": "n", "password": 12345},
                "Prod-US": {**pg, "schema": "analytics"},
                "lake": {"type": "redshift", "host": "x", "user": "u", "dbname": "d"},
                "snow": {
                    "type": "snowflake",
                    "account": "acme-eu",
                    "user": "DBT",
                    "role": "TRANSFORMER",
                    "warehouse": "TRANSFORMING",
                    "database": "ANALYTICS",
                    "schema": "MARTS",
                    "password": "{{ env_var('SNOWFLAKE_PASSWORD') }}",
                    "threads": 8,
                },
                "sso": {
                    "type": "snowflake",
                    "account": "a",
                    "user": "u",
                    "role": "r",
                    "warehouse": "w",
                    "database": "d",
                    "schema": "s",
                    "authenticator": "externalbrowser",
                },
                "scratch": {"type": "duckdb", "path": ":memory:"},
                "ci": {
                    "type": "postgres",
                    "host": "{{ env_var('CI_HOST') }}",
                    "user": "u",
                    "dbname": "d",
                    "schema": "s",
                },
            },
        }
    }


def test_the_teams_profile_outputs_become_targets_and_prod_builds_there(
    tmp_path: Path, pg_database: dict[str, object]
) -> None:
    project = tmp_path / "plain_shop"
    shutil.copytree(FIXTURES / "plain_shop", project)
    home = tmp_path / "home" / ".dbt"
    home.mkdir(parents=True)
    (home / "profiles.yml").write_text(yaml.safe_dump(_profile(pg_database)))

    done = stackyard("adopt", "dbt", str(project), "--profiles-dir", str(home), "--json",
                     cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["targets"] == ["sandbox", "dev", "numeric", "prod", "snow"]
    assert report["default_target"] == "sandbox" and report["profiles_file"] == str(
        home / "profiles.yml"
    )
    left = {o["output"]: o["reason"] for o in report["not_adopted"]}
    assert set(left) == {"Prod-US", "lake", "sso", "scratch", "ci"}
    assert "redshift" in left["lake"] and "authenticator" in left["sso"]
    assert "env_var('CI_HOST')" in left["ci"] and ":memory:" in left["scratch"]
    assert report["secrets"] == {"written": ["NUMERIC_PASSWORD", "PROD_PASSWORD"], "kept": []}

    config = yaml.safe_load((project / "stackyard.yml").read_text())
    assert config["defaults"] == {"target": "sandbox"}
    assert config["targets"]["sandbox"]["type"] == "duckdb"
    assert config["targets"]["dev"]["password"] == {"secret": "DBT_PG_PW"}
    prod = config["targets"]["prod"]
    assert prod["database"] == pg_database["database"] and prod["schema"] == "analytics"
    assert prod["password"] == {"secret": "PROD_PASSWORD"}
    assert config["targets"]["snow"] == {
        "type": "snowflake", "account": "acme-eu", "user": "DBT", "role": "TRANSFORMER",
        "warehouse": "TRANSFORMING", "database": "ANALYTICS", "schema": "MARTS",
        "password": {"secret": "SNOWFLAKE_PASSWORD"}, "threads": 8,
        "transform": {"database": "ANALYTICS", "role": "TRANSFORMER", "warehouse": "TRANSFORMING"},
    }  # fmt: skip
    # The password written out in profiles.yml is kept where secrets are, not in stackyard.yml.
    assert "hun" not in (project / "stackyard.yml").read_text()
    secrets = project / ".stackyard" / "secrets.toml"
    assert secrets.read_text() == 'NUMERIC_PASSWORD = "12345"\nPROD_PASSWORD = "hun\\"ter2"\n'
    assert stat.S_IMODE(os.stat(secrets).st_mode) == 0o600
    assert "# from the dbt profile 'plain_shop' in " in (project / "stackyard.yml").read_text()

    built = stackyard("run", "-t", "prod", "--json", cwd=project)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-2000:]
    conninfo = " ".join(f"{k}={pg_database[k]}" for k in ("host", "port", "user"))
    with psycopg.connect(f"{conninfo} dbname={pg_database['database']}") as conn:
        found = conn.execute(
            "select table_name from information_schema.tables where table_schema = 'analytics'"
        ).fetchall()
    assert {"raw_orders", "customer_totals"} <= {r[0] for r in found}


def test_the_profiles_file_is_found_where_dbt_looks(tmp_path: Path) -> None:
    project, env_dir, home = tmp_path / "p", tmp_path / "env", tmp_path / "home"
    here = tmp_path / "repo"  # dbt run from the repository's root: --project-dir transform
    for folder in (project, env_dir, home / ".dbt", here):
        folder.mkdir(parents=True)
    environ = {"HOME": str(home)}
    assert profiles_file(project, None, environ, here) is None
    (home / ".dbt" / "profiles.yml").write_text("{}")
    assert profiles_file(project, None, environ, here) == home / ".dbt" / "profiles.yml"
    (project / "profiles.yml").write_text("{}")
    assert profiles_file(project, None, environ, here) == project / "profiles.yml"
    (here / "profiles.yml").write_text("{}")
    assert profiles_file(project, None, environ, here) == here / "profiles.yml"
    (env_dir / "profiles.yml").write_text("{}")
    environ["DBT_PROFILES_DIR"] = str(env_dir)
    assert profiles_file(project, None, environ, here) == env_dir / "profiles.yml"


def test_adopting_again_keeps_a_secret_already_kept_and_says_so(tmp_path: Path) -> None:
    """The report said a literal password was written to secrets.toml, which still held the
    old one."""
    project = tmp_path / "shop"
    shutil.copytree(FIXTURES / "plain_shop", project)
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    output = {"type": "postgres", "user": "u", "dbname": "d", "schema": "s", "password": "old"}
    doc = {"plain_shop": {"target": "prod", "outputs": {"prod": output}}}
    (profiles / "profiles.yml").write_text(yaml.safe_dump(doc))
    args = ("adopt", "dbt", str(project), "--profiles-dir", str(profiles), "--json")
    first = json.loads(stackyard(*args, cwd=tmp_path).stdout)
    assert first["secrets"] == {"written": ["PROD_PASSWORD"], "kept": []}
    (project / "stackyard.yml").unlink()
    output["password"] = "new"
    (profiles / "profiles.yml").write_text(yaml.safe_dump(doc))
    again = stackyard(*args[:-1], cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "kept as they are there" in again.stdout and "PROD_PASSWORD" in again.stdout
    assert (project / ".stackyard" / "secrets.toml").read_text() == 'PROD_PASSWORD = "old"\n'


def test_a_profiles_dir_without_profiles_is_a_usage_error_and_writes_nothing(
    tmp_path: Path,
) -> None:
    project = tmp_path / "plain_shop"
    shutil.copytree(FIXTURES / "plain_shop", project)
    done = stackyard("adopt", "dbt", str(project), "--profiles-dir", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "has no profiles.yml" in done.stdout + done.stderr
    assert not (project / "stackyard.yml").exists()


def test_a_duckdb_output_keeps_its_file_from_a_stackyard_project_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """plain_shop's own profile, found in the project's folder: its `local` output's file is
    written relative to the new stackyard project, so both name the same file."""
    dbt_dir = tmp_path / "plain_shop"
    shutil.copytree(FIXTURES / "plain_shop", dbt_dir)
    monkeypatch.delenv("DBT_PROFILES_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "nobody"))
    done = stackyard("adopt", "dbt", str(dbt_dir), "--project", "stack", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["targets"] == ["dev", "local"] and report["not_adopted"] == []
    config = yaml.safe_load((tmp_path / "stack" / "stackyard.yml").read_text())
    assert config["targets"]["local"] == {
        "type": "duckdb", "path": "../plain_shop/plain_shop.duckdb", "threads": 1
    }  # fmt: skip
    built = stackyard("run", "-t", "local", "--json", cwd=tmp_path / "stack")
    assert built.returncode == 0, built.stdout[-3000:]
    assert (dbt_dir / "plain_shop.duckdb").is_file()
