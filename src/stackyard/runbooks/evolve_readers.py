"""Which column references in a reader's SQL read the column ``evolve rename`` renames.

The migrate phase rewrites each model that reads ``MODEL.OLD`` so it reads ``MODEL.NEW``.
A reader often joins that column to a same-named column of another relation
(``on orders.order_id = order_summaries.order_id``): only the side that comes from MODEL
may change, or the build breaks. So the reader's SQL is qualified with sqlglot (every
``SELECT *`` expanded, every column tied to its table) and each reference is followed
through CTEs, subqueries and set operations to the relation it comes from.

The model file is dbt Jinja, not SQL: each ``{{ … }}`` / ``{% … %}`` / ``{# … #}`` is masked
by text of the same length before parsing (a ``ref``/``source`` by a table name that stands
for the node), so the parser's character offsets are offsets in the file, and only the
identifiers found are replaced: the rest of the file (Jinja, comments, layout) stays as
written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from stackyard.errors import UsageError

_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
_RELATION = re.compile(r"\{\{-?\s*(ref|source)\s*\((.*)\)\s*-?\}\}", re.S)
_CONFIG = re.compile(r"\{\{-?\s*config\s*\(", re.S)
_THIS = re.compile(r"\{\{-?\s*this\s*-?\}\}")


@dataclass(frozen=True)
class ReaderRewrite:
    """A reader's SQL migrated to the new column name.

    Attributes:
        text: the model file with only the references to the renamed column changed.
        renamed_outputs: the reader's output columns (lower case) that now come out under
            the new name, because they passed the old one on unaliased.
    """

    text: str
    renamed_outputs: frozenset[str]


def rewrite_reader(
    sql: str,
    node: str,
    old: str,
    new: str,
    relations: Mapping[str, Sequence[str]],
    dialect: str | None,
    path: str = "",
    reader: str = "",
) -> ReaderRewrite:
    """Rewrite the references to ``node.old`` in a model's SQL to ``new``.

    Args:
        sql: the reader's model file (dbt Jinja SQL).
        node: the model whose column is renamed, as ``ref()`` names it.
        old: the column's name now.
        new: its new name.
        relations: the columns of every node the reader may ``ref``/``source`` (sources as
            ``SOURCE.TABLE``), to expand ``SELECT *`` and place unqualified columns.
        dialect: sqlglot dialect of the SQL.
        path: the model file, for messages.
        reader: the reader's own name, for ``{{ this }}`` (its table as built).

    Returns:
        The new text and which of the reader's outputs now carry the new name.

    Raises:
        UsageError: the SQL does not parse, or a column named ``old`` cannot be tied to a
            relation; nothing is written.

    >>> done = rewrite_reader(
    ...     "select a.id, b.id as b_id from {{ ref('a') }} a join {{ ref('b') }} b "
    ...     "on a.id = b.id", "a", "id", "key", {"a": ["id"], "b": ["id"]}, "duckdb")
    >>> done.text
    "select a.key, b.id as b_id from {{ ref('a') }} a join {{ ref('b') }} b on a.key = b.id"
    >>> sorted(done.renamed_outputs)
    ['id']
    """
    import sqlglot
    from sqlglot.errors import SqlglotError
    from sqlglot.optimizer.scope import build_scope

    from stackyard.lineage.columns import qualify_query

    masked, placeholders = _mask(sql, reader)
    target = {p for p, name in placeholders.items() if name.lower() == node.lower()}
    schema: dict[str, object] = {
        p: {c: "TEXT" for c in relations[name]}
        for p, name in placeholders.items()
        if relations.get(name)
    }
    where = path or f"a model reading {node}"
    try:
        parsed = sqlglot.parse_one(masked, dialect=dialect)
        _refuse_using(parsed, old, new, where)
        qualified = qualify_query(parsed, schema, dialect)
    except SqlglotError as exc:
        raise UsageError(
            f"{where} could not be analysed, so which of its columns read {node}.{old} is unknown: "
            f"{str(exc).strip().splitlines()[0][:200]}",
            hint=f"make it read {new} instead of {old} by hand, then run the phase again",
        ) from None
    root = build_scope(qualified)
    if root is None:
        raise UsageError(
            f"{where} is not a SELECT statement: evolve cannot tell which columns read "
            f"{node}.{old}",
            hint=f"make it read {new} instead of {old} by hand, then run the phase again",
        )
    resolver = _Resolver(target, old, where)
    spans: set[tuple[int, int]] = set()
    for scope in root.traverse():
        for column in _references(scope):
            meta = column.this.meta
            if "start" in meta and resolver.reads(scope, column):
                spans.add((int(meta["start"]), int(meta["end"]) + 1))
    text = sql
    for start, end in sorted(spans, reverse=True):
        written = text[start:end]
        if written.strip('"`[]').lower() != old.lower():
            raise UsageError(
                f"{where}: expected '{old}' at character {start}, found '{written}'",
                hint=f"make it read {new} instead of {old} by hand, then run the phase again",
            )
        quoted = written != written.strip('"`[]')
        text = text[:start] + (written[0] + new + written[-1] if quoted else new) + text[end:]
    outputs = frozenset(name.lower() for name in _output_names(root) if resolver.passes(root, name))
    return ReaderRewrite(text, outputs)


def _mask(sql: str, reader: str = "") -> tuple[str, dict[str, str]]:
    """The SQL with its Jinja masked by same-length text, and placeholder → node name.

    >>> _mask("{{ config(x=1) }}select * from {{ ref('a') }}")
    ('                 select * from _syr0_________', {'_syr0_________': 'a'})
    """
    placeholders: dict[str, str] = {}

    def masked(match: re.Match[str]) -> str:
        span = match.group(0)
        relation = _RELATION.fullmatch(span)
        if reader and _THIS.fullmatch(span):
            placeholder = f"_syr{len(placeholders)}_".ljust(len(span), "_")
            placeholders[placeholder] = reader
            return placeholder
        if relation:
            args = [
                a.strip().strip("'\"")
                for a in relation.group(2).split(",")
                if "=" not in a and a.strip()
            ]
            if args:
                name = args[-1] if relation.group(1) == "ref" else ".".join(args[:2])
                placeholder = f"_syr{len(placeholders)}_".ljust(len(span), "_")
                placeholders[placeholder] = name
                return placeholder
        if span.startswith("{{") and not _CONFIG.match(span):
            # An expression (a macro call, a var): stands for a column or a table.
            return "_sy".ljust(len(span), "_")
        return "".join(c if c == "\n" else " " for c in span)

    return _JINJA.sub(masked, sql), placeholders


def _refuse_using(parsed: Any, old: str, new: str, where: str) -> None:
    """Refuse a join ``USING (old)``: one side may be renamed and the other not, which
    ``USING`` cannot say (``ON`` can)."""
    from sqlglot import exp

    for join in parsed.find_all(exp.Join):
        if any(i.name.lower() == old.lower() for i in join.args.get("using") or []):
            raise UsageError(
                f"{where} joins USING ({old}): after the rename one side may call it {new}",
                hint=f"write the join with ON (a.{old} = b.{old}) and run the phase again",
            )


def _references(scope: Any) -> list[Any]:
    """The columns a scope reads, with the ORDER BY's references to its own outputs
    (which qualification leaves unqualified and the scope does not list)."""
    from sqlglot import exp

    columns = list(scope.columns)
    order = scope.expression.args.get("order")
    if order is not None and not isinstance(scope.expression, exp.SetOperation):
        seen = {id(c) for c in columns}
        columns += [c for c in order.find_all(exp.Column) if not c.table and id(c) not in seen]
    return columns


class _Resolver:
    """Whether a column reads the renamed column, memoised per (scope, name)."""

    def __init__(self, target: set[str], old: str, where: str) -> None:
        self._target = target
        self._old = old.lower()
        self._where = where
        self._memo: dict[tuple[int, str], bool] = {}

    def reads(self, scope: Any, column: Any) -> bool:
        """Whether ``column`` in ``scope`` is the renamed column, or an output passing it on
        under its name."""
        from sqlglot import exp

        name = str(column.name)
        if not column.table:
            # Unqualified after qualification: a reference to the scope's own output
            # (ORDER BY, a set operation's ORDER BY), or a column no relation was found for.
            outputs = {n.lower() for n in _output_names(scope)}
            if name.lower() in outputs and _in_order_by(scope, column):
                return self.passes(scope, name)
            if name.lower() == self._old:
                line = column.this.meta.get("line", "?")
                raise UsageError(
                    f"{self._where} line {line}: cannot tell which relation '{name}' comes "
                    "from, so whether it is the renamed column is unknown",
                    hint=f"qualify it (table.{name}) and run the phase again",
                )
            return False
        source = _lookup(scope, str(column.table))
        if isinstance(source, exp.Table):
            return source.name.lower() in self._target and name.lower() == self._old
        if source is None:
            return False
        return self.passes(source, name)

    def passes(self, scope: Any, name: str) -> bool:
        """Whether ``scope`` outputs ``name`` from the renamed column under its old name (so
        it comes out under the new one once the references are rewritten)."""
        key = (id(scope), name.lower())
        if key not in self._memo:
            self._memo[key] = False  # a recursive CTE ends here
            self._memo[key] = self._passes(scope, name)
        return self._memo[key]

    def _passes(self, scope: Any, name: str) -> bool:
        from sqlglot import exp

        if isinstance(scope.expression, exp.SetOperation):
            # The first branch names a set operation's columns.
            return self.passes(scope.set_operation_scopes[0], name)
        for select in getattr(scope.expression, "selects", []):
            if select.alias_or_name.lower() != name.lower():
                continue
            # An alias written in the SQL keeps the output's name; qualification adds
            # aliases of its own, which have no place in the text.
            if isinstance(select, exp.Alias) and "start" in select.args["alias"].meta:
                return False
            inner = select.unalias()
            return isinstance(inner, exp.Column) and self.reads(scope, inner)
        return False


def _in_order_by(scope: Any, column: Any) -> bool:
    """Whether a column is in the scope's own ORDER BY (not a window's)."""
    order = scope.expression.args.get("order")
    node = column
    while node is not None and node is not scope.expression:
        if node is order:
            return True
        node = node.parent
    return False


def _lookup(scope: Any, alias: str) -> Any:
    """The source an alias names, searching outward for correlated subqueries."""
    current = scope
    while current is not None:
        if alias in current.sources:
            return current.sources[alias]
        current = current.parent
    return None


def _output_names(scope: Any) -> list[str]:
    from sqlglot import exp

    expression = scope.expression
    while isinstance(expression, exp.SetOperation):
        expression = expression.left
    return [s.alias_or_name for s in getattr(expression, "selects", [])]
