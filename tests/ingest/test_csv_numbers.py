"""A CSV number a double does not hold as written (more digits than it keeps, past its range)
is rejected with its line, on a first load (a column the sniffer reads as doubles) and on a
later one (a double column the table has); the other rows load exactly. So is a number in a
later file that the table's integer column would hold as another value: wider than 64 bits, or
written with a leading zero (``02`` would load as 2, onto the key 2)."""

from __future__ import annotations

from pathlib import Path

from stackyard import Context
from tests.ingest.file_projects import file_project


def _project(tmp_path: Path, csv: str) -> Path:
    return file_project(tmp_path, "{t: {glob: '*.csv', primary_key: id}}", {"a.csv": csv})


def test_doubles_that_would_round_are_rejected_first_load_and_after(tmp_path: Path) -> None:
    root = _project(
        tmp_path,
        "id,amount\n"
        "1,12345678901234567890.12\n"  # line 2: rounded
        "2,0.1\n"
        "3,0.30000000000000004\n"  # how a double prints itself: kept
        "4,1e-400\n"  # line 5: underflows to 0
        "5,0.10000000000000001\n"  # %.17g of 0.1: kept
        "6,\n"
        "7,9007199254740993\n"  # line 8: past 2**53 in a double column
        "8,1e400\n"  # line 9: past the largest double
        "9,2.5\n",
    )
    ctx = Context(root)
    (load,) = ctx.run().loads
    assert load.status == "loaded", load.error
    assert (load.rows, load.rejected) == (5, 4)
    assert ctx.sql("select id, amount from f.t order by id").rows == (
        (2, 0.1),
        (3, 0.30000000000000004),
        (5, 0.1),
        (6, None),
        (9, 2.5),
    )
    rejected = ctx.sql("select line, column_name, reason from f._rejected_rows order by line").rows
    assert [r[:2] for r in rejected] == [(2, "amount"), (5, "amount"), (8, "amount"), (9, "amount")]
    assert "it would load as 1.2345678901234567e+19" in rejected[0][2]
    assert "beyond the largest double" in rejected[3][2]

    # A later file into the table's double column: the same checks, and text is refused.
    (root / "sources" / "files" / "b.csv").write_text(
        "id,amount\n10,lots\n11,98765432109876543210.5\n12,3.25\n13,7\n"
    )
    (later,) = ctx.run().loads
    assert (later.status, later.rows, later.rejected) == ("loaded", 2, 2)
    assert ctx.sql("select id, amount from f.t where id >= 10 order by id").rows == (
        (12, 3.25),
        (13, 7.0),
    )
    assert ctx.sql(
        "select line, reason from f._rejected_rows where file = 'b.csv' order by line"
    ).rows[0] == (2, "CAST ERROR: 'lots' is not a number (column amount holds doubles)")


def test_an_integer_wider_than_the_tables_bigint_column_rejects_its_row(tmp_path: Path) -> None:
    root = _project(tmp_path, "id,qty\n1,5\n")
    ctx = Context(root)
    assert ctx.run().loads[0].rows == 1
    (root / "sources" / "files" / "b.csv").write_text(
        "id,qty\n2,18446744073709551616\n3,9223372036854775807\n"
    )
    (load,) = ctx.run().loads
    assert (load.status, load.rows, load.rejected) == ("loaded", 1, 1), load.error
    assert ctx.sql("select id, qty from f.t order by id").rows == (
        (1, 5),
        (3, 9223372036854775807),
    )
    assert ctx.sql("select file, line, reason from f._rejected_rows").rows == (
        (
            "b.csv",
            2,
            "CAST ERROR: '18446744073709551616' is wider than a 64-bit integer column holds "
            "(column qty is BIGINT)",
        ),
    )


def test_a_decimal_column_keeps_its_type_and_never_rounds_in_later_files(tmp_path: Path) -> None:
    root = _project(tmp_path, "id,big\n1,12345678901234567890\n2,5\n")
    ctx = Context(root)
    assert ctx.run().ok
    columns = dict(ctx.sql("select column_name, column_type from (describe f.t)").rows)
    assert columns["big"] == "DECIMAL(38,0)"
    # Before: the later file's decimals were read as DECIMAL(38,9), "column 'big' changed type
    # upstream" stopped the whole source, and a reload did not help the file after it; and
    # 2.5 in a DECIMAL(38,0) column loaded as 3.
    (root / "sources" / "files" / "b.csv").write_text(
        "id,big\n"
        "3,2\n"
        "4,2.5\n"  # line 3: would round
        "5,3.000\n"
        "6,99999999999999999999999999999999999999999\n"  # line 5: too many digits
        "7,\n"
        "8,ten\n"  # line 7: not a number
    )
    (later,) = ctx.run().loads
    assert (later.status, later.rows, later.rejected) == ("loaded", 3, 3), later.error
    assert ctx.sql("select id, big::varchar from f.t order by id").rows == (
        (1, "12345678901234567890"),
        (2, "5"),
        (3, "2"),
        (5, "3"),
        (7, None),
    )
    rejected = ctx.sql(
        "select line, column_name, reason from f._rejected_rows where file = 'b.csv' order by line"
    ).rows
    assert [r[:2] for r in rejected] == [(3, "big"), (5, "big"), (7, "big")]
    assert "more decimal places than its DECIMAL(38,0) column holds" in rejected[0][2]
    assert "more digits than its DECIMAL(38,0) column holds" in rejected[1][2]
    assert "'ten' is not a number" in rejected[2][2]


def test_a_leading_zero_in_a_later_file_rejects_its_row_never_merges_onto_another_key(
    tmp_path: Path,
) -> None:
    root = file_project(
        tmp_path,
        "{t: {glob: '*.csv', primary_key: sku}}",
        {"a.csv": "sku,zip,qty\n1,99501,5\n2,10001,6\n"},
    )
    ctx = Context(root)
    assert ctx.run().loads[0].rows == 2
    # Before: '02' loaded as 2 and overwrote the row of the key 2; 007 as 7, 01234 as 1234.
    (root / "sources" / "files" / "b.csv").write_text(
        "sku,zip,qty\n"
        "02,10001,60\n"  # line 2: a key that is not the key 2
        "3,07030,7\n"  # line 3: a zip that would lose its zero
        "4,0,8\n"  # a zero is a zero
        "-05,1,9\n"  # line 5
        "6,10001,10\n"
    )
    (load,) = ctx.run().loads
    assert (load.status, load.rows, load.rejected) == ("loaded", 2, 3), load.error
    assert ctx.sql("select sku, zip, qty from f.t order by sku").rows == (
        (1, 99501, 5),
        (2, 10001, 6),
        (4, 0, 8),
        (6, 10001, 10),
    )
    assert ctx.sql(
        "select line, column_name, reason, raw from f._rejected_rows order by line"
    ).rows == (
        (
            2,
            "sku",
            "CAST ERROR: '02' has a leading zero, which column sku (BIGINT) does not keep: "
            "it would load as 2, another value; `stackyard reload` reads the column's type "
            "again from every file",
            "02,10001,60",
        ),
        (
            3,
            "zip",
            "CAST ERROR: '07030' has a leading zero, which column zip (BIGINT) does not keep: "
            "it would load as 7030, another value; `stackyard reload` reads the column's "
            "type again from every file",
            "3,07030,7",
        ),
        (
            5,
            "sku",
            "CAST ERROR: '-05' has a leading zero, which column sku (BIGINT) does not keep: "
            "it would load as -5, another value; `stackyard reload` reads the column's type "
            "again from every file",
            "-05,1,9",
        ),
    )


def test_a_first_load_keeps_a_signed_number_with_a_leading_zero_as_written(
    tmp_path: Path,
) -> None:
    # Before: DuckDB read `02` as text but `-05` as -5, so a first load changed the value
    # that a later file's row was rejected for.
    files = {"a.csv": "code,qty\n-05,1\n+07,2\n3,3\n", "b.csv": "code,qty\n-4,4\n"}
    root = file_project(tmp_path, "{t: {glob: '*.csv'}}", files)
    ctx = Context(root)
    (load,) = ctx.run().loads
    assert (load.status, load.rows, load.rejected) == ("loaded", 4, 0), load.error
    assert ctx.sql("select code, qty from f.t order by qty").rows == (
        ("-05", 1),
        ("+07", 2),
        ("3", 3),
        ("-4", 4),
    )
    # Whole numbers without one still load as integers.
    (root / "sources" / "files" / "a.csv").write_text("code,qty\n-5,1\n")
    assert ctx.reload(ctx.reload_plan("f.t")).ok
    assert ctx.sql("select code from f.t order by qty").rows == ((-5,), (-4,))


def test_a_column_of_numbers_in_one_file_and_padded_numbers_in_another_loads_as_text(
    tmp_path: Path,
) -> None:
    # Before: a first load (and the reload it advised) stopped with "Unable to merge ...
    # int64 vs string": a.csv's sku read as integers, b.csv's as text for its 02.
    root = file_project(
        tmp_path,
        "{t: {glob: '*.csv', primary_key: sku}}",
        {"a.csv": "sku,qty\n1,5\n2,6\n", "b.csv": "sku,qty\n02,60\n3,7\n"},
    )
    ctx = Context(root)
    (load,) = ctx.run().loads
    assert (load.status, load.rows, load.rejected) == ("loaded", 4, 0), load.error
    assert ctx.sql("select sku, qty from f.t order by sku").rows == (
        ("02", 60),
        ("1", 5),
        ("2", 6),
        ("3", 7),
    )
    # A third file of plain numbers later is read into the text column, as written.
    (root / "sources" / "files" / "c.csv").write_text("sku,qty\n4,8\n")
    (later,) = ctx.run().loads
    assert (later.status, later.rows, later.rejected) == ("loaded", 1, 0), later.error
    assert ctx.sql("select count(*), max(length(sku)) from f.t").rows == ((5, 2),)


def test_a_reload_reads_a_column_padded_in_a_later_file_as_text(tmp_path: Path) -> None:
    root = file_project(
        tmp_path, "{t: {glob: '*.csv', primary_key: sku}}", {"a.csv": "sku,qty\n1,5\n2,6\n"}
    )
    ctx = Context(root)
    assert ctx.run().loads[0].rows == 2
    (root / "sources" / "files" / "b.csv").write_text("sku,qty\n02,60\n")
    (later,) = ctx.run().loads
    assert later.rejected == 1  # '02' would load as 2, onto the key 2
    reason = ctx.sql("select reason from f._rejected_rows").rows[0][0]
    assert "`stackyard reload` reads the column's type again from every file" in reason
    from typer.testing import CliRunner

    from stackyard.cli.main import app

    done = CliRunner().invoke(app, ["reload", "f", "--yes", "-p", str(root)])
    assert done.exit_code == 0, done.output
    assert Context(root).sql("select sku, qty from f.t order by sku").rows == (
        ("02", 60),
        ("1", 5),
        ("2", 6),
    )


def test_a_row_rejected_for_its_number_keeps_its_line_as_the_file_holds_it(
    tmp_path: Path,
) -> None:
    """Its raw text was rebuilt from the values: 'JAF-001,The Classic,1150.5,Ham, cheddar'
    without the quotes, which read back as CSV gives a field more than the file's line."""
    root = file_project(
        tmp_path,
        "{t: {glob: '*.csv', primary_key: sku}}",
        {"a.csv": 'sku,price,note\nA,1150,"Ham, cheddar"\n'},
    )
    ctx = Context(root)
    assert ctx.run().loads[0].rows == 1
    line = 'B,1150.5,"Ham, cheddar\nand ""mustard"""'
    (root / "sources" / "files" / "b.csv").write_text(f'sku,price,note\n{line}\nC,7,"x, y"\n')
    (load,) = ctx.run().loads
    assert (load.status, load.rows, load.rejected) == ("loaded", 1, 1), load.error
    rejected = ctx.sql("select line, column_name, raw from f._rejected_rows").rows
    assert rejected == ((2, "price", line),), rejected
