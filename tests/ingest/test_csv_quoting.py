"""A CSV's "" is an empty string where its writer tells it from a missing value (an empty
field), and stays NULL where the writer quotes every field and writes both as ""."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from stackyard import Context
from stackyard.errors import LoadError
from stackyard.ingest.csv_quoting import quotes_only_when_needed
from stackyard.ingest.files import stage_file
from tests.ingest.file_projects import file_project

# As Postgres' COPY … CSV and DuckDB's COPY write them: NULL empty, '' quoted.
EXPORTED = 'id,name,note\n1,"",x\n2,,y\n3,"a,b",\n'
# Every field quoted (Python's csv.QUOTE_ALL): a missing value and '' are both "".
ALL_QUOTED = '"id","name","note"\n"1","","x"\n"2","","y"\n'


def _rows(tmp_path: Path, text: str) -> tuple[tuple[object, ...], ...]:
    root = file_project(tmp_path, "{t: {glob: '*.csv', primary_key: id}}", {"people.csv": text})
    ctx = Context(root)
    (load,) = ctx.run().loads
    assert (load.status, load.rows) == ("loaded", text.count("\n") - 1)
    rows = ctx.sql("select id, name, note from f.t order by id").rows
    ctx.close()
    return rows


def test_an_exported_empty_string_loads_as_empty_not_null(tmp_path: Path) -> None:
    assert _rows(tmp_path, EXPORTED) == ((1, "", "x"), (2, None, "y"), (3, "a,b", None))


def test_a_file_that_quotes_everything_keeps_reading_quoted_empties_as_null(
    tmp_path: Path,
) -> None:
    assert _rows(tmp_path, ALL_QUOTED) == ((1, None, "x"), (2, None, "y"))


def test_the_writer_is_told_by_its_unquoted_fields(tmp_path: Path) -> None:
    cases = {
        EXPORTED: True,
        ALL_QUOTED: False,
        # QUOTE_NONNUMERIC: numbers bare, every text quoted
        'id,name\n1,"a"\n2,""\n': False,
        # bare text after a quoted header
        '"id","name"\n1,bob\n': True,
        # a quoted field over two lines, then a bare empty field
        'id,name,note\n1,"two\nlines",\n': True,
        # semicolons
        'id;name\n1;"";\n': True,
    }
    for text, expected in cases.items():
        path = tmp_path / "f.csv"
        path.write_text(text)
        delimiter = ";" if ";" in text else ","
        assert quotes_only_when_needed(str(path), delimiter) is expected, text
    # A sample that ends inside the file says nothing of the record it cuts.
    path.write_text('"id","name"\n' + '"1","a"\n' * 10 + "2,bob\n")
    assert quotes_only_when_needed(str(path), ",", sample_bytes=30) is False
    assert quotes_only_when_needed(str(path), ",") is True


def _load(tmp_path: Path, text: str) -> tuple[object, ...]:
    root = file_project(tmp_path, "{t: {glob: '*.csv', primary_key: id}}", {"people.csv": text})
    with Context(root) as ctx:
        (load,) = ctx.run().loads
        rows = ctx.sql("select id, name from f.t order by id").rows
        rejected = ctx.sql("select line, reason, raw from f._rejected_rows order by line").rows
    return load.rows, load.rejected, rows, rejected


def test_a_quote_that_never_closes_rejects_its_line_and_the_rest_read_quoted(
    tmp_path: Path,
) -> None:
    # One unclosed quote made DuckDB read the whole file as unquoted: "abc loaded with its
    # stray quote, and every quoted field with its quotes or rejected for its comma.
    text = 'id,name\n1,"x,y"\n2,"abc\n3,def\n4,"g,hi"\n5,z,extra\n6,"w"\n7,"never\n'
    loaded, rejected_count, rows, rejected = _load(tmp_path, text)
    assert rows == ((1, "x,y"), (3, "def"), (4, "g,hi"), (6, "w"))
    assert (loaded, rejected_count) == (4, 3)
    # Each rejected line as an editor numbers it: the wrong field count (5,z,extra) too.
    assert [(line, raw) for line, _, raw in rejected] == [
        (3, '2,"abc'),
        (6, "5,z,extra"),
        (8, '7,"never'),
    ]
    assert "never closed" in rejected[0][1] and "never closed" in rejected[2][1]


def test_a_lone_quote_in_an_unquoted_file_rejects_only_its_line(tmp_path: Path) -> None:
    loaded, _, rows, rejected = _load(tmp_path, 'id,name\n1,"abc\n2,def\n3,ghi\n')
    assert rows == ((2, "def"), (3, "ghi")) and loaded == 2
    assert [(line, raw) for line, _, raw in rejected] == [(2, '1,"abc')]


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("id;amount\n1;9,50\n2;12,00\n", "delimiter: ';'"),
        ("id\tamount\n1\t9.5\n2\t12\n", 'delimiter: "\\t"'),
    ],
)
def test_a_file_separated_by_another_delimiter_is_refused_naming_it(
    tmp_path: Path, text: str, said: str
) -> None:
    # Before: every line was rejected (one field too many) and the load said "no rows".
    path = tmp_path / "a.csv"
    path.write_text(text)
    with pytest.raises(LoadError) as caught:
        stage_file(
            duckdb.connect(), "t", str(path), file_format="csv", table="t", display_name="a.csv"
        )
    assert said in str(caught.value) and "a.csv" in str(caught.value)


def test_a_file_of_one_column_is_still_read_as_one(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("note\nfirst\nsecond one\n")
    con = duckdb.connect()
    assert stage_file(con, "t", str(path), file_format="csv", table="t", display_name="a.csv") == []
    assert con.execute("SELECT * FROM t").fetchall() == [("first",), ("second one",)]
