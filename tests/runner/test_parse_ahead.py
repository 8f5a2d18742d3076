"""A first run parses the dbt project while its sources load: the build reuses that parse only
when the project is still the one parsed, and builds exactly what it builds without it."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from stackyard import Context
from stackyard.ingest.loader import Loader
from stackyard.runner.parse_ahead import ParseAhead
from tests.conftest import write

# A singular test that fails on some rows, so failure counts are compared too.
FAILING_TEST = "select * from {{ ref('stg_dlt__orders') }} where amount > 290\n"


class Spy:
    """Counts early parses and whether the build got their manifest."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.started = 0
        self.reused: list[bool] = []
        start, take = ParseAhead.start.__func__, ParseAhead.take

        def counted_start(cls: type[ParseAhead], *args: Any) -> ParseAhead | None:
            ahead = start(cls, *args)
            self.started += ahead is not None
            return ahead

        def recorded_take(ahead: ParseAhead) -> Any:
            parsed = take(ahead)
            self.reused.append(parsed is not None)
            return parsed

        monkeypatch.setattr(ParseAhead, "start", classmethod(counted_start))
        monkeypatch.setattr(ParseAhead, "take", recorded_take)


def _outcome(project: Path) -> list[tuple[str, str, int | None]]:
    result = Context(project).run()
    return sorted((n.unique_id, n.status, n.failures) for n in result.nodes)


def test_a_first_run_reuses_the_early_parse_and_builds_what_dbt_builds(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(project / "transform" / "tests" / "big_orders.sql", FAILING_TEST)
    plain = tmp_path / "plain"
    shutil.copytree(project, plain)

    spy = Spy(monkeypatch)
    early = _outcome(project)
    assert (spy.started, spy.reused) == (1, [True])
    assert (project / "transform" / "target" / "partial_parse.msgpack").is_file()
    assert (project / "transform" / "target" / "manifest.json").is_file()

    monkeypatch.setattr(ParseAhead, "start", classmethod(lambda cls, *args: None))
    assert _outcome(plain) == early
    assert ("test.mini.big_orders", "fail", 10) in early


def test_later_runs_do_not_parse_ahead(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = Context(project)
    assert ctx.run().ok
    db = sqlite3.connect(project / "sources" / "app.sqlite")
    db.execute("INSERT INTO orders VALUES (201, 1, 5, 'placed', '2026-02-01 00:00:00')")
    db.commit()
    db.close()
    spy = Spy(monkeypatch)
    again = ctx.run()
    assert again.ok and again.count("model", "success") == 4
    assert spy.started == 0  # dbt's own partial parse is warm; nothing new must not import dbt


def test_a_model_edited_while_loading_is_parsed_again(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = Spy(monkeypatch)
    load = Loader.load

    def edit_then_load(self: Loader, *args: Any, **kwargs: Any) -> Any:
        write(
            project / "transform" / "models" / "marts" / "customer_orders.sql",
            "select c.customer_id, 1 as edited from {{ ref('stg_dlt__customers') }} c\n",
        )
        return load(self, *args, **kwargs)

    monkeypatch.setattr(Loader, "load", edit_then_load)
    ctx = Context(project)
    assert ctx.run().ok
    assert spy.reused == [False]
    assert list(ctx.sql("select sum(edited) from marts.customer_orders").rows) == [(50,)]
    ctx.close()


def test_a_project_that_does_not_parse_fails_in_the_build_step(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(
        project / "transform" / "models" / "marts" / "broken.sql",
        "select * from {{ ref('no_such_model') }}\n",
    )
    spy = Spy(monkeypatch)
    result = Context(project).run()
    assert spy.reused == [False]
    assert result.exit_code == 1
    (build,) = [s for s in result.steps if s.name == "dbt build"]
    assert build.status == "failed" and "no_such_model" in build.detail
    assert sum(load.rows for load in result.loads) == 252  # the loads were not held up
