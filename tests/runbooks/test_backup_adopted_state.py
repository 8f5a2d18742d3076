"""An adopted dlt source keeps its team's pipeline name, and its state folder sits under
``pipelines/<target>/``: backup and restore carry it like every other pipeline's."""

from __future__ import annotations

from pathlib import Path

from stackyard.project import init_project
from tests.runbooks.test_restore_drill import cli


def test_an_adopted_pipelines_state_is_backed_up_and_restored(tmp_path: Path) -> None:
    project = init_project(tmp_path / "shop").path
    cli("sql", "CREATE TABLE t AS SELECT range AS i FROM range(10)", "--project", str(project))
    pipelines = project / ".stackyard" / "pipelines"
    ours = pipelines / "shop__db__dev" / "state.json"
    adopted = pipelines / "dev" / "team_events" / "state.json"
    other_target = pipelines / "prod" / "team_events" / "state.json"
    for path in (ours, adopted, other_target):
        path.parent.mkdir(parents=True)
        path.write_text('{"cursor": 1}')

    backup = Path(cli("backup", "--project", str(project)).splitlines()[0].strip())
    saved = backup / "state" / "pipelines"
    assert (saved / "shop__db__dev" / "state.json").is_file()
    assert (saved / "dev" / "team_events" / "state.json").is_file()
    assert not (saved / "prod").exists()  # another target's state is not this backup's

    for path in (ours, adopted, other_target):
        path.write_text('{"cursor": 2}')  # state moved on after the backup
    cli("restore", str(backup), "--yes", "--project", str(project))
    assert ours.read_text() == '{"cursor": 1}'
    assert adopted.read_text() == '{"cursor": 1}'  # back to the backup's cursor
    assert other_target.read_text() == '{"cursor": 2}'  # untouched
    aside = sorted(pipelines.glob(".before-restore-*"))
    assert len(aside) == 1
    assert (aside[0] / "dev" / "team_events" / "state.json").read_text() == '{"cursor": 2}'
