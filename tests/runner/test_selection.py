"""`stackyard run --select NAME` checks a plain name against the last build's manifest, and
asks dbt before refusing one that is missing there: a model added since is in the files only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stackyard import Context
from stackyard.cli.main import app
from stackyard.errors import UsageError
from stackyard.project import init_project
from stackyard.runner.selection import check_selection

runner = CliRunner()

SOURCE = """\
sources:
  files:
    kind: filesystem
    url: sources/files
    tables:
      products: {glob: "*.csv", primary_key: sku}
"""


def new_project(tmp_path: Path) -> Path:
    """An empty `stackyard init` project with one file source and one mart, never built."""
    root = init_project(tmp_path / "shop").path
    (root / "sources" / "files").mkdir(parents=True)
    (root / "sources" / "files" / "products.csv").write_text("sku,price\nA,100\nB,250\n")
    config = root / "stackyard.yml"
    config.write_text(config.read_text().replace("sources: {}\n", SOURCE))
    add_model(root, "daily_orders")
    return root


def add_model(root: Path, name: str) -> None:
    (root / "transform" / "models" / "marts" / f"{name}.sql").write_text(f"select '{name}' as m\n")


def built_project(tmp_path: Path) -> Path:
    """The project after one full run: loaded, built, and dbt's manifest written."""
    root = new_project(tmp_path)
    with Context(root) as context:
        assert context.run().ok
    return root


def models_built(context: Context) -> set[str]:
    rows = context.sql(
        "select table_name from information_schema.tables where table_schema = 'marts'"
    ).rows
    return {str(r[0]) for r in rows}


def test_a_model_added_since_the_last_build_is_selectable_by_its_name(tmp_path: Path) -> None:
    root = built_project(tmp_path)
    add_model(root, "weekly_orders")
    with Context(root) as context:
        result = context.run(select=["weekly_orders"])
        assert result.ok, result.to_dict()
        assert {(n.resource_type, n.name, n.status) for n in result.nodes} == {
            ("model", "weekly_orders", "success")
        }
        assert result.loads == ()  # a model alone loads no source
        assert context.sql("select m from marts.weekly_orders").rows == (("weekly_orders",),)


def test_a_typo_is_still_refused_with_a_suggestion_and_nothing_runs(tmp_path: Path) -> None:
    root = built_project(tmp_path)
    add_model(root, "weekly_orders")  # in the files, not in the last manifest
    with Context(root) as context:
        with pytest.raises(UsageError) as refused:
            context.run(select=["files", "daily_ordrs"])
        assert refused.value.exit_code == 2
        assert refused.value.message == (
            "--select 'daily_ordrs' is neither a source nor a dbt model"
            " (did you mean 'daily_orders'?)"
        )
        with pytest.raises(UsageError, match="'weekly_ordrs' is neither a source nor a dbt"):
            context.run(select=["weekly_ordrs"])
    cli = runner.invoke(app, ["run", "--project", str(root), "--select", "daily_ordrs"])
    assert cli.exit_code == 2, cli.output
    said = " ".join(cli.output.split())
    assert "--select 'daily_ordrs' is neither a source nor a dbt model" in said, said
    assert "did you mean 'daily_orders'?" in said, said
    with Context(root) as context:
        # only the first run was recorded, loaded and built
        assert context.sql("select count(*) from stackyard.runs").rows == ((1,),)
        assert context.sql("select count(*) from stackyard.loads").rows == ((1,),)
        assert models_built(context) == {"daily_orders"}


def test_before_any_build_dbt_alone_judges_the_selection(tmp_path: Path) -> None:
    root = new_project(tmp_path)
    manifest = root / "transform" / "target" / "manifest.json"
    assert not manifest.exists()
    with Context(root) as context:
        with pytest.raises(UsageError) as refused:
            context.run(select=["daily_ordrs"])
        assert refused.value.exit_code == 2
        assert refused.value.message == "--select daily_ordrs matches nothing in the dbt project"
        manifest.unlink()  # dbt ls wrote one; the next selection is checked without it again
        result = context.run(select=["daily_orders"])
        assert result.ok, result.to_dict()
        assert [n.name for n in result.nodes] == ["daily_orders"]
        assert models_built(context) == {"daily_orders"}


def test_dbt_is_asked_only_about_names_the_manifest_lacks(tmp_path: Path) -> None:
    root = new_project(tmp_path)
    target = root / "transform" / "target"
    target.mkdir()
    node = {"name": "daily_orders", "resource_type": "model"}
    (target / "manifest.json").write_text(json.dumps({"nodes": {"model.shop.daily_orders": node}}))
    with Context(root) as context:
        project = context.project
    asked: list[list[str]] = []

    def list_nodes(selectors: list[str]) -> list[str]:
        asked.append(selectors)
        return [s for s in selectors if s.endswith("_orders")]

    check_selection(project, ["files"], list_nodes)
    assert asked == []  # a source alone: no dbt at all
    check_selection(project, ["files", "daily_orders"], list_nodes)
    assert asked == [["daily_orders"]]  # the one check of the dbt part, as before
    asked.clear()
    check_selection(project, ["weekly_orders", "daily_orders"], list_nodes)
    assert asked == [["weekly_orders"]]  # it matched: the whole selection needs no second look
    asked.clear()
    with pytest.raises(UsageError, match="did you mean 'daily_orders'"):
        check_selection(project, ["daily_ordrs"], list_nodes)
    assert asked == [["daily_ordrs"]]


def test_a_sources_dbt_names_come_from_this_targets_manifest(project: Path) -> None:
    """The shared target/manifest.json is whichever target dbt ran last: the run reads its
    own target's copy (was: the shared one), and the shared one only when it has none."""
    from stackyard.runner.run import RunJob

    def manifest(path: Path, source_name: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        node = {"source_name": source_name, "schema": "app"}
        path.write_text(json.dumps({"sources": {f"source.mini.{source_name}.t": node}}))

    target_dir = project / "transform" / "target"
    manifest(target_dir / "manifest.json", "other_targets")
    ctx = Context(project)
    job = RunJob(ctx.session())
    assert "other_targets" in job._dbt_names("app")  # no copy for dev yet: the shared one
    manifest(target_dir / "stackyard" / "dev" / "manifest.json", "devs_own")
    names = job._dbt_names("app")
    assert "devs_own" in names and "other_targets" not in names
    ctx.close()


def test_a_state_selector_without_state_is_a_usage_error(tmp_path: Path) -> None:
    # dbt's "Got a state selector method, but no comparison manifest" came back as exit 1,
    # a step failed, though nothing was attempted.
    root = new_project(tmp_path)
    for selector in ("state:modified+", "@state:modified"):
        result = CliRunner().invoke(app, ["run", "--select", selector, "--project", str(root)])
        assert result.exit_code == 2, result.output
        assert "needs --state" in result.output and "stackyard dbt-manifest" in result.output
