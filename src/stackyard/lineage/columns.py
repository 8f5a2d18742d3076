"""Column lineage of one SQL query, with sqlglot.

The query is qualified first (``sqlglot.optimizer.qualify``): every ``SELECT *`` is expanded
from the schema given, every column gets its table, every projection its name. Then each
output column is walked back through CTEs, subqueries and set operations (UNION ALL branches
are matched by position) to the columns of the tables it reads. Window functions count their
PARTITION BY and ORDER BY columns: a row number that dedups on ``id`` depends on ``id``.

What cannot be resolved is never dropped: a ``SELECT *`` over a table of unknown columns, a
column whose table cannot be told, or a query sqlglot cannot parse, is returned as
:class:`Unresolved` with the reason.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# dbt inlines an ephemeral model as a CTE with this prefix; the CTE is that model.
EPHEMERAL_PREFIX = "__dbt__cte__"


@dataclass(frozen=True, order=True)
class TableRef:
    """A table a query reads, as written after qualification (lower-cased unless quoted)."""

    catalog: str
    db: str
    name: str

    @property
    def key(self) -> tuple[str, str, str]:
        """``(catalog, db, name)`` folded to lower case, for lookups."""
        return (self.catalog.lower(), self.db.lower(), self.name.lower())


@dataclass(frozen=True)
class Unresolved:
    """An output column (or ``*``) whose upstream columns could not be determined."""

    column: str
    reason: str


@dataclass(frozen=True)
class QueryLineage:
    """Where each output column of a query comes from.

    Attributes:
        columns: output column → ``{(table, column)}`` it is computed from, in output order.
            A constant has no upstream columns (an empty set).
        ephemeral: output column → ``{(model name, column)}`` read through dbt's inlined
            ephemeral models.
        unresolved: what could not be traced, with the reason.
        references: every table column the query reads anywhere (joins, filters, GROUP BY,
            window specs as well as projections): a rename breaks the query even when no
            output column is computed from it.
        ephemeral_references: the same, read through dbt's inlined ephemeral models.
    """

    columns: dict[str, set[tuple[TableRef, str]]] = field(default_factory=dict)
    ephemeral: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    unresolved: tuple[Unresolved, ...] = ()
    references: frozenset[tuple[TableRef, str]] = frozenset()
    ephemeral_references: frozenset[tuple[str, str]] = frozenset()


def query_lineage(sql: str, schema: dict[str, Any], dialect: str | None) -> QueryLineage:
    """Trace every output column of a query to the table columns it reads.

    Args:
        sql: one SELECT statement (dbt's compiled SQL).
        schema: ``{catalog: {db: {table: {column: type}}}}`` of the tables it may read.
        dialect: sqlglot dialect of the SQL.

    Returns:
        The lineage of each output column, and what could not be traced.

    >>> schema = {"db": {"raw": {"t": {"id": "INT", "amount": "INT"}}}}
    >>> q = query_lineage("with a as (select * from db.raw.t) select id, amount * 2 as x "
    ...                   "from a", schema, "duckdb")
    >>> {c: sorted(col for _, col in cols) for c, cols in q.columns.items()}
    {'id': ['id'], 'x': ['amount']}
    >>> two = {"db": {"raw": {"a": {"id": "INT", "n": "INT"}, "b": {"id": "INT", "n": "INT"}}}}
    >>> q = query_lineage("select * from db.raw.a join db.raw.b using (id)", two, "duckdb")
    >>> {c: sorted(t.name for t, _ in cols) for c, cols in q.columns.items()}
    {'id': ['a', 'b'], 'n': ['a'], 'n_1': ['b']}
    """
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError
    from sqlglot.optimizer.scope import build_scope

    try:
        parsed = sqlglot.parse_one(sql, dialect=dialect)
        # Quoted names keep the case they were written in (qualify folds them for DuckDB).
        spelling = {c.lower(): c for c in _schema_columns(schema) if c != c.lower()}
        spelling.update(
            {str(i.this).lower(): str(i.this) for i in parsed.find_all(exp.Identifier) if i.quoted}
        )
        qualified = qualify_query(parsed, schema, dialect)
    except SqlglotError as exc:
        return QueryLineage(unresolved=(Unresolved("*", f"the SQL did not parse: {_short(exc)}"),))
    root = build_scope(qualified)
    if root is None or not isinstance(qualified, exp.Query):
        return QueryLineage(unresolved=(Unresolved("*", "not a SELECT statement"),))
    tracer = _Tracer()
    out = QueryLineage()
    unresolved: list[Unresolved] = []
    repeats: dict[str, int] = {}
    for index, name in enumerate(_output_names(root)):
        if name == "*":
            unresolved.append(Unresolved("*", tracer.star_reason(root)))
            continue
        found = tracer.trace(root, name, index)
        shown = spelling.get(name.lower(), name)
        if repeat := repeats.get(name.lower(), 0):
            # A select * over a join gives two columns of one name; the warehouse keeps the
            # second as name_1 (DuckDB; others refuse it). Traced under one name, the
            # second was lost from lineage and impact without a word.
            shown = f"{shown}_{repeat}"
        repeats[name.lower()] = repeat + 1
        out.columns[shown] = {(t, c) for t, c in found.tables}
        out.ephemeral[shown] = set(found.models)
        unresolved.extend(Unresolved(shown, why) for why in sorted(found.problems))
    read = _Found()
    for table_sources in out.columns.values():
        read.tables |= table_sources
    for model_sources in out.ephemeral.values():
        read.models |= model_sources
    for scope in root.traverse():
        selects = {id(s) for s in getattr(scope.expression, "selects", [])}
        for column in scope.columns:
            # A column in a SELECT list counts only if it reaches an output (above); one in a
            # join, filter, GROUP BY or ORDER BY always does: the query breaks without it.
            if column.table and not _in_select_list(column, selects, scope.expression):
                read.add(tracer._column(scope, column))
    return QueryLineage(
        out.columns,
        out.ephemeral,
        tuple(unresolved),
        frozenset(read.tables),
        frozenset(read.models),
    )


def nested_schema(known: Mapping[tuple[str, str, str], Mapping[str, str]]) -> dict[str, Any]:
    """``{(db, schema, table): {column: type}}`` as sqlglot's nested schema (empty tables left
    out)."""
    nested: dict[str, Any] = {}
    for (db, schema, table), cols in known.items():
        if cols:
            nested.setdefault(db, {}).setdefault(schema, {})[table] = {
                c: _sqlglot_type(t) for c, t in cols.items()
            }
    return nested


@functools.cache  # a project's graph asks for each column of each model: a handful of types
def _sqlglot_type(data_type: str) -> str:
    # The type only matters for parsing the schema; one sqlglot cannot read becomes UNKNOWN.
    from sqlglot import exp
    from sqlglot.errors import ParseError

    try:
        exp.DataType.build(data_type)
    except (ParseError, ValueError):
        return "UNKNOWN"
    return data_type


def qualify_query(parsed: Any, schema: dict[str, Any], dialect: str | None) -> Any:
    """A parsed query qualified in place as lineage reads it: ``SELECT *`` expanded from
    ``schema``, columns tied to their tables where they can be; what cannot be is left as
    written rather than refused (:class:`Unresolved` reports it).

    Raises:
        SqlglotError: sqlglot cannot qualify it.
    """
    from sqlglot.optimizer.qualify import qualify

    return qualify(
        parsed,
        dialect=dialect,
        schema=schema,
        validate_qualify_columns=False,
        allow_partial_qualification=True,
        identify=False,
    )


@dataclass
class _Found:
    tables: set[tuple[TableRef, str]] = field(default_factory=set)
    models: set[tuple[str, str]] = field(default_factory=set)
    problems: set[str] = field(default_factory=set)

    def add(self, other: _Found) -> None:
        self.tables |= other.tables
        self.models |= other.models
        self.problems |= other.problems


class _Tracer:
    """Walks qualified scopes; memoised per (scope, column) so CTE chains stay linear."""

    def __init__(self) -> None:
        self._memo: dict[tuple[int, str, int], _Found] = {}

    def trace(self, scope: Any, name: str, index: int) -> _Found:
        key = (id(scope), name, index)
        if key not in self._memo:
            self._memo[key] = _Found()  # a cycle (recursive CTE) ends here
            self._memo[key] = self._trace(scope, name, index)
        return self._memo[key]

    def _trace(self, scope: Any, name: str, index: int) -> _Found:
        from sqlglot import exp

        found = _Found()
        if isinstance(scope.expression, exp.SetOperation):
            # UNION [ALL] / INTERSECT / EXCEPT: branches line up by position.
            for branch in scope.set_operation_scopes:
                names = _output_names(branch)
                if index < len(names):
                    found.add(self.trace(branch, names[index], index))
                else:
                    found.problems.add(f"a set operation branch has no column {index + 1}")
            return found
        select = scope.expression
        projection = _projection(select, name, index)
        if projection is None:
            found.problems.add(f"no output column '{name}' in a subquery or CTE")
            return found
        for column in _columns_in(projection):
            found.add(self._column(scope, column))
        # A scalar subquery in the projection: every column it selects feeds this one.
        for sub in scope.subquery_scopes:
            if sub.expression.find_ancestor(type(projection)) is projection:
                for position, sub_name in enumerate(_output_names(sub)):
                    found.add(self.trace(sub, sub_name, position))
        return found

    def _column(self, scope: Any, column: Any) -> _Found:
        from sqlglot.optimizer.scope import Scope

        found = _Found()
        table_alias = column.table
        source, owner = _lookup(scope, table_alias)
        if not table_alias or source is None:
            found.problems.add(
                f"column '{column.name}' could not be tied to a table"
                + (f" ('{table_alias}' is not in scope)" if table_alias else "")
            )
            return found
        if isinstance(source, Scope):
            cte_name = _cte_name(owner, table_alias, source)
            if cte_name and cte_name.lower().startswith(EPHEMERAL_PREFIX):
                found.models.add((cte_name[len(EPHEMERAL_PREFIX) :], column.name))
                return found
            names = _output_names(source)
            if column.name not in names and "*" in names:
                found.problems.add(f"'{table_alias}.*' has columns nobody knows")
                return found
            if column.name not in names:
                # Most often a SELECT * over a table that lost the column: point the edge
                # at that table, so the graph reports the read of a column that is gone.
                tables = _single_table(source)
                if tables is not None:
                    found.tables.add((tables, column.name))
                else:
                    found.problems.add(f"'{column.name}' does not exist in '{table_alias}'")
                return found
            return self.trace(source, column.name, names.index(column.name))
        ref = TableRef(source.catalog, source.db, source.name)
        if ref.name.lower().startswith(EPHEMERAL_PREFIX):
            found.models.add((ref.name[len(EPHEMERAL_PREFIX) :], column.name))
        else:
            found.tables.add((ref, column.name))
        return found

    def star_reason(self, scope: Any) -> str:
        from sqlglot import exp

        tables = sorted(
            {t.sql() for s in scope.traverse() for t in s.expression.find_all(exp.Table)}
        )
        return (
            "SELECT * over a table whose columns are unknown (not in the warehouse, dbt's "
            f"catalog or the project's declarations): {', '.join(tables) or '?'}"
        )


def _in_select_list(column: Any, selects: set[int], stop: Any) -> bool:
    node = column
    while node is not None and node is not stop:
        if id(node) in selects:
            return True
        node = node.parent
    return False


def _single_table(scope: Any) -> TableRef | None:
    """The one table a chain of single-source scopes reads, if there is exactly one."""
    from sqlglot import exp
    from sqlglot.optimizer.scope import Scope

    current = scope
    while isinstance(current, Scope) and not isinstance(current.expression, exp.SetOperation):
        if len(current.sources) != 1:
            return None
        current = next(iter(current.sources.values()))
    if isinstance(current, exp.Table) and current.name:
        return TableRef(current.catalog, current.db, current.name)
    return None


def _schema_columns(schema: dict[str, Any]) -> list[str]:
    """Every column name in a nested ``{…: {table: {column: type}}}`` schema."""
    names: list[str] = []
    stack = [schema]
    while stack:
        level = stack.pop()
        for key, value in level.items():
            if isinstance(value, dict):
                stack.append(value)
            else:
                names.append(str(key))
    return names


def _lookup(scope: Any, alias: str) -> tuple[Any, Any]:
    """The source an alias names, searching outward for correlated subqueries."""
    current = scope
    while current is not None:
        if alias in current.sources:
            return current.sources[alias], current
        current = current.parent
    return None, None


def _cte_name(owner: Any, alias: str, source: Any) -> str | None:
    """The CTE a scope source is, when it is one (the alias may differ from the CTE name)."""
    from sqlglot import exp

    expression = source.expression
    parent = expression.parent
    if isinstance(parent, exp.CTE):
        return str(parent.alias)
    return alias if source.is_cte else None


def _output_names(scope: Any) -> list[str]:
    from sqlglot import exp

    expression = scope.expression
    while isinstance(expression, exp.SetOperation):
        expression = expression.left
    if isinstance(expression, exp.Subquery):
        expression = expression.unnest()
    names = []
    for select in getattr(expression, "selects", []):
        if isinstance(select, exp.Star) or (
            isinstance(select, exp.Column) and isinstance(select.this, exp.Star)
        ):
            names.append("*")
        else:
            names.append(select.alias_or_name)
    return names


def _projection(select: Any, name: str, index: int) -> Any:
    selects = list(getattr(select, "selects", []))
    if 0 <= index < len(selects) and selects[index].alias_or_name == name:
        return selects[index]  # the second of two columns of one name is its own
    for candidate in selects:
        if candidate.alias_or_name == name:
            return candidate
    return selects[index] if index < len(selects) else None


def _columns_in(projection: Any) -> list[Any]:
    """Columns a projection reads in its own scope (not inside nested subqueries)."""
    from sqlglot import exp

    columns = []
    for node in projection.walk(prune=lambda n: isinstance(n, exp.Subquery | exp.Select)):
        if isinstance(node, exp.Column) and not isinstance(node.this, exp.Star):
            columns.append(node)
    return columns


def _short(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
