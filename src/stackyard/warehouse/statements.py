"""Counting the statements in a piece of SQL text, in the warehouse's own dialect."""

from __future__ import annotations


def statement_count(sql: str, dialect: str) -> int:
    """How many statements ``sql`` holds: the non-empty runs of tokens between semicolons.

    Tokenised by sqlglot in ``dialect``, so a semicolon inside a string, a quoted name, a
    comment or a Postgres dollar-quoted body does not count. Text sqlglot cannot tokenise is
    counted as one statement: the warehouse reads it and names what is wrong.
    """
    from sqlglot.dialects.dialect import Dialect
    from sqlglot.errors import SqlglotError
    from sqlglot.tokens import TokenType

    try:
        tokens = Dialect.get_or_raise(dialect).tokenize(sql)
    except (SqlglotError, ValueError):
        return 1
    count, pending = 0, False
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            count += pending
            pending = False
        else:
            pending = True
    return count + pending
