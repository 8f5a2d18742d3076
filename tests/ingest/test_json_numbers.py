"""A JSON number no warehouse column holds as written (more digits than a double keeps, wider
than 64 bits, not finite) is rejected with its line, from a JSONL file as from a stream; the
file's other rows load exactly, and a number in a string or one a double printed is kept."""

from __future__ import annotations

from pathlib import Path

import duckdb

from stackyard import Context
from stackyard.ingest.json_numbers import unfit_lines
from tests.ingest.file_projects import file_project

LINES = [
    '{"id": 1, "amount": 0.1, "big": 5}',
    "",
    '{"id": 2, "amount": 12345678901234567890.12, "big": 1}',
    '{"id": 3, "amount": 0.30000000000000004, "big": 9223372036854775807}',
    '{"id": 4, "amount": 2.5, "big": 123456789012345678901}',
    '{"id": 5, "amount": 1e-400, "big": 2}',
    '{"id": 6, "amount": 3.0, "big": 3, "note": "12345678901234567890.12 in words"}',
    '{"id": 7, "amount": 0.10000000000000001, "big": 4}',
    '{"id": 8, "amount": 1.5, "big": 6, "nested": {"x": 98765432109876543210.5}}',
    '{"id": 9, "amount": 9007199254740993, "big": 9007199254740993}',
    '{"id": 10, "amount": 9007199254740992, "big": 7, "nested": {"x": 0.5, "n": [0.5, 2]}}',
    '{"id": 11, "amount": 1.0, "big": 8, "nested": {"x": 1.5, "n": [9007199254740993]}}',
]


def _project(tmp_path: Path, lines: list[str]) -> Path:
    return file_project(
        tmp_path,
        "{orders: {glob: '*.jsonl', primary_key: id}}",
        {"orders.jsonl": "\n".join(lines) + "\n"},
    )


def test_a_jsonl_file_rejects_numbers_no_column_holds_and_loads_the_rest_exactly(
    tmp_path: Path,
) -> None:
    ctx = Context(_project(tmp_path, LINES))
    result = ctx.run()
    (load,) = result.loads
    assert load.status == "loaded", load.error
    assert (load.rows, load.rejected) == (5, 6)
    rows = ctx.sql("select id, amount, big from f.orders order by id").rows
    assert rows == (
        (1, 0.1, 5),
        (3, 0.30000000000000004, 9223372036854775807),
        (6, 3.0, 3),
        (7, 0.1, 4),
        (10, 9007199254740992.0, 7),  # 2**53: a double holds it
    )
    # the huge integer's row is out before types are read: the column stays an integer
    assert ctx.sql("select typeof(big) from f.orders limit 1").rows == (("BIGINT",),)
    rejected = ctx.sql(
        "select file, line, column_name, reason from f._rejected_rows order by line"
    ).rows
    assert [r[:3] for r in rejected] == [
        ("orders.jsonl", 3, "amount"),
        ("orders.jsonl", 5, "big"),
        ("orders.jsonl", 6, "amount"),
        ("orders.jsonl", 9, "nested__x"),
        ("orders.jsonl", 10, "amount"),  # past 2**53 where the file has fractions
        ("orders.jsonl", 12, "nested__n"),  # in a list of doubles
    ]
    assert "more digits than a double-precision column keeps" in rejected[0][3]
    assert "1.2345678901234567e+19" in rejected[0][3]
    assert "write it as a JSON string" in rejected[0][3]
    assert "wider than a 64-bit integer" in rejected[1][3]


def test_a_file_with_no_such_number_is_read_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "plain.jsonl"
    path.write_text(
        "".join(f'{{"id": {i}, "amount": {i / 7!r}, "code": "{10**17 + i}"}}\n' for i in range(50))
    )
    with duckdb.connect() as con:
        assert unfit_lines(con, str(path), "t", "plain.jsonl") == []


def test_not_finite_numbers_are_rejected_with_their_line(tmp_path: Path) -> None:
    path = tmp_path / "odd.jsonl"
    path.write_text('{"id": 1, "a": NaN}\n{"id": 2, "a": 1.0}\n{"id": 3, "a": 1e400}\n')
    with duckdb.connect() as con:
        found = unfit_lines(con, str(path), "t", "odd.jsonl")
    assert [(r.line, r.column) for r in found] == [(1, "a"), (3, "a")]
    assert all("not a finite number" in r.reason for r in found)


def test_a_windows_file_with_a_byte_order_mark_loads_and_rejects_its_first_line(
    tmp_path: Path,
) -> None:
    root = _project(tmp_path, [])
    (root / "sources" / "files" / "orders.jsonl").write_bytes(
        b'\xef\xbb\xbf{"id": 1, "amount": 12345678901234567890.12}\r\n'
        b'{"id": 2, "amount": 2.5}\r\n{"id": 3, "amount": 0.125}'
    )
    ctx = Context(root)
    (load,) = ctx.run().loads
    assert load.status == "loaded", load.error
    assert (load.rows, load.rejected) == (2, 1)
    assert ctx.sql("select id, amount from f.orders order by id").rows == ((2, 2.5), (3, 0.125))
    assert ctx.sql("select line, column_name from f._rejected_rows").rows == ((1, "amount"),)


def test_a_later_file_of_whole_numbers_loads_into_the_tables_double_column(
    tmp_path: Path,
) -> None:
    root = _project(tmp_path, ['{"id": 1, "amount": 1.5}'])
    ctx = Context(root)
    assert ctx.run().loads[0].rows == 1
    (root / "sources" / "files" / "later.jsonl").write_text(
        '{"id": 2, "amount": 3}\n{"id": 3, "amount": 9007199254740993}\n'
    )
    (load,) = ctx.run().loads
    assert (load.status, load.rows, load.rejected) == ("loaded", 1, 1), load.error
    assert ctx.sql("select id, amount from f.orders order by id").rows == ((1, 1.5), (2, 3.0))
    (line, reason) = ctx.sql("select line, reason from f._rejected_rows").rows[0]
    assert line == 2
    assert "more digits than a double-precision column keeps" in reason


def test_an_integer_another_file_makes_a_double_is_rejected_when_it_would_round(
    tmp_path: Path,
) -> None:
    root = _project(tmp_path, ['{"id": 1, "amount": 1.5}'])
    (root / "sources" / "files" / "other.jsonl").write_text(
        '{"id": 2, "amount": 9007199254740993}\n{"id": 3, "amount": 4}\n'
    )
    ctx = Context(root)
    (load,) = ctx.run().loads
    assert (load.status, load.rows, load.rejected) == ("loaded", 2, 1), load.error
    assert ctx.sql("select id, amount from f.orders order by id").rows == ((1, 1.5), (3, 4.0))
    assert ctx.sql("select file, column_name from f._rejected_rows").rows == (
        ("other.jsonl", "amount"),
    )
