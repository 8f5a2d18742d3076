"""A microbatch model's batch as plain SQL: compiled once by dbt, run per partition by stackyard.

dbt spends about a third of a second per batch rendering the model, creating a temporary
table and running the strategy's statements. A backfill of a year of days pays that 365 times
for what is, on DuckDB and Postgres, one ``DELETE`` and one ``INSERT … SELECT`` per batch.

:func:`plan` takes the model's SQL as ``dbt compile`` renders it (no batch: its inputs are
read whole) and does what dbt does to a batch, in text: every input that has an
``event_time`` is read through the same filter dbt renders
(``(select * from REL where COL >= 'START' and COL < 'END') _dbt_et_filter_subq_NAME``), and
the window's rows are deleted from the table and the batch's rows inserted — the statements of
dbt-duckdb's microbatch strategy, and of the delete+insert one stackyard's example project
gives Postgres. The bounds are sentinel literals in the template, each checked to occur exactly
where it was put, and replaced per batch by literals built with sqlglot from the window.

Whenever the model is not plain SQL this can reproduce exactly — a Python model, hooks, a
contract, ``unique_key``, incremental predicates, an input read more than once or through an
ephemeral model, columns that differ from the table, another Postgres strategy — :func:`plan`
says why and the backfill runs through dbt instead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from stackyard.runbooks.backfill.connection import Connection
from stackyard.runbooks.backfill.partitions import Window

# Bounds no real batch has: the template carries them until a batch's bounds replace them.
SENTINEL_START = datetime(1111, 1, 1, 1, 1, 1, tzinfo=UTC)
SENTINEL_END = datetime(1112, 2, 2, 2, 2, 2, tzinfo=UTC)

BATCH_SIZES = ("hour", "day", "month", "year")

# The strategy stackyard's example project gives Postgres (dbt-postgres's own microbatch is a
# MERGE on unique_key, which keeps a day's rows the source lost).
_EXAMPLE_MACRO = (
    Path(__file__).parents[2]
    / "examples"
    / "jaffle_shop"
    / "transform"
    / "macros"
    / "microbatch_delete_insert.sql"
)


@dataclass(frozen=True)
class Parent:
    """An input of the model as the manifest has it."""

    unique_id: str
    relation: str  # rendered name, e.g. "db"."schema"."table"
    identifier: str
    event_time: str | None
    ephemeral: bool = False


@dataclass(frozen=True)
class BatchSql:
    """The statements of one batch, with sentinel bounds to replace."""

    delete: str
    insert: str
    dialect: str
    batch_size: str

    def statements(self, start: datetime, end: datetime) -> tuple[str, str]:
        """The batch ``[start, end)``: its ``DELETE`` and its ``INSERT … SELECT``."""
        a, b = _literal(SENTINEL_START, self.dialect), _literal(SENTINEL_END, self.dialect)
        x, y = _literal(start, self.dialect), _literal(end, self.dialect)
        return (
            self.delete.replace(a, x).replace(b, y),
            self.insert.replace(a, x).replace(b, y),
        )

    def batches(self, window: Window) -> list[tuple[datetime, datetime]] | None:
        """dbt's batches covering ``window`` exactly, or None when the window does not start
        and end on batch boundaries (UTC), so dbt would cut it differently."""
        out = []
        start = window.start.astimezone(UTC)
        end = window.end.astimezone(UTC)
        if _truncate(start, self.batch_size) != start:
            return None
        while start < end:
            nxt = _next_batch(start, self.batch_size)
            if nxt > end:
                return None
            out.append((start, nxt))
            start = nxt
        return out

    def run(self, s: Connection, window: Window) -> int:
        """Replace ``window`` in one transaction, batch by batch; return the rows inserted.

        Raises:
            WarehouseError: a statement failed (the transaction is rolled back).
        """
        batches = self.batches(window)
        assert batches is not None
        written = 0
        with s.transaction():
            for start, end in batches:
                delete, insert = self.statements(start, end)
                s.execute(delete)
                count = s.execute(insert)
                written += max(count, 0)
        return written


def plan(
    node: dict[str, Any],
    parents: Sequence[Parent],
    compiled: str,
    session: Connection,
    macros: dict[str, Any],
) -> BatchSql | str:
    """The batch statements of a microbatch model, or why it must run through dbt.

    Args:
        node: the model's manifest node.
        parents: its inputs (manifest nodes and sources it depends on).
        compiled: the SQL ``dbt compile`` rendered for it.
        session: a connection to the target (reads the table's columns).
        macros: the manifest's macros (which microbatch strategy Postgres runs).
    """
    config = node.get("config", {})
    warehouse = session.warehouse
    kind = warehouse.DIALECT
    if str(node.get("language", "sql")) != "sql":
        return "a Python model"
    if config.get("incremental_strategy") != "microbatch":
        return "not a microbatch model (its window comes from vars it reads itself)"
    if config.get("pre-hook") or config.get("post-hook"):
        return "the model has hooks"
    if (config.get("contract") or {}).get("enforced"):
        return "the model has an enforced contract"
    if config.get("unique_key"):
        return "the model has a unique_key"
    if config.get("incremental_predicates"):
        return "the model has incremental_predicates"
    if str(config.get("batch_size")) not in BATCH_SIZES:
        return f"batch_size {config.get('batch_size')!r}"
    if config.get("full_refresh"):
        return "the model is configured full_refresh"
    if not _strategy_replaces(macros, kind, warehouse.DBT_MICROBATCH_REPLACES):
        return (
            f"dbt's microbatch strategy on {warehouse.KIND} is not a delete+insert of the "
            "window (the example project's macros/microbatch_delete_insert.sql makes it one)"
        )
    event_time = str(config.get("event_time") or "")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", event_time):
        return f"event_time {event_time!r} is not a plain column name"
    schema, table = str(node["schema"]), str(node.get("alias") or node["name"])
    columns = list(session.table_columns(schema, table))
    if not columns:
        return "the table does not exist yet (dbt creates it)"
    text = compiled.strip().rstrip(";").strip()
    for parent in parents:
        if parent.event_time is None:
            continue
        if parent.ephemeral:
            return f"input {parent.unique_id} is ephemeral"
        found = _filter_input(text, parent, kind, warehouse.DBT_SUBQUERY_ALIAS)
        if isinstance(found, str) and found.startswith("!"):
            return found[1:]
        text = found
    output = _output_columns(session, text)
    if output is None:
        return "its compiled SQL does not run as a plain SELECT"
    if sorted(output) != sorted(columns):
        return "its columns differ from the table's (on_schema_change is dbt's to apply)"
    a, b = _literal(SENTINEL_START, kind), _literal(SENTINEL_END, kind)
    expected = sum(1 for p in parents if p.event_time is not None)
    if text.count(a) != expected or text.count(b) != expected:
        return "the batch bounds do not appear exactly once per filtered input"
    target = session.quote(schema, table)
    # As the strategies write it: the event_time column unquoted, the bounds as text.
    window = f"{event_time} >= {a} AND {event_time} < {b}"
    cols = ", ".join(session.quote(c) for c in columns)
    delete = f"DELETE FROM {target} WHERE {window}"
    # dbt inserts the batch's rows from a temporary table, keeping those inside the batch;
    # here straight from the SELECT, with the same filter.
    insert = (
        f"INSERT INTO {target} ({cols}) SELECT {cols} FROM ({text}\n) AS _stackyard_batch "
        f"WHERE {window}"
    )
    return BatchSql(delete, insert, kind, str(config["batch_size"]))


def _filter_input(text: str, parent: Parent, dialect: str, aliased: bool) -> str:
    """``text`` with ``parent``'s relation read through dbt's event-time filter; a string
    starting with ``!`` says why it cannot be."""
    import sqlglot
    from sqlglot import exp

    rel = parent.relation
    if text.count(rel) != 1:
        return f"!input {parent.unique_id} is not read exactly once"
    try:
        tree = sqlglot.parse_one(text, dialect=dialect)
        want = sqlglot.parse_one(f"SELECT * FROM {rel}", dialect=dialect).find(exp.Table)
    except sqlglot.errors.ParseError:
        return "!its compiled SQL does not parse"
    assert want is not None
    key = (want.catalog, want.db, want.name)
    tables = [t for t in tree.find_all(exp.Table) if (t.catalog, t.db, t.name) == key]
    if len(tables) != 1 or tables[0].alias:
        return f"!input {parent.unique_id} is not read exactly once, without an alias"
    start, end = _literal(SENTINEL_START, dialect), _literal(SENTINEL_END, dialect)
    field = parent.event_time
    # dbt's BaseRelation.render_event_time_filtered (with an alias where the adapter's
    # relation has require_alias).
    alias = f" _dbt_et_filter_subq_{parent.identifier}" if aliased else ""
    filtered = f"(select * from {rel} where {field} >= {start} and {field} < {end}){alias}"
    return text.replace(rel, filtered)


def _output_columns(session: Connection, sql: str) -> list[str] | None:
    from stackyard.errors import WarehouseError

    try:
        result = session.query(f"SELECT * FROM ({sql}\n) AS _stackyard_probe WHERE 1 = 0")
    except WarehouseError:
        return None
    return list(result.columns)


def _strategy_replaces(macros: dict[str, Any], dialect: str, adapter_replaces: bool) -> bool:
    """Whether dbt's microbatch strategy here replaces a batch whole: the adapter's own, or
    the project's override when it is stackyard's example macro."""
    names = (
        f"{dialect}__get_incremental_microbatch_sql",
        "default__get_incremental_microbatch_sql",
        "get_incremental_microbatch_sql",
    )
    found = [
        m
        for m in macros.values()
        if m.get("name") in names and not str(m.get("package_name", "")).startswith("dbt")
    ]
    if not found:
        return adapter_replaces
    ours = _squash(_EXAMPLE_MACRO.read_text(encoding="utf-8"))
    return len(found) == 1 and _squash(str(found[0].get("macro_sql", ""))) in ours


def _squash(text: str) -> str:
    text = re.sub(r"\{#.*?#\}", "", text, flags=re.S)
    return re.sub(r"\s+", " ", text).strip()


def _literal(moment: datetime, dialect: str) -> str:
    """A batch bound as dbt renders it into SQL ('YYYY-MM-DD HH:MM:SS+00:00'), quoted by
    sqlglot."""
    from sqlglot import exp

    return exp.Literal.string(str(moment.astimezone(UTC))).sql(dialect=dialect)


def _truncate(moment: datetime, size: str) -> datetime:
    if size == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if size == "day":
        return day
    if size == "month":
        return day.replace(day=1)
    return day.replace(month=1, day=1)


def _next_batch(moment: datetime, size: str) -> datetime:
    if size == "hour":
        return moment + timedelta(hours=1)
    if size == "day":
        return moment + timedelta(days=1)
    if size == "month":
        return moment.replace(year=moment.year + moment.month // 12, month=moment.month % 12 + 1)
    return moment.replace(year=moment.year + 1)
