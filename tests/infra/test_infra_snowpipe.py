"""Snowpipe: on Snowflake the access plan creates the file format, stage, tables and pipes
(golden SQL, each statement parsed by sqlglot's Snowflake dialect); on DuckDB the same source
is read from its files by stackyard, and the plan says so."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp
from typer.testing import CliRunner

from stackyard.cli.main import app
from stackyard.config.edit import ProjectFile
from stackyard.context import Context
from stackyard.errors import ConfigError
from stackyard.infra.plan import diff
from stackyard.infra.snowpipe import with_snowpipes
from stackyard.infra.state import State
from tests.infra.helpers import parses_as_one_snowflake_statement, project

GOLDEN = Path(__file__).parent / "golden"
EVENTS = """
  events:
    kind: external
    loader: snowpipe
    stage_url: s3://acme-landing/events/
    storage_integration: s3_landing
    tables:
      orders: {glob: "orders/*.jsonl", primary_key: order_id}
      clicks: {glob: "clicks/**/*.parquet"}
"""


def _with_events(path: Path, tables: str = EVENTS) -> Path:
    config = path / "stackyard.yml"
    text = config.read_text().replace("sources:\n", "sources:\n" + tables.lstrip("\n"), 1)
    config.write_text(text)
    return path


def _snowflake_plan_sql(path: Path) -> list[str]:
    with Context(path) as ctx:
        access = ctx.access()
        declaration = access.declaration()
        plan = diff(
            access.engine("prod", declaration),
            State(),
            project="shop",
            target="prod",
            declaration_hash=declaration.digest(),
        )
        config = ctx.config
        schemas = {n: config.dataset_for(n) for n in config.sources}
        plan = with_snowpipes(plan, config.sources, schemas, snowpipe=True)
    return [s.statement for s in plan.steps if s.kind in _SNOWPIPE_KINDS]


_SNOWPIPE_KINDS = ("create_file_format", "create_stage", "create_table", "create_pipe")


def test_snowpipe_objects_match_golden_sql(tmp_path: Path) -> None:
    statements = _snowflake_plan_sql(_with_events(project(tmp_path)))
    sql = "".join(f"{s};\n" for s in statements)
    path = GOLDEN / "snowflake_snowpipe.sql"
    if os.environ.get("STACKYARD_UPDATE_GOLDEN"):  # regenerate: review the diff before committing
        path.write_text(sql, encoding="utf-8")
    assert sql == path.read_text(encoding="utf-8"), f"SQL differs from {path}"


def test_every_snowpipe_statement_parses_and_the_pipe_auto_ingests() -> None:
    statements = [
        s for s in (GOLDEN / "snowflake_snowpipe.sql").read_text().split(";\n") if s.strip()
    ]
    assert len(statements) == 7  # 2 file formats, 1 stage, 2 tables, 2 pipes
    for statement in statements:
        assert parses_as_one_snowflake_statement(statement), statement
    pipes = [s for s in statements if s.startswith("CREATE PIPE")]
    for pipe in pipes:
        assert "AUTO_INGEST = TRUE AS COPY INTO SNOWPIPE.EVENTS." in pipe
        assert "METADATA$START_SCAN_TIME" in pipe  # fills _loaded_at, the freshness column
    # The COPY inside the orders pipe reads the stage and fills the three columns.
    copy = pipes[0].split(" AS ", 1)[1]
    parsed = sqlglot.parse_one(copy, read="snowflake")
    assert isinstance(parsed, exp.Copy)
    assert "@SNOWPIPE.EVENTS.EVENTS_STAGE" in copy
    assert [c.name for c in parsed.this.expressions] == ["RECORD", "_SOURCE_FILE", "_LOADED_AT"]
    stage = next(s for s in statements if s.startswith("CREATE STAGE"))
    assert "URL = 's3://acme-landing/events/'" in stage
    assert "STORAGE_INTEGRATION = S3_LANDING" in stage


def test_snowpipe_source_lands_in_its_loaders_database(tmp_path: Path) -> None:
    with Context(_with_events(project(tmp_path))) as ctx:
        declaration = ctx.access().declaration()
    databases = {d.name: d for d in declaration.databases}
    assert "events" in [s.lower() for s in databases["SNOWPIPE"].schemas]
    assert "events" not in [s.lower() for s in databases["DLT"].schemas]


def test_csv_files_are_refused_for_a_snowflake_pipe(tmp_path: Path) -> None:
    tables = EVENTS.replace("orders/*.jsonl", "orders/*.csv")
    with pytest.raises(ConfigError, match="JSON lines or Parquet"):
        _snowflake_plan_sql(_with_events(project(tmp_path), tables))


def test_on_duckdb_the_plan_says_the_files_are_read_by_stackyard(tmp_path: Path) -> None:
    root = _with_events(project(tmp_path))
    result = CliRunner().invoke(app, ["plan", "-p", str(root), "-t", "dev", "--json"])
    assert result.exit_code == 0, result.output
    notes = json.loads(result.output)["notes"]
    assert any(
        "source 'events' (snowpipe)" in n
        and "s3://acme-landing/events/" in n
        and "filesystem source" in n
        for n in notes
    ), notes


def test_off_snowflake_a_snowpipe_source_loads_its_files_as_the_filesystem_kind(
    tmp_path: Path,
) -> None:
    from stackyard.project import init_project

    root = tmp_path / "shop"
    init_project(root)
    landing = root / "landing" / "orders"
    landing.mkdir(parents=True)
    (landing / "2026-12-01.jsonl").write_text(
        '{"order_id": 1, "amount": 9.5}\n{"order_id": 2, "amount": 12.0}\n'
    )
    result = CliRunner().invoke(
        app,
        [
            "source", "add", "events", "--kind", "external", "--loader", "snowpipe",
            "--stage-url", "landing", "--table", "orders=orders/*.jsonl",
            "--primary-key", "orders=order_id", "-p", str(root), "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    added = json.loads(result.output)
    assert sum(t["rows"] for t in added["load"]["tables"]) == 2
    staging = root / "transform/models/staging/snowpipe"
    assert "name: snowpipe_events" in (staging / "_sources.yml").read_text()
    model = (staging / "stg_snowpipe__orders.sql").read_text()
    assert "source('snowpipe_events', 'orders')" in model and "_dlt_" not in model

    # A later file sends order 2 again (an update) and a new one: merged on the key. The
    # key was left out of the files it is read as, and order 2 was in the table twice.
    (landing / "2026-12-02.jsonl").write_text(
        '{"order_id": 2, "amount": 13.0}\n{"order_id": 3, "amount": 1.0}\n'
    )
    with Context(root) as ctx:
        assert ctx.run().ok
        rows = ctx.sql("select order_id, amount from events.orders order by 1").rows
    assert [(int(r[0]), float(r[1])) for r in rows] == [(1, 9.5), (2, 13.0), (3, 1.0)]


def test_off_snowflake_a_snowpipe_csv_takes_the_delimiter_and_date_order_it_is_asked_for(
    tmp_path: Path,
) -> None:
    """The refusals of a CSV read with the wrong delimiter or with dates in no fixed order
    ask for `delimiter` and `date_format` on the table: a snowpipe table refused both as
    unknown keys, so a snowpipe source of such files could not be loaded at all."""
    from stackyard.project import init_project

    root = tmp_path / "shop"
    init_project(root)
    landing = root / "landing" / "orders"
    landing.mkdir(parents=True)
    (landing / "a.csv").write_text("order_id;placed\n1;2026-12-01\n2;2026-12-02\n")
    args = ["source", "add", "events", "--kind", "external", "--loader", "snowpipe",
            "--table", "orders=orders/*.csv", "--primary-key", "orders=order_id",
            "-p", str(root), "--json"]  # fmt: skip
    refused = CliRunner().invoke(app, [*args, "--delimiter", ";"])
    assert refused.exit_code == 2 and "--stage-url" in refused.output, refused.output
    added = CliRunner().invoke(app, [*args, "--stage-url", "landing", "--delimiter", ";"])
    assert added.exit_code == 0, added.output
    assert sum(t["rows"] for t in json.loads(added.output)["load"]["tables"]) == 2

    (landing / "b.csv").write_text("order_id;placed\n3;03/04/2026\n4;13/04/2026\n")
    edited = ProjectFile(root / "stackyard.yml")
    assert edited.sources()["events"]["tables"]["orders"]["delimiter"] == ";"
    with Context(root) as ctx:
        assert not ctx.run().ok  # day or month first: refused until the table says
    edited.sources()["events"]["tables"]["orders"]["date_format"] = "%d/%m/%Y"
    edited.save()
    with Context(root) as ctx:
        assert ctx.config.sources["events"].tables["orders"].date_format == "%d/%m/%Y"
        assert ctx.run().ok
        rows = ctx.sql("select order_id, cast(placed as varchar) from events.orders order by 1")
    assert [(int(r[0]), r[1]) for r in rows.rows] == [
        (1, "2026-12-01"), (2, "2026-12-02"), (3, "2026-04-03"), (4, "2026-04-13"),
    ]  # fmt: skip
