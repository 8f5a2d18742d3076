"""Property: any command line for the commands that read a project answers exit 0, 1 or 2
with a message, never a traceback or "unexpected error"."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from stackyard.cli.main import app
from stackyard.project import init_project
from tests.fuzz.conftest import examples

runner = CliRunner()
WORDS = [
    "-t",
    "dev",
    "prod",
    "nope",
    "--json",
    "--limit",
    "-1",
    "0",
    "99999999999999999999",
    "--select",
    "shop_db",
    "--rotation-days",
    "PUBLIC",
    "pg_x",
    "'; drop table x; --",
    "\x00",
    "é",
    "--project",
    "/nonexistent",
    "--help",
    "-s",
    "",
    "a" * 300,
    "--live-state",
]
COMMANDS = [
    ["status"],
    ["sql"],
    ["plan"],
    ["policy", "check"],
    ["security", "check"],
    ["user", "add"],
    ["user", "remove"],
    ["source", "show"],
    ["source", "list"],
    ["health"],
    ["access", "review"],
]
argv = st.tuples(
    st.sampled_from(COMMANDS),
    st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=15)), max_size=5),
)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli") / "shop"
    init_project(root)
    return root


@settings(max_examples=examples(30))
@given(args=argv)
def test_any_command_line(template: Path, tmp_path_factory, args) -> None:  # type: ignore[no-untyped-def]
    command, rest = args
    root = tmp_path_factory.mktemp("p") / "shop"
    shutil.copytree(template, root)
    result = runner.invoke(app, [*command, *rest, "--project", str(root)])
    output = result.output
    # CliRunner catches what escapes the CLI: only SystemExit (an exit code) may.
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert result.exit_code in (0, 1, 2), (result.exit_code, output, result.exception)
    assert "Traceback" not in output and "unexpected error" not in output, output
    if result.exit_code != 0:
        assert output.strip(), "a failure without a message"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                ["grants", "users", "roles", "name", "granted_to", "grantee_name", "x"]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=examples(40))
@given(show=json_values)
def test_any_recorded_live_state(tmp_path_factory, show) -> None:  # type: ignore[no-untyped-def]
    import json

    from tests.infra.helpers import project

    root = project(tmp_path_factory.mktemp("l"))
    (root / "live.json").write_text(json.dumps(show))
    result = runner.invoke(
        app,
        ["policy", "check", "-t", "prod", "--live-state", str(root / "live.json"), "-p", str(root)],
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert result.exit_code in (0, 1, 2) and "unexpected error" not in result.output, result.output


@settings(max_examples=examples(40))
@given(path=st.text(max_size=300) | st.text(alphabet="x/.", min_size=1000, max_size=6000))
def test_any_project_path(path: str) -> None:
    result = runner.invoke(app, ["status", "--project", path])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert result.exit_code == 2 and "unexpected error" not in result.output, result.output
