"""``stackyard doctor`` reads every row of a DuckDB warehouse: a file damaged in blocks no
query had read since passed every check ("healthy"), while reading those rows failed."""

from __future__ import annotations

from pathlib import Path

from stackyard.project import init_project
from tests.runbooks.test_doctor import checks, cli, doctor


def test_a_damaged_block_is_a_finding_naming_the_table_and_the_backup(tmp_path: Path) -> None:
    project = init_project(tmp_path / "shop").path
    cli(
        project,
        "sql",
        "CREATE TABLE orders AS SELECT i, 'order ' || i AS note FROM range(2000000) r(i)",
    )
    cli(project, "backup")
    healthy = doctor(project, code=0)
    assert any(p.startswith("blocks: every row of 1 table (") for p in healthy["passed"])

    warehouse = project / ".stackyard" / "dev.duckdb"
    with warehouse.open("r+b") as handle:
        handle.seek(warehouse.stat().st_size // 2)
        handle.write(b"\xa5" * 4096)
    assert '"n": 2000000' in cli(project, "sql", "select count(*) as n from orders", "--json")
    report = doctor(project, code=1)
    assert checks(report) == ["blocks"]
    (finding,) = report["findings"]
    assert "is damaged" in finding["what"] and "(reading main.orders)" in finding["what"]
    assert "`stackyard restore latest --yes`" in finding["fix"]
    assert "1 finding on target 'dev'" in cli(project, "doctor", code=1)
