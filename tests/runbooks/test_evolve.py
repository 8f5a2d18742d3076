"""`stackyard evolve` on the example project: a rename carried through expand, migrate and
contract (each on its own, each undoable), and a type change checked for cast failures."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from stackyard.errors import Interrupted
from tests.lineage.conftest import stackyard

STAGING = Path("transform/models/staging/dlt/stg_dlt__customers.sql")
MART = Path("transform/models/marts/customers.sql")
RENAME = ["evolve", "rename", "stg_dlt__customers.customer_name", "full_name"]


def _columns(project: Path, relation: str) -> list[str]:
    schema, table = relation.split(".")
    done = stackyard(
        "sql",
        "select column_name from information_schema.columns where table_schema = "
        f"'{schema}' and table_name = '{table}' order by ordinal_position",
        "--json",
        cwd=project,
    )
    return [r["column_name"] for r in json.loads(done.stdout)["rows"]]


def test_dry_run_explains_every_phase_and_changes_nothing(example: Path) -> None:
    before = (example / STAGING).read_text()
    done = stackyard(*RENAME, "--dry-run", "--json", cwd=example)
    plan = json.loads(done.stdout)
    assert [p["phase"] for p in plan["phases"]] == ["expand", "migrate", "contract"]
    assert all(p["status"] == "pending" and p["rollback"] for p in plan["phases"])
    migrate = plan["phases"][1]["steps"]
    assert migrate[0]["path"] == "models/marts/customers.sql"  # found by lineage
    assert (example / STAGING).read_text() == before
    assert "full_name" not in _columns(example, "staging.stg_dlt__customers")


def test_a_rename_goes_through_three_phases_each_on_its_own(example: Path) -> None:
    stackyard(*RENAME, "--phase", "expand", cwd=example)
    assert {"customer_name", "full_name"} <= set(_columns(example, "staging.stg_dlt__customers"))
    # The journal keeps copies of models and stackyard.yml: owner-only, as .stackyard is.
    journal = example / ".stackyard" / "evolve"
    assert stat.S_IMODE(journal.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in journal.iterdir()} == {0o600}

    stackyard(*RENAME, "--phase", "migrate", cwd=example)
    assert "full_name" in (example / MART).read_text()
    assert "customer_name" in _columns(example, "marts.customers")  # readers keep their names
    lineage = json.loads(
        stackyard(
            "lineage", "stg_dlt__customers.full_name", "--downstream", "--json", cwd=example
        ).stdout
    )
    assert {"node": "customers", "column": "customer_name"} in lineage["downstream"]

    stackyard(*RENAME, "--phase", "contract", cwd=example)
    columns = _columns(example, "staging.stg_dlt__customers")
    assert "full_name" in columns and "customer_name" not in columns
    assert columns.index("full_name") == 1  # in the old column's place
    # Recorded as approved, so CI comparing with the commit before the change passes.
    assert (
        stackyard(
            "schema", "diff", "--against", "HEAD", "--check", cwd=example, check=False
        ).returncode
        == 0
    )
    assert stackyard("schema", "diff", "--check", cwd=example, check=False).returncode == 0
    stackyard("run", "--select", "stg_dlt__customers+", cwd=example)


def test_a_rename_migrates_only_the_references_that_read_the_renamed_column(
    example: Path,
) -> None:
    # orders.sql and products.sql join stg_dlt__orders.order_id to another model's order_id:
    # only the side that reads stg_dlt__orders may be migrated, or the build breaks.
    rename = ["evolve", "rename", "stg_dlt__orders.order_id", "ord_id"]
    marts = example / "transform" / "models" / "marts"
    stackyard(*rename, "--phase", "expand", cwd=example)

    stackyard(*rename, "--phase", "migrate", cwd=example)
    orders = (marts / "orders.sql").read_text()
    assert "on orders.ord_id = order_summaries.order_id" in orders
    assert "order by ordered_at, ord_id" in orders  # read through a CTE that passes it on
    products = (marts / "products.sql").read_text()
    assert "on order_items.order_id = orders.ord_id" in products
    assert "order_id" in _columns(example, "marts.orders")  # readers keep their names

    stackyard(*rename, "--phase", "contract", cwd=example)
    columns = _columns(example, "staging.stg_dlt__orders")
    assert "ord_id" in columns and "order_id" not in columns
    stackyard("run", "--select", "stg_dlt__orders+", cwd=example)


def test_phases_keep_their_order_contract_waits_and_rollback_restores(example: Path) -> None:
    original = (example / STAGING).read_text()
    skipped = stackyard(*RENAME, "--phase", "migrate", cwd=example, check=False)
    assert skipped.returncode == 2 and "run --phase expand first" in skipped.stderr

    stackyard(*RENAME, "--phase", "expand", "--contract-after", "2999-01-01", cwd=example)
    stackyard(*RENAME, "--phase", "migrate", cwd=example)
    early = stackyard(*RENAME, "--phase", "contract", cwd=example, check=False)
    assert early.returncode == 1
    assert "deprecated until 2999-01-01" in early.stdout
    assert "customer_name" in _columns(example, "staging.stg_dlt__customers")

    blocked = stackyard(*RENAME, "--rollback", "expand", cwd=example, check=False)
    assert blocked.returncode == 2 and "roll back migrate first" in blocked.stderr
    # A rollback's dry run explains its steps and changes nothing.
    migrated = (example / MART).read_text()
    shown = json.loads(
        stackyard(*RENAME, "--rollback", "migrate", "--dry-run", "--json", cwd=example).stdout
    )
    assert shown["dry_run"] and shown["rolled_back"] == []
    steps = next(p["steps"] for p in shown["phases"] if p["phase"] == "migrate")
    assert {"kind": "restore_file", "path": f"{MART}"} in [
        {"kind": s["kind"], "path": s["path"]} for s in steps
    ]
    assert steps[-1]["kind"] == "build" and "customers+" in steps[-1]["select"]
    assert (example / MART).read_text() == migrated
    stackyard(*RENAME, "--rollback", "migrate", cwd=example)
    assert "full_name" not in (example / MART).read_text()
    done = stackyard(*RENAME, "--rollback", "expand", "--json", cwd=example)

    assert json.loads(done.stdout)["rolled_back"] == ["expand"]
    assert (example / STAGING).read_text() == original
    assert "full_name" not in _columns(example, "staging.stg_dlt__customers")


def test_all_due_after_expand_runs_migrate_and_stops_before_a_contract_not_due(
    example: Path,
) -> None:
    stackyard(*RENAME, "--phase", "expand", "--contract-after", "2999-01-01", cwd=example)
    # It ran contract too, before the date (failing on the column's tests, or not).
    done = stackyard(*RENAME, "--json", cwd=example)
    result = json.loads(done.stdout)
    assert result["applied"] == ["migrate"], result
    assert any("deprecated until 2999-01-01" in m for m in result["messages"]), result
    assert "customer_name" in _columns(example, "staging.stg_dlt__customers")


def test_phases_out_of_order_are_refused_before_anything_runs(example: Path) -> None:
    original = (example / STAGING).read_text()

    # expand would run first and then contract would stop: refused as a whole instead.
    done = stackyard(*RENAME, "--phase", "expand", "--phase", "contract", cwd=example, check=False)

    assert done.returncode == 2
    assert "contract cannot run before migrate: run --phase migrate first" in done.stderr
    assert (example / STAGING).read_text() == original
    assert not (example / ".stackyard" / "evolve").exists()
    assert "full_name" not in _columns(example, "staging.stg_dlt__customers")


def test_every_phase_rolls_back_after_contract_from_the_saved_state(example: Path) -> None:
    original = (example / STAGING).read_text()
    for phase in ("expand", "migrate", "contract"):
        stackyard(*RENAME, "--phase", phase, cwd=example)
    assert "customer_name" not in _columns(example, "staging.stg_dlt__customers")

    # The old column is gone from the project and the warehouse: the journal says what to do.
    early = stackyard(*RENAME, "--rollback", "migrate", cwd=example, check=False)
    assert early.returncode == 2 and "roll back contract first" in early.stderr
    other = stackyard(*RENAME[:-1], "fullname", "--rollback", "contract", cwd=example, check=False)
    assert other.returncode == 2 and "rename to full_name" in other.stderr

    # stackyard.yml is not put back whole: the plan says only the approval leaves it.
    plan = stackyard(*RENAME, "--rollback", "contract", "--dry-run", cwd=example).stdout
    assert "remove from stackyard.yml the approval contract added" in plan
    assert "put back stackyard.yml" not in plan
    done = json.loads(stackyard(*RENAME, "--rollback", "contract", "--json", cwd=example).stdout)
    assert done["rolled_back"] == ["contract"] and not done["failed"]
    assert [p["status"] for p in done["phases"]] == ["applied", "applied", "pending"]
    assert {"customer_name", "full_name"} <= set(_columns(example, "staging.stg_dlt__customers"))
    assert "stg_dlt__customers" not in (example / "stackyard.yml").read_text()  # approval undone

    stackyard(*RENAME, "--rollback", "migrate", cwd=example)
    stackyard(*RENAME, "--rollback", "expand", cwd=example)
    assert (example / STAGING).read_text() == original
    assert "full_name" not in _columns(example, "staging.stg_dlt__customers")


def test_a_type_change_is_refused_on_cast_failures_and_applied_when_values_cast(
    example: Path,
) -> None:
    done = stackyard(
        "evolve", "retype", "stg_dlt__orders.status", "INTEGER", "--json", cwd=example, check=False
    )
    result = json.loads(done.stdout)
    assert done.returncode == 1
    assert result["cast_failures"]["failed"] == result["cast_failures"]["non_null"] > 0
    assert result["applied"] == []

    stackyard("evolve", "retype", "stg_dlt__customers.customer_id", "BIGINT", cwd=example)
    types = json.loads(
        stackyard(
            "sql",
            "select data_type from information_schema.columns where "
            "table_name = 'stg_dlt__customers' and column_name = 'customer_id'",
            "--json",
            cwd=example,
        ).stdout
    )["rows"]
    assert types == [{"data_type": "BIGINT"}]
    # A widening breaks nothing: no approval (it was recorded as a narrowing, which would let
    # a later real narrowing of the column pass `schema diff --check`).
    assert "type_narrowing" not in (example / "stackyard.yml").read_text()


def test_a_type_change_that_rounds_the_values_counts_them_as_failures(example: Path) -> None:
    done = stackyard(
        "evolve", "retype", "stg_dlt__orders.subtotal", "INTEGER", "--json", cwd=example,
        check=False,
    )  # fmt: skip
    result = json.loads(done.stdout)
    # Before: "0 of 30063 values do not cast", and only the project's own tests stopped
    # the rounding at contract.
    assert done.returncode == 1, done.stdout
    assert result["cast_failures"]["failed"] > 1000
    assert result["applied"] == []


def test_a_rename_to_a_column_the_model_has_is_refused_before_anything_runs(
    example: Path,
) -> None:
    original = (example / STAGING).read_text()
    mart = (example / MART).read_text()

    for new in ("customer_id", "CUSTOMER_NAME"):
        done = stackyard(*RENAME[:-1], new, "--phase", "expand", cwd=example, check=False)
        assert done.returncode == 2, done.stdout
        assert "stg_dlt__customers" in done.stderr and "→" in done.stderr  # with a hint

    # Nothing written, built or journalled: marts.customers still has the names, not ids.
    assert (example / STAGING).read_text() == original
    assert (example / MART).read_text() == mart
    assert not (example / ".stackyard" / "evolve").exists()
    assert "customer_id_1" not in _columns(example, "staging.stg_dlt__customers")


def test_another_change_of_a_column_half_way_through_a_rename_is_refused(
    example: Path,
) -> None:
    stackyard(*RENAME, "--phase", "expand", cwd=example)
    mart = (example / MART).read_text()

    for args in (
        [*RENAME[:-1], "other_name", "--phase", "migrate"],
        [*RENAME[:-1], "other_name", "--dry-run"],
        ["evolve", "retype", "stg_dlt__customers.customer_name", "VARCHAR(200)"],
    ):
        done = stackyard(*args, cwd=example, check=False)
        assert done.returncode == 2, done.stdout
        assert "in the middle of a rename to full_name" in done.stderr
        assert "--rollback expand" in done.stderr

    # The journal still records the rename that was applied: its own rollback works.
    assert (example / MART).read_text() == mart
    stackyard(*RENAME, "--rollback", "expand", cwd=example)
    assert "full_name" not in _columns(example, "staging.stg_dlt__customers")


def test_rolling_back_one_change_leaves_another_changes_approval_alone(example: Path) -> None:
    # A rollback put stackyard.yml back whole from before its phase: the approval of a type
    # change made since went with it, while the rolled-back rename's came back later.
    config = example / "stackyard.yml"
    original = config.read_text()
    for phase in ("expand", "migrate", "contract"):
        stackyard(*RENAME, "--phase", phase, cwd=example)
    stackyard("evolve", "retype", "stg_dlt__orders.store_id", "SMALLINT", cwd=example)
    text = config.read_text()
    assert "customer_name" in text and "store_id" in text

    stackyard(*RENAME, "--rollback", "contract", cwd=example)
    text = config.read_text()
    assert "customer_name" not in text  # the rename's approval is gone
    assert "store_id" in text and "type_narrowing" in text  # the type change's stays
    stackyard(
        "evolve", "retype", "stg_dlt__orders.store_id", "SMALLINT", "--rollback", "contract",
        cwd=example,
    )  # fmt: skip
    stackyard(*RENAME, "--rollback", "migrate", cwd=example)
    stackyard(*RENAME, "--rollback", "expand", cwd=example)
    assert config.read_text() == original  # every change undone: no approval left behind


def test_a_phase_cut_short_is_not_recorded_as_applied(example: Path) -> None:
    # SIGTERM during expand's build left the phase "applied" with its model file wrapped
    # and the warehouse without the new column, and migrate was then allowed to run.
    from stackyard.context import Context

    before = (example / STAGING).read_text()
    with Context(example) as context:
        runbook = context.evolve()

        def interrupted(select: list[str]) -> list[str]:
            raise KeyboardInterrupt

        runbook.build = interrupted
        with pytest.raises(Interrupted) as stopped:
            runbook.change(
                "rename", "stg_dlt__customers.customer_name", "full_name", phases=["expand"]
            )
    # Before: a bare interrupt ("nothing further was done"), though the build may have
    # rebuilt models from the phase's files.
    assert "cut short" in stopped.value.message
    assert "stackyard run --select stg_dlt__customers+" in str(stopped.value.hint)
    assert (example / STAGING).read_text() == before
    plan = json.loads(stackyard(*RENAME, "--dry-run", "--json", cwd=example).stdout)
    assert [p["status"] for p in plan["phases"]] == ["pending"] * 3
    refused = stackyard(*RENAME, "--phase", "migrate", cwd=example, check=False)
    assert refused.returncode == 2, refused.stdout + refused.stderr


def test_a_renamed_column_takes_its_tests_and_the_relationships_to_it_along(
    example: Path,
) -> None:
    rename = ["evolve", "rename", "customers.customer_id", "customer_key"]
    plan = json.loads(stackyard(*rename, "--dry-run", "--json", cwd=example).stdout)
    contract = next(p for p in plan["phases"] if p["phase"] == "contract")
    moved = {s["path"] for s in contract["steps"] if s["kind"] == "write_model"}
    assert {"models/marts/customers.yml", "models/marts/orders.yml"} <= moved, moved

    # All three phases in one go; contract's build tests the key under its new name.
    done = stackyard(*rename, "--json", cwd=example)
    assert json.loads(done.stdout)["applied"] == ["expand", "migrate", "contract"]
    models = example / "transform" / "models"
    properties = (models / "marts" / "customers.yml").read_text()
    assert "- name: customer_key" in properties and "- name: customer_id\n" not in properties
    assert "One row per customer" in properties  # the rest of the file as written
    assert "field: customer_key" in (models / "marts" / "orders.yml").read_text()
    assert "customer_id" not in _columns(example, "marts.customers")

    # Rolling contract back puts the property files back too.
    stackyard(*rename, "--rollback", "contract", cwd=example)
    assert "field: customer_id" in (models / "marts" / "orders.yml").read_text()


def test_a_rename_to_a_name_a_model_built_on_it_has_is_refused(example: Path) -> None:
    reader = example / "transform" / "models" / "marts" / "cust_upper.sql"
    reader.write_text(
        "select *, upper(customer_name) as full_name from {{ ref('stg_dlt__customers') }}\n"
    )
    stackyard("run", cwd=example)
    original = (example / STAGING).read_text()
    for phase in (["--dry-run"], ["--phase", "expand"]):
        done = stackyard(*RENAME, *phase, cwd=example, check=False)
        # Before: expand ran; cust_upper's star took the new column as full_name and moved
        # its own upper() values to full_name_1, and every phase and test passed.
        assert done.returncode == 2, done.stdout + done.stderr
        assert "cust_upper already has a column full_name" in done.stderr, done.stderr
    assert (example / STAGING).read_text() == original
    assert not (example / ".stackyard" / "evolve").exists()


DAILY = ["evolve", "rename", "fct_daily_orders.revenue", "net_revenue"]


def test_a_rename_of_an_incremental_model_needs_a_full_refresh_and_says_so(
    example: Path,
) -> None:
    before = _columns(example, "marts.fct_daily_orders")
    done = stackyard(*DAILY, "--phase", "expand", cwd=example, check=False)
    # Before: "expand applied" (exit 0) while dbt's merge left the table without net_revenue.
    assert done.returncode == 1, done.stdout + done.stderr
    assert "no column net_revenue" in done.stdout and "--full-refresh" in done.stdout
    assert _columns(example, "marts.fct_daily_orders") == before
    assert "pending" in stackyard(*DAILY, "--dry-run", cwd=example).stdout.split("migrate")[0]

    stackyard(*DAILY, "--phase", "expand", "--full-refresh", cwd=example)
    totals = stackyard(
        "sql",
        "select count(*) as n, count(net_revenue) as filled, "
        "sum(revenue) = sum(net_revenue) as same from marts.fct_daily_orders",
        "--json",
        cwd=example,
    )
    (row,) = json.loads(totals.stdout)["rows"]
    assert row["n"] > 0 and row["filled"] == row["n"] and row["same"] is True
    stackyard(*DAILY, "--phase", "migrate", cwd=example)
    done = stackyard(*DAILY, "--phase", "contract", cwd=example, check=False)
    assert done.returncode == 1 and "--full-refresh" in done.stdout, done.stdout
    stackyard(*DAILY, "--phase", "contract", "--full-refresh", cwd=example)
    columns = _columns(example, "marts.fct_daily_orders")
    assert "net_revenue" in columns and "revenue" not in columns


def test_a_rename_asked_for_again_after_contract_says_every_phase_is_applied(
    example: Path,
) -> None:
    for phase in ("expand", "migrate", "contract"):
        stackyard(*RENAME, "--phase", phase, cwd=example)
    # Before: exit 2, "stg_dlt__customers has no column 'customer_name'", for both.
    again = stackyard(*RENAME, "--phase", "contract", cwd=example, check=False)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "every phase is applied" in again.stdout
    shown = json.loads(stackyard(*RENAME, "--dry-run", "--json", cwd=example).stdout)
    assert [p["status"] for p in shown["phases"]] == ["applied", "applied", "applied"]
    assert shown["dry_run"] is True
    # The journal still undoes it, as before.
    stackyard(*RENAME, "--rollback", "contract", cwd=example)
    assert "customer_name" in _columns(example, "staging.stg_dlt__customers")


def test_a_phase_asked_for_again_says_it_was_applied_and_is_not_run_again(
    example: Path,
) -> None:
    stackyard(*RENAME, "--phase", "expand", cwd=example)
    expanded = (example / STAGING).read_text()
    journal = next((example / ".stackyard" / "evolve").iterdir())
    kept = journal.read_text()
    # Before: exit 0 and the plan again, with not a word that expand had been applied.
    again = stackyard(*RENAME, "--phase", "expand", cwd=example, check=False)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "expand was already applied on " in again.stdout
    assert "not run again" in again.stdout and "expand applied" not in again.stdout
    assert (example / STAGING).read_text() == expanded and journal.read_text() == kept
    both = json.loads(
        stackyard(*RENAME, "--phase", "expand", "--phase", "migrate", "--json", cwd=example).stdout
    )
    assert both["applied"] == ["migrate"]
    on = json.loads(kept)["phases"]["expand"]["on"]
    said = f"expand was already applied on {on}: nothing to do, not run again"
    assert both["messages"][-2:] == [said, "migrate applied"]


def test_a_rollback_keeps_a_hand_edit_made_since_the_phase(example: Path) -> None:
    # The rollback put the file back as it was before expand, and an edit made since was
    # gone without a word (nowhere on disk).
    original = (example / STAGING).read_text()
    stackyard(*RENAME, "--phase", "expand", cwd=example)
    edited = (example / STAGING).read_text() + "-- a hand edit\n"
    (example / STAGING).write_text(edited)
    shown = json.loads(
        stackyard(*RENAME, "--rollback", "expand", "--dry-run", "--json", cwd=example).stdout
    )
    steps = next(p["steps"] for p in shown["phases"] if p["phase"] == "expand")
    restore = next(s for s in steps if s["kind"] == "restore_file")
    assert f"kept as {STAGING}.bak" in restore["description"], restore
    done = stackyard(*RENAME, "--rollback", "expand", cwd=example)
    assert f"kept as {STAGING}.bak" in done.stdout
    assert (example / STAGING).read_text() == original
    assert (example / f"{STAGING}.bak").read_text() == edited


def test_a_model_renamed_half_way_through_a_change_is_named_with_the_change(
    example: Path,
) -> None:
    # It read "'stg_dlt__customers' is neither a model nor a source table (did you mean
    # …?)", naming neither the change under way nor the file it wrote.
    stackyard(*RENAME, "--phase", "expand", cwd=example)
    moved = example / STAGING.with_name("stg_dlt__clients.sql")
    (example / STAGING).rename(moved)
    for model in (example / "transform" / "models").rglob("*.sql"):
        text = model.read_text()
        model.write_text(text.replace("ref('stg_dlt__customers')", "ref('stg_dlt__clients')"))
    for args in (("--phase", "migrate"), ("--rollback", "expand")):
        done = stackyard(*RENAME, *args, cwd=example, check=False)
        assert done.returncode == 2, done.stdout + done.stderr
        said = " ".join(done.stderr.split())
        assert "'stg_dlt__customers' is no model any more" in said, said
        assert "rename of its column customer_name is under way (expand applied" in said
        assert "--rollback expand" in said and "did you mean" not in said


def test_a_change_under_way_on_one_target_is_refused_on_another(example: Path) -> None:
    config = example / "stackyard.yml"
    config.write_text(
        config.read_text().replace(
            "targets:\n",
            "targets:\n  other:\n    type: duckdb\n    path: .stackyard/other.duckdb\n",
        )
    )
    stackyard(*RENAME, "--phase", "expand", cwd=example)
    # Before: migrate ran on 'other' and failed in dbt, and a rollback of expand there said
    # "rolled back" while 'dev' kept the column expand had added.
    for args in (["--phase", "migrate"], ["--rollback", "expand"]):
        done = stackyard(*RENAME, *args, "--target", "other", cwd=example, check=False)
        assert done.returncode == 2, done.stdout + done.stderr
        said = " ".join(done.stderr.split())
        assert "rename is under way on target 'dev' (expand applied there)" in said, said
        assert "--target dev" in said
    assert "full_name" in _columns(example, "staging.stg_dlt__customers")
    stackyard(*RENAME, "--rollback", "expand", cwd=example)
    assert "full_name" not in _columns(example, "staging.stg_dlt__customers")
