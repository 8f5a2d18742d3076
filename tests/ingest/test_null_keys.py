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


FEED = """
import dlt


@dlt.source
def feed():
    @dlt.resource(primary_key="id")
    def recs():
        yield [{"id": 1, "v": "a"}, ROW]

    return recs
"""


def test_a_python_row_with_a_null_key_is_rejected_and_later_rows_still_arrive(
    tmp_path: Path,
) -> None:
    root = tmp_path / "p"
    init_project(root)
    source = root / "sources" / "feed.py"
    yml = root / "stackyard.yml"
    yml.write_text(
        yml.read_text().replace(
            "sources: {}",
            "sources:\n  feed:\n    kind: python\n    path: sources/feed.py\n    function: feed\n",
        )
    )
    with Context(root) as ctx:
        source.write_text(FEED.replace("ROW", '{"id": None, "v": "b"}'))
        result = ctx.run(select=["feed"])
        # dlt refused the whole package in normalize, and every later run replayed it first
        # without reading the source again.
        assert result.ok, result.to_dict()
        assert result.loads[0].rejected == 1
        source.write_text(FEED.replace("ROW", '{"id": 3, "v": "c"}'))
        assert ctx.run(select=["feed"]).ok
        assert ctx.sql("select id, v from feed.recs order by id").rows == ((1, "a"), (3, "c"))
        rejected = ctx.sql("select table_name, column_name, raw from feed._rejected_rows")
        assert rejected.rows == (("recs", "id", '{"id": null, "v": "b"}'),)


def test_a_left_package_with_a_null_key_says_which_column_and_how_to_start_over() -> None:
    from dlt.common.schema.exceptions import CannotCoerceNullException

    from stackyard.errors import LoadError
    from stackyard.ingest.recovery import _unfinished

    try:
        try:
            raise CannotCoerceNullException("feed", "recs", "id")
        except CannotCoerceNullException as inner:
            raise RuntimeError("normalize step failed") from inner
    except RuntimeError as exc:
        error = _unfinished(exc, "feed")
    assert isinstance(error, LoadError)
    assert "table 'recs'" in str(error) and "key column 'id'" in str(error)
    assert "stackyard reload feed --yes" in (error.hint or "")
