"""`stackyard security check` on the example project: clean, it passes; with one planted
problem of each kind, it reports each one (exit 1, --json lists them by check)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stackyard.cli.main import app
from stackyard.project import init_project
from stackyard.runbooks.security import CHECKS

runner = CliRunner()
LIVE = Path(__file__).parents[1] / "infra" / "fixtures" / "snowflake_show_drifted.json"
SF_TARGET = """  sf:
    type: snowflake
    account: acme-xy12345
    user: SVC_STACKYARD
    role: SECURITYADMIN
    warehouse: ADMIN
    database: DLT
    password: {secret: SF_PASSWORD}
"""
SECRET_TOKEN = "crm_live_Zx81Lq0PwT5"


def git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        cwd=root,
        check=True,
        capture_output=True,
    )


def check(root: Path, *args: str) -> tuple[int, dict]:
    result = runner.invoke(app, ["security", "check", "-p", str(root), "--json", *args])
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.output)


@pytest.fixture()
def example(tmp_path: Path) -> Path:
    root = tmp_path / "shop"
    init_project(root, example="jaffle_shop")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "init")
    return root


def test_clean_example_project_passes(example: Path) -> None:
    code, report = check(example)
    assert code == 0, report
    assert report["ok"] and report["findings"] == []
    assert report["checks"] == list(CHECKS)
    assert set(report["skipped"]) == {"excess-privileges"}
    result = runner.invoke(app, ["security", "check", "-p", str(example)])
    assert result.exit_code == 0 and "nothing found" in result.output


def test_one_planted_problem_of_each_kind_is_reported(example: Path) -> None:
    private = example / ".stackyard"
    # file-permissions: a secrets file others can read
    private.mkdir(exist_ok=True)
    (private / "secrets.toml").write_text(
        f'CRM_TOKEN = "{SECRET_TOKEN}"\nSF_PASSWORD = "pw-123456789"\n'
    )
    os.chmod(private / "secrets.toml", 0o644)
    # key-rotation: a private key written 200 days ago
    (private / "keys").mkdir(mode=0o700)
    key = private / "keys" / "svc_dlt-1a2b3c4d.p8"
    key.write_text("-----BEGIN PRIVATE KEY-----\nMII...\n-----END PRIVATE KEY-----\n")
    os.chmod(key, 0o600)
    old = time.time() - 200 * 86_400
    os.utime(key, (old, old))
    config = example / "stackyard.yml"
    text = config.read_text()
    # password-auth: a Snowflake target with a password
    text = text.replace("targets:\n", "targets:\n" + SF_TARGET, 1)
    # secrets-in-config: the token pasted into a header; network-deadlines: an hour's timeout
    text = text.replace(
        "\ndefaults:",
        f"""  crm:
    kind: rest_api
    base_url: https://crm.example.com/v1
    headers: {{X-Token: {SECRET_TOKEN}}}
    retries: {{timeout_seconds: 3600}}
    endpoints: {{people: {{path: people}}}}
  events:
    kind: python
    path: sources/events.py
    function: events

defaults:""",
    )
    # public-access: a grant to PUBLIC
    text += "\naccess:\n  grants:\n    - {role: PUBLIC, read: [DLT]}\n"
    config.write_text(text)
    (example / "sources" / "events.py").write_text(
        "import dlt\nimport requests\n\n\n@dlt.source\ndef events():\n"
        "    @dlt.resource\n    def rows():\n"
        "        yield requests.get('https://events.example.com/all').json()\n\n"
        "    return rows\n"
    )
    # secrets-in-git-history: a DSN with a password, committed and then removed
    (example / "notes.txt").write_text("prod: postgresql://bob:Hunter2Secret@db.example.com/shop\n")
    git(example, "add", "notes.txt")
    git(example, "commit", "-qm", "notes")
    (example / "notes.txt").unlink()
    git(example, "commit", "-qam", "remove notes")

    code, report = check(example, "-t", "sf", "--live-state", str(LIVE))
    assert code == 1
    by_check: dict[str, list[dict]] = {}
    for finding in report["findings"]:
        by_check.setdefault(finding["check"], []).append(finding)
    assert set(by_check) == set(CHECKS), sorted(by_check)
    assert report["skipped"] == {}
    assert any(f["where"] == ".stackyard/secrets.toml" for f in by_check["file-permissions"])
    assert any("stackyard.yml:" in f["where"] for f in by_check["secrets-in-config"])
    assert any("notes.txt" in f["where"] for f in by_check["secrets-in-git-history"])
    assert any("PUBLIC" in f["message"] for f in by_check["public-access"])
    assert any(f["where"] == "targets.sf" for f in by_check["password-auth"])
    assert any("200 days old" in f["message"] for f in by_check["key-rotation"])
    deadlines = {f["where"] for f in by_check["network-deadlines"]}
    assert "sources.crm.retries.timeout_seconds" in deadlines
    assert "sources/events.py:9" in deadlines
    assert by_check["excess-privileges"]
    # findings name the place, never the secret itself
    output = json.dumps(report)
    for secret in (SECRET_TOKEN, "Hunter2Secret", "pw-123456789"):
        assert secret not in output
    human = runner.invoke(
        app, ["security", "check", "-p", str(example), "-t", "sf", "--live-state", str(LIVE)]
    )
    assert human.exit_code == 1
    assert f"findings in {len(CHECKS)} checks" in human.output


def test_stackyard_dir_committed_and_not_ignored(example: Path) -> None:
    (example / ".gitignore").write_text("")
    private = example / ".stackyard"
    private.mkdir(exist_ok=True)
    (private / "secrets.toml").write_text('X = "abcdefgh12345"\n')
    os.chmod(private / "secrets.toml", 0o600)
    git(example, "add", "-A")
    git(example, "commit", "-qm", "oops")
    code, report = check(example)
    assert code == 1
    messages = [f["message"] for f in report["findings"] if f["check"] == "secrets-in-git-history"]
    assert any(".stackyard/secrets.toml was committed" in m for m in messages), messages
    assert any("not git-ignored" in m for m in messages), messages
    assert "abcdefgh12345" not in json.dumps(report)


def test_no_git_history_is_skipped_not_failed(tmp_path: Path) -> None:
    root = tmp_path / "p"
    init_project(root)
    shutil.rmtree(root / ".git", ignore_errors=True)
    code, report = check(root)
    assert code == 0
    assert "secrets-in-git-history" in report["skipped"]


def test_a_password_url_the_config_refuses_is_a_finding_not_a_config_error(
    example: Path,
) -> None:
    config = example / "stackyard.yml"
    text = config.read_text()
    assert "connection: sqlite:///sources/jaffle_app.sqlite" in text
    # The config refuses a connection URL with a password, so the project does not load.
    config.write_text(
        text.replace(
            "connection: sqlite:///sources/jaffle_app.sqlite",
            "connection: postgresql://loader:Hunter2Secret@db.example.com/app",
        )
    )
    line = next(i for i, t in enumerate(config.read_text().splitlines(), 1) if "Hunter2" in t)
    code, report = check(example)
    assert code == 1
    assert [(f["check"], f["where"]) for f in report["findings"]] == [
        ("secrets-in-config", f"stackyard.yml:{line}")
    ]
    assert "a URL with a password" in report["findings"][0]["message"]
    # What needs the validated config is skipped, and says why.
    assert "does not validate" in report["skipped"]["network-deadlines"]
    assert "Hunter2Secret" not in json.dumps(report)
    human = runner.invoke(app, ["security", "check", "-p", str(example)])
    assert human.exit_code == 1, human.output
    assert "secrets-in-config stackyard.yml:" in human.output


def test_an_invalid_config_without_a_secret_is_still_a_config_error(example: Path) -> None:
    config = example / "stackyard.yml"
    config.write_text(config.read_text().replace("targets:", "targetz:", 1))
    result = runner.invoke(app, ["security", "check", "-p", str(example)])
    assert result.exit_code == 2, result.output
    assert "targetz" in result.output


def test_dlt_secrets_file_is_ignored_by_init_and_checked(tmp_path: Path) -> None:
    root = tmp_path / "p"
    init_project(root)
    (root / ".dlt").mkdir()
    secrets = root / ".dlt" / "secrets.toml"
    secrets.write_text('x = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"\n')
    os.chmod(secrets, 0o644)
    git(root, "init", "-q")
    ignored = subprocess.run(["git", "check-ignore", "-q", ".dlt/secrets.toml"], cwd=root)
    assert ignored.returncode == 0  # init's .gitignore covers it
    code, report = check(root)
    assert code == 1
    assert [(f["check"], f["where"]) for f in report["findings"]] == [
        ("file-permissions", ".dlt/secrets.toml")
    ]
    os.chmod(secrets, 0o600)
    (root / ".gitignore").write_text(".stackyard/\n")
    code, report = check(root)
    assert [(f["check"], f["where"]) for f in report["findings"]] == [
        ("secrets-in-git-history", ".dlt/secrets.toml")
    ]
    assert "ghp_" not in json.dumps(report)


def test_the_commit_that_deletes_a_committed_secret_is_not_a_finding(example: Path) -> None:
    private = example / ".stackyard"
    private.mkdir(exist_ok=True)
    (private / "secrets.toml").write_text('X = "abcdefgh12345"\n')
    os.chmod(private / "secrets.toml", 0o600)
    git(example, "add", "-f", ".stackyard/secrets.toml")
    git(example, "commit", "-qm", "oops")
    git(example, "rm", "-q", "--cached", ".stackyard/secrets.toml")
    git(example, "commit", "-qm", "untrack the secrets")
    added = subprocess.run(
        ["git", "log", "-1", "--format=%h", "HEAD~1"], cwd=example, capture_output=True, text=True
    ).stdout.strip()
    _, report = check(example)
    # Both findings point at the commit that added it; none at the one that removed it.
    assert [
        (f["where"], f["message"])
        for f in report["findings"]
        if f["check"] == "secrets-in-git-history"
    ] == [
        (f"commit {added}", ".stackyard/secrets.toml was committed (it is private to the machine)"),
        (f"commit {added}: .stackyard/secrets.toml", "the value of a secret in use was committed"),
    ]
