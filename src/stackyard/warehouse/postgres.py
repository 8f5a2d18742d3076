"""PostgreSQL through psycopg 3. One stackyard target is one Postgres database."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from typing import Any, ClassVar

from stackyard.config.model import PostgresTarget
from stackyard.errors import WarehouseError, WarehouseUnreachableError
from stackyard.warehouse.base import (
    ColumnSequence,
    JsonText,
    QueryEstimate,
    QueryResult,
    Warehouse,
)

# The sequences behind a table's columns: owned by a column (identity: an internal dependency,
# serial or OWNED BY: an automatic one) or named by a column's default (its pg_attrdef entry
# depends on the sequence). https://www.postgresql.org/docs/current/catalog-pg-depend.html
_COLUMN_SEQUENCES = """
WITH t AS (SELECT to_regclass(%s) AS oid),
links AS (
  SELECT d.objid AS seq, d.refobjsubid AS attnum, true AS owned
  FROM pg_depend d JOIN t ON d.refobjid = t.oid
  WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
    AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0
  UNION ALL
  SELECT d.refobjid, ad.adnum, false
  FROM pg_attrdef ad JOIN t ON ad.adrelid = t.oid
  JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid
    AND d.refclassid = 'pg_class'::regclass
)
SELECT a.attname, n.nspname, c.relname,
  bool_or(l.owned) AND NOT EXISTS (
    SELECT 1 FROM pg_depend o JOIN pg_attrdef oa ON o.objid = oa.oid
    WHERE o.classid = 'pg_attrdef'::regclass AND o.refobjid = c.oid
      AND oa.adrelid <> (SELECT oid FROM t)),
  q.seqstart, q.seqincrement, s.last_value
FROM links l
JOIN pg_class c ON c.oid = l.seq AND c.relkind = 'S'
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_sequence q ON q.seqrelid = c.oid
JOIN pg_attribute a ON a.attrelid = (SELECT oid FROM t) AND a.attnum = l.attnum
LEFT JOIN pg_sequences s ON s.schemaname = n.nspname AND s.sequencename = c.relname
GROUP BY a.attnum, a.attname, n.nspname, c.relname, c.oid, q.seqstart, q.seqincrement,
  s.last_value
ORDER BY a.attnum, n.nspname, c.relname
"""


class PostgresWarehouse(Warehouse):
    """A Postgres database, autocommit by default; :meth:`transaction` groups statements."""

    KIND: ClassVar[str] = "postgres"
    DBT_OUTPUT: ClassVar[dict[str, tuple[str, ...]]] = {
        **{key: (key,) for key in ("host", "port", "user", "password", "schema", "sslmode")},
        **{key: (key,) for key in ("threads", "connect_timeout")},
        "pass": ("password",),
        "dbname": ("database",),
        "database": ("database",),
    }
    DIALECT: ClassVar[str] = "postgres"
    IDENTIFIER_QUOTE: ClassVar[str | None] = '"'
    SUPPORTS_ROLES = True
    SUPPORTS_TRANSACTIONAL_DDL = True
    TRANSACTIONS = True
    PARALLEL_LOADS = True
    MAX_IDENTIFIER_LENGTH = 63  # NAMEDATALEN - 1
    # libpq reads PGTZ for the session time zone; dbt-postgres has no profile key for it.
    DBT_ENV: ClassVar[dict[str, str]] = {"PGTZ": "UTC"}
    EXPLAIN_ESTIMATES: ClassVar[bool] = True
    # COPY refuses a NUL in text ("invalid byte sequence for encoding UTF8: 0x00") and with
    # it the whole table's load, on every run after.
    TEXT_HOLDS_NUL = False
    SQL_BUILD: ClassVar[bool] = True
    RANGE_INDEXES: ClassVar[bool] = True

    config: PostgresTarget

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._conn: Any = None

    def _password(self) -> str | None:
        if self.config.password is None:
            return None
        return self.secrets.resolve(
            self.config.password, used_for=f"targets.{self.target_name}.password"
        )

    def connect_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``psycopg.connect`` (includes the password, if any)."""
        kwargs: dict[str, Any] = {
            "host": self.config.host,
            "port": self.config.port,
            "user": self.config.user,
            "dbname": self.config.database,
            "sslmode": self.config.sslmode,
            "connect_timeout": self.config.connect_timeout,
            "options": "-c TimeZone=UTC",
        }
        password = self._password()
        if password is not None:
            kwargs["password"] = password
        return kwargs

    def cascading_references(self, schema: str, table: str) -> list[str]:
        actions = {
            "c": "ON DELETE CASCADE",
            "n": "ON DELETE SET NULL",
            "d": "ON DELETE SET DEFAULT",
        }
        found = self.query(
            "SELECT conrelid::regclass::text, confdeltype::text FROM pg_constraint "
            "WHERE contype = 'f' AND confrelid = to_regclass(%s) AND conrelid <> confrelid "
            "ORDER BY 1",
            (self.quote(schema, table),),
        ).rows
        return [f"{name} ({actions[kind]})" for name, kind in found if kind in actions]

    def dlt_destination(self) -> Any:
        _keep_empty_strings()
        return super().dlt_destination()

    def dlt_destination_settings(self) -> dict[str, Any]:
        credentials: dict[str, Any] = {
            "database": self.config.database,
            "username": self.config.user,
            "host": self.config.host,
            "port": self.config.port,
            "connect_timeout": self.config.connect_timeout,
        }
        # dlt requires the field; an empty password works with trust or peer authentication.
        credentials["password"] = self._password() or ""
        return {"credentials": credentials}

    def dbt_output(self) -> dict[str, Any]:
        output: dict[str, Any] = {
            "type": "postgres",
            "host": self.config.host,
            "port": self.config.port,
            "user": self.config.user,
            "dbname": self.config.database,
            "schema": self.config.schema_,
            "threads": self.config.threads,
            "sslmode": self.config.sslmode,
            "connect_timeout": self.config.connect_timeout,
        }
        # dbt-postgres requires the key; an empty password works with trust/peer auth.
        output["password"] = (
            f"{{{{ env_var('{self.config.password.secret}') }}}}" if self.config.password else ""
        )
        return output

    def _connection(self) -> Any:
        if self._conn is None:
            import psycopg

            try:
                self._conn = psycopg.connect(**self.connect_kwargs(), autocommit=True)
            except psycopg.OperationalError as exc:
                raise WarehouseUnreachableError(
                    f"cannot connect to {self.describe()}: {self.secrets.redact(str(exc)).strip()}",
                    hint="check host, port, user and database in stackyard.yml, that the server "
                    "is running, and that the database exists (createdb "
                    f"{self.config.database})",
                ) from None
        return self._conn

    def param(self) -> str:
        return "%s"

    def drop_views_reading(self, schema: str, tables: Sequence[str] = ()) -> list[str]:
        # Its own short connection: sources load in threads, and this runs in one of them.
        import psycopg

        with psycopg.connect(**self.connect_kwargs(), autocommit=True) as conn:
            found = conn.execute(_VIEWS_READING, (schema,)).fetchall()
            dropped = []
            for view_schema, view, kind, table in found:
                wanted = not tables or any(table == t or table.startswith(f"{t}__") for t in tables)
                name = f"{self.quote(view_schema)}.{self.quote(view)}"
                if wanted and name not in dropped:
                    what = "MATERIALIZED VIEW" if kind == "m" else "VIEW"
                    conn.execute(f"DROP {what} IF EXISTS {name} CASCADE")
                    dropped.append(name)
        return dropped

    def query(self, sql: str, params: Sequence[Any] = ()) -> QueryResult:
        return self._query(sql, params, shown=False)

    def show_query(self, sql: str) -> QueryResult:
        """:meth:`query`, with a date, time or timestamp that Python cannot hold (``infinity``,
        ``-infinity``, BC, a year past 9999, ``24:00:00``) as the text Postgres prints for it,
        where the driver refuses the whole answer; JSON as :class:`JsonText`; an interval as
        Postgres prints it."""
        return self._query(sql, (), shown=True)

    def _query(self, sql: str, params: Sequence[Any], *, shown: bool) -> QueryResult:
        import psycopg

        try:
            with self._connection().cursor() as cur:
                if shown:
                    _read_as_printed(cur)
                cur.execute(sql, list(params) if params else None)
                rows = cur.fetchall() if cur.description else []
                columns = tuple(d.name for d in cur.description or ())
                # Several statements in one string: each has its result; the last one's is
                # the answer (the first one's was shown as if it were the last).
                while cur.nextset():
                    rows = cur.fetchall() if cur.description else []
                    columns = tuple(d.name for d in cur.description or ())
        except psycopg.OperationalError as exc:
            self.close()
            raise WarehouseUnreachableError(
                f"lost the connection to {self.describe()}: {exc}"
            ) from None
        except psycopg.DataError as exc:
            if exc.sqlstate is not None:
                raise WarehouseError(f"Postgres rejected the query: {exc}".strip()) from None
            # No SQLSTATE: Postgres answered, and the driver could not read a value of the
            # answer as a Python one ('infinity' timestamps, years past 9999).
            raise WarehouseError(
                f"the query ran, but a value it returned cannot be read: {exc}".strip(),
                hint="cast that column to text in the query (e.g. `valid_to::text`)",
            ) from None
        except psycopg.Error as exc:
            raise WarehouseError(f"Postgres rejected the query: {exc}".strip()) from None
        return QueryResult(columns, tuple(tuple(r) for r in rows))

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.query(sql, params)

    def execute_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        import psycopg

        rows = list(rows)
        if not rows:
            return
        try:
            with self._connection().cursor() as cur:
                cur.executemany(sql, rows)
        except psycopg.Error as exc:
            raise WarehouseError(f"Postgres rejected the statement: {exc}".strip()) from None

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """A cursor inside one transaction: committed when the block ends, rolled back when
        it raises. A connection lost meanwhile is dropped (the next query opens a new one)
        and reported as :class:`WarehouseUnreachableError`.
        """
        import psycopg

        connection = self._connection()
        try:
            with connection.transaction(), connection.cursor() as cursor:
                yield cursor
        except psycopg.OperationalError as exc:
            self.close()
            raise WarehouseUnreachableError(
                f"lost the connection to {self.describe()}: {exc}",
                hint="the transaction was rolled back: nothing was applied; run it again",
            ) from None

    def raw_connection(self) -> Any:
        """The psycopg connection, for callers that manage a transaction themselves."""
        return self._connection()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def column_sequences(self, schema: str, table: str) -> tuple[ColumnSequence, ...]:
        rows = self.query(_COLUMN_SEQUENCES, (self.quote(schema, table),)).rows
        return tuple(
            ColumnSequence(
                column=str(column),
                schema=str(seq_schema),
                name=str(name),
                owned=bool(owned),
                start=int(start),
                increment=int(increment),
                last_value=None if last is None else int(last),
                # A sequence reads as a one-row table; last_value is the next value while
                # is_called is false (nothing handed out since its start or a setval).
                position_sql=f"(SELECT last_value FROM {self.quote(seq_schema, name)})",
            )
            for column, seq_schema, name, owned, start, increment, last in rows
        )

    def estimate_query(self, sql: str, params: Sequence[Any] = ()) -> QueryEstimate | None:
        # EXPLAIN (FORMAT JSON, VERBOSE): "Plan Rows" of the top node; bytes are the size of
        # every table read whole (a sequential scan) plus rows × width of the others.
        # https://www.postgresql.org/docs/current/sql-explain.html
        import json

        raw = self.query(f"EXPLAIN (FORMAT JSON, VERBOSE) {sql}", params).rows[0][0]
        plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
        scanned = 0
        stack = [plan]
        while stack:
            node = stack.pop()
            stack += node.get("Plans", [])
            if "Relation Name" not in node:
                continue
            if node.get("Node Type") == "Seq Scan":
                name = self.quote(node.get("Schema") or "public", node["Relation Name"])
                size = self.query("SELECT pg_relation_size(to_regclass(%s))", (name,)).rows
                scanned += int(size[0][0] or 0)
            else:
                scanned += int(node.get("Plan Rows", 0)) * int(node.get("Plan Width", 0))
        return QueryEstimate(int(plan["Plan Rows"]), scanned)

    def describe_query(self, sql: str) -> dict[str, str] | None:
        # A temporary view is planned, not run: its columns are the query's.
        import uuid

        view = f"stackyard_probe_{uuid.uuid4().hex[:10]}"
        self.execute(f"CREATE TEMPORARY VIEW {view} AS {sql}")
        try:
            rows = self.query(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = %s ORDER BY ordinal_position",
                (view,),
            ).rows
        finally:
            self.execute(f"DROP VIEW IF EXISTS {view}")
        return {str(r[0]): str(r[1]) for r in rows}

    def describe(self) -> str:
        c = self.config
        return f"Postgres target '{self.target_name}' ({c.user}@{c.host}:{c.port}/{c.database})"


# The views (and materialized views) of any schema whose query reads a table of one schema.
_VIEWS_READING = """
SELECT DISTINCT vn.nspname, v.relname, v.relkind, t.relname
FROM pg_depend d
JOIN pg_rewrite r ON r.oid = d.objid
JOIN pg_class v ON v.oid = r.ev_class
JOIN pg_namespace vn ON vn.oid = v.relnamespace
JOIN pg_class t ON t.oid = d.refobjid
JOIN pg_namespace tn ON tn.oid = t.relnamespace
WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
  AND v.relkind IN ('v', 'm') AND v.oid <> t.oid AND tn.nspname = %s
ORDER BY 1, 2
"""


# The types whose values psycopg reads as a datetime, date or time and cannot when Python has
# none for them: infinity, BC, years past 9999, 24:00:00.
_DATED = ("date", "timestamp", "timestamptz", "time", "timetz")


def _read_as_printed(cursor: Any) -> None:
    """Make ``cursor`` read a dated value that Python cannot hold as the text Postgres sent,
    instead of failing the whole answer; every other value as psycopg reads it.

    The cursor's own adapters, so nothing else reading the connection changes
    (https://www.psycopg.org/psycopg3/docs/advanced/adapt.html). psycopg's fast loaders cannot
    be subclassed, so each is wrapped: a try around its own load costs little per value.
    """
    from psycopg.postgres import types
    from psycopg.pq import Format
    from psycopg.types.string import TextLoader

    for name in _DATED:
        inner = cursor.adapters.get_loader(types[name].oid, Format.TEXT)
        cursor.adapters.register_loader(name, _printed_when_unreadable(inner))
    # JSON as Postgres prints it rather than a dict (shown as Python's repr, {'a': 1}, its
    # numbers made floats).
    for name in ("json", "jsonb"):
        cursor.adapters.register_loader(name, _json_text())
    # An interval as Postgres prints it ("1 mon 2 days 03:00:00"): psycopg's timedelta makes
    # a month 30 days and prints as Python does ("32 days, 3:00:00").
    cursor.adapters.register_loader("interval", TextLoader)
    # A range as Postgres prints it ("[1,10)"), not psycopg's Range(1, 10, '[)').
    for kind in ("int4", "int8", "num", "date", "ts", "tstz"):
        for name in (f"{kind}range", f"{kind}multirange"):
            cursor.adapters.register_loader(name, TextLoader)


@cache
def _json_text() -> type:
    from psycopg.adapt import Loader

    class AsJsonText(Loader):
        def load(self, data: Any) -> JsonText:
            return JsonText(bytes(data).decode())

    return AsJsonText


@cache
def _printed_when_unreadable(inner: type) -> type:
    import psycopg
    from psycopg.adapt import Loader

    class PrintedWhenUnreadable(Loader):
        def __init__(self, oid: int, context: Any = None) -> None:
            super().__init__(oid, context)
            self._load = inner(oid, context).load

        def load(self, data: Any) -> Any:
            try:
                return self._load(data)
            except psycopg.DataError:
                return bytes(data).decode()

    return PrintedWhenUnreadable


def _keep_empty_strings() -> None:
    """Make dlt's COPY of Arrow batches keep empty strings.

    dlt writes an Arrow batch (a SQL table, a file) as CSV and copies it with every nullable
    column under ``FORCE_NULL``, which makes a quoted empty string NULL as well: ``''`` in a
    text or bytea column loaded as NULL, without a word, where DuckDB kept it. Arrow's CSV
    writer quotes every string and writes NULL unquoted, so COPY tells the two apart without
    it. (``FORCE_NULL`` is there for dlt's writer of Python rows, which writes None quoted;
    stackyard loads Python rows into Postgres as INSERT statements, never that CSV.)
    """
    from dlt.destinations.impl.postgres import postgres as copy_job

    copy_job.is_nullable_column = lambda column: False  # type: ignore[assignment]
