"""A row with no value for its table's primary key goes to ``_rejected_rows`` with the reason
and the run says so; once the key is given upstream, the row loads as any other."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from stackyard import Context
from stackyard.project import init_project


def sqlite_project(root: Path, *statements: str) -> Path:
    init_project(root)
    execute(root, "CREATE TABLE acct (code text, name text, updated_at datetime)", *statements)
    yml = root / "stackyard.yml"
    yml.write_text(
        yml.read_text().replace(
            "sources: {}",
            "sources:\n  acc:\n    kind: sql_database\n    connection: {secret: LITE}\n"
            "    tables:\n      acct: {primary_key: code, cursor: updated_at}\n",
        )
    )
    return root


def execute(root: Path, *statements: str) -> None:
    db = sqlite3.connect(root / "sources" / "app.sqlite")
    for statement in statements:
        db.execute(statement)
    db.commit()
    db.close()


def test_a_sql_row_with_a_null_key_is_rejected_and_loads_once_the_key_is_given(
    tmp_path: Path,
) -> None:
    root = sqlite_project(
        tmp_path / "p", "INSERT INTO acct VALUES ('A', 'x', '2026-01-01 10:00:00')"
    )
    with Context(root, environ={"LITE": "sqlite:///sources/app.sqlite"}) as ctx:
        assert ctx.run(select=["acc"]).ok
        execute(root, "INSERT INTO acct VALUES (NULL, 'bad', '2026-01-02 10:00:00')")
        result = ctx.run(select=["acc"])
        assert result.ok, result.to_dict()
        (load,) = result.loads
        assert load.rejected == 1
        # It was merged in as a row of its own, never replaced once the key was fixed.
        assert ctx.sql("select code, name from acc.acct order by code").rows == (("A", "x"),)
        rejected = ctx.sql("select table_name, column_name, reason from acc._rejected_rows")
        assert rejected.rows == (("acct", "code", "no value for the key column code"),)
        assert ctx.run(select=["acc"]).loads[0].rejected == 0  # not rejected again

        execute(root, "UPDATE acct SET code = 'B', updated_at = '2026-01-03' WHERE code IS NULL")
        assert ctx.run(select=["acc"]).ok
        rows = ctx.sql("select code, name from acc.acct order by code").rows
        assert rows == (("A", "x"), ("B", "bad"))
