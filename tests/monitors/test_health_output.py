"""``stackyard health`` for people: one line per table that fits an 80-column terminal, whole
rows in bands, the full story with ``--verbose`` or ``health show``, and owners shown."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from stackyard import Context
from stackyard.cli.common import out
from stackyard.cli.main import app
from tests.conftest import write
from tests.monitors.test_monitor_sparse import TODAY, _sparse_days, _write

NOW = datetime.combine(TODAY, datetime.min.time(), tzinfo=UTC) + timedelta(hours=7)


def _project(
    root: Path, monitors: str = "{tables: {app.signups: {owner: growth@example.com}}}"
) -> Path:
    write(
        root / "stackyard.yml",
        """
        name: shop
        targets:
          dev: {type: duckdb, path: w.duckdb}
        sources:
          app:
            kind: sql_database
            connection: sqlite:///app.sqlite
            owner: "@app-team"
            tables:
              signups: {}
              refunds_with_a_rather_long_descriptive_table_name: {}
              stg_dlt__order_items_with_a_long_suffix: {}
        monitors: MONITORS
        """.replace("MONITORS", monitors),
    )
    ctx = Context(root)
    w = ctx.warehouse()
    w.execute("CREATE SCHEMA app")
    signups = {d: n + 3 for d, n in _sparse_days(4, empty_share=0.0).items()}
    signups[TODAY - timedelta(days=1)] = 0
    _write(w, "signups", signups)
    _write(
        w, "refunds_with_a_rather_long_descriptive_table_name", _sparse_days(3, empty_share=0.35)
    )
    _write(w, "stg_dlt__order_items_with_a_long_suffix", _sparse_days(5, empty_share=0.0))
    w.close()
    suite = ctx.monitoring().suite()
    suite.clock = lambda: NOW
    suite.check(None)
    return root


def test_health_fits_80_columns_and_verbose_or_show_tell_everything(tmp_path: Path) -> None:
    root = _project(tmp_path / "shop")
    cli = CliRunner()
    env = {"COLUMNS": "80"}
    health = cli.invoke(app, ["health", "--project", str(root)], env=env)
    assert health.exit_code == 1, health.output
    lines = health.output.splitlines()
    assert all(len(line) <= 80 for line in lines), "\n".join(lines)
    # one line per table, long names shortened in the middle (the header, "as of" and the
    # pointer to the full why besides)
    assert len(lines) == 3 + 3 and sum(line.startswith("app.") for line in lines) == 3, lines
    assert lines[-1] == "→ details: stackyard health show TABLE"
    long = next(line for line in lines if line.startswith("app.stg_dlt__"))
    assert "…" in long.split()[0] and long.split()[0].endswith("long_suffix"), long
    row = next(line for line in lines if "app.signups" in line)
    assert "anomaly" in row and "volume" in row and row.rstrip().endswith("…")
    # bands are whole rows, never 0.252–82.773
    assert all("." not in part for part in row.split()[3].split("–"))

    verbose = cli.invoke(app, ["health", "--verbose", "--project", str(root)], env=env)
    assert all(len(line) <= 80 for line in verbose.output.splitlines())
    assert "never been empty before, an outage" in " ".join(verbose.output.split())
    # every name whole on a line, never folded mid-word ("app.refunds_with_a_rather_lo" then
    # "ng_descriptive_table_name")
    for name in ("app.refunds_with_a_rather_long_descriptive_table_name", "app.signups"):
        assert any(name in line for line in verbose.output.splitlines()), verbose.output

    show = cli.invoke(app, ["health", "show", "app.signups", "--project", str(root)], env=env)
    assert show.exit_code == 1
    assert "owners: growth@example.com, @app-team" in show.output
    assert "the table has never been empty before, an outage" in " ".join(show.output.split())
    # Each check's reason wraps under itself, clear of the status column, within 80 columns.
    checks = show.output.splitlines()[2:]
    assert all(len(line) <= 80 and line.startswith("  ") for line in checks), checks
    assert any(line.startswith(" " * 11) and line.strip() for line in checks), checks

    # --project before `show` is the same project: it looked in the current folder.
    before = cli.invoke(app, ["health", "--project", str(root), "show", "app.signups"], env=env)
    assert (before.exit_code, before.output) == (show.exit_code, show.output)

    missing = cli.invoke(app, ["health", "show", "app.signup", "--project", str(root)])
    assert missing.exit_code == 2 and "did you mean 'app.signups'" in missing.output
    # An unknown name is an error like any other: on stderr, and as JSON with --json; the
    # hint points to the full list rather than printing a few names as if they were all.
    assert missing.stdout == "" and "`stackyard health` lists the 3 monitored" in missing.stderr
    as_json = ["health", "show", "app.signup", "--json", "--project", str(root)]
    answer = cli.invoke(app, as_json)
    assert answer.exit_code == 2
    error = json.loads(answer.stdout)
    assert error["ok"] is False and error["exit_code"] == 2, error
    assert "did you mean 'app.signups'" in error["error"], error


def test_a_narrow_terminal_shortens_names_with_a_mark_then_stacks(tmp_path: Path) -> None:
    root = _project(tmp_path / "shop")
    # The terminal reads COLUMNS once, when it is made, if it is set then (in a test run,
    # by whichever test imported the CLI first): the width is set on it directly here.
    saved = out._width
    try:
        _narrow_then_stacked(root)
    finally:
        out._width = saved


def _narrow_then_stacked(root: Path) -> None:
    cli = CliRunner()
    out._width = 50
    narrow = cli.invoke(app, ["health", "--project", str(root)])
    lines = narrow.output.splitlines()
    assert all(len(line) <= 50 for line in lines), "\n".join(lines)
    assert len(lines) == 3 + 3, lines  # still one line per table
    names = [line.split()[0] for line in lines[1:4]]
    assert "app.signups" in names and all("…" in n for n in names if n != "app.signups"), names
    # shortened in the middle, both ends kept: not cropped at the edge
    assert any(n.endswith("ble_name") for n in names), names
    assert any(n.endswith("g_suffix") for n in names), names
    # Too narrow for one line each: a block of three lines per table (five columns folded
    # a few characters at a time made each table about twenty lines), no name cropped.
    long_name = "app.refunds_with_a_rather_long_descriptive_table_name"
    for width, verbose in ((40, []), (30, []), (40, ["--verbose"])):
        out._width = width
        stacked = cli.invoke(app, ["health", *verbose, "--project", str(root)])
        lines = stacked.output.splitlines()
        assert all(len(line) <= width for line in lines), "\n".join(lines)
        assert "".join(line for line in lines if not line.startswith("  ")).count("app.") == 3
        assert long_name in "".join(line for line in lines if not line.startswith("  "))
        if not verbose:
            # three lines a table, a long name folded onto one or two more, and the footer
            assert len(lines) <= 3 * 3 + 4, "\n".join(lines)
        statuses = [m[1] for line in lines if (m := re.match(r"  (\w+)  rows \S+  band ", line))]
        assert sorted(statuses) == ["anomaly", "ok", "ok"], "\n".join(lines)


def test_a_table_entry_overrides_only_what_it_sets_the_rest_comes_from_defaults(
    tmp_path: Path,
) -> None:
    # Naming a table to give it an owner must not reset its other settings to the built-in
    # ones: with `direction: spike` for every table, app.signups's empty day stays unjudged.
    monitors = "{defaults: {direction: spike}, tables: {app.signups: {owner: growth@example.com}}}"
    root = _project(tmp_path / "shop", monitors)
    show = CliRunner().invoke(app, ["health", "show", "app.signups", "--project", str(root)])
    assert show.exit_code == 0, show.output
    assert "owners: growth@example.com, @app-team" in show.output


def test_health_shows_the_latest_pass_not_tables_it_no_longer_watches(tmp_path: Path) -> None:
    root = _project(tmp_path / "shop")  # app.signups is an anomaly in this first pass
    config = (root / "stackyard.yml").read_text()
    (root / "stackyard.yml").write_text(
        config.replace("app.signups: {owner: growth@example.com}", "app.signups: {enabled: false}")
    )
    ctx = Context(root)
    suite = ctx.monitoring().suite()
    suite.clock = lambda: NOW + timedelta(minutes=5)
    assert "app.signups" not in {t.table for t in suite.check(None).tables}
    ctx.close()
    # Health agrees with the pass it says it is "as of": the disabled table's old anomaly
    # neither shows nor fails the command.
    health = CliRunner().invoke(app, ["health", "--project", str(root)], env={"COLUMNS": "80"})
    assert health.exit_code == 0, health.output
    assert "app.signups" not in health.output and "app.refunds" in health.output


def test_with_monitors_disabled_health_says_so_instead_of_the_last_pass(tmp_path: Path) -> None:
    """It went on showing the last pass, "as of" its old time, and exited 1 for its anomaly:
    a job paging on `stackyard health` kept paging after monitors were turned off."""
    root = _project(tmp_path / "shop")  # app.signups is an anomaly in this pass
    config = (root / "stackyard.yml").read_text()
    (root / "stackyard.yml").write_text(
        config.replace("monitors: {", "monitors: {enabled: false, ")
    )
    health = CliRunner().invoke(app, ["health", "--project", str(root)], env={"COLUMNS": "80"})
    assert health.exit_code == 0, health.output
    assert "monitors are disabled" in health.output and "app.signups" not in health.output
    shown = CliRunner().invoke(app, ["health", "--json", "--project", str(root)])
    assert shown.exit_code == 0, shown.output
    said = json.loads(shown.stdout)
    assert said["tables"] == [] and "monitors are disabled" in said["note"]
