"""What the swap of a restored copy does to the sequences behind the table's columns.

The swap puts the saved ids back (Postgres: ``OVERRIDING SYSTEM VALUE``) without drawing them
from the sequences, which stay where they are. If one sits below the restored ids — the table
was truncated with ``RESTART IDENTITY``, dropped and made again, or its sequence recreated
since the backup — the next insert that leaves the id out takes a restored id again: a
duplicate key, or, without a key, two rows with one id. So the swap's transaction sets each
sequence past the restored rows, with statements built here (a step of the plan that
``--dry-run`` shows, with the undo read from the sequences as they are).

Every sequence only ever moves forward: to the restored maximum when it is not past it
already, never back, not even when the table is restored empty. Ids handed out since the
backup, of rows the swap removes, may be held elsewhere (a row of another table, an exported
file, a message sent downstream); handing one out again would give two rows one id across
systems, silently. A gap in ids harms nobody.
"""

from __future__ import annotations

from stackyard.runbooks.backup_engines import sql_string
from stackyard.runbooks.recovery_plan import Step
from stackyard.warehouse.base import ColumnSequence, Warehouse


def set_sequences_sql(
    warehouse: Warehouse, schema: str, table: str, sequences: tuple[ColumnSequence, ...]
) -> tuple[str, ...]:
    """The statements that set each sequence past the rows of ``schema.table``, to run in
    the swap's transaction once the rows are in.

    ``setval(seq, v, true)`` makes the next value ``v + increment``; ``setval(seq, start,
    false)`` makes it ``start`` itself (the same in DuckDB, which follows Postgres here).
    https://www.postgresql.org/docs/current/functions-sequence.html
    """
    name = warehouse.quote(schema, table)
    statements = []
    for s in sequences:
        sequence = sql_string(warehouse.quote(s.schema, s.name))
        column = warehouse.quote(s.column)
        # The value the sequence must stay past: the highest, or lowest when it counts down.
        edge = f"{'max' if s.increment > 0 else 'min'}({column})"
        past = ">=" if s.increment > 0 else "<="
        statements.append(
            f"SELECT setval({sequence}, edge) FROM (SELECT {edge} AS edge FROM {name}) "
            f"AS restored WHERE edge {past} {s.position_sql}"
        )
    return tuple(statements)


def sequences_step(
    warehouse: Warehouse, schema: str, table: str, sequences: tuple[ColumnSequence, ...]
) -> Step | None:
    """The plan's step for the sequences of ``schema.table``'s columns, run by the swap
    statement; ``None`` when the table has none."""
    if not sequences:
        return None
    said = []
    for s in sequences:
        edge = f"{'max' if s.increment > 0 else 'min'}({s.column})"
        sequence = warehouse.quote(s.schema, s.name)
        owner = f"owned by {s.column}" if s.owned else f"the default of {s.column}"
        said.append(
            f"{sequence} ({owner}) forward to {edge} when it is not past it already, never back"
        )
    undo = "; ".join(
        f"SELECT setval({sql_string(warehouse.quote(s.schema, s.name))}, "
        + (f"{s.last_value}, true)" if s.last_value is not None else f"{s.start}, false)")
        for s in sequences
    )
    return Step(
        "sequences",
        f"in the swap's transaction, once the rows are in (the swap statement in the notes "
        f"runs it): set each sequence of {schema}.{table}'s columns past the restored rows, so "
        f"a row inserted without its id gets a new one: {'; '.join(said)}",
        f"put the sequences back where they are now: {undo}",
        set_sequences_sql(warehouse, schema, table, sequences),
    )
