"""Backups written with `backup --to` are found by `restore latest` (and kept out of another
folder's retention): the newest backup wins wherever it was written."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import duckdb
from typer.testing import CliRunner

from stackyard.cli.main import app
from stackyard.context import Context
from stackyard.project import init_project

runner = CliRunner()


def _cli(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_restore_latest_takes_the_newest_backup_even_one_written_with_to(tmp_path: Path) -> None:
    project = init_project(tmp_path / "shop", example="jaffle_shop").path
    path = Context(project).warehouse("dev").path  # type: ignore[attr-defined]
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as db:
        db.execute("CREATE SCHEMA raw; CREATE TABLE raw.orders AS SELECT 1 AS id")
    p = str(project)
    older = Path(_cli("backup", "-p", p).splitlines()[0])
    offsite = tmp_path / "offsite"
    newer = Path(_cli("backup", "--to", str(offsite), "-p", p).splitlines()[0])
    assert older.parent != newer.parent == offsite.resolve()

    plan = json.loads(_cli("restore", "latest", "--dry-run", "--json", "-p", p))
    assert str(newer) in json.dumps(plan), plan
    assert str(older) not in json.dumps(plan)

    # A third backup into backups.dir with backups.keep=1 prunes the older one there, never
    # the offsite copy.
    config = project / "stackyard.yml"
    config.write_text(config.read_text() + "backups:\n  keep: 1\n")
    third = Path(_cli("backup", "-p", p).splitlines()[0])
    assert not older.exists() and newer.exists() and third.exists()
    plan = json.loads(_cli("restore", "latest", "--dry-run", "--json", "-p", p))
    assert str(third) in json.dumps(plan)
    # A copy of the data is the owner's only, wherever it is written (it was 0755).
    assert all(stat.S_IMODE(b.stat().st_mode) == 0o700 for b in (newer, third))
    # The offsite disk unmounted: latest is taken from what is there, and the plan says so.
    offsite.rename(tmp_path / "unmounted")
    plan = json.loads(_cli("restore", "latest", "--dry-run", "--json", "-p", p))
    assert any(str(offsite.resolve()) in n and "not there" in n for n in plan["notes"]), plan


def test_a_backups_folder_that_cannot_be_written_is_refused_before_anything(
    tmp_path: Path,
) -> None:
    # A file given as --to, or a folder under one, ended in an unexpected error (exit 1).
    project = init_project(tmp_path / "shop", example="jaffle_shop").path
    path = Context(project).warehouse("dev").path  # type: ignore[attr-defined]
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as db:
        db.execute("CREATE SCHEMA raw; CREATE TABLE raw.orders AS SELECT 1 AS id")
    a_file = tmp_path / "not-a-folder"
    a_file.write_text("x")
    for to in (a_file, a_file / "below"):
        for extra in ([], ["--dry-run"], ["--json"]):
            result = runner.invoke(app, ["backup", "--to", str(to), *extra, "-p", str(project)])
            assert result.exit_code == 2, result.output
            assert "is a file, not a folder" in result.output, result.output
            assert "unexpected" not in result.output
    assert a_file.read_text() == "x"
    assert not (project / "backups").exists() or not any((project / "backups").iterdir())
    # A folder the permission check allows but no folder can be made in (/proc, even as
    # root): the same refusal, not an unexpected FileNotFoundError.
    result = runner.invoke(app, ["backup", "--to", "/proc/stackyard_test", "-p", str(project)])
    assert result.exit_code == 2, result.output
    assert "cannot write backups into /proc/stackyard_test" in result.output, result.output
    assert "unexpected" not in result.output
