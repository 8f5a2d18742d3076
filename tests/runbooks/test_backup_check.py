"""A DuckDB backup reads itself back before it deletes older ones: a copy of a warehouse file
damaged in blocks nothing had read since must not replace the good backups."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from stackyard.cli.main import app
from stackyard.project import init_project

runner = CliRunner()


def _cli(project: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "--project", str(project)])
    return result.exit_code, result.output


def test_a_backup_of_a_damaged_file_deletes_no_older_backup(tmp_path: Path) -> None:
    project = init_project(tmp_path / "shop").path
    config = project / "stackyard.yml"
    config.write_text(config.read_text() + "backups:\n  keep: 2\n  dir: ../saved\n")
    code, out = _cli(
        project, "sql", "CREATE TABLE t AS SELECT i, 'row ' || i AS s FROM range(2000000) r(i)"
    )
    assert code == 0, out
    saved = tmp_path / "saved"
    for _ in range(2):
        code, out = _cli(project, "backup", "--json")
        assert code == 0, out
    good = sorted(p.name for p in saved.iterdir())
    assert len(good) == 2

    # Damage a data block in the middle of the file: counts (metadata) still answer.
    warehouse = project / ".stackyard" / "dev.duckdb"
    with warehouse.open("r+b") as handle:
        handle.seek(warehouse.stat().st_size // 2)
        handle.write(b"\xa5" * 4096)
    code, out = _cli(project, "sql", "select count(*) as n from t", "--json")
    assert code == 0 and '"n": 2000000' in out, out

    code, out = _cli(project, "backup", "--dry-run", "--json")
    steps = [s["kind"] for s in json.loads(out)["steps"]]
    assert steps.index("copy_file") < steps.index("read_back") < steps.index("prune")
    # Before: "✔ backed up", and the oldest good backup was deleted (backups.keep).
    code, out = _cli(project, "backup")
    assert code == 1, out
    assert "is damaged" in out and "no older backup was" in out, out
    assert sorted(p.name for p in saved.iterdir()) == good  # the damaged copy went, not these

    # The newest good backup restores the data as it was.
    code, out = _cli(project, "restore", str(saved / good[-1]), "--yes")
    assert code == 0, out
    code, out = _cli(project, "sql", "select count(*) as n, sum(i) as s from t", "--json")
    assert '"n": 2000000' in out and str(sum(range(2000000))) in out, out


def test_verify_reads_a_healthy_copy_back_and_records_its_content(tmp_path: Path) -> None:
    project = init_project(tmp_path / "shop").path
    code, out = _cli(project, "sql", "CREATE TABLE t AS SELECT 1 AS i")
    assert code == 0, out
    code, out = _cli(project, "backup")
    assert code == 0 and "not read back yet" in out and "--verify" in out, out
    code, out = _cli(project, "backup", "--verify", "--json")
    assert code == 0, out
    (table,) = json.loads(out)["tables"]
    assert (table["table"], table["rows"]) == ("t", 1) and table["content_hash"]
    code, out = _cli(project, "restore", "latest", "--yes")
    assert code == 0, out
