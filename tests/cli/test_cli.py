"""What a user sees at the command line: messages, exit codes, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from stackyard.cli.main import app
from tests.conftest import write
from tests.runner.conftest import make_project

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_help_lists_the_commands_and_does_not_import_heavy_libraries() -> None:
    code = (
        "import sys; from stackyard.cli.main import app; "
        "heavy = [m for m in ('dlt', 'dbt', 'duckdb', 'psycopg', 'pyarrow', 'sqlalchemy') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    exit_code, output = invoke("--help")
    assert exit_code == 0
    for command in ("init", "run", "status", "sql"):
        assert command in output


def test_malformed_project_file_exits_2_with_the_line(tmp_path: Path) -> None:
    write(tmp_path / "stackyard.yml", "name: shop\nsources:\n  app:\n    kind: sql_databse\n")
    exit_code, output = invoke("run", "--project", str(tmp_path))
    assert exit_code == 2
    assert "stackyard.yml:4: sources.app.kind: unknown value 'sql_databse'" in output
    assert "did you mean 'sql_database'" in output
    assert "Traceback" not in output


def test_no_project_exits_2(tmp_path: Path) -> None:
    exit_code, output = invoke("status", "--project", str(tmp_path))
    assert exit_code == 2 and "no stackyard.yml" in output and "stackyard init" in output


def test_unknown_target_suggests(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    exit_code, output = invoke("run", "-p", str(project), "--target", "dve")
    assert exit_code == 2 and "unknown target 'dve' (did you mean 'dev'?)" in output


def test_sql_error_exits_1_and_json_output(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    exit_code, output = invoke("sql", "select * from nowhere", "-p", str(project))
    assert exit_code == 1 and "DuckDB rejected the query" in output and "nowhere" in output
    exit_code, output = invoke("sql", "select 1 as one", "-p", str(project), "--json")
    assert exit_code == 0 and json.loads(output) == {"columns": ["one"], "rows": [{"one": 1}]}


def test_a_run_without_a_dbt_project_is_refused_before_it_loads(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    (project / "transform" / "dbt_project.yml").unlink()
    exit_code, output = invoke("run", "-p", str(project))
    assert exit_code == 2 and "the transform folder is not a dbt project" in output, output
    # Exit 2 means nothing was attempted: no source was loaded (its cursor did not move).
    assert not (project / ".stackyard" / "pipelines").exists()
    exit_code, output = invoke(
        "sql", "select count(*) from information_schema.schemata where schema_name = 'app'",
        "-p", str(project), "--json",
    )  # fmt: skip
    assert exit_code == 0 and json.loads(output)["rows"] == [{"count_star()": 0}], output


def test_a_dbt_project_file_that_is_not_yaml_is_a_config_error_naming_its_line(
    tmp_path: Path,
) -> None:
    """Before: "unexpected error: ParserError …", exit 1, the file never named."""
    project = make_project(tmp_path / "p")
    dbt_project = project / "transform" / "dbt_project.yml"
    dbt_project.write_text("name: [broken\n  profile: x\n")
    exit_code, output = invoke("run", "-p", str(project))
    said = " ".join(output.split())
    assert exit_code == 2, output
    assert f"{dbt_project}:2:10: not valid YAML: expected ',' or ']'" in said, output
    assert "flow sequence begun at line 1, column 7" in said and "unexpected error" not in said
    # Exit 2 means nothing was attempted: no source was loaded (its cursor did not move).
    assert not (project / ".stackyard" / "pipelines").exists()
    answered = runner.invoke(app, ["run", "-p", str(project), "--json"])
    assert answered.exit_code == 2, answered.output
    assert f"{dbt_project}:2:10" in json.loads(answered.stdout)["error"], answered.output
    exit_code, output = invoke("dbt-manifest", "--out", str(tmp_path / "m"), "-p", str(project))
    assert exit_code == 2 and f"{dbt_project}:2:10" in " ".join(output.split()), output


def test_a_dbt_compilation_error_is_shown_with_dbts_reason(tmp_path: Path) -> None:
    """Before: the console said "dbt build could not run: Compilation Error" and no more."""
    project = make_project(tmp_path / "p")
    write(
        project / "transform" / "models" / "marts" / "customer_orders.sql",
        "select * from {{ ref('does_not_exist') }}\n",
    )
    exit_code, output = invoke("run", "-p", str(project))
    said = " ".join(output.split())  # as one line, whatever the terminal's width
    assert exit_code == 1, output
    reason = (
        "Model 'model.mini.customer_orders' (models/marts/customer_orders.sql) depends on a "
        "node named 'does_not_exist' which was not found"
    )
    assert "dbt build could not run: Compilation Error" in said and reason in said, output
    answered = runner.invoke(app, ["run", "-p", str(project), "--json"])
    steps = {s["name"]: s for s in json.loads(answered.stdout)["steps"]}
    assert answered.exit_code == 1 and steps["dbt build"]["status"] == "failed", answered.output
    assert reason in " ".join(steps["dbt build"]["detail"].split()), answered.output


def test_sql_prints_values_as_they_are_not_as_markup(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    query = "select '[a]' as \"[w]\", '[bold]x[/bold]' as v, 'a[b]c' as s"
    exit_code, output = invoke("sql", query, "-p", str(project))
    assert exit_code == 0, output
    for text in ("[w]", "[a]", "[bold]x[/bold]", "a[b]c"):
        assert text in output, output


def test_sql_json_keeps_every_digit_of_a_decimal(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    query = (
        "select 12345678901234567.89::decimal(20,2) as amount, 0.10::decimal(20,2) as dime, "
        "1.5::double as ratio"
    )
    exit_code, output = invoke("sql", query, "-p", str(project), "--json")
    assert exit_code == 0, output
    row = json.loads(output, parse_float=Decimal)["rows"][0]
    assert row["amount"] == Decimal("12345678901234567.89")  # a float has 16 digits
    assert '"dime": 0.10' in output  # a number literal, its scale kept
    assert row["ratio"] == Decimal("1.5")


def test_sql_shows_an_infinite_timestamp_as_infinity(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    query = (
        "select 'infinity'::timestamp as a, '-infinity'::date as b, "
        "'9999-12-31 23:59:59.999999'::timestamp as c"
    )
    exit_code, output = invoke("sql", query, "-p", str(project))
    assert exit_code == 0, output
    # Before: 9999-12-31 23:59:59.999999 for a, as for the real value c.
    assert output.count("9999-12-31 23:59:59.999999") == 1, output
    assert "-infinity" in output and "0001-01-01" not in output, output
    exit_code, output = invoke("sql", query, "-p", str(project), "--json")
    assert exit_code == 0, output
    assert json.loads(output)["rows"] == [
        {"a": "infinity", "b": "-infinity", "c": "9999-12-31T23:59:59.999999"}
    ]


def test_sql_shows_every_digit_of_a_nanosecond_timestamp(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    query = "select '2024-01-01 12:00:00.123456789'::timestamp_ns as at"
    exit_code, output = invoke("sql", query, "-p", str(project))
    assert exit_code == 0, output
    assert "2024-01-01 12:00:00.123456789" in output, output  # before: .123456
    exit_code, output = invoke("sql", query, "-p", str(project), "--json")
    assert exit_code == 0, output
    assert json.loads(output)["rows"] == [{"at": "2024-01-01T12:00:00.123456789"}]


def test_sql_json_writes_a_json_column_as_the_json_it_holds(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    query = """select '{"a": 1.10, "b": [12345678901234567890.5, "x"]}'::json as doc"""
    exit_code, output = invoke("sql", query, "-p", str(project), "--json")
    assert exit_code == 0, output
    # Before: the string "{\"a\": 1.10, …}", which a reader has to parse a second time.
    row = json.loads(output, parse_float=Decimal)["rows"][0]
    assert row == {"doc": {"a": Decimal("1.10"), "b": [Decimal("12345678901234567890.5"), "x"]}}
    assert '"a": 1.10' in output  # as the warehouse holds it, not 1.1
    exit_code, output = invoke("sql", query, "-p", str(project))
    assert exit_code == 0, output
    assert '{"a": 1.10, "b": [12345678901234567890.5, "x"]}' in output, output


def test_sql_shows_an_interval_as_the_warehouse_prints_it(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    query = "select interval '1 month' as a, interval '1 day 2 hours' as b"
    exit_code, output = invoke("sql", query, "-p", str(project))
    assert exit_code == 0, output
    assert "1 month" in output and "1 day 02:00:00" in output, output  # not 30 days, 0:00:00
    exit_code, output = invoke("sql", query, "-p", str(project), "--json")
    assert exit_code == 0, output
    assert json.loads(output)["rows"] == [{"a": "1 month", "b": "1 day 02:00:00"}]


def test_sql_tells_null_from_the_text_null_and_from_empty_text(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    # Not a terminal: no style tells them apart, only the text.
    exit_code, output = invoke("sql", "select null as a, 'NULL' as b, '' as c", "-p", str(project))
    assert exit_code == 0, output
    values = output.splitlines()[-1].split("│")
    # Before: NULL and NULL, the dim style gone.
    assert [v.strip() for v in values] == ["∅", "NULL", ""], output


def test_sql_shows_lists_structs_and_bytes_as_values_not_python_classes(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    query = (
        "select [date '2020-01-01'] as a, [1.10::decimal(5,2), null] as b, "
        "{'k': 'x'} as c, '\\x00\\xff'::blob as d"
    )
    exit_code, output = invoke("sql", query, "-p", str(project))
    assert exit_code == 0, output
    # Before: [datetime.date(2020, 1, 1)], [Decimal('1.10'), None], {'k': 'x'}, b'\\x00\\xff'
    values = [v.strip() for v in output.splitlines()[-1].split("│")]
    assert values == ['["2020-01-01"]', "[1.10, null]", '{"k": "x"}', "\\x00ff"], output


def test_sql_answers_a_map_keyed_by_times_or_decimals(tmp_path: Path) -> None:
    # Before: a traceback (TypeError: keys must be str …), in the table and with --json.
    project = make_project(tmp_path / "p")
    query = "select map {'12:00:00'::time: 1} as m, map {1.5::decimal(3,1): 'x'} as n"
    exit_code, output = invoke("sql", query, "-p", str(project), "--json")
    assert exit_code == 0, output
    assert json.loads(output)["rows"] == [{"m": {"12:00:00": 1}, "n": {"1.5": "x"}}]
    exit_code, output = invoke("sql", query, "-p", str(project))
    assert exit_code == 0, output
    assert '{"12:00:00": 1}' in output and '{"1.5": "x"}' in output, output


def test_sql_json_keeps_every_column_of_a_name_given_twice(tmp_path: Path) -> None:
    # Before: {"columns": ["a", "a"], "rows": [{"a": 2}]}: the 1 was lost, exit 0.
    project = make_project(tmp_path / "p")
    exit_code, output = invoke(
        "sql", "select 1 as a, 2 as a, 3 as a_2", "-p", str(project), "--json"
    )
    assert exit_code == 0, output
    assert json.loads(output) == {
        "columns": ["a", "a_3", "a_2"],
        "rows": [{"a": 1, "a_3": 2, "a_2": 3}],
    }


def test_sql_json_is_strict_json_with_nan_and_infinity(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    query = "select 'nan'::double as a, '-inf'::double as b, 2.5::double as c"
    exit_code, output = invoke("sql", query, "-p", str(project), "--json")
    assert exit_code == 0, output

    def refuse(name: str) -> None:
        raise ValueError(f"{name} is not JSON")

    # Python wrote NaN and -Infinity literals, which strict parsers refuse
    row = json.loads(output, parse_constant=refuse)["rows"][0]
    assert row == {"a": "NaN", "b": "-Infinity", "c": 2.5}


def test_a_prompt_nobody_answers_asks_for_yes_and_exits_2(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", customers=5, orders=9)
    assert invoke("run", "-p", str(project))[0] == 0
    result = runner.invoke(app, ["reload", "app", "-p", str(project)], input="")
    assert result.exit_code == 2, result.output  # a script without --yes: nothing attempted
    assert "--yes" in result.output and "Aborted" not in result.output


def test_declining_a_prompt_does_nothing_and_exits_0(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", customers=5, orders=9)
    assert invoke("run", "-p", str(project))[0] == 0
    count = ("sql", "select count(*) as n from app.orders", "-p", str(project), "--json")

    for args in (["reload", "app"], ["source", "remove", "app", "--drop-data"]):
        result = runner.invoke(app, [*args, "-p", str(project)], input="n\n")
        assert result.exit_code == 0, result.output  # a choice, not a failed step
        assert "nothing done" in result.output
        assert json.loads(invoke(*count)[1])["rows"] == [{"n": 9}]
    assert "app:" in (project / "stackyard.yml").read_text()


def test_a_model_with_a_sql_error_fails_the_run_with_its_message(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    (project / "transform/models/marts/customer_orders.sql").write_text(
        "select customer_id, no_such_column from {{ ref('stg_dlt__customers') }}\n"
    )
    exit_code, output = invoke("run", "-p", str(project))
    assert exit_code == 1
    assert "model customer_orders: error" in output
    assert "no_such_column" in output
    assert "Traceback" not in output
    result = runner.invoke(app, ["run", "-p", str(project), "--json"])
    data = json.loads(result.stdout)
    assert result.exit_code == 1 and data["status"] == "failed"
    assert {n["name"]: n["status"] for n in data["nodes"]}["customer_orders"] == "error"


def test_init_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "file").write_text("keep me")
    exit_code, output = invoke("init", str(tmp_path / "x"))
    assert exit_code == 2 and "not empty" in output
    assert (tmp_path / "x" / "file").read_text() == "keep me"
    exit_code, output = invoke("init", str(tmp_path / "y"), "--example", "jaffle")
    assert exit_code == 2 and "did you mean 'jaffle_shop'" in output


def test_init_next_step_is_a_command_a_shell_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stackyard.cli.common import out

    monkeypatch.setattr(out, "_width", 80)
    folder = tmp_path / "a rather long folder name, to pass 80 columns" / "bad name! $HOME [b]"
    exit_code, output = invoke("init", str(folder))
    assert exit_code == 0, output
    assert f"created {folder}" in output
    (line,) = [x for x in output.splitlines() if x.startswith("next: ")]
    assert line.endswith(" && stackyard run")
    # copied into a shell, the line goes into the new project
    command = line.removeprefix("next: ").replace("stackyard run", "pwd")
    done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == str(folder)


def test_init_refuses_a_path_the_loads_cannot_use(tmp_path: Path) -> None:
    exit_code, output = invoke("init", str(tmp_path / "bob's shop"))
    assert exit_code == 2, output
    assert 'contains "\'"' in output and "bob_s_shop" in output
    assert not (tmp_path / "bob's shop").exists()


def test_init_empty_project_runs(tmp_path: Path) -> None:
    exit_code, _ = invoke("init", str(tmp_path / "empty"))
    assert exit_code == 0
    exit_code, output = invoke("run", "-p", str(tmp_path / "empty"), "--json")
    assert exit_code == 0, output
    assert json.loads(output)["status"] == "success"


def test_select_typo_is_a_usage_error(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    assert invoke("run", "-p", str(project), "--json")[0] == 0
    exit_code, output = invoke("run", "-p", str(project), "--select", "aps")
    assert exit_code == 2 and "did you mean 'app'" in output
    exit_code, output = invoke("run", "-p", str(project), "--select", "stg_dlt__products", "--json")
    assert exit_code == 0, output


def test_an_unknown_build_engine_exits_2_before_anything_runs(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    exit_code, output = invoke("run", "-p", str(project), "--engine", "sqll")
    assert exit_code == 2 and "did you mean 'sql'" in output
    assert not (project / ".stackyard" / "dev.duckdb").exists()
    exit_code, output = invoke("run", "--help")
    assert "--engine" in output and "auto" in output


@pytest.mark.parametrize(
    ("read", "empty"),
    [
        (("status",), "no runs yet"),
        (("health",), "no monitor pass yet"),
        (("sql", "select 1"), None),
    ],
)
def test_a_read_does_not_create_the_duckdb_file_and_names_a_lost_one(
    tmp_path: Path, read: tuple[str, ...], empty: str | None
) -> None:
    """A read must not create an empty warehouse: a lost file then looks like a new one."""
    from stackyard.project import init_project

    project = init_project(tmp_path / "shop").path
    database = project / ".stackyard" / "dev.duckdb"
    if empty is not None:
        exit_code, output = invoke(*read, "--project", str(project))
        assert exit_code == 0 and empty in output
        assert not database.exists()
    (project / ".stackyard" / "pipelines" / "shop__app__dev").mkdir(parents=True)  # loaded once
    exit_code, output = invoke(*read, "--project", str(project))
    assert exit_code == 2 and "dev.duckdb of target 'dev' is missing" in output
    assert "stackyard doctor" in output
    assert not database.exists()


def test_a_lost_file_of_a_project_without_dlt_sources_is_named_and_rebuilt_by_a_run(
    tmp_path: Path,
) -> None:
    """No dlt pipeline and no backup: only stackyard's mark of the runs tells a lost
    file from a target never run, which read "no runs yet" and a healthy doctor."""
    exit_code, _ = invoke("init", str(tmp_path / "dbt_only"))
    project = tmp_path / "dbt_only"
    for name in list(yaml.safe_load((project / "stackyard.yml").read_text())["sources"]):
        assert invoke("source", "remove", name, "-p", str(project), "--yes")[0] == 0
    assert invoke("run", "-p", str(project))[0] == 0
    assert not list((project / ".stackyard").glob("pipelines/*"))
    (project / ".stackyard" / "dev.duckdb").unlink()
    exit_code, output = invoke("status", "-p", str(project))
    assert exit_code == 2 and "dev.duckdb of target 'dev' is missing" in output
    exit_code, output = invoke("doctor", "-p", str(project))
    said = " ".join(output.split())  # as one line, whatever the terminal's width
    assert exit_code == 1 and "`stackyard run` builds the dbt project again" in said
    assert "dlt's local state" not in said
    assert invoke("run", "-p", str(project))[0] == 0
    exit_code, output = invoke("status", "-p", str(project), "--json")
    assert exit_code == 0 and len(json.loads(output)) == 1


def test_vars_that_do_not_parse_exit_2_with_what_to_pass(tmp_path: Path) -> None:
    from stackyard.project import init_project

    project = init_project(tmp_path / "shop").path
    exit_code, output = invoke("run", "--project", str(project), "--vars", "not yaml: [")
    assert exit_code == 2 and "--vars is not YAML or JSON" in output
    assert "--vars '{load_source_data: true}'" in output
    assert not (project / ".stackyard" / "dev.duckdb").exists()  # nothing was attempted


def test_health_does_not_create_the_duckdb_file_and_names_a_lost_one(tmp_path: Path) -> None:
    from stackyard.project import init_project

    project = init_project(tmp_path / "shop").path
    database = project / ".stackyard" / "dev.duckdb"
    exit_code, output = invoke("health", "--project", str(project))
    assert exit_code == 0 and "no monitor pass yet" in output
    assert not database.exists()
    (project / ".stackyard" / "pipelines" / "shop__app__dev").mkdir(parents=True)  # loaded once
    exit_code, output = invoke("health", "--project", str(project))
    assert exit_code == 2 and "dev.duckdb of target 'dev' is missing" in output
    assert not database.exists()


def test_status_limit_below_1_is_a_usage_error_before_the_warehouse_is_read(
    tmp_path: Path,
) -> None:
    project = make_project(tmp_path / "p")
    for limit in ("0", "-1"):
        exit_code, output = invoke("status", "-p", str(project), "--limit", limit)
        assert exit_code == 2, output
        assert "--limit" in output and "no runs yet" not in output
    assert not (project / ".stackyard" / "dev.duckdb").exists()


@pytest.mark.parametrize("args", [["--version"], ["sql", "select 1", "--json"]])
def test_a_reader_that_stops_early_is_not_a_failed_step(tmp_path: Path, args: list[str]) -> None:
    # `stackyard health | head -1` exited 1, the code of an anomaly or a failed load.
    import os
    import shutil

    root = make_project(tmp_path)
    read, write_end = os.pipe()
    os.close(read)
    stackyard = shutil.which("stackyard", path=str(Path(sys.executable).parent))
    assert stackyard is not None
    done = subprocess.run(
        [stackyard, *args, *(["--project", str(root)] if len(args) > 1 else [])],
        stdout=write_end,
        stderr=subprocess.PIPE,
        check=False,
        timeout=120,
    )
    os.close(write_end)
    assert (done.returncode, done.stderr) == (141, b"")


def test_a_terminal_said_to_be_zero_columns_wide_still_gets_the_output(tmp_path: Path) -> None:
    # COLUMNS=0 printed nothing at all, the error of a failed query included; 1 a rule.
    import os
    import shutil

    root = make_project(tmp_path)
    stackyard = shutil.which("stackyard", path=str(Path(sys.executable).parent))
    assert stackyard is not None
    for columns in ("0", "1"):
        env = {**os.environ, "COLUMNS": columns, "NO_COLOR": "1"}
        answer = [stackyard, "sql", "select 42 as answer", "-p", str(root)]
        done = subprocess.run(answer, capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0 and "42" in done.stdout, done.stdout + done.stderr
        failing = [stackyard, "sql", "select * from nonexist", "-p", str(root)]
        done = subprocess.run(failing, capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 1 and "nonexist does not exist" in done.stderr, done.stderr


def test_sql_with_several_statements_runs_them_all_and_says_whose_rows_print(
    tmp_path: Path,
) -> None:
    project = make_project(tmp_path / "p")
    query = "create table main.made_here as select 1 as x; select 2 as y"
    exit_code, output = invoke("sql", query, "-p", str(project))
    # Before: the last statement's rows, with no word that another statement had run.
    assert exit_code == 0 and "2 statements ran; the rows are the last one's" in output, output
    exit_code, output = invoke(
        "sql", "select count(*) as n from information_schema.tables where table_name = 'made_here'",
        "-p", str(project), "--json",
    )  # fmt: skip
    assert exit_code == 0 and json.loads(output)["rows"] == [{"n": 1}], output
    exit_code, output = invoke("sql", "select 'a;b' as s;", "-p", str(project))
    assert exit_code == 0 and "statements ran" not in output, output
    exit_code, output = invoke("sql", "select 'a;b' as s;", "-p", str(project), "--json")
    assert exit_code == 0 and json.loads(output) == {"columns": ["s"], "rows": [{"s": "a;b"}]}


# A source that never yields: it sleeps far past its deadline.
HANGING_SOURCE = """
import time
import dlt

@dlt.source
def slow():
    @dlt.resource(primary_key="id")
    def events():
        time.sleep(600)
        yield {"id": 1}
    return events
"""


def test_a_source_past_its_deadline_leaves_no_leaked_semaphores(tmp_path: Path) -> None:
    # dbt's spawn-context locks are named semaphores; the exit that leaves the given-up
    # thread behind skipped their unlinking, and Python warned of "2 leaked semaphore
    # objects" after the run's result.
    from stackyard.project import init_project

    root = tmp_path / "p"
    init_project(root)
    write(root / "sources" / "slow.py", HANGING_SOURCE)
    yml = root / "stackyard.yml"
    entry = (
        "sources:\n  events:\n    kind: python\n    path: sources/slow.py\n"
        "    function: slow\n    deadline: 2s\n    retries: {count: 0}\n"
    )
    yml.write_text(yml.read_text().replace("sources: {}\n", entry))
    ran = subprocess.run(
        [str(Path(sys.executable).parent / "stackyard"), "run"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    said = " ".join(ran.stdout.split())
    assert ran.returncode == 1, ran.stdout[-2000:] + ran.stderr[-2000:]
    assert "did not finish within its deadline of 2s" in said, said
    assert "leaked" not in ran.stderr and "resource_tracker" not in ran.stderr, ran.stderr


def test_a_runs_last_line_keeps_its_run_id_on_it_in_a_log(tmp_path: Path) -> None:
    """Written to a pipe, Rich's 80 columns broke the verdict before the run id ("· run" on
    one line, the id on the next), so a log could not be searched for the run's line."""
    from stackyard.project import init_project

    root = tmp_path / "p"
    init_project(root)
    code, output = invoke("run", "--project", str(root))
    assert code == 0, output
    (verdict,) = [line for line in output.splitlines() if "run succeeded" in line]
    assert len(verdict) > 80 and " · run 20" in verdict, output


def test_a_fix_for_another_target_names_it_so_pasting_it_acts_there(tmp_path: Path) -> None:
    """`run -t ci` and `doctor -t ci` said `stackyard reload things --yes`: pasted as
    written, that reloaded the default target and left ci broken."""
    import duckdb

    from tests.ingest.test_python_source import _things, python_project

    root = python_project(
        tmp_path, "things", _things('[{"id": 1, "v": 1, "updated_at": 1}]'), "things_source"
    )
    config = root / "stackyard.yml"
    config.write_text(
        config.read_text().replace(
            "targets:\n", "targets:\n  ci:\n    type: duckdb\n    path: .stackyard/ci.duckdb\n"
        )
    )
    assert invoke("run", "-t", "ci", "--project", str(root))[0] == 0
    with duckdb.connect(str(root / ".stackyard" / "ci.duckdb")) as con:
        con.execute("drop table things.things")

    code, output = invoke("run", "-t", "ci", "--project", str(root))
    said = " ".join(output.split())
    assert code == 1 and "`stackyard reload things --yes --target ci`" in said, said
    code, output = invoke("doctor", "-t", "ci", "--project", str(root))
    said = " ".join(output.split())
    assert code == 1 and "`stackyard reload things --yes --target ci`" in said, said
    assert "--yes`" not in said.replace("--yes --target ci`", ""), said
    # The default target's own fixes name none.
    code, output = invoke("doctor", "--project", str(root))
    assert "--target" not in output, output
