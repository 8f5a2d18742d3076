"""``stackyard adopt dbt``: an existing dbt project runs under stackyard with zero edits to its
files, and builds the same tables with the same rows as plain ``dbt build``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from stackyard.config.project import Project
from stackyard.runbooks.adopt import project_checksums
from tests.in_process import stackyard_in_process

BIN = Path(sys.executable).parent
FIXTURES = Path(__file__).parent / "adopt_projects"
pytestmark = pytest.mark.slow


def stackyard(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return stackyard_in_process(*args, cwd=cwd)


def plain_dbt(project: Path, *args: str) -> None:
    """Plain ``dbt build`` with the project's own profiles.yml, as the team runs it today."""
    done = subprocess.run(
        [str(BIN / "dbt"), *args, "--project-dir", ".", "--profiles-dir", "."],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-3000:]


def tables(path: Path, schema: str) -> dict[str, list[tuple[object, ...]]]:
    """Every table and view of a schema with its rows, sorted."""
    with duckdb.connect(str(path), read_only=True) as con:
        names = [
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = ?",
                [schema],
            ).fetchall()
        ]
        return {n: sorted(con.execute(f'select * from {schema}."{n}"').fetchall()) for n in names}


def test_a_plain_project_adopted_in_place_builds_what_dbt_builds(tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours" / "plain_shop", tmp_path / "theirs" / "plain_shop"
    shutil.copytree(FIXTURES / "plain_shop", ours)
    shutil.copytree(FIXTURES / "plain_shop", theirs)
    before = project_checksums(ours)

    adopted = stackyard("adopt", "dbt", str(ours), "--json", cwd=tmp_path)
    assert adopted.returncode == 0, adopted.stdout + adopted.stderr
    report = json.loads(adopted.stdout)
    assert (report["models"], report["seeds"], report["tests"]) == (3, 2, 4)
    assert report["files_unchanged"] is True and report["profile"] == "plain_shop"
    # What dbt itself wrote into the repository is named (it was said to be none at all).
    made = sorted(p.name for p in ours.iterdir() if p.name in ("target", "logs"))
    assert sorted(report["dbt_wrote"]) == made and made, (report["dbt_wrote"], made)

    run = stackyard("run", "--json", cwd=ours)
    assert run.returncode == 0, run.stdout[-3000:]
    counts = json.loads(run.stdout)["counts"]
    assert (counts["models_built"], counts["seeds_built"], counts["tests_passed"]) == (3, 2, 4)

    plain_dbt(theirs, "build")
    assert tables(ours / ".stackyard" / "dev.duckdb", "main") == tables(
        theirs / "plain_shop.duckdb", "main"
    )
    assert project_checksums(ours) == before  # its own profiles.yml included
    assert (ours / ".stackyard" / "dbt" / "profiles.yml").is_file()

    # The monitors watch the same tables, seeds included, on a run that builds and on one
    # that finds nothing to do.
    first = json.loads(run.stdout)["monitors"]["tables"]
    second = json.loads(stackyard("run", "--json", cwd=ours).stdout)["monitors"]["tables"]
    watched = sorted(t["table"] for t in first)
    assert watched == sorted(t["table"] for t in second)
    assert {"main.raw_orders", "main.raw_customers", "main.customer_totals"} <= set(watched)


def test_vars_and_a_local_package_work_from_a_separate_stackyard_project(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "vars_shop", tmp_path / "vars_shop")
    dbt_dir = tmp_path / "vars_shop" / "project"
    before = project_checksums(dbt_dir)
    # Without the var its seed is off and its model cannot parse, as with plain dbt: the
    # wiring is written, and the report says where vars go.
    adopted = stackyard("adopt", "dbt", str(dbt_dir), "--project", "stack", cwd=tmp_path)
    assert adopted.returncode == 1, adopted.stdout + adopted.stderr
    assert "vars it declares: load_source_data" in adopted.stdout
    assert "transform.vars" in adopted.stdout
    project = tmp_path / "stack"
    assert Project.load(project).transform_dir.resolve() == dbt_dir.resolve()
    assert (dbt_dir / "dbt_packages" / "money_macros").exists()  # dbt deps ran

    on = stackyard("run", "--vars", "{load_source_data: true}", "--json", cwd=project)
    assert on.returncode == 0, on.stdout[-3000:]
    with duckdb.connect(str(project / ".stackyard" / "dev.duckdb"), read_only=True) as con:
        assert con.execute("select round(sum(amount), 2) from main.payments").fetchone() == (22.49,)

    # The same from stackyard.yml.
    yml = project / "stackyard.yml"
    yml.write_text(yml.read_text().replace("vars: {}", "vars: {load_source_data: true}"))
    again = stackyard("run", "--force-build", "--json", cwd=project)
    assert again.returncode == 0, again.stdout[-3000:]
    assert project_checksums(dbt_dir) == before


def test_packages_copied_into_dbt_packages_are_used_without_fetching(tmp_path: Path) -> None:
    dbt_dir = tmp_path / "hub_shop"
    shutil.copytree(FIXTURES / "hub_shop", dbt_dir)
    adopted = stackyard("adopt", "dbt", str(dbt_dir), "--json", cwd=tmp_path)
    assert adopted.returncode == 0, adopted.stdout + adopted.stderr
    assert json.loads(adopted.stdout)["packages"] == ["dbt-labs/dbt_utils (hub.getdbt.com)"]
    run = stackyard("run", "--json", cwd=dbt_dir)
    assert run.returncode == 0, run.stdout[-3000:]
    assert not (dbt_dir / "package-lock.yml").exists()  # dbt deps was not run


def test_adopt_refuses_what_is_not_a_dbt_project_or_is_adopted_already(tmp_path: Path) -> None:
    nothing = stackyard("adopt", "dbt", str(tmp_path), cwd=tmp_path)
    assert nothing.returncode == 2
    assert "no dbt_project.yml" in " ".join((nothing.stdout + nothing.stderr).split())
    typo = stackyard("adopt", "dbt", "shp", cwd=tmp_path)
    assert typo.returncode == 2
    assert "shp does not exist" in " ".join((typo.stdout + typo.stderr).split())
    shutil.copytree(FIXTURES / "plain_shop", tmp_path / "shop")
    assert stackyard("adopt", "dbt", "shop", cwd=tmp_path).returncode == 0
    twice = stackyard("adopt", "dbt", "shop", cwd=tmp_path)
    assert twice.returncode == 2
    assert "is a stackyard project already" in " ".join((twice.stdout + twice.stderr).split())


@pytest.mark.parametrize("text", ["name: [oops\n", "- a list\n"])
def test_a_dbt_project_file_that_does_not_parse_is_a_usage_error(tmp_path: Path, text: str) -> None:
    """Not an unexpected error (exit 1): exit 2, naming the file, and nothing written."""
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "dbt_project.yml").write_text(text, encoding="utf-8")
    done = stackyard("adopt", "dbt", "shop", cwd=tmp_path)
    output = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 2, output
    assert "dbt_project.yml" in output and "unexpected error" not in output
    assert sorted(p.name for p in (tmp_path / "shop").iterdir()) == ["dbt_project.yml"]


def test_run_vars_must_be_a_mapping(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "plain_shop", tmp_path / "shop")
    assert stackyard("adopt", "dbt", "shop", cwd=tmp_path).returncode == 0
    bad = stackyard("run", "--vars", "[1, 2]", cwd=tmp_path / "shop")
    assert bad.returncode == 2
    assert "--vars takes a mapping" in " ".join((bad.stdout + bad.stderr).split())


def test_a_dbt_projects_own_profiles_file_is_never_overwritten(tmp_path: Path) -> None:
    """Even without adopt: transform.path at a project with its own profiles.yml."""
    shutil.copytree(FIXTURES / "plain_shop", tmp_path / "stack" / "dbt")
    (tmp_path / "stack" / "stackyard.yml").write_text(
        "name: stack\ntransform: {path: dbt}\nsources: {}\n"
    )
    own = (tmp_path / "stack" / "dbt" / "profiles.yml").read_text()
    project = Project.load(tmp_path / "stack")
    assert project.profiles_dir == tmp_path / "stack" / ".stackyard" / "dbt"
    run = stackyard("run", "--json", cwd=tmp_path / "stack")
    assert run.returncode == 0, run.stdout[-3000:]
    assert (tmp_path / "stack" / "dbt" / "profiles.yml").read_text() == own


def test_a_stackyard_source_is_linked_to_the_projects_own_dbt_source(tmp_path: Path) -> None:
    dbt_dir = tmp_path / "linked_shop"
    shutil.copytree(FIXTURES / "linked_shop", dbt_dir)
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "orders.csv").write_text("id,amount\n1,9.5\n2,12.25\n")
    # Its model reads a table nobody has loaded yet: the adoption reports, the run waits.
    assert stackyard("adopt", "dbt", str(dbt_dir), cwd=tmp_path).returncode == 0
    added = stackyard(
        "source", "add", "shop", "--kind", "filesystem", "--url", str(tmp_path / "exports"),
        "--table", "orders=orders.csv", "--primary-key", "orders=id", "--schema", "ecom",
        cwd=dbt_dir,
    )  # fmt: skip
    assert added.returncode == 0, added.stdout + added.stderr

    run = stackyard("run", "--select", "shop", "--force-build", "--json", cwd=dbt_dir)
    assert run.returncode == 0, run.stdout[-3000:]
    built = {n["name"] for n in json.loads(run.stdout)["nodes"] if n["status"] == "success"}
    assert "order_totals" in built  # found through the dbt source `ecom`, schema ecom

    # A selector that matches nothing is a usage error, not a successful empty run.
    nothing = stackyard("run", "--select", "no_such_model+", cwd=dbt_dir)
    assert nothing.returncode == 2
    assert "matches nothing" in " ".join((nothing.stdout + nothing.stderr).split())

    # A failed load (its file is gone) skips the project's own models downstream of it.
    (tmp_path / "exports" / "orders.csv").unlink()
    failed = stackyard("run", "--select", "shop", "--json", cwd=dbt_dir)
    result = json.loads(failed.stdout)
    assert failed.returncode == 1 and result["loads"][0]["status"] == "failed"
    skipped = {s["name"]: s["reason"] for s in result["skipped"]}
    assert "order_totals" in skipped and "shop" in skipped["order_totals"]


def test_a_dbt_failure_names_the_dbt_command_that_reproduces_it_as_typed(tmp_path: Path) -> None:
    """The profiles stackyard writes for an adopted project live in the stackyard project: the
    command in the hint carries --profiles-dir and --target, so it runs as stackyard ran it."""
    shutil.copytree(FIXTURES / "plain_shop", tmp_path / "shop")
    (tmp_path / "shop" / "profiles.yml").unlink(missing_ok=True)  # only stackyard's profiles
    assert stackyard("adopt", "dbt", "shop", "--project", "sy", cwd=tmp_path).returncode == 0
    (tmp_path / "shop" / "models" / "base" / "broken.sql").write_text("select {{ ref('x' }}\n")
    run = stackyard("run", "--json", cwd=tmp_path / "sy")
    assert run.returncode == 1
    [failed] = [s for s in json.loads(run.stdout)["steps"] if s["status"] == "failed"]
    profiles = (tmp_path / "sy" / ".stackyard" / "dbt").resolve()
    assert f"--profiles-dir {profiles} --target dev" in failed["detail"]
    command = failed["detail"].split("run `")[1].split("`")[0]
    again = subprocess.run(
        [str(BIN / command.split()[0]), *command.split()[1:]],
        cwd=tmp_path / "shop",
        capture_output=True,
        text=True,
    )
    assert "Compilation Error in model broken" in again.stdout + again.stderr


def test_what_adopt_and_a_run_write_under_dot_stackyard_is_owner_only(tmp_path: Path) -> None:
    ours = tmp_path / "plain_shop"
    shutil.copytree(FIXTURES / "plain_shop", ours)
    assert stackyard("adopt", "dbt", str(ours), cwd=tmp_path).returncode == 0
    run = stackyard("run", cwd=ours)  # builds models, loads nothing
    assert run.returncode == 0, run.stdout[-3000:]
    private = ours / ".stackyard"
    modes = {
        str(p.relative_to(ours)): oct(p.stat().st_mode & 0o777)
        for p in [private, private / ".gitignore", private / "dbt" / "profiles.yml"]
    }
    assert modes == {
        ".stackyard": "0o700",
        ".stackyard/.gitignore": "0o600",
        ".stackyard/dbt/profiles.yml": "0o600",
    }
    check = stackyard("security", "check", "--json", cwd=ours)
    assert check.returncode == 0, check.stdout
