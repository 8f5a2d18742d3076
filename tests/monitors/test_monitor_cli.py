"""The monitoring commands end to end: monitor, health, incident mark, report."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from stackyard import Context
from stackyard.cli.main import app
from stackyard.project import init_project
from tests.runner.conftest import make_project


def test_monitor_health_incident_and_report_commands(tmp_path: Path) -> None:
    root = make_project(tmp_path / "mini")
    cli = CliRunner()
    before = cli.invoke(app, ["health", "--project", str(root)])
    assert before.exit_code == 0 and "no monitor pass yet" in before.output
    unjudged = json.loads(cli.invoke(app, ["health", "--project", str(root), "--json"]).output)
    assert unjudged["measured_at"] is None and "no monitor pass yet" in unjudged["note"]
    Context(root).run().exit_code  # noqa: B018  (the run itself is not under test)

    result = cli.invoke(app, ["monitor", "--project", str(root), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["status"] == "ok" and len(data["tables"]) == 7
    assert {t["status"] for t in data["tables"]} == {"learning"}

    health = cli.invoke(app, ["health", "--project", str(root)])
    assert health.exit_code == 0 and "app.orders" in health.output
    judged = json.loads(cli.invoke(app, ["health", "--project", str(root), "--json"]).output)
    assert judged["measured_at"] and judged["note"] is None

    mark = ["incident", "mark", "--project", str(root), "--table", "customer_orders"]
    ok = cli.invoke(app, [*mark, "--start", "2026-01-02", "--end", "2026-01-03"])
    assert ok.exit_code == 0 and "marts.customer_orders" in ok.output
    for note in ((), ("--note", "feed down")):  # the same days again: no second record
        again = cli.invoke(app, [*mark, "--start", "2026-01-02", "--end", "2026-01-03", *note])
        said = " ".join(again.output.split())
        assert again.exit_code == 0 and "already marked" in said, again.output
        # within the terminal's 80 columns (it was one line of 129)
        assert max(len(line) for line in again.output.splitlines()) <= 80, again.output
    stored_sql = "SELECT table_name, note FROM stackyard.monitor_incidents"
    stored = cli.invoke(app, ["sql", stored_sql, "--json", "--project", str(root)])
    rows = json.loads(stored.output)["rows"]
    assert rows == [{"table_name": "marts.customer_orders", "note": "feed down"}], rows
    reversed_ = cli.invoke(app, [*mark, "--start", "2026-01-03", "--end", "2026-01-02"])
    assert reversed_.exit_code == 2 and "ends (2026-01-02) before it starts" in reversed_.output
    # Marking days not yet seen (a typo in the year) would switch the monitor off for them.
    ahead = cli.invoke(app, [*mark, "--start", "2026-01-02", "--end", "2126-01-02"])
    assert ahead.exit_code == 2 and "ends (2126-01-02) after today" in ahead.output
    not_a_date = cli.invoke(app, [*mark, "--start", "yesterday", "--end", "2026-01-02"])
    assert not_a_date.exit_code == 2 and "--start 'yesterday' is not a date" in not_a_date.output
    unknown = cli.invoke(
        app,
        [
            "incident",
            "mark",
            "--project",
            str(root),
            "--table",
            "custmer_orders",
            "--start",
            "2026-01-02",
            "--end",
            "2026-01-02",
        ],
    )
    assert unknown.exit_code == 2 and "did you mean 'customer_orders'" in unknown.output

    out = tmp_path / "r.html"
    report = cli.invoke(app, ["report", "--project", str(root), "--out", str(out)])
    assert report.exit_code == 0 and out.read_text().startswith("<!doctype html>")
    # A folder or a file that cannot be written is the user's to fix (exit 2), not a crash.
    folder = cli.invoke(app, ["report", "--project", str(root), "--out", str(tmp_path)])
    assert folder.exit_code == 2, folder.output
    assert "is a folder, not a file" in folder.stderr and "unexpected" not in folder.stderr
    (tmp_path / "a_file").write_text("")
    blocked = ["report", "--project", str(root), "--out", str(tmp_path / "a_file" / "r.html")]
    under_a_file = cli.invoke(app, blocked)
    assert under_a_file.exit_code == 2 and "cannot write the report" in under_a_file.stderr
    assert "a_file is a file, not a folder" in under_a_file.stderr
    # A typo in --out never replaces what is not a page: the config, the warehouse.
    config = root / "stackyard.yml"
    before = config.read_bytes()
    typo = cli.invoke(app, ["report", "--project", str(root), "--out", str(config)])
    assert typo.exit_code == 2 and "is not an HTML page: not replaced" in typo.stderr
    assert config.read_bytes() == before
    again = cli.invoke(app, ["report", "--project", str(root), "--out", str(out), "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.output) == {"ok": True, "path": str(out.resolve())}


def test_a_project_with_nothing_monitored_says_so_once(tmp_path: Path) -> None:
    root = tmp_path / "empty"
    init_project(root)
    result = CliRunner().invoke(app, ["monitor", "--project", str(root)])
    assert result.exit_code == 0 and result.output.count("no tables monitored") == 1, result.output


def test_monitor_settings_before_the_first_run_are_not_called_typos(tmp_path: Path) -> None:
    root = init_project(tmp_path / "shop", example="jaffle_shop").path
    result = CliRunner().invoke(app, ["monitor", "--project", str(root)])
    # Before: "monitors.tables.shop_db.orders matches no table or model of this target: its
    # settings are not used", twice, for a correct entry of a project not loaded yet.
    said = " ".join(result.output.split())
    assert result.exit_code == 0 and "matches no table" not in said, said
    assert said.count("nothing has been loaded or built on this target yet") == 1, said


def test_monitor_settings_that_name_no_table_are_stated_not_silently_unused(
    tmp_path: Path,
) -> None:
    root = make_project(tmp_path / "mini")
    with (root / "stackyard.yml").open("a") as f:
        f.write(
            "monitors:\n"
            "  tables:\n"
            "    app.ordrs: {direction: drop}\n"
            "    customer_orders: {sensitivity: low}\n"
            "  alerts:\n"
            "    owners: {ap: [data@example.com], app: [app@example.com]}\n"
        )
    cli = CliRunner()
    run = cli.invoke(app, ["run", "--project", str(root)], env={"COLUMNS": "200"})
    assert run.exit_code == 0, run.output
    # Read as one line: the terminal's width (set once per process) may wrap the notes.
    said = " ".join(run.output.split())
    assert (
        "monitors: monitors.tables.app.ordrs matches no table or model of this target "
        "(did you mean 'app.orders'?): its settings are not used"
    ) in said
    assert "monitors.alerts.owners.ap matches no source" in said
    assert "customer_orders matches" not in said and "owners.app " not in said

    result = cli.invoke(app, ["monitor", "--json", "--project", str(root)])
    notes = json.loads(result.stdout)["notes"]
    assert len(notes) == 2 and "did you mean 'app'" in notes[1], notes


def test_marks_are_listed_and_can_be_taken_back(tmp_path: Path) -> None:
    root = make_project(tmp_path / "mini")
    Context(root).run().exit_code  # noqa: B018  (the run itself is not under test)
    cli = CliRunner()
    base = ["--project", str(root)]
    none = cli.invoke(app, ["incident", "marks", *base])
    assert none.exit_code == 0 and "no incident marked" in none.output, none.output
    mark = ["incident", "mark", *base, "--table", "customer_orders"]
    assert cli.invoke(app, [*mark, "--start", "2026-01-02", "--end", "2026-01-03"]).exit_code == 0
    noted = [*mark, "--start", "2026-02-01", "--end", "2026-02-01", "--note", "feed down"]
    assert cli.invoke(app, noted).exit_code == 0

    listed = cli.invoke(app, ["incident", "marks", *base, "--json"])
    assert listed.exit_code == 0, listed.output
    marks = json.loads(listed.output)
    assert [(m["table"], m["start"], m["end"], m["note"]) for m in marks] == [
        ("marts.customer_orders", "2026-01-02", "2026-01-03", ""),
        ("marts.customer_orders", "2026-02-01", "2026-02-01", "feed down"),
    ]
    assert all(m["marked_at"] for m in marks)
    text = cli.invoke(app, ["incident", "marks", *base, "--table", "customer_orders"])
    assert "marts.customer_orders  2026-02-01 to 2026-02-01" in text.output
    assert "feed down" in text.output

    unmark = ["incident", "unmark", *base, "--table", "customer_orders"]
    wrong = cli.invoke(app, [*unmark, "--start", "2026-01-02", "--end", "2026-01-02"])
    assert wrong.exit_code == 2, wrong.output
    assert "no incident on marts.customer_orders is marked from 2026-01-02 to 2026-01-02" in (
        wrong.output
    )
    assert "2026-01-02 to 2026-01-03" in wrong.output  # the marks it has are named
    gone = cli.invoke(app, [*unmark, "--start", "2026-01-02", "--end", "2026-01-03"])
    assert gone.exit_code == 0 and "is removed" in gone.output, gone.output
    stored_sql = "SELECT start_day FROM stackyard.monitor_incidents"
    stored = cli.invoke(app, ["sql", stored_sql, "--json", *base])
    assert [r["start_day"] for r in json.loads(stored.output)["rows"]] == ["2026-02-01"]
    unknown = cli.invoke(
        app, [*unmark[:-1], "custmer_orders", "--start", "2026-02-01", "--end", "2026-02-01"]
    )
    assert unknown.exit_code == 2 and "did you mean 'customer_orders'" in unknown.output


def test_a_source_table_by_its_dbt_name_as_incidents_give_it(tmp_path: Path) -> None:
    """`incident open` names a source table's root cause as dbt and lineage do
    (dlt_app.orders); health and incident marks take that name too."""
    root = make_project(tmp_path / "mini")
    Context(root).run()
    cli = CliRunner()
    # Before: exit 2, "no monitored table 'dlt_app.orders'".
    show = cli.invoke(app, ["health", "show", "dlt_app.orders", "--project", str(root)])
    assert show.exit_code == 0 and "app.orders" in show.output, show.output
    mark = cli.invoke(
        app,
        [
            "incident",
            "mark",
            "--project",
            str(root),
            "--table",
            "dlt_app.orders",
            "--start",
            "2026-01-02",
            "--end",
            "2026-01-02",
        ],
    )
    assert mark.exit_code == 0, mark.output
    listed = cli.invoke(app, ["incident", "marks", "--project", str(root), "--json"])
    assert [m["table"] for m in json.loads(listed.output)] == ["app.orders"], listed.output


def test_monitor_settings_on_an_ephemeral_model_are_stated_not_silently_unused(
    tmp_path: Path,
) -> None:
    """An ephemeral model matched its name, so no note came, yet it has no table: its
    settings were never applied and its owner never told, without a word."""
    root = make_project(tmp_path / "mini")
    model = root / "transform" / "models" / "staging" / "dlt" / "int_summary.sql"
    model.write_text(
        "{{ config(materialized='ephemeral') }}\nselect count(*) as n from {{ ref('stg_dlt__orders') }}\n"
    )
    with (root / "stackyard.yml").open("a") as f:
        f.write(
            "monitors:\n"
            "  tables: {int_summary: {owner: '@x'}}\n"
            "  alerts: {owners: {int_summary: [data@example.com]}}\n"
        )
    cli = CliRunner()
    run = cli.invoke(app, ["run", "--project", str(root)], env={"COLUMNS": "200"})
    assert run.exit_code == 0, run.output
    result = cli.invoke(app, ["monitor", "--json", "--project", str(root)])
    notes = json.loads(result.stdout)["notes"]
    assert len(notes) == 2, notes
    assert "monitors.tables.int_summary names an ephemeral model" in notes[0], notes
    assert "its owners are never told" in notes[1], notes
