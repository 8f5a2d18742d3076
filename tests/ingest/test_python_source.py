"""The ``python`` kind runs a team's existing ``@dlt.source`` as plain dlt would: its
source-level settings kept, its arguments given as lists, mappings or secrets."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from stackyard import Context
from stackyard.project import init_project

SOURCE = """
import dlt


@dlt.source(max_table_nesting=0)
def shop(regions, limits, token=dlt.secrets.value):
    @dlt.resource(primary_key="id")
    def orders():
        for i, region in enumerate(regions):
            yield {"id": i, "region": region, "lines": [{"sku": "a", "qty": i}],
                   "limit": limits[region], "token_length": len(token)}

    return orders
"""


@pytest.mark.slow
def test_source_settings_and_options_with_secrets_reach_the_users_function(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "p"
    init_project(project)
    (project / "sources" / "shop.py").write_text(SOURCE)
    yml = project / "stackyard.yml"
    yml.write_text(
        yml.read_text().replace(
            "sources: {}",
            textwrap.dedent(
                """\
                sources:
                  shop:
                    kind: python
                    path: sources/shop.py
                    function: shop
                    options:
                      regions: [north, south]
                      limits: {north: 10, south: 20}
                      token: {secret: SHOP_TOKEN}
                """
            ),
        )
    )
    monkeypatch.setenv("SHOP_TOKEN", "s3cret-value")
    with Context(project) as ctx:
        result = ctx.run(select=["shop"])
        assert result.exit_code == 0, result.to_dict()
        rows = ctx.sql('select id, region, "limit", token_length from shop.orders order by id')
        tables = ctx.sql(
            "select table_name from information_schema.tables where table_schema = 'shop'"
        ).rows
    assert [tuple(r) for r in rows.rows] == [(0, "north", 10, 12), (1, "south", 20, 12)]
    # max_table_nesting=0 on the source: the list stays a JSON column, no child table.
    assert not [t for (t,) in tables if t.startswith("orders__")]


FEED = """
import json
from pathlib import Path

import dlt


@dlt.source
def feed():
    @dlt.resource
    def events(id=dlt.sources.incremental("id")):
        yield from json.loads((Path(__file__).parent / "feed.json").read_text())

    return events
"""


@pytest.mark.slow
def test_a_source_loaded_resource_by_resource_before_keeps_its_cursor(tmp_path: Path) -> None:
    """Earlier versions loaded a python source's resources one by one, so dlt kept its state
    under a schema named after the pipeline; loaded whole now, it still continues there."""
    import importlib.util
    import json
    import sys

    import dlt

    from stackyard.ingest.boundary_copies import columns_but_stamp

    project = tmp_path / "p"
    init_project(project)
    (project / "sources" / "feed.py").write_text(FEED)
    feed = project / "sources" / "feed.json"
    feed.write_text(json.dumps([{"id": i} for i in range(1, 4)]))
    yml = project / "stackyard.yml"
    entry = "sources:\n  feed:\n    kind: python\n    path: sources/feed.py\n    function: feed\n"
    yml.write_text(yml.read_text().replace("sources: {}\n", entry))
    with Context(project) as ctx:
        name = f"{ctx.config.name}__feed__dev"
        path = ctx.warehouse().path  # type: ignore[attr-defined]
    path.parent.mkdir(parents=True, exist_ok=True)
    spec = importlib.util.spec_from_file_location("old_feed", project / "sources" / "feed.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["old_feed"] = module
    spec.loader.exec_module(module)
    resources = list(module.feed().resources.values())
    resources[0].incremental.primary_key = columns_but_stamp  # as those versions hashed
    old = dlt.pipeline(
        pipeline_name=name,
        destination=dlt.destinations.duckdb(str(path)),
        dataset_name="feed",
        pipelines_dir=str(project / ".stackyard" / "pipelines"),
    )
    old.run(resources)
    assert old.default_schema_name == "p_feed_dev"  # dlt's name for the pipeline's schema

    feed.write_text(json.dumps([{"id": i} for i in range(1, 7)]))
    with Context(project) as ctx:
        result = ctx.run(select=["feed"])
        assert result.exit_code == 0, result.to_dict()
        ids = [r[0] for r in ctx.sql("select id from feed.events order by id").rows]
    assert ids == [1, 2, 3, 4, 5, 6]  # the rows at and before the cursor not loaded again


DUPLICATES = """
import dlt


@dlt.source
def things_source():
    @dlt.resource(primary_key="k", write_disposition="merge")
    def things():
        yield [{"k": 1, "v": "first"}, {"k": 1, "v": "second"}]

    return things
"""


def test_a_python_sources_duplicate_keys_are_reported_as_dlt_keeps_them(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    project = tmp_path / "p"
    init_project(project)
    (project / "sources" / "things.py").write_text(DUPLICATES)
    yml = project / "stackyard.yml"
    yml.write_text(
        yml.read_text().replace(
            "sources: {}",
            "sources:\n  things:\n    kind: python\n    path: sources/things.py\n"
            "    function: things_source",
        )
    )
    done = subprocess.run(
        [str(Path(sys.executable).parent / "stackyard"), "run"],
        cwd=project,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "250", "NO_COLOR": "1"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    kept = Context(project).sql("select v from things.things").rows
    # Before: "1 rows sharing a key collapsed (the latest kept)", while the table held "first".
    assert "1 row sharing a key collapsed (one per key, as dlt read them)" in done.stdout
    assert kept == (("first",),)


def test_a_function_the_file_does_not_define_is_refused_before_anything_runs(
    tmp_path: Path,
) -> None:
    # Before: a failed load (exit 1), after the other sources had loaded.
    from typer.testing import CliRunner

    from stackyard.cli.main import app

    project = tmp_path / "p"
    init_project(project)
    (project / "sources" / "feed.py").write_text(FEED)
    (project / "sources" / "feed.json").write_text('[{"id": 1}]')
    yml = project / "stackyard.yml"
    entry = "sources:\n  feed:\n    kind: python\n    path: sources/feed.py\n    function: fed\n"
    yml.write_text(yml.read_text().replace("sources: {}\n", entry))
    result = CliRunner().invoke(app, ["run", "-p", str(project)])
    assert result.exit_code == 2, result.output
    assert "sources.feed.function: fed: sources/feed.py defines no 'fed'" in result.output
    assert "did you mean 'feed'" in result.output and "nothing was run" in result.output
    assert not (project / ".stackyard" / "dev.duckdb").exists()


def python_project(tmp_path: Path, name: str, code: str, function: str) -> Path:
    """A new project whose one source is the python file ``code`` as ``sources/<name>.py``."""
    project = tmp_path / "p"
    init_project(project)
    (project / "sources" / f"{name}.py").write_text(code)
    yml = project / "stackyard.yml"
    entry = f"sources:\n  {name}:\n    kind: python\n    path: sources/{name}.py\n"
    yml.write_text(yml.read_text().replace("sources: {}", entry + f"    function: {function}"))
    return project


CLASHES = """
import dlt


@dlt.source
def people_source():
    @dlt.resource(primary_key="id")
    def people():
        yield [{"id": 1, "userName": "ann"}, {"id": 2, "userName": "bo", "user_name": "b"}]
        yield {"id": 3, "address": {"city": "x"}, "address__city": "y"}
        yield {"id": 4, "user_name": "di"}

    return people
"""


def test_a_record_with_two_fields_dlt_loads_into_one_column_is_rejected(tmp_path: Path) -> None:
    """dlt names userName and user_name alike and kept the last value: 'bo' was lost without
    a word. Such a record is rejected with both values, and the others load."""
    project = python_project(tmp_path, "people", CLASHES, "people_source")
    with Context(project) as ctx:
        result = ctx.run()
        assert result.ok, result.to_dict()
        (load,) = result.loads
        assert load.rejected == 2
        assert {t.table: t.rows for t in load.tables} == {"people": 2}
        rows = ctx.sql("select id, user_name from people.people order by id").rows
        assert [(int(i), n) for i, n in rows] == [(1, "ann"), (4, "di")]
        rejected = ctx.sql(
            "select column_name, reason, raw from people._rejected_rows order by column_name"
        ).rows
    assert [r[0] for r in rejected] == ["address__city", "user_name"]
    assert "'userName' and 'user_name' both load into the column" in rejected[1][1]
    assert '"userName": "bo", "user_name": "b"' in rejected[1][2]


DECIMALS = """
import dlt
from decimal import Decimal


@dlt.source
def prices_source():
    @dlt.resource(primary_key="id", columns={"fine": {"data_type": "decimal", "precision": 38,
                                                      "scale": 18}})
    def prices():
        yield [
            {"id": 1, "p": Decimal("0.1234567890123"), "fine": Decimal("1")},
            {"id": 2, "p": Decimal("1.50"), "fine": Decimal("0.123456789012345678")},
            {"id": 3, "p": Decimal("2.1000000000000"), "fine": Decimal("0")},
            {"id": 4, "p": Decimal("1"), "lines": [{"q": Decimal("1.00000000049")}]},
        ]

    return prices
"""


def test_a_decimal_with_more_places_than_its_column_keeps_is_rejected_not_rounded(
    tmp_path: Path,
) -> None:
    """dlt's decimal column keeps 9 places: 0.1234567890123 loaded as 0.123456789 without a
    word. Such a record is rejected with the value; a column declaring its scale keeps it."""
    project = python_project(tmp_path, "prices", DECIMALS, "prices_source")
    with Context(project) as ctx:
        result = ctx.run()
        assert result.ok, result.to_dict()
        assert result.loads[0].rejected == 2
        rows = ctx.sql("select id, cast(p as varchar), cast(fine as varchar) from prices.prices")
        assert sorted((int(i), p, f) for i, p, f in rows.rows) == [
            (2, "1.500000000", "0.123456789012345678"),
            (3, "2.100000000", "0.000000000000000000"),
        ]
        rejected = ctx.sql(
            "select column_name, reason from prices._rejected_rows order by column_name"
        ).rows
    assert [r[0] for r in rejected] == ["p", "q"]
    assert "0.1234567890123 has 13 decimal places and the column p keeps 9" in rejected[0][1]


WIDE = """
import dlt
from decimal import Decimal


@dlt.source
def counters_source():
    @dlt.resource(primary_key="id")
    def counters():
        yield [{"id": 1, "n": 5}, {"id": 2, "n": 2**64 + 1}, {"id": 3, "n": 2**63}]
        yield [{"id": 4, "n": -(2**63)}, {"id": 5, "sub": {"m": -(2**63) - 1}}]

    @dlt.resource(columns={"n": {"data_type": "decimal", "precision": 38, "scale": 0}})
    def as_decimal():
        yield {"n": Decimal(2**64 + 1)}

    return counters, as_decimal
"""


def test_an_integer_no_64_bit_column_holds_rejects_its_record_with_how_to_keep_it(
    tmp_path: Path,
) -> None:
    """2**64 + 1 failed the source with dlt's "Integer exceeds 64-bit range", 2**63 with the
    warehouse's conversion error at load, naming no column: the record is rejected with its
    column and how to keep the value, and the advice given works."""
    project = python_project(tmp_path, "counters", WIDE, "counters_source")
    with Context(project) as ctx:
        result = ctx.run()
        assert result.ok, result.to_dict()
        assert result.loads[0].rejected == 3
        rows = ctx.sql("select id, n from counters.counters order by id").rows
        assert [(int(i), n) for i, n in rows] == [(1, 5), (4, -(2**63))]
        kept = ctx.sql("select cast(n as varchar) from counters.as_decimal").rows
        assert kept == (("18446744073709551617",),)
        rejected = ctx.sql("select column_name, reason from counters._rejected_rows").rows
    assert sorted(r[0] for r in rejected) == ["n", "n", "sub__m"]
    reasons = " ".join(r[1] for r in rejected)
    assert "n is 18446744073709551617, wider than a 64-bit integer column holds" in reasons
    assert "yield it as a Decimal (columns={'n': {'data_type': 'decimal'" in reasons


VERSIONS = """
import dlt


@dlt.source
def versions_source():
    @dlt.resource(primary_key="id")
    def by_argument(updated=dlt.sources.incremental("updated_at")):
        yield [{"id": 1, "v": "old", "updated_at": 1}, {"id": 1, "v": "new", "updated_at": 2}]
        yield [{"id": 2, "v": "new", "updated_at": 5}, {"id": 2, "v": "old", "updated_at": 4}]

    @dlt.resource(primary_key="id", incremental=dlt.sources.incremental("updated_at"))
    def by_decorator():
        yield [{"id": 1, "v": "old", "updated_at": 1}, {"id": 1, "v": "new", "updated_at": 2}]

    @dlt.resource(primary_key="id", columns={"updated_at": {"dedup_sort": "asc"}})
    def own_sort(updated=dlt.sources.incremental("updated_at")):
        yield [{"id": 1, "v": "new", "updated_at": 2}, {"id": 1, "v": "old", "updated_at": 1}]

    return by_argument, by_decorator, own_sort
"""


def test_of_one_keys_versions_in_a_load_the_highest_cursor_is_kept(tmp_path: Path) -> None:
    """dlt kept the version it read first: an older version read before a newer one in the
    same run replaced it in the warehouse (docs/project.md: the highest cursor is kept)."""
    project = python_project(tmp_path, "versions", VERSIONS, "versions_source")
    with Context(project) as ctx:
        result = ctx.run()
        assert result.ok, result.to_dict()
        kept = {
            table: ctx.sql(f"select id, v from versions.{table} order by id").rows
            for table in ("by_argument", "by_decorator", "own_sort")
        }
    assert kept["by_argument"] == ((1, "new"), (2, "new"))
    assert kept["by_decorator"] == ((1, "new"),)
    assert kept["own_sort"] == ((1, "old"),)  # the resource's own dedup_sort is kept


def _things(rows: str) -> str:
    return f"""
import dlt


@dlt.source
def things_source():
    @dlt.resource(primary_key="id")
    def things(updated=dlt.sources.incremental("updated_at")):
        yield {rows}

    return things
"""


def test_a_load_normalize_refused_is_set_aside_once_the_source_is_fixed(tmp_path: Path) -> None:
    """A package normalize refuses (a type the contract freezes) stayed pending and failed
    every later run, however the source was fixed ("a load an earlier run left could not be
    finished"): only a reload, which loses what upstream no longer has, got out. It never
    reached the warehouse: it is set aside, dlt's cursor rewinds and the source is read again."""
    first = '[{"id": 1, "v": 1, "updated_at": 1}]'
    project = python_project(tmp_path, "things", _things(first), "things_source")
    code = project / "sources" / "things.py"
    with Context(project) as ctx:
        assert ctx.run().ok
        code.write_text(_things(first[:-1] + ', {"id": 2, "v": 1.5, "updated_at": 2}]'))
        (failed,) = ctx.run().loads
        assert failed.status == "failed" and "changed type upstream" in str(failed.error)
        code.write_text(_things(first[:-1] + ', {"id": 2, "v": 20, "updated_at": 2}]'))
        (load,) = ctx.run().loads
        assert load.status == "loaded", load.error
        assert ctx.sql("select id, v from things.things order by id").rows == ((1, 1), (2, 20))
    (note,) = load.notes
    assert "it never reached the warehouse, so it was set aside" in note, note
    assert "read again from where the last finished load left it" in note, note
    kept = list(project.glob(".stackyard/pipelines/*/set_aside/*/load_package_state.json"))
    assert len(kept) == 1, kept
