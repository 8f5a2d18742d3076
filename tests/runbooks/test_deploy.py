"""`stackyard deploy prefect` never loses a hand edit: a file it wrote and nobody changed is
rewritten, one edited since (or never written by stackyard) stops the deploy with exit 2 and
nothing written, unless --force, which keeps the old text as <file>.bak first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from stackyard.cli.main import app
from stackyard.project import init_project

runner = CliRunner()
FILES = ("prefect.yaml", "prefect_flows.py")
# what a person adds: a work pool's settings, a parameter, a flow of their own
EDITS = {
    "prefect.yaml": "    job_variables: {env: {REGION: eu}}\n",
    "prefect_flows.py": "\n\n# our own flow lives here too\n",
}


def deploy(root: Path, *flags: str) -> tuple[int, str]:
    done = runner.invoke(app, ["deploy", "prefect", "--project", str(root), *flags])
    return done.exit_code, done.output


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "shop"
    init_project(root)
    entry = (
        "sources:\n  orders:\n    kind: filesystem\n    url: sources/files\n"
        "    tables: {orders: {glob: orders.csv, primary_key: id}}\n"
        "    schedule: {cron: '0 7 * * *', timezone: UTC}\n"
    )
    text = (root / "stackyard.yml").read_text().replace("sources: {}\n", entry)
    (root / "stackyard.yml").write_text(text)
    return root


def texts(root: Path) -> dict[str, str | None]:
    return {f: (root / f).read_text() if (root / f).exists() else None for f in FILES}


def set_cron(root: Path, cron: str) -> None:
    path = root / "stackyard.yml"
    path.write_text(path.read_text().replace("'0 7 * * *'", f"'{cron}'"))


def crons(root: Path) -> list[str]:
    document = yaml.safe_load((root / "prefect.yaml").read_text())
    return [s["cron"] for d in document["deployments"] for s in d.get("schedules", [])]


def test_deploying_twice_with_no_change_succeeds_and_writes_the_same(project: Path) -> None:
    assert deploy(project)[0] == 0
    first = texts(project)
    code, output = deploy(project)
    assert code == 0, output
    assert texts(project) == first
    assert not list(project.glob("*.bak"))


def test_an_unedited_file_follows_stackyard_yml(project: Path) -> None:
    assert deploy(project)[0] == 0
    set_cron(project, "30 6 * * *")
    code, output = deploy(project)
    assert code == 0, output
    assert crons(project) == ["30 6 * * *"]
    assert not list(project.glob("*.bak"))


@pytest.mark.parametrize("edited", FILES)
def test_a_hand_edit_stops_the_deploy_and_nothing_is_written(project: Path, edited: str) -> None:
    assert deploy(project)[0] == 0
    with (project / edited).open("a") as f:
        f.write(EDITS[edited])
    set_cron(project, "30 6 * * *")  # the deploy would change prefect.yaml
    (project / next(f for f in FILES if f != edited)).unlink()  # and write the other file anew
    before = texts(project)
    code, output = deploy(project)
    assert code == 2, output
    message = " ".join(output.split())
    assert f"{edited} was edited by hand" in message
    assert f"--force` overwrites, keeping the old {edited} as {edited}.bak" in message
    assert "--dry-run" in message
    assert texts(project) == before  # the edit kept, the missing file still missing
    assert not list(project.glob("*.bak"))


def test_a_file_stackyard_did_not_write_is_not_overwritten(project: Path) -> None:
    mine = "# our own deployments\ndeployments: []\n"
    (project / "prefect.yaml").write_text(mine)
    code, output = deploy(project)
    assert code == 2, output
    assert "prefect.yaml has no checksum" in " ".join(output.split())
    assert texts(project) == {"prefect.yaml": mine, "prefect_flows.py": None}


def test_force_keeps_a_hand_made_file_byte_for_byte(project: Path) -> None:
    mine = "# déploiements\ndeployments: []\n".encode("latin-1")  # not UTF-8
    (project / "prefect.yaml").write_bytes(mine)
    assert deploy(project)[0] == 2
    code, output = deploy(project, "--force")
    assert code == 0, output
    assert (project / "prefect.yaml.bak").read_bytes() == mine
    assert crons(project) == ["0 7 * * *"]


def test_force_keeps_the_edited_file_as_a_backup_then_rewrites_it(project: Path) -> None:
    assert deploy(project)[0] == 0
    with (project / "prefect.yaml").open("a") as f:
        f.write(EDITS["prefect.yaml"])
    edited = (project / "prefect.yaml").read_text()
    set_cron(project, "30 6 * * *")
    code, output = deploy(project, "--force", "--json")
    assert code == 0, output
    changes = {c["file"]: c for c in json.loads(output)["changes"]}
    assert changes["prefect.yaml"]["state"] == "edited"
    assert changes["prefect.yaml"]["backup"] == "prefect.yaml.bak"
    assert changes["prefect_flows.py"] == {
        "file": "prefect_flows.py",
        "state": "unchanged",
        "backup": None,
        "diff": "",
    }
    assert (project / "prefect.yaml.bak").read_text() == edited
    assert crons(project) == ["30 6 * * *"]
    assert "REGION" not in (project / "prefect.yaml").read_text()
    assert not (project / "prefect_flows.py.bak").exists()  # nothing of anyone's was lost there
    assert deploy(project)[0] == 0  # the rewritten file is stackyard's again


def test_a_dry_run_diff_line_is_printed_whole_however_long(project: Path) -> None:
    assert deploy(project)[0] == 0
    # A long line was wrapped at the terminal's width, and a diff read back (or applied)
    # from the output no longer matched the file.
    long = "    description: " + "rows of the shop loaded each morning, " * 4 + "then built\n"
    with (project / "prefect.yaml").open("a") as f:
        f.write(long)
    code, output = deploy(project, "--dry-run")
    assert code == 2, output  # edited by hand: the deploy itself would refuse
    assert "-" + long in output


def test_dry_run_shows_the_change_and_writes_nothing(project: Path) -> None:
    assert deploy(project)[0] == 0
    with (project / "prefect.yaml").open("a") as f:
        f.write(EDITS["prefect.yaml"])
    before = texts(project)
    code, output = deploy(project, "--dry-run")
    # Exit 2 as the deploy itself would: a dry run that exited 0 told a script it would pass.
    assert code == 2, output
    assert "-" + EDITS["prefect.yaml"] in output  # the hand edit a deploy would drop
    assert "deploy refuses to overwrite it without --force" in " ".join(output.split())
    assert "dry run: nothing written" in output
    assert "would refuse and write nothing (exit 2)" in " ".join(output.split())
    code, output = deploy(project, "--dry-run", "--json")
    assert code == 2 and json.loads(output)["changes"][0]["state"] == "edited", output
    assert texts(project) == before
    code, output = deploy(project, "--dry-run", "--force")
    assert code == 0, output
    assert "--force keeps it as prefect.yaml.bak" in " ".join(output.split())
    assert texts(project) == before and not list(project.glob("*.bak"))


def test_a_file_an_older_stackyard_wrote_unedited_is_brought_up_to_date(project: Path) -> None:
    # before the checksums, stackyard wrote the same text without its first line
    assert deploy(project)[0] == 0
    current = texts(project)
    for file, text in current.items():
        assert text is not None
        (project / file).write_text(text.partition("\n")[2])
    code, output = deploy(project)
    assert code == 0, output
    assert texts(project) == current
