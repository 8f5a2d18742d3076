"""JSON leaves a field out where it is empty: a batch without an optional field loads, a
renamed or always-filled one still stops the source (the drift check, stackyard.ingest.drift)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stackyard import Context
from stackyard.ingest.drift import SchemaDriftError, check_item
from stackyard.project import init_project


def _shop(tmp_path: Path, glob: str, first: str) -> tuple[Context, Path]:
    root = tmp_path / "p"
    init_project(root)
    data = root / "data"
    data.mkdir()
    (data / f"a.{glob}").write_text(first)
    ctx = Context(root)
    added = ctx.source_add(
        "shop",
        "filesystem",
        {"url": "data", "tables": {"orders": {"glob": f"*.{glob}", "primary_key": "id"}}},
    )
    assert added.ok, added
    staging = root / "transform" / "models" / "staging" / "dlt" / "stg_dlt__orders.sql"
    assert "coupon" in staging.read_text()
    return ctx, data


def _orders(ctx: Context) -> tuple[tuple[Any, ...], ...]:
    return ctx.sql("select id, coupon from shop.orders order by id").rows


def _load_error(ctx: Context) -> str:
    result = ctx.run()
    load = next(load for load in result.loads if load.source == "shop")
    assert result.exit_code == 1 and load.status == "failed"
    return str(load.error)


def test_a_jsonl_file_without_an_optional_field_loads_and_a_rename_still_stops(
    tmp_path: Path,
) -> None:
    with_ = '{"id": 1, "coupon": "X"}\n{"id": 2}\n'
    ctx, data = _shop(tmp_path, "jsonl", with_)
    # No row of the day's file has a coupon: the column already holds NULLs, so it is empty.
    (data / "b.jsonl").write_text('{"id": 3}\n')
    result = ctx.run()
    assert result.ok, result.to_dict()
    assert _orders(ctx) == ((1, "X"), (2, None), (3, None))
    # A new field where the old one went is a rename: nothing loads.
    (data / "c.jsonl").write_text('{"id": 4, "promo_code": "Z"}\n')
    error = _load_error(ctx)
    assert "column coupon is missing from the new data" in error and "promo_code" in error
    assert _orders(ctx) == ((1, "X"), (2, None), (3, None))


def test_a_jsonl_file_without_a_field_never_empty_before_loads_it_as_null(tmp_path: Path) -> None:
    # Before: "column coupon is missing from the new data … Nothing was loaded" on every run
    # until a file had a coupon again.
    ctx, data = _shop(tmp_path, "jsonl", '{"id": 1, "coupon": "X"}\n')
    (data / "b.jsonl").write_text('{"id": 2}\n{"id": 3}\n')
    result = ctx.run()
    assert result.ok, result.to_dict()
    assert _orders(ctx) == ((1, "X"), (2, None), (3, None))
    (data / "c.jsonl").write_text('{"id": 4, "coupon": "Y"}\n')
    assert ctx.run().ok
    assert _orders(ctx)[-1] == (4, "Y")


def test_a_csv_header_without_the_column_stops_even_where_it_held_nulls(tmp_path: Path) -> None:
    ctx, data = _shop(tmp_path, "csv", "id,coupon\n1,X\n2,\n")
    (data / "b.csv").write_text("id\n3\n")
    assert "column coupon is missing from the new data" in _load_error(ctx)
    assert _orders(ctx) == ((1, "X"), (2, None))


@pytest.mark.parametrize(
    ("page", "held", "stops"),
    [
        ([{"id": 1}, {"id": 2}], {"coupon"}, False),  # an API page where no row has one
        ([{"id": 1}], set(), True),  # the column never held a NULL
        ([{"id": 1, "promo": "Z"}], {"coupon"}, True),  # a new field beside: a rename
        ([{"id": 1, "coupon": None}], set(), False),  # present, if empty
        # An object whose keys the table holds flattened (meta__k) is not a new field: a
        # page with one and without the optional field stopped every run after the first.
        ([{"id": 1, "meta": {"k": 1}}], {"coupon"}, False),
        ([{"id": 1, "meta": {"k": 1, "new": 2}}], {"coupon"}, True),  # meta__new is new
        ([{"id": 1, "other": {"k": 1}}], {"coupon"}, True),
    ],
)
def test_pages_of_json_rows(page: list[dict[str, Any]], held: set[str], stops: bool) -> None:
    def optional(table: str, columns: list[str]) -> set[str]:
        return held & set(columns)

    required = {"id": ["stg"], "coupon": ["stg"]}
    known = ["id", "coupon", "meta__k", "_loaded_at"]
    if stops:
        with pytest.raises(SchemaDriftError, match="coupon"):
            check_item("s", "t", page, required, optional=optional, known=known)
    else:
        check_item("s", "t", page, required, optional=optional, known=known)


def test_a_stream_renamed_field_advises_a_run_not_a_reload() -> None:
    # A stream cannot be reloaded (refused, exit 2), yet a renamed field's error said to.
    required = {"amount": ["stg_dlt__orders"]}
    with pytest.raises(SchemaDriftError) as raised:
        check_item("events", "orders", [{"id": 1, "total": 2}], required, read_once=True)
    assert "reload" not in str(raised.value.hint).replace("cannot be reloaded", "")
    assert "then `stackyard run`" in str(raised.value.hint)
    with pytest.raises(SchemaDriftError) as raised:
        check_item("shop", "orders", [{"id": 1, "total": 2}], required)
    assert "`stackyard reload shop.orders --yes`" in str(raised.value.hint)
