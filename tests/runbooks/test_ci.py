"""`stackyard ci github` (and `stackyard init`) write a GitHub Actions workflow; its pull-request
steps' commands run here, as written, in the project: a git repository whose main is on a
local "origin", with a branch that changes one model (slim CI)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from typer.testing import CliRunner

from stackyard import Context
from stackyard.cli.main import app
from stackyard.project import init_project

runner = CliRunner()
BIN = Path(sys.executable).parent
WORKFLOW = Path(".github/workflows/stackyard.yml")


SOURCES = {
    "orders": "id,store_id,amount\n1,1,10\n2,2,20\n",
    "stores": "id,name\n1,north\n2,south\n",
    "items": "id,sku\n1,a\n2,b\n3,c\n",
}
MODELS = {
    "stg_orders": "select id, store_id, amount from {{ source('orders', 'orders') }}",
    "stg_stores": "select id, name from {{ source('stores', 'stores') }}",
    "stg_items": "select id, sku from {{ source('items', 'items') }}",
    "orders_by_store": "select s.name, sum(o.amount) as amount from {{ ref('stg_orders') }} o "
    "join {{ ref('stg_stores') }} s on s.id = o.store_id group by s.name",
    "store_list": "select name from {{ ref('stg_stores') }}",
    "item_count": "select count(*) as n from {{ ref('stg_items') }}",
}


def make_project(root: Path) -> Path:
    """Three file sources, a staging model each, and three models over them: changing
    stg_orders touches orders_by_store (which also reads stg_stores) and nothing else."""
    init_project(root)
    files = root / "sources" / "files"
    files.mkdir(parents=True, exist_ok=True)
    entry = "sources:\n"
    dbt_sources = "version: 2\nsources:\n"
    for name, rows in SOURCES.items():
        (files / f"{name}.csv").write_text(rows)
        entry += (
            f"  {name}:\n    kind: filesystem\n    url: sources/files\n"
            f"    tables: {{{name}: {{glob: {name}.csv, primary_key: id}}}}\n"
        )
        dbt_sources += f"  - name: {name}\n    schema: {name}\n    tables: [{{name: {name}}}]\n"
    text = (root / "stackyard.yml").read_text().replace("sources: {}\n", entry)
    (root / "stackyard.yml").write_text(text)
    models = root / "transform" / "models"
    (models / "_sources.yml").write_text(dbt_sources)
    for name, sql in MODELS.items():
        (models / f"{name}.sql").write_text(sql + "\n")
    return root


def git(root: Path, *args: str) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "ci",
        "GIT_AUTHOR_EMAIL": "ci@example.com",
        "GIT_COMMITTER_NAME": "ci",
        "GIT_COMMITTER_EMAIL": "ci@example.com",
    }
    subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True)


def pull_request(root: Path, origin: Path) -> None:
    """main pushed to a local origin, then a branch changing stg_orders only."""
    git(origin.parent, "init", "--bare", "-b", "main", str(origin))
    git(root, "init", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-m", "base")
    git(root, "remote", "add", "origin", str(origin))
    git(root, "push", "origin", "main")
    git(root, "checkout", "-b", "change")
    model = root / "transform" / "models" / "stg_orders.sql"
    model.write_text(model.read_text().replace("amount from", "amount * 2 as amount from"))
    git(root, "commit", "-am", "double the amounts")


def relations(root: Path) -> set[str]:
    """Tables and views in the warehouse, as schema.name; stackyard's own, dlt's and dlt's
    staging schemas left out."""
    with Context(root) as context:
        rows = context.sql(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema <> 'stackyard' and table_schema not like '%\\_staging' escape '\\' "
            "and table_name not like '\\_dlt%' escape '\\'"
        ).rows
    return {f"{schema}.{name}" for schema, name in rows}


def test_init_writes_the_workflow_and_its_pull_request_steps_run_here(tmp_path: Path) -> None:
    root = make_project(tmp_path / "shop")
    assert (root / WORKFLOW).is_file()  # written by init
    pull_request(root, tmp_path / "origin.git")
    done = runner.invoke(app, ["ci", "github", "--json", "--project", str(root)])
    assert done.exit_code == 0, done.output
    result = json.loads(done.output)
    assert result["path"] == str(WORKFLOW)

    workflow = yaml.safe_load((root / WORKFLOW).read_text())
    assert set(workflow["on"]) == {"pull_request", "push"}
    assert workflow["on"]["push"]["branches"] == ["main"]
    check, deploy = workflow["jobs"]["check"], workflow["jobs"]["deploy"]
    assert "pull_request" in check["if"] and "push" in deploy["if"]
    commands = [s["run"] for s in check["steps"] if "run" in s and "pip install" not in s["run"]]
    assert [c.split()[:2] for c in commands] == [
        ["stackyard", "policy"],
        ["stackyard", "plan"],
        ["git", "fetch"],
        ["stackyard", "run"],
    ]
    assert "--detailed-exitcode" in commands[1]
    assert "stackyard dbt-manifest" in commands[2] and "--state" in commands[3]
    assert any("stackyard apply" in s.get("run", "") for s in deploy["steps"])

    # What GitHub sets on a pull request event.
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "GITHUB_BASE_REF": "main",
    }
    for command in commands:
        ran = subprocess.run(
            ["bash", "-e", "-c", command],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert ran.returncode == 0, f"{command}\n{ran.stdout}\n{ran.stderr}"
    # A fresh copy: the changed model, its child and the child's other parent, and the two
    # sources they read; the rest of the project is neither loaded nor built.
    assert relations(root) == {
        "orders.orders",
        "stores.stores",
        "main.stg_orders",
        "main.stg_stores",
        "main.orders_by_store",
    }
    with Context(root) as context:
        assert context.sql("select sum(amount) from main.stg_orders").rows[0][0] == 60
        assert context.sql("select count(*) from orders.orders").rows[0][0] == 2


def test_state_builds_only_the_changed_model_and_its_children(tmp_path: Path) -> None:
    """On a warehouse that has main's build, `state:modified+` builds the changed model and
    its child only, and loads only the source the changed model reads."""
    root = make_project(tmp_path / "shop")
    base = tmp_path / "base"
    done = runner.invoke(app, ["run", "--json", "--project", str(root)])
    assert done.exit_code == 0, done.output
    assert len(json.loads(done.output)["loads"]) == 3
    done = runner.invoke(app, ["dbt-manifest", "--out", str(base), "--project", str(root)])
    assert done.exit_code == 0, done.output
    assert (base / "manifest.json").is_file()

    args = ["run", "--json", "--state", str(base), "--select", "state:modified+"]
    unchanged = runner.invoke(app, [*args, "--project", str(root)])
    assert unchanged.exit_code == 0, unchanged.output
    result = json.loads(unchanged.output)
    assert result["loads"] == [] and result["nodes"] == []
    assert next(s for s in result["steps"] if s["name"] == "dbt build")["status"] == "skipped"

    model = root / "transform" / "models" / "stg_orders.sql"
    model.write_text(model.read_text().replace("amount from", "amount * 2 as amount from"))
    changed = runner.invoke(app, [*args, "--project", str(root)])
    assert changed.exit_code == 0, changed.output
    result = json.loads(changed.output)
    assert [load["source"] for load in result["loads"]] == ["orders"]
    built = sorted(n["name"] for n in result["nodes"] if n["resource_type"] == "model")
    assert built == ["orders_by_store", "stg_orders"]
    with Context(root) as context:
        assert context.sql("select sum(amount) from main.orders_by_store").rows[0][0] == 60
        assert context.sql("select sum(amount) from main.stg_orders").rows[0][0] == 60


def test_state_without_a_manifest_is_a_usage_error(tmp_path: Path) -> None:
    root = make_project(tmp_path / "shop")
    args = ["run", "--state", str(tmp_path / "none"), "--select", "state:modified+"]
    done = runner.invoke(app, [*args, "--project", str(root)])
    assert done.exit_code == 2, done.output
    assert "dbt-manifest" in done.output


def test_a_workflow_someone_took_over_is_left_alone(tmp_path: Path) -> None:
    root = make_project(tmp_path / "shop")
    path = root / WORKFLOW
    mine = "name: mine\n" + "\n".join(path.read_text().splitlines()[2:]) + "\n"
    path.write_text(mine)
    done = runner.invoke(app, ["ci", "github", "--project", str(root)])
    assert done.exit_code == 2, done.output
    assert "left as it is" in done.output
    assert path.read_text() == mine


# What stackyard wrote above the workflow before the checksum line.
OLDER_HEADER = (
    "# Written by `stackyard ci github`, which rewrites this file while this line is here;\n"
    "# delete the line to keep your own edits.\n"
)


def ci_github(root: Path, *flags: str) -> tuple[int, str]:
    done = runner.invoke(app, ["ci", "github", "--project", str(root), *flags])
    return done.exit_code, done.output


def self_hosted(path: Path) -> str:
    """A team's edit under stackyard's lines: its jobs run on its own runners."""
    text = path.read_text().replace("runs-on: ubuntu-latest", "runs-on: [self-hosted]")
    path.write_text(text)
    return text


def add_production_target(root: Path) -> None:
    path = root / "stackyard.yml"
    prod = "  prod:\n    type: duckdb\n    path: .stackyard/prod.duckdb\n"
    path.write_text(path.read_text().replace("\nsources:", prod + "\nsources:"))


def test_running_ci_github_again_with_nothing_changed_writes_the_same(tmp_path: Path) -> None:
    root = tmp_path / "shop"
    init_project(root)
    written = (root / WORKFLOW).read_text()
    code, output = ci_github(root, "--json")
    assert code == 0, output
    assert json.loads(output)["changes"][0]["state"] == "unchanged"
    assert (root / WORKFLOW).read_text() == written
    assert not (root / WORKFLOW.with_name("stackyard.yml.bak")).exists()


def test_an_unedited_workflow_follows_stackyard_yml(tmp_path: Path) -> None:
    root = tmp_path / "shop"
    init_project(root)
    add_production_target(root)
    code, output = ci_github(root, "--json")
    assert code == 0, output
    result = json.loads(output)
    assert result["production_target"] == "prod"
    assert result["changes"][0]["state"] == "regenerated"
    workflow = yaml.safe_load((root / WORKFLOW).read_text())
    assert workflow["jobs"]["deploy"]["environment"] == "prod"


def test_an_edited_workflow_body_stops_ci_github_and_nothing_is_written(tmp_path: Path) -> None:
    root = tmp_path / "shop"
    init_project(root)
    edited = self_hosted(root / WORKFLOW)
    add_production_target(root)  # the rewrite would change the workflow
    code, output = ci_github(root)
    assert code == 2, output
    message = " ".join(output.split())
    assert f"{WORKFLOW} was edited by hand" in message
    assert "--dry-run" in message
    assert f"--force` overwrites, keeping the old {WORKFLOW} as {WORKFLOW}.bak" in message
    assert (root / WORKFLOW).read_text() == edited
    assert list((root / WORKFLOW).parent.iterdir()) == [root / WORKFLOW]


def test_force_keeps_the_edited_workflow_as_a_backup_then_rewrites_it(tmp_path: Path) -> None:
    root = tmp_path / "shop"
    init_project(root)
    edited = self_hosted(root / WORKFLOW)
    code, output = ci_github(root, "--force", "--json")
    assert code == 0, output
    assert json.loads(output)["changes"] == [
        {"file": str(WORKFLOW), "state": "edited", "backup": f"{WORKFLOW}.bak", "diff": ""}
    ]
    assert (root / f"{WORKFLOW}.bak").read_text() == edited
    assert "self-hosted" not in (root / WORKFLOW).read_text()
    assert ci_github(root)[0] == 0  # the rewritten workflow is stackyard's again


def test_dry_run_shows_the_edit_ci_github_would_drop_and_writes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "shop"
    init_project(root)
    edited = self_hosted(root / WORKFLOW)
    code, output = ci_github(root, "--dry-run")
    assert code == 2, output  # as ci github itself would: the workflow was edited by hand
    assert "-    runs-on: [self-hosted]\n" in output
    assert "ci github refuses to overwrite it without --force" in " ".join(output.split())
    assert "dry run: nothing written" in output
    assert (root / WORKFLOW).read_text() == edited
    assert list((root / WORKFLOW).parent.iterdir()) == [root / WORKFLOW]


def test_a_workflow_an_older_stackyard_wrote_unedited_is_brought_up_to_date(
    tmp_path: Path,
) -> None:
    root = tmp_path / "shop"
    init_project(root)
    current = (root / WORKFLOW).read_text()
    body = "".join(current.splitlines(keepends=True)[3:])  # under the checksum and header
    (root / WORKFLOW).write_text(OLDER_HEADER + body)
    code, output = ci_github(root)
    assert code == 0, output
    assert (root / WORKFLOW).read_text() == current


def test_an_older_stackyards_workflow_edited_under_its_header_is_kept(tmp_path: Path) -> None:
    root = tmp_path / "shop"
    init_project(root)
    body = "".join((root / WORKFLOW).read_text().splitlines(keepends=True)[3:])
    (root / WORKFLOW).write_text(OLDER_HEADER + body)
    edited = self_hosted(root / WORKFLOW)
    code, output = ci_github(root)
    assert code == 2, output
    assert f"{WORKFLOW} has no checksum" in " ".join(output.split())
    assert (root / WORKFLOW).read_text() == edited


def test_each_job_is_given_the_secrets_its_targets_and_sources_name(tmp_path: Path) -> None:
    root = tmp_path / "shop"
    init_project(root)
    path = root / "stackyard.yml"
    prod = (
        "  prod:\n    type: postgres\n    host: db.example.com\n    user: loader\n"
        "    database: shop\n"
        "    password: {secret: PROD_PW, from: vault, name: secret/prod/pg}\n"
        "  stage:\n    type: postgres\n    host: db.example.com\n    user: loader\n"
        "    database: stage\n    password: {secret: STAGE_PW}\n"
    )
    sources = (
        "sources:\n"
        "  shop:\n    kind: sql_database\n    connection: {secret: SHOP_DB}\n"
        "    tables: {orders: {primary_key: id}}\n"
        "  crm:\n    kind: sql_database\n    connection: {secret: CRM_DB, from: file}\n"
        "    tables: {people: {primary_key: id}}\n"
    )
    path.write_text(
        path.read_text().replace("\nsources: {}\n", "\n" + prod.rstrip("\n") + "\n\n" + sources)
    )
    code, output = ci_github(root, "--json")
    assert code == 0, output
    jobs = yaml.safe_load((root / WORKFLOW).read_text())["jobs"]
    # Before: no job had an `env`, and GitHub gives a step no secret it was not handed, so
    # the deploy job's first step stopped on "secret 'PROD_PW' … was not found".
    assert jobs["deploy"]["environment"] == "prod"
    assert jobs["deploy"]["env"] == {
        "SHOP_DB": "${{ secrets.SHOP_DB }}",
        "VAULT_ADDR": "${{ secrets.VAULT_ADDR }}",
        "VAULT_TOKEN": "${{ secrets.VAULT_TOKEN }}",
    }
    # The pull request job builds on the default DuckDB target: the sources' secrets only.
    assert jobs["check"]["env"] == {"SHOP_DB": "${{ secrets.SHOP_DB }}"}


def test_the_runner_installs_the_stackyard_that_wrote_it_on_its_pinned_stack(
    tmp_path: Path,
) -> None:
    """The workflow ran `pip install stackyard`: whatever was newest that day, a stack that
    neither `upgrade check` nor `upgrade test` had seen."""
    from stackyard import __version__

    root = make_project(tmp_path / "shop")
    workflow = yaml.safe_load((root / WORKFLOW).read_text())
    for job in ("check", "deploy"):
        runs = [
            s["run"] for s in workflow["jobs"][job]["steps"] if "pip install" in s.get("run", "")
        ]
        assert len(runs) == 1, runs
        install = runs[0].splitlines()
        assert install[0] == f"pip install 'stackyard=={__version__}'"
        assert install[1].startswith(f"pip install 'stackyard=={__version__}' -c ")
    # The constraints file it names is the pinned stack this stackyard carries.
    pinned = install[1].split(" -c ", 1)[1]
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(
        ["bash", "-c", f"cat {pinned}"], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "dbt-core==" in done.stdout and "duckdb==" in done.stdout
