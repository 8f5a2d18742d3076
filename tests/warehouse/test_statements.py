import pytest

from stackyard.warehouse.statements import statement_count


@pytest.mark.parametrize(
    ("sql", "dialect", "expected"),
    [
        ("select 1", "duckdb", 1),
        ("select 1;", "duckdb", 1),
        ("select 1; -- done", "duckdb", 1),
        ("select 1;; ", "duckdb", 1),
        ("select 1; select 2", "duckdb", 2),
        ("create table t as select 1; insert into t select 2; select * from t", "duckdb", 3),
        ("select 'a;b' as s", "duckdb", 1),
        ('select 1 as "x;y"', "postgres", 1),
        ("select 1 /* ; */", "postgres", 1),
        ("select $$a;b$$", "postgres", 1),
        ("", "duckdb", 0),
    ],
)
def test_semicolons_inside_strings_names_and_comments_do_not_count(
    sql: str, dialect: str, expected: int
) -> None:
    assert statement_count(sql, dialect) == expected
