"""A built Jaffle Shop example, made once per session and copied for each test that changes it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.in_process import stackyard_in_process

CLI = str(Path(sys.executable).with_name("stackyard"))


def stackyard(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a user would, in a project folder.

    In this process (a new process paid dbt's import at every command, a few seconds each);
    :func:`in_own_process` starts one for a test that needs it."""
    done = stackyard_in_process(*args, cwd=cwd, env={"NO_COLOR": "1"})
    if check and done.returncode != 0:
        raise AssertionError(
            f"stackyard {' '.join(args)} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
        )
    return done


def in_own_process(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """:func:`stackyard` as a process of its own."""
    done = subprocess.run([CLI, *args], cwd=cwd, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise AssertionError(
            f"stackyard {' '.join(args)} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
        )
    return done


@pytest.fixture(scope="session")
def built_example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`stackyard init --example jaffle_shop` and one successful run, in git."""
    root = tmp_path_factory.mktemp("example")
    stackyard("init", "shop", "--example", "jaffle_shop", cwd=root)
    project = root / "shop"
    stackyard("run", cwd=project)
    for args in (
        ["init", "-q"],
        ["add", "-A"],
        ["-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "example"],
    ):
        subprocess.run(["git", *args], cwd=project, check=True)
    return project


@pytest.fixture()
def example(built_example: Path, tmp_path: Path) -> Path:
    """A private copy of the built example (warehouse, git history and all)."""
    project = tmp_path / "shop"
    shutil.copytree(built_example, project, symlinks=True)
    return project
