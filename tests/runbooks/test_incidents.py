"""Incident response on the example project: a source broken upstream yields one incident
whose trace names the source table and the change that broke it, and a post-mortem."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.lineage.conftest import stackyard


def _break_source(project: Path) -> None:
    """The app team renames a column the staging model selects."""
    with sqlite3.connect(project / "sources" / "jaffle_app.sqlite") as db:
        db.execute("ALTER TABLE customers RENAME COLUMN name TO full_name")
        db.execute("UPDATE customers SET updated_at = '2031-01-01 00:00:00' WHERE id < 5")


def test_a_broken_source_yields_one_incident_with_its_cause(example: Path) -> None:
    _break_source(example)
    run = stackyard("run", "--json", cwd=example, check=False)
    assert run.returncode == 1
    skipped = sorted(s["name"] for s in json.loads(run.stdout)["skipped"])

    opened = json.loads(stackyard("incident", "open", "--json", cwd=example).stdout)

    assert len(opened["opened"]) == 1, "a failed load and its monitor alerts are one incident"
    incident = opened["incidents"][0]
    assert incident["root_cause"] == "dlt_shop_db.customers"
    assert incident["severity"] == "P1"  # reaches marts and reporting models
    # a long error is cut at a word, not mid-word
    assert len(incident["title"]) <= 160
    assert len(incident["title"]) < 150 or incident["title"].endswith(" …")
    assert "customers" in incident["impact"]["downstream"]
    assert "rpt_customer_lifetime" in incident["impact"]["downstream"]
    # The load error names one table, but the failed load skipped what is downstream of
    # every table of the source: the impact is what the run skipped.
    assert len(skipped) > 3 and incident["impact"]["downstream"] == skipped
    incident_id = opened["id"]

    # The same alerts again join the open incident instead of opening another.
    again = json.loads(stackyard("incident", "open", "--json", cwd=example).stdout)
    assert again["opened"] == [] and again["updated"] == [incident_id]

    trace = json.loads(stackyard("incident", "trace", incident_id, "--json", cwd=example).stdout)
    assert trace["first_bad"] == "dlt_shop_db.customers"
    assert trace["table"] == "shop_db.customers"
    schema_changes = [c for c in trace["changes"] if c["kind"] == "schema_change"]
    assert schema_changes and "column name is missing" in schema_changes[0]["detail"]
    assert "full_name" in schema_changes[0]["detail"]
    assert any(c["kind"] == "commit" for c in trace["changes"])  # the project's git history

    done = stackyard("incident", "postmortem", incident_id, "--json", cwd=example)
    text = Path(json.loads(done.stdout)["path"]).read_text()
    assert f"# Post-mortem {incident_id}" in text
    assert "shop_db.customers" in text and "## Timeline (UTC)" in text
    assert "failed — load" in text  # the failing run, from run history

    resolved = json.loads(
        stackyard(
            "incident",
            "resolve",
            incident_id,
            "--note",
            "staging model updated",
            "--json",
            cwd=example,
        ).stdout
    )
    assert resolved["status"] == "resolved"
    assert json.loads(stackyard("incident", "list", "--json", cwd=example).stdout) == []
    everything = json.loads(stackyard("incident", "list", "--all", "--json", cwd=example).stdout)
    assert [i["id"] for i in everything] == [incident_id]
    shown = json.loads(stackyard("incident", "show", incident_id, "--json", cwd=example).stdout)
    assert [e["kind"] for e in shown["events"]][-1] == "resolved"


def test_nothing_failing_opens_nothing_with_exit_0_and_one_opens_by_hand(example: Path) -> None:
    # Exit 2, a usage error, before: the command was right and the state read was clean.
    done = stackyard("incident", "open", cwd=example, check=False)
    said = " ".join(done.stdout.split())
    assert done.returncode == 0, done.stdout + done.stderr
    assert "nothing is failing" in said and "no incident opened" in said, said
    assert "stackyard incident open --node TABLE" in said, said
    clean = json.loads(stackyard("incident", "open", "--json", cwd=example).stdout)
    assert clean == {"id": None, "opened": [], "updated": [], "incidents": []}
    assert json.loads(stackyard("incident", "list", "--json", cwd=example).stdout) == []
    # A user reports a table no monitor flagged: the on-call engineer opens it by hand.
    reported = json.loads(
        stackyard(
            "incident", "open", "--node", "reporting.rpt_daily_revenue", "--title",
            "revenue looks low, says finance", "--json", cwd=example,
        ).stdout
    )  # fmt: skip
    assert reported["opened"] and reported["incidents"][0]["root_cause"] == "rpt_daily_revenue"
    assert reported["incidents"][0]["title"] == "revenue looks low, says finance"
    manual = json.loads(
        stackyard(
            "incident", "open", "--node", "orders", "--title", "late refunds", "--json", cwd=example
        ).stdout
    )
    assert manual["incidents"][0]["root_cause"] == "orders"
    assert manual["incidents"][0]["severity"] == "P1"
    unknown = stackyard("incident", "show", "INC-9999", cwd=example, check=False)
    assert unknown.returncode == 2
    stackyard(
        "incident",
        "mark",
        "--table",
        "marts.orders",
        "--start",
        "2026-11-01",
        "--end",
        "2026-11-02",
        cwd=example,
    )


def test_writing_the_postmortem_again_adds_nothing_and_resolving_twice_says_what_next(
    example: Path,
) -> None:
    _break_source(example)
    stackyard("run", cwd=example, check=False)
    incident_id = json.loads(stackyard("incident", "open", "--json", cwd=example).stdout)["id"]
    stackyard("incident", "resolve", incident_id, "--note", "staging fixed", cwd=example)

    def events() -> list[str]:
        shown = stackyard("incident", "show", incident_id, "--json", cwd=example).stdout
        return [e["kind"] for e in json.loads(shown)["events"]]

    first = stackyard("incident", "postmortem", incident_id, "--json", cwd=example)
    path = Path(json.loads(first.stdout)["path"])
    text, after_first = path.read_text(), events()
    stackyard("incident", "postmortem", incident_id, cwd=example)

    assert path.read_text() == text  # the timeline it shows did not grow
    assert events() == after_first
    assert after_first.count("postmortem") == 1 and "trace" not in after_first

    again = stackyard("incident", "resolve", incident_id, "--json", cwd=example, check=False)
    assert again.returncode == 2
    error = json.loads(again.stdout)
    assert "already resolved" in error["error"]
    assert error["hint"] and f"stackyard incident show {incident_id}" in error["hint"]


def test_a_project_never_run_says_there_is_nothing_to_read(tmp_path: Path) -> None:
    # It said "the latest run and monitor pass are clean" where there was neither.
    stackyard("init", "fresh", "--example", "jaffle_shop", cwd=tmp_path)
    done = stackyard("incident", "open", cwd=tmp_path / "fresh", check=False)
    assert done.returncode == 2
    assert "no run or monitor pass on this target yet" in done.stderr
    assert "clean" not in done.stderr


def test_a_load_error_naming_no_table_is_rooted_at_the_sources_first_table() -> None:
    from stackyard.lineage.graph import ColumnGraph
    from stackyard.runbooks.incidents import Signal, _by_root

    error = "extract step: ArrowInvalid: Column 'name' is declared non-nullable"
    signals = [
        Signal(node, "load", error, "load:shop_db")
        for node in ("dlt_shop_db.customers", "dlt_shop_db.orders", "dlt_shop_db.stores")
    ]
    grouped = _by_root(ColumnGraph(), signals)
    # Before: rooted at the last table (orders), so a second run's failure of the same load
    # opened a second incident beside the one rooted at customers.
    assert list(grouped) == ["dlt_shop_db.customers"]
    assert grouped["dlt_shop_db.customers"] == signals


def test_a_severity_given_for_an_open_incidents_root_cause_is_applied(example: Path) -> None:
    stackyard("incident", "open", "--node", "orders", cwd=example)
    again = json.loads(
        stackyard(
            "incident", "open", "--node", "orders", "--severity", "P0", "--json", cwd=example
        ).stdout
    )
    # Before: "updated INC-0001 [P1] … (same root cause)": the P0 asked for was dropped.
    assert again["opened"] == [] and again["updated"] == [again["id"]]
    (record,) = again["incidents"]
    assert record["severity"] == "P0"
    assert any(e["detail"] == "severity P1 → P0" for e in record["events"])
