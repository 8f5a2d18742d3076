"""A small project for backfill tests: an app database of events (SQLite), a source table with
a cursor, a staging view and a daily microbatch model, on DuckDB or a throwaway Postgres."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write
from tests.in_process import stackyard_in_process

STACKYARD = str(Path(sys.executable).parent / "stackyard")
FIRST_DAY = date(2024, 2, 20)  # the range crosses a leap day and a month end


def make_backfill_project(root: Path, *, days: int = 20, per_day: int = 12) -> Path:
    """Write the project: ``app.events`` (cursor updated_at) and ``daily_events`` (microbatch)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "sources").mkdir()
    db = sqlite3.connect(root / "sources" / "app.sqlite")
    db.execute(
        "CREATE TABLE events (id INTEGER PRIMARY KEY, kind TEXT, amount INTEGER, "
        "updated_at DATETIME)"
    )
    rows = []
    for d in range(days):
        for i in range(per_day):
            moment = datetime.combine(FIRST_DAY + timedelta(days=d), datetime.min.time())
            moment += timedelta(minutes=7 + i * 113)  # spread over the day, never past it
            rows.append((d * 1000 + i, "ab"[i % 2], 10 + i, moment.strftime("%Y-%m-%d %H:%M:%S")))
    db.executemany("INSERT INTO events VALUES (?, ?, ?, ?)", rows)
    db.commit()
    db.close()
    write(
        root / "stackyard.yml",
        """
        name: mini
        targets:
          dev: {type: duckdb}
        sources:
          app:
            kind: sql_database
            connection: sqlite:///sources/app.sqlite
            tables:
              events: {primary_key: id, cursor: updated_at}
        """,
    )
    t = root / "transform"
    write(
        t / "dbt_project.yml",
        """
        name: mini
        version: "1.0.0"
        profile: stackyard
        models:
          mini:
            staging: {+materialized: view, +schema: staging}
            marts: {+schema: marts}
        """,
    )
    write(
        t / "macros" / "generate_schema_name.sql",
        "{% macro generate_schema_name(custom_schema_name, node) -%}"
        "{%- if custom_schema_name is none -%}{{ target.schema }}"
        "{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}{%- endmacro %}\n",
    )
    example = Path(__file__).parents[3] / "src/stackyard/examples/jaffle_shop/transform/macros"
    (t / "macros" / "microbatch_delete_insert.sql").write_text(
        (example / "microbatch_delete_insert.sql").read_text()
    )
    write(
        t / "models" / "staging" / "_sources.yml",
        """
        version: 2
        sources:
          - name: dlt_app
            schema: app
            tables:
              - name: events
        models:
          - name: stg_events
            config: {event_time: updated_at}
        """,
    )
    write(
        t / "models" / "staging" / "stg_events.sql",
        "select id as event_id, kind, amount, cast(updated_at as timestamp) as updated_at "
        "from {{ source('dlt_app', 'events') }}\n",
    )
    write(
        t / "models" / "marts" / "daily_events.sql",
        """
        {{ config(materialized='incremental', incremental_strategy='microbatch',
                  event_time='event_day', batch_size='day',
                  begin=(modules.datetime.date.today() - modules.datetime.timedelta(days=1)).isoformat()) }}
        select cast({{ dbt.date_trunc('day', 'updated_at') }} as timestamp) as event_day, kind,
               count(*) as events, sum(amount) as amount
        from {{ ref('stg_events') }}
        group by 1, 2
        """,
    )
    return root


def add_postgres_target(root: Path, db: dict[str, Any]) -> None:
    """Make a Postgres database the project's default target."""
    text = (root / "stackyard.yml").read_text()
    text = text.replace(
        "  dev: {type: duckdb}",
        f"  dev: {{type: duckdb}}\n  pg: {{type: postgres, host: {db['host']}, port: "
        f"{db['port']}, user: {db['user']}, database: {db['database']}}}",
    )
    text += "defaults: {target: pg}\n"
    (root / "stackyard.yml").write_text(text)


def stackyard(
    project: Path, *args: str, check: int | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the CLI in the project; with ``check``, assert the exit code.

    In this process, as the command line calls it (a new process paid dbt's import at every
    command: a few seconds each, most of these tests' time). The tests that need a process of
    its own (killed, or holding a lease beside another) start one with :data:`STACKYARD` or
    :func:`in_own_process`."""
    proc = stackyard_in_process(*args, cwd=project, env={"NO_COLOR": "1", "COLUMNS": "200"})
    if check is not None:
        assert proc.returncode == check, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def in_own_process(
    project: Path, *args: str, check: int | None = None
) -> subprocess.CompletedProcess[str]:
    """:func:`stackyard` as a process of its own, for a test whose DuckDB file is held by this
    one (a process shares its open databases with every connection it makes)."""
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    proc = subprocess.run(
        [STACKYARD, *args], cwd=project, capture_output=True, text=True, env=env, timeout=600
    )
    if check is not None:
        assert proc.returncode == check, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def backfill_json(project: Path, *args: str, check: int | None = 0) -> Any:
    """``stackyard backfill … --json``, parsed."""
    proc = stackyard(project, "backfill", *args, "--json", check=check)
    return json.loads(proc.stdout)


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    """The project, loaded and built once on DuckDB."""
    root = make_backfill_project(tmp_path / "mini")
    stackyard(root, "run", "--json", check=0)
    return root


def sql(project: Path, query: str) -> list[dict[str, Any]]:
    """Rows of a query on the project's default target."""
    proc = stackyard(project, "sql", query, "--json", check=0)
    return list(json.loads(proc.stdout)["rows"])
