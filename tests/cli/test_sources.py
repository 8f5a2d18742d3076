"""`stackyard source list / show` as a user reads them in an 80-column terminal."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from stackyard.cli.common import out
from stackyard.cli.main import app
from stackyard.project import init_project
from tests.conftest import write

runner = CliRunner()

SOURCE = "customer_relationship_management_contacts_export"
TABLE = "customer_contacts_with_rather_long_names"


def cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize("width", [80, 200])
def test_source_list_and_show_never_cut_a_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    project = init_project(tmp_path / "shop").path
    write(project / "sources/crm/contacts.csv", "id,name\n1,Ada\n2,Grace\n")
    code, output = cli(
        "source",
        "add",
        SOURCE,
        "--kind",
        "filesystem",
        "--url",
        "sources/crm",
        "--table",
        f"{TABLE}=*.csv",
        "--primary-key",
        f"{TABLE}=id",
        "-p",
        str(project),
        "--json",
    )
    assert code == 0, output
    monkeypatch.setattr(out, "_width", width)

    code, output = cli("source", "list", "-p", str(project))
    assert code == 0, output
    assert "…" not in output
    lines = output.splitlines()
    assert all(len(line) <= width for line in lines)
    # the source and its schema, each whole
    assert output.count(SOURCE) == 2, output
    assert "filesystem" in output and "pass" in output

    code, output = cli("source", "show", SOURCE, "-p", str(project))
    assert code == 0, output
    assert "…" not in output
    lines = output.splitlines()
    assert all(len(line) <= width for line in lines)
    assert any(TABLE in line for line in lines), output
    assert any(f"stg_dlt__{TABLE}" in line for line in lines), output


def test_source_add_reports_rows_its_first_load_collapsed_as_run_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before: "loaded contacts: 2 rows" for three rows sent, the third sharing id 1 with the
    # first, while `stackyard run` said "1 collapsed (duplicate keys)" for the same file.
    monkeypatch.setattr(out, "_width", 200)
    project = init_project(tmp_path / "shop").path
    write(project / "sources/crm/contacts.csv", "id,name\n1,Ada\n2,Grace\n1,Ada Lovelace\n")
    code, output = cli(
        "source", "add", "crm", "--kind", "filesystem", "--url", "sources/crm",
        "--table", "contacts=*.csv", "--primary-key", "contacts=id", "-p", str(project),
    )  # fmt: skip
    assert code == 0, output
    assert "  loaded contacts: 2 rows, 1 row sharing a key collapsed (the latest kept)\n" in output
