"""Users runbook: `user add` declares people and service accounts (with a key pair whose
private half is written 0600 and never to stackyard.yml), `rotate-key` rotates through the
second slot without downtime, `remove` takes a user out; stackyard.yml keeps its comments."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stackyard.cli.main import app
from stackyard.context import Context
from stackyard.errors import ConfigError, UsageError
from stackyard.infra.snowflake import key_fingerprint
from stackyard.infra.users import private_key_files
from tests.infra.conftest import PgProject
from tests.infra.helpers import project

runner = CliRunner()


def test_user_add_service_writes_private_key_0600_and_public_key_to_yml(tmp_path: Path) -> None:
    path = project(tmp_path)
    result = runner.invoke(
        app,
        [
            "user",
            "add",
            "SVC_FIVETRAN",
            "--service",
            "--role",
            "ANALYTICS_SOURCES_READER",
            "--project",
            str(path),
        ],
    )
    assert result.exit_code == 0, result.output
    keys = list((path / ".stackyard" / "keys").glob("svc_fivetran-*.p8"))
    assert len(keys) == 1
    assert stat.S_IMODE(keys[0].stat().st_mode) == 0o600
    assert keys[0].read_text().startswith("-----BEGIN PRIVATE KEY-----")
    text = (path / "stackyard.yml").read_text()
    assert text.startswith("# test project")  # comments kept
    assert "PRIVATE" not in text
    declaration = Context(path).access().declaration()
    user = declaration.user("SVC_FIVETRAN")
    assert user is not None and user.kind == "service" and user.rsa_public_key
    assert user.roles == ("SVC_FIVETRAN",)
    assert "ANALYTICS_SOURCES_READER" in declaration.roles_held("SVC_FIVETRAN")
    plan = Context(path).access().plan("prod")
    create = next(
        s.statement for s in plan.steps if "CREATE USER IF NOT EXISTS SVC_FIVETRAN" in s.statement
    )
    assert f"RSA_PUBLIC_KEY = '{user.rsa_public_key}'" in create


def test_user_add_print_key_writes_no_file(tmp_path: Path) -> None:
    path = project(tmp_path)
    change = Context(path).users().add("SVC_DLT", service=True, print_key=True)
    assert change.private_key and change.private_key.startswith("-----BEGIN PRIVATE KEY-----")
    assert change.key_file is None and not (path / ".stackyard" / "keys").exists()
    assert Context(path).access().declaration().user("SVC_DLT").loader == "dlt"  # type: ignore[union-attr]


def test_user_add_person_and_remove(tmp_path: Path) -> None:
    path = project(tmp_path)
    users = Context(path).users()
    users.add("carol")
    assert Context(path).access().declaration().user("carol").roles == (  # type: ignore[union-attr]
        "ANALYTICS_DEVELOPER",
        "DEV_CAROL",
    )
    with pytest.raises(UsageError, match="already declared"):
        Context(path).users().add("carol")
    Context(path).users().remove("carol")
    assert Context(path).access().declaration().user("carol") is None
    with pytest.raises(UsageError, match="derived from the sources"):
        Context(path).users().remove("SVC_DLT")


def test_invalid_user_changes_write_nothing(tmp_path: Path) -> None:
    path = project(tmp_path)
    before = (path / "stackyard.yml").read_text()
    with pytest.raises(ConfigError, match="NOPE"):
        Context(path).users().add("dave", roles=["NOPE"])
    result = runner.invoke(app, ["user", "add", 'x"; DROP', "--project", str(path)])
    assert result.exit_code == 2
    assert (path / "stackyard.yml").read_text() == before


def test_a_user_whose_role_is_a_targets_own_login_is_refused(tmp_path: Path) -> None:
    targets = "pg:\n  type: postgres\n  user: acme_admin\n  database: wh\n"
    path = project(tmp_path, access="role_prefix: acme_\n", targets=targets)
    before = (path / "stackyard.yml").read_text()
    # Before: accepted, and the plan granted the person's roles to the applying user and took
    # the loader's role back from it.
    result = runner.invoke(app, ["user", "add", "admin", "--project", str(path)])
    assert result.exit_code == 2, result.output
    flat = " ".join(result.output.split())
    assert "its role would be the login of target 'pg'" in flat, flat
    assert (path / "stackyard.yml").read_text() == before
    assert runner.invoke(app, ["user", "add", "rita", "--project", str(path)]).exit_code == 0


def test_user_add_invalid_name_says_so_and_names_stackyard_yml(tmp_path: Path) -> None:
    path = project(tmp_path)
    before = (path / "stackyard.yml").read_text()
    result = runner.invoke(app, ["user", "add", "bob-x", "--project", str(path)])
    assert result.exit_code == 2, result.output
    flat = " ".join(result.output.split())
    assert "cannot add user 'bob-x': a user's name is letters, digits and _" in flat
    assert "'bob_x'" in flat and ".stackyard-" not in flat
    # Any edit stackyard.yml would refuse names the file and line, not a temporary file.
    result = runner.invoke(app, ["user", "add", "dave", "--role", "x-y", "--project", str(path)])
    assert result.exit_code == 2, result.output
    flat = " ".join(result.output.split())
    assert "stackyard.yml:" in flat and ".stackyard-" not in flat
    assert (path / "stackyard.yml").read_text() == before
    assert sorted(p.name for p in path.iterdir() if p.name.startswith(".stackyard-")) == []


def test_a_person_named_like_a_service_account_is_refused_at_once(tmp_path: Path) -> None:
    # `user add svc_x` wrote svc_x under access.people and exited 0; `policy check` and
    # `apply` then refused it by the naming rule.
    path = project(tmp_path)
    before = (path / "stackyard.yml").read_text()
    for name in ("svc_x", "SVC_X"):
        for dry in (["--dry-run"], []):
            result = runner.invoke(app, ["user", "add", name, *dry, "--project", str(path)])
            assert result.exit_code == 2, (name, dry, result.output)
            flat = " ".join(result.output.split())
            assert f"cannot add person '{name}': the name looks like a service account's" in flat
            assert "`stackyard user add SVC_X --service`" in flat, flat
            assert "choose a name that does not start with SVC_; nothing was written" in flat
            assert (path / "stackyard.yml").read_text() == before
    result = runner.invoke(app, ["user", "add", "svc_x", "--service", "--project", str(path)])
    assert result.exit_code == 0, result.output
    report = runner.invoke(app, ["policy", "check", "--json", "--project", str(path)])
    assert [v for v in json.loads(report.output)["violations"] if v["rule"] == "naming"] == []


def test_a_service_account_not_named_svc_is_refused_at_once(tmp_path: Path) -> None:
    # `user add bi_tool --service` (and `svc_`, no name after the prefix) wrote the account and
    # exited 0; `policy check` then refused bi_tool by the naming rule, and passed `SVC_`.
    path = project(tmp_path)
    before = (path / "stackyard.yml").read_text()
    for name, suggested in (("bi_tool", "SVC_BI_TOOL"), ("svc_", "SVC_<NAME>")):
        for dry in (["--dry-run"], []):
            result = runner.invoke(
                app, ["user", "add", name, "--service", *dry, "--project", str(path)]
            )
            assert result.exit_code == 2, (name, dry, result.output)
            flat = " ".join(result.output.split())
            assert f"cannot add service account '{name}': a service account's name is" in flat
            assert f"`stackyard user add {suggested} --service`; nothing was written" in flat
            assert (path / "stackyard.yml").read_text() == before
    person = runner.invoke(app, ["user", "add", "svc_", "--project", str(path)])
    assert person.exit_code == 2, person.output
    assert "`stackyard user add SVC_<NAME> --service`" in " ".join(person.output.split())


def test_rotate_key_uses_slot_two_then_finish_replaces_slot_one(tmp_path: Path) -> None:
    path = project(tmp_path)
    Context(path).users().add("SVC_DLT", service=True)
    first = Context(path).access().declaration().user("SVC_DLT")
    assert first is not None and first.rsa_public_key and not first.rsa_public_key_2
    change = Context(path).users().rotate_key("SVC_DLT", target="prod")
    assert change.action == "rotation started" and not change.applied  # Snowflake: SQL only
    assert change.plan is not None
    assert any("RSA_PUBLIC_KEY_2 = " in s for s in change.plan.statements())
    rotating = Context(path).access().declaration().user("SVC_DLT")
    assert rotating is not None and rotating.rsa_public_key == first.rsa_public_key
    assert rotating.rsa_public_key_2
    with pytest.raises(UsageError, match="in progress"):
        Context(path).users().rotate_key("SVC_DLT", target="prod")
    keys = path / ".stackyard" / "keys"
    (old_file,) = private_key_files(path, "SVC_DLT", first.rsa_public_key)
    (new_file,) = private_key_files(path, "SVC_DLT", rotating.rsa_public_key_2)
    finished = Context(path).users().rotate_key("SVC_DLT", finish=True, target="prod")
    done = Context(path).access().declaration().user("SVC_DLT")
    assert done is not None and done.rsa_public_key == rotating.rsa_public_key_2
    assert done.rsa_public_key_2 is None
    assert key_fingerprint(done.rsa_public_key) != key_fingerprint(first.rsa_public_key)
    # The retired key's private file goes: no client uses it, and left there it was a
    # liability the security check kept asking to rotate.
    assert finished.keys_removed == (old_file,)
    assert sorted(keys.glob("*.p8")) == [new_file]


@pytest.mark.postgres
def test_rotate_key_applies_on_postgres(pg_project: PgProject) -> None:
    users = pg_project.context().users()
    users.add("SVC_DLT", service=True)
    pg_project.context().access().apply(target="prod")
    change = pg_project.context().users().rotate_key("SVC_DLT", target="prod")
    assert change.applied
    assert not pg_project.context().access().plan("prod").has_changes
    assert any("not used on Postgres" in n for n in change.plan.notes)  # type: ignore[union-attr]


def test_rotate_key_changes_nothing_when_it_cannot_apply_its_key_alone(
    pg_project: PgProject,
) -> None:
    # A typo'd target (or a missing secret) left a new key in stackyard.yml and a key file,
    # exit 2, and the retry refused "a rotation is in progress". And with other changes
    # declared but not applied, the rotation applied them too, unreviewed.
    pg_project.context().users().add("SVC_DLT", service=True)
    pg_project.context().access().apply(target="prod")
    pg_project.context().users().add("bob")
    yml = (pg_project.path / "stackyard.yml").read_text()
    keys = sorted((pg_project.path / ".stackyard" / "keys").iterdir())
    for target, message in (("prdo", "did you mean 'prod'"), ("prod", "declared but not applied")):
        with pytest.raises(UsageError, match=message):
            pg_project.context().users().rotate_key("SVC_DLT", target=target)
        assert (pg_project.path / "stackyard.yml").read_text() == yml
        assert sorted((pg_project.path / ".stackyard" / "keys").iterdir()) == keys
    roles = pg_project.context().access().plan("prod")
    assert roles.has_changes  # bob is still only declared, not created
    # Once they are applied, the rotation goes through.
    pg_project.context().access().apply(target="prod")
    assert pg_project.context().users().rotate_key("SVC_DLT", target="prod").applied


def test_user_add_dry_run_refuses_what_the_real_add_refuses(tmp_path: Path) -> None:
    # The dry run listed steps and exited 0 for adds the real command refused with exit 2.
    path = project(tmp_path)
    assert runner.invoke(app, ["user", "add", "alice", "--project", str(path)]).exit_code == 0
    yml = (path / "stackyard.yml").read_text()
    refused = [
        (["bob", "--role", "REPORTNG_READER"], "did you mean 'REPORTING_READER'"),
        (["alice"], "already declared"),
        (["carol", "--key-backend", "aws"], "needs --service"),
        (["dave", "--schema", "x"], "needs --service and --loader"),
        (["SVC_X", "--service", "--key-backend", "bogus"], "cannot store a secret in 'bogus'"),
    ]
    for args, message in refused:
        for dry in (["--dry-run"], []):
            result = runner.invoke(app, ["user", "add", *args, *dry, "--project", str(path)])
            assert result.exit_code == 2, (args, dry, result.output)
            assert message in result.output, (args, dry, result.output)
    assert (path / "stackyard.yml").read_text() == yml
    assert not (path / ".stackyard" / "keys").exists() or not any(
        (path / ".stackyard" / "keys").iterdir()
    )


def test_removing_a_loaders_account_refuses_instead_of_saying_removed(tmp_path: Path) -> None:
    # `user remove` of an account the layout derives from a loader deleted only its key
    # entry, printed "removed" with the roles it "loses", and the next plan kept it all.
    path = project(tmp_path)
    Context(path).users().add("SVC_FIVETRAN", service=True, loader="fivetran")
    Context(path).users().add("SVC_DLT", service=True)
    before = (path / "stackyard.yml").read_text()
    for name, where in (("SVC_FIVETRAN", "access.databases.FIVETRAN"), ("SVC_DLT", "sources")):
        result = runner.invoke(app, ["user", "remove", name, "--project", str(path)])
        assert result.exit_code == 2, result.output
        flat = " ".join(result.output.split())
        assert f"{name} is the service account of loader" in flat and where in flat, flat
        assert "nothing was removed" in flat and "removed:" not in flat
        assert (path / "stackyard.yml").read_text() == before
        declared = Context(path).access().declaration().user(name)
        assert declared is not None and declared.rsa_public_key


def test_the_dry_run_of_a_loaders_account_names_an_undo_that_works(tmp_path: Path) -> None:
    # It said `stackyard user remove SVC_FIVETRAN`, which refuses a loader's account.
    path = project(tmp_path)
    args = ["user", "add", "SVC_FIVETRAN", "--service", "--loader", "fivetran"]
    result = runner.invoke(
        app, [*args, "--schema", "salesforce", "--dry-run", "--json", "--project", str(path)]
    )
    assert result.exit_code == 0, result.output
    undo = {s["action"]: s["undo"] for s in json.loads(result.output)["steps"]}
    assert undo["edit stackyard.yml"] == (
        "remove SVC_FIVETRAN's entry under access.service_accounts and "
        "access.databases.FIVETRAN from stackyard.yml (`user remove` refuses a loader's account)"
    )
    assert "user remove" not in undo["declare loader database"]


def test_removing_a_loaders_declared_account_refuses_as_import_writes_it(tmp_path: Path) -> None:
    # As `import access --replace` writes it: no derived layout, the account declared with
    # `loader:`. Removing it said "removed", and the next apply dropped the loads' account.
    access = """
        defaults: false
        databases:
          DLT: {loader: dlt, schemas: [shop_db]}
        service_accounts:
          SVC_DLT: {loader: dlt, roles: [DLT_DB_WRITER]}
        people:
          ALICE: {roles: [DLT_DB_READER]}
    """
    path = project(tmp_path, access)
    before = (path / "stackyard.yml").read_text()
    result = runner.invoke(app, ["user", "remove", "SVC_DLT", "--project", str(path)])
    assert result.exit_code == 2, result.output
    flat = " ".join(result.output.split())
    assert "SVC_DLT is the service account of loader dlt, which writes DLT" in flat, flat
    assert "access.databases.DLT" in flat and "nothing was removed" in flat
    assert (path / "stackyard.yml").read_text() == before
    # Another person or service account still goes.
    done = runner.invoke(app, ["user", "remove", "ALICE", "--project", str(path)])
    assert done.exit_code == 0, done.output


def test_user_remove_and_rotate_key_answer_in_json(tmp_path: Path) -> None:
    # README offers --json on every command; these two refused it ("No such option", exit 2).
    path = project(tmp_path)
    runner.invoke(app, ["user", "add", "SVC_BI", "--service", "--project", str(path)])
    runner.invoke(app, ["user", "add", "alice", "--project", str(path)])
    removed = runner.invoke(app, ["user", "remove", "alice", "--json", "--project", str(path)])
    assert removed.exit_code == 0, removed.output
    data = json.loads(removed.stdout)
    assert (data["name"], data["action"]) == ("alice", "removed")
    rotated = runner.invoke(
        app, ["user", "rotate-key", "SVC_BI", "-t", "prod", "--json", "--project", str(path)]
    )
    assert rotated.exit_code == 0, rotated.output
    data = json.loads(rotated.stdout)
    assert data["action"] == "rotation started" and data["plan"]["target"] == "prod"


def test_user_add_of_a_role_name_says_what_frees_it(tmp_path: Path) -> None:
    # Before: every clash with a role said "or `stackyard user remove` it first", which
    # removes users and refuses a role, whatever made it.
    path = project(tmp_path, "people: {alice: {}}\nroles: {FINANCE: {}}")
    yml = (path / "stackyard.yml").read_text()
    hints = {}
    for name in ("dev_alice", "finance", "dlt_db_writer", "analytics_developer", "alice"):
        with pytest.raises(UsageError) as refused:
            Context(path).users().add(name)
        hints[name] = refused.value.hint
    assert hints == {
        "dev_alice": "pick another name: DEV_ALICE is person alice's own role "
        "(ANALYTICS_DEVELOPER gives each developer one), which goes only with `stackyard "
        "user remove alice`; nothing was written",
        "finance": "pick another name, or rename or remove access.roles.FINANCE in "
        "stackyard.yml (`user remove` removes users, not roles); nothing was written",
        "dlt_db_writer": "pick another name: DLT_DB_WRITER is a role of database DLT, derived "
        "from it; nothing was written",
        "analytics_developer": "pick another name: ANALYTICS_DEVELOPER is one of the roles "
        "stackyard declares itself (docs/access-control.md); nothing was written",
        "alice": "pick another name, or `stackyard user remove alice` first; nothing was written",
    }
    assert (path / "stackyard.yml").read_text() == yml
    result = runner.invoke(app, ["user", "add", "dev_alice", "--dry-run", "--project", str(path)])
    assert result.exit_code == 2
    assert "already declared as role DEV_ALICE" in result.output
