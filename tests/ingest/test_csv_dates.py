"""CSV dates whose order of day and month only the values suggest: two files of one table once
loaded 03/04/2026 as 3 April (beside 13/04/2026) and 4 March (beside 12/25/2026). Such a
file is refused until the table sets its format, and then every file reads in it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from stackyard import Context
from stackyard.errors import LoadError
from stackyard.ingest.csv_dates import DateFormats
from stackyard.ingest.files import stage_file
from tests.ingest.file_projects import file_project

DAY_FIRST = "id,d\n1,13/04/2026\n2,03/04/2026\n"
MONTH_FIRST = "id,d\n3,03/04/2026\n4,12/25/2026\n"


def _stage(tmp_path: Path, text: str, dates: DateFormats | None = None, **kw: object) -> list:
    path = tmp_path / "a.csv"
    path.write_text(text)
    con = duckdb.connect()
    rejected = stage_file(
        con, "t", str(path), file_format="csv", table="t", display_name="a.csv",
        dates=dates, **kw,
    )  # fmt: skip
    return [rejected, con.execute("SELECT * FROM t ORDER BY 1").fetchall()]


@pytest.mark.parametrize(
    "text",
    [
        DAY_FIRST,
        "id,d\n1,03/04/2026\n",  # either way round: DuckDB reads it day-first
        "id,d\n1,03-04-26\n",  # read as 2003-04-26
        "id;ts\n1;03.04.2026 10:00:00\n",
    ],
)
def test_a_guessed_day_and_month_order_is_refused_naming_what_to_set(
    tmp_path: Path, text: str
) -> None:
    delimiter = ";" if ";" in text else ","
    with pytest.raises(LoadError) as caught:
        _stage(tmp_path, text, delimiter=delimiter)
    message = str(caught.value)
    assert "a.csv" in message and "table t" in message
    assert "format: '" in message and "this load wrote nothing" in message


def test_iso_and_year_first_dates_need_no_format(tmp_path: Path) -> None:
    rejected, rows = _stage(tmp_path, "id,d,t\n1,2026-04-03,2026-04-03 10:00:00\n")
    assert rejected == [] and rows == [(1, dt.date(2026, 4, 3), dt.datetime(2026, 4, 3, 10))]
    rejected, rows = _stage(tmp_path, "id,d\n1,2026/04/03\n")
    assert rows == [(1, dt.date(2026, 4, 3))]


def test_a_column_the_table_keeps_as_text_is_not_read_as_dates(tmp_path: Path) -> None:
    _, rows = _stage(tmp_path, DAY_FIRST, column_types={"d": "VARCHAR"})
    assert rows == [(1, "13/04/2026"), (2, "03/04/2026")]


def test_with_the_format_set_every_value_reads_in_it_and_others_are_rejected(
    tmp_path: Path,
) -> None:
    formats = DateFormats("%m/%d/%Y")
    rejected, rows = _stage(tmp_path, MONTH_FIRST, formats)
    assert rejected == [] and rows == [(3, dt.date(2026, 3, 4)), (4, dt.date(2026, 12, 25))]
    # A later file (the table's column is a date now) with a day-first value: its row is
    # rejected with its line, never read the other way round.
    rejected, rows = _stage(tmp_path, DAY_FIRST, formats, column_types={"d": "DATE"})
    assert rows == [(2, dt.date(2026, 3, 4))]
    assert [(r.line, r.raw) for r in rejected] == [(2, "1,13/04/2026")]


def test_a_table_of_two_files_loads_once_its_format_is_set(tmp_path: Path) -> None:
    root = file_project(
        tmp_path, "{t: {glob: '*.csv'}}", {"a.csv": DAY_FIRST, "b.csv": MONTH_FIRST}
    )
    ctx = Context(root)
    (load,) = ctx.run().loads
    assert load.status == "failed" and "date_format: '%d/%m/%Y'" in str(load.error)
    assert not ctx.sql(
        "select count(*) from information_schema.tables where table_name = 't'"
    ).rows[0][0]

    config = root / "stackyard.yml"
    config.write_text(
        config.read_text().replace("{glob: '*.csv'}", "{glob: '*.csv', date_format: '%m/%d/%Y'}")
    )
    files = root / "sources" / "files"
    (files / "a.csv").rename(tmp_path / "a.csv")
    (load,) = Context(root).run().loads
    assert (load.status, load.rows) == ("loaded", 2), load.error
    (tmp_path / "a.csv").rename(files / "a.csv")
    (load,) = Context(root).run().loads
    # The table's column is a date: a.csv's 13/04/2026 is no month-first date and is
    # rejected with its line; its 03/04/2026 reads as 4 March, as b.csv's does.
    assert (load.status, load.rows, load.rejected) == ("loaded", 3, 1), load.error
    rows = Context(root).sql("select id, d from f.t order by id").rows
    assert rows == ((2, dt.date(2026, 3, 4)), (3, dt.date(2026, 3, 4)), (4, dt.date(2026, 12, 25)))


def test_dates_in_one_file_and_text_in_another_load_as_text(tmp_path: Path) -> None:
    # As one file holding both files' rows is read (an Arrow error stopped the load).
    files = {"a.csv": "id,d\n1,2026-04-03\n", "b.csv": "id,d\n2,unknown\n"}
    root = file_project(tmp_path, "{t: {glob: '*.csv'}}", files)
    (load,) = Context(root).run().loads
    assert (load.status, load.rows) == ("loaded", 2), load.error
    rows = Context(root).sql("select id, d from f.t order by id").rows
    assert rows == ((1, "2026-04-03"), (2, "unknown"))
