"""The one protocol every warehouse module implements.

Differences between engines are declared first as capability flags; a method is overridden
only where a flag cannot say it. SQL that carries names is built with sqlglot quoting
(:meth:`Warehouse.quote`), never by pasting user strings.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from stackyard.config.base import SecretRef
from stackyard.config.secrets import Secrets


@dataclass(frozen=True)
class LoadedTable:
    """A table dlt has just loaded, as a destination without merges needs to know it.

    Attributes:
        name: the table's name in its schema.
        parent: the table a nested table's rows belong to (dlt's ``parent``), else None.
        merge_key: for a table loaded with ``merge``, its key columns; empty otherwise.
    """

    name: str
    parent: str | None = None
    merge_key: tuple[str, ...] = ()


@dataclass(frozen=True)
class QueryResult:
    """Rows returned by a query, with their column names."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    #: how many statements the text held (the rows are the last one's)
    statements: int = 1

    def keys(self) -> tuple[str, ...]:
        """The column names, one for each column: a name the query gives again (``SELECT 1
        AS a, 2 AS a``, a join's two ``id``) is followed by ``_2``, ``_3`` …, so a mapping of
        a row keeps every value.

        >>> QueryResult(("a", "a", "a_2", "b"), ()).keys()
        ('a', 'a_3', 'a_2', 'b')
        """
        taken = set(self.columns)
        seen: set[str] = set()
        keys = []
        for name in self.columns:
            key, n = name, 1
            while key in seen or (key != name and key in taken):
                n += 1
                key = f"{name}_{n}"
            seen.add(key)
            keys.append(key)
        return tuple(keys)

    def as_dicts(self) -> list[dict[str, Any]]:
        """Each row as a ``{column: value}`` mapping, keyed by :meth:`keys`.

        >>> QueryResult(("a", "a"), ((1, 2),)).as_dicts()
        [{'a': 1, 'a_2': 2}]
        """
        keys = self.keys()
        return [dict(zip(keys, row, strict=True)) for row in self.rows]


@dataclass(frozen=True)
class ExactTimestamp:
    """A timestamp with more digits than a Python ``datetime`` holds (it stops at
    microseconds), kept as the text the engine prints for it.

    >>> str(ExactTimestamp("2024-01-01 12:00:00.123456789"))
    '2024-01-01 12:00:00.123456789'
    >>> ExactTimestamp("2024-01-01 12:00:00.123456789").isoformat()
    '2024-01-01T12:00:00.123456789'
    """

    text: str

    def __str__(self) -> str:
        return self.text

    def isoformat(self) -> str:
        """The text in ISO 8601's form, as ``datetime.isoformat`` writes the others."""
        return self.text.replace(" ", "T", 1)


class JsonText(str):
    """A JSON value (a ``json``/``jsonb`` column) as the engine prints it: shown as that
    text, and written by ``--json`` as the JSON value it holds, every digit kept.

    >>> JsonText('{"a": 1}')
    '{"a": 1}'
    """

    __slots__ = ()


@dataclass(frozen=True)
class ColumnSequence:
    """A sequence that hands out a table column's values (an identity, a serial, a
    ``DEFAULT nextval(…)``), as the engine's catalog holds it now.

    Attributes:
        column: the table's column.
        schema: the sequence's schema.
        name: the sequence's name.
        owned: the sequence belongs to the column (Postgres identity or serial, ``OWNED BY``)
            and no other table's default draws from it, so it follows this table's rows
            alone; else it may hand out values elsewhere too.
        start: its ``START``.
        increment: its ``INCREMENT`` (negative: it counts down).
        last_value: the last value it handed out; None when it has handed out none.
        position_sql: a scalar SQL expression, evaluated as the swap runs, that the
            sequence hands out nothing before afterwards (Postgres: its last value, the next
            one while none has been handed out; DuckDB: ``nextval``, which spends one): a
            value at or past it is one the sequence could still hand out.
    """

    column: str
    schema: str
    name: str
    owned: bool
    start: int
    increment: int
    last_value: int | None
    position_sql: str


@dataclass(frozen=True)
class QueryEstimate:
    """What the engine's planner expects of a query, without running it.

    Attributes:
        rows: rows the query returns, as the planner estimates them.
        bytes_scanned: bytes it reads from tables; None where the plan does not say.
    """

    rows: int
    bytes_scanned: int | None


class Warehouse(ABC):
    """A connection to one target, and what dlt and dbt need to reach it.

    Attributes:
        KIND: the ``type`` of the target in stackyard.yml.
        DIALECT: the sqlglot dialect for building and checking SQL.
        SUPPORTS_ROLES: roles and grants are enforced by the engine.
        SUPPORTS_TRANSACTIONAL_DDL: CREATE/GRANT can be rolled back in a transaction.
        TRANSACTIONS: ``BEGIN TRANSACTION`` … ``COMMIT`` sent as separate statements groups
            INSERTs and DELETEs into one transaction (BigQuery's only live within one script,
            Spark has none).
        PARALLEL_LOADS: several dlt pipelines may load into it at the same time.
        REACHABLE_HERE: stackyard ships a driver for it (Snowflake and BigQuery need extras).
        MAX_IDENTIFIER_LENGTH: longest name the engine keeps without truncating.
        SUPPORTS_KEY_PAIR_AUTH: users can log in with an RSA key pair instead of a password.
        COMPRESS_LOAD_FILES: dlt's Parquet load files are worth compressing (they travel over
            a network); an in-process engine reads them from local disk at once.
        STORAGE: where the data lives, which decides how it is backed up and cloned:
            ``"file"`` (one embedded database file, copied whole), ``"server"`` (a database
            server, dumped and restored with its own tools) or ``"cloud"`` (a service with
            zero-copy clones and time travel, reached through generated SQL).
        GRANTS_IN_CATALOG: the engine's own catalog holds its roles and grants, so they can
            be read back and compared (BigQuery's access is IAM, outside it).
        TIME_TRAVEL: how a table is read as of a past time: ``"clone"`` (``CLONE … AT``),
            ``"system_time"`` (``FOR SYSTEM_TIME AS OF``), or None (the engine keeps no
            history).
        TRANSIENT_TABLES_BY_DEFAULT: dbt's adapter creates table models as transient tables
            unless told otherwise (dbt-snowflake: no Fail-safe, at most one day of time travel).
        RANGE_INDEXES: a B-tree index speeds up a range filter (Postgres); DuckDB's ART
            indexes do not, its zone maps already skip what a range filter excludes.
        EXPLAIN_ESTIMATES: the planner's row (and maybe byte) estimates can be read with
            :meth:`estimate_query`; without it, a dry run's figures come from counting.
        SNOWPIPE: the engine loads files from a stage itself (Snowpipe); elsewhere stackyard
            reads a snowpipe source's files as the filesystem kind.
        INFORMATION_SCHEMA: the engine answers queries on ``information_schema``; without
            it (Spark's catalog) tables and columns come from :meth:`all_columns`.
        IDENTIFIER_QUOTE: the engine quotes every identifier in this character and doubles
            it inside a name (the SQL standard's rule, which DuckDB and Postgres follow), so
            :meth:`quote` needs no sqlglot; ``None``: sqlglot quotes in :attr:`DIALECT`.
        LIST_PARAMETERS: a query parameter may be a Python list, bound as the engine's list
            type (``CAST(? AS VARCHAR[])``), so many rows insert as one list per column.
        TEXT_HOLDS_NUL: a text column may hold the character NUL (``\\x00``); Postgres's
            cannot, and a row holding one is kept out of the load with its reason.
        SQL_BUILD: ``run --engine auto|sql`` may run dbt's compiled SQL here itself (the
            plan in runner/sql_plan.py is written for DuckDB's and Postgres's DDL).
        DBT_OUTPUT: ``adopt dbt`` reads a dbt profile's output of this type: each setting of
            dbt's adapter to the target settings it fills (none: read and dropped).
    """

    KIND: ClassVar[str]
    DIALECT: ClassVar[str]
    SUPPORTS_ROLES: ClassVar[bool] = False
    SUPPORTS_TRANSACTIONAL_DDL: ClassVar[bool] = False
    TRANSACTIONS: ClassVar[bool] = False
    PARALLEL_LOADS: ClassVar[bool] = True
    REACHABLE_HERE: ClassVar[bool] = True
    MAX_IDENTIFIER_LENGTH: ClassVar[int] = 255
    DBT_ENV: ClassVar[dict[str, str]] = {}
    COMPRESS_LOAD_FILES: ClassVar[bool] = True
    STORAGE: ClassVar[str] = "server"
    TEXT_HOLDS_NUL: ClassVar[bool] = True
    TIME_TRAVEL: ClassVar[str | None] = None
    GRANTS_IN_CATALOG: ClassVar[bool] = True
    SUPPORTS_KEY_PAIR_AUTH: ClassVar[bool] = False
    TRANSIENT_TABLES_BY_DEFAULT: ClassVar[bool] = False
    EXPLAIN_ESTIMATES: ClassVar[bool] = False
    INFORMATION_SCHEMA: ClassVar[bool] = True
    RANGE_INDEXES: ClassVar[bool] = False
    # dbt's relation for this adapter wraps an event-time-filtered input in an aliased
    # subquery (dbt's BaseRelation.require_alias).
    DBT_SUBQUERY_ALIAS: ClassVar[bool] = True
    # The adapter's own microbatch strategy replaces a batch whole (delete + insert of the
    # window), so a backfill can run a batch as that plain SQL (runbooks/backfill/model_sql).
    DBT_MICROBATCH_REPLACES: ClassVar[bool] = False
    SNOWPIPE: ClassVar[bool] = False
    IDENTIFIER_QUOTE: ClassVar[str | None] = None
    LIST_PARAMETERS: ClassVar[bool] = False
    SQL_BUILD: ClassVar[bool] = False
    #: Column names match whatever their case, quoted or not (DuckDB).
    CASE_INSENSITIVE_COLUMNS: ClassVar[bool] = False
    DBT_OUTPUT: ClassVar[dict[str, tuple[str, ...]]] = {}

    def __init__(self, target_name: str, config: Any, project_dir: Path, secrets: Secrets):
        self.target_name = target_name
        self.config = config
        self.project_dir = project_dir
        self.secrets = secrets
        # Called before a file engine's connection is opened; raises to refuse (the session
        # sets it: opening a DuckDB file between two steps of another process's run would
        # make that run's next step fail to open it).
        self.connect_guard: Callable[[], None] | None = None

    # ----------------------------------------------------------- what dlt and dbt need

    @abstractmethod
    def dlt_destination_settings(self) -> dict[str, Any]:
        """Keyword arguments for the matching ``dlt.destinations.<kind>`` factory."""

    def dlt_destination(self) -> Any:
        """The dlt destination object for this target."""
        import dlt

        factory = getattr(dlt.destinations, self.KIND)
        return factory(**self.dlt_destination_settings())

    @abstractmethod
    def dbt_output(self) -> dict[str, Any]:
        """This target's entry under ``outputs:`` in the generated profiles.yml; secrets
        appear as ``{{ env_var('NAME') }}`` so that no secret value is written to disk."""

    def dlt_environment(self) -> dict[str, str]:
        """dlt settings (as environment variables) every load into this target needs, e.g.
        the load file format a destination without a native one must write."""
        return {}

    def after_load(self, schema: str, tables: Sequence[LoadedTable]) -> None:
        """Make what dlt just loaded into ``schema`` queryable, where the destination does not
        itself (a lakehouse's files registered in the engine's catalog, each merged key's
        latest row only); most need nothing."""
        return None

    def check_source(self, name: str, config: Any) -> None:
        """Refuse, before anything runs, a source setting this target cannot honour (raises
        :class:`~stackyard.errors.ConfigError`); most targets honour every one."""
        return None

    def before_dbt(self) -> None:
        """Prepare the engine for a dbt command run in this process; most need nothing."""
        return None

    def secret_env(self) -> dict[str, str]:
        """The environment dbt needs: secrets for the profile's ``env_var`` references, and
        session settings the profile cannot hold."""
        env: dict[str, str] = dict(self.DBT_ENV)
        for field_name, value in self.config:
            if isinstance(value, SecretRef):
                env[value.secret] = self.secrets.resolve(
                    value, used_for=f"targets.{self.target_name}.{field_name}"
                )
        return env

    # ----------------------------------------------------------- SQL

    @abstractmethod
    def query(self, sql: str, params: Sequence[Any] = ()) -> QueryResult:
        """Run one statement and return its rows. Placeholders are ``?``-style for DuckDB
        and ``%s``-style for Postgres; prefer :meth:`param` to write them portably."""

    def show_query(self, sql: str) -> QueryResult:
        """Run a statement a person typed (``stackyard sql``) and return its rows as they are
        to be shown: :meth:`query`'s, on an engine whose driver hands every value over as it
        is; one that hands a value over as another overrides this."""
        return self.query(sql)

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run one statement that returns nothing."""

    def execute_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one statement once per row of parameters."""
        for row in rows:
            self.execute(sql, row)

    def drop_views_reading(self, schema: str, tables: Sequence[str] = ()) -> list[str]:
        """Drop the views that read tables of ``schema`` (``tables`` and their child tables;
        every table when empty), on an engine whose ``DROP TABLE`` refuses while views read
        the table; return them. A source loaded again from scratch drops its tables, and the
        run builds the views again from their models. Elsewhere: nothing to do."""
        return []

    def describe_query(self, sql: str) -> dict[str, str] | None:
        """The columns and types a SELECT returns, without running it; ``None`` where the
        engine cannot say.

        Raises:
            WarehouseError: the SQL does not compile against the warehouse as it is.
        """
        return None

    def estimate_query(self, sql: str, params: Sequence[Any] = ()) -> QueryEstimate | None:
        """The planner's estimate of a SELECT (its ``EXPLAIN``), without running it; ``None``
        where the engine gives none (:attr:`EXPLAIN_ESTIMATES` is false).

        Raises:
            WarehouseError: the SQL does not compile against the warehouse as it is.
        """
        return None

    def param(self) -> str:
        """The driver's positional placeholder."""
        return "?"

    def quote(self, *parts: str) -> str:
        """A safely quoted, dotted identifier, e.g. ``"raw"."orders"``.

        >>> from stackyard.warehouse.duckdb import DuckDBWarehouse
        >>> DuckDBWarehouse.quote_for('we"ird', "t")
        '"we""ird"."t"'
        """
        return self.quote_for(*parts)

    @classmethod
    def quote_for(cls, *parts: str) -> str:
        """:meth:`quote`, without an instance."""
        mark = cls.IDENTIFIER_QUOTE
        if mark is not None:
            # sqlglot renders the same text; importing it costs a no-op run about 0.1 s.
            return ".".join(mark + p.replace(mark, mark + mark) + mark for p in parts)
        from sqlglot import exp

        return ".".join(exp.to_identifier(p, quoted=True).sql(dialect=cls.DIALECT) for p in parts)

    def write_stamp(self) -> str | None:
        """A value that changes whenever anything writes to the warehouse (this process or
        any other), read without connecting; ``None`` where the engine offers none.

        A monitor pass reuses a table's last measurements only while the stamp taken when
        the previous run ended still holds (:mod:`stackyard.monitors.reuse`).
        """
        return None

    def lease_file(self) -> Path | None:
        """Where a run in progress mirrors its leases for other processes, when the engine
        lets one process at a time open the warehouse (DuckDB's file lock), so those cannot
        read the lease table while it runs; ``None`` on a server, where they can.
        """
        return None

    def check_not_held(self, what: str) -> None:
        """Refuse when another process holds the warehouse open now, where the engine lets
        one process at a time open it (DuckDB's file lock); never opens it for writing.
        Nothing to check on a server, where many sessions share a database.

        Args:
            what: what cannot be done while it is held, in words.

        Raises:
            WarehouseLockedError: another process holds it.
        """
        return None

    def read_every_block(self) -> tuple[int, int]:
        """Read every row of every table, where the engine checks what it reads only then
        (DuckDB's block checksums): ``(tables, rows)`` read, ``(0, 0)`` on a server, which
        checks its own pages.

        Raises:
            WarehouseError: a block is damaged (the message names the table).
        """
        return (0, 0)

    def settle(self) -> None:
        """Write out what the engine still holds in a log, so that :meth:`write_stamp` is
        the warehouse's state when this process ends; nothing to do on a server.

        Raises:
            WarehouseError: the engine refused.
        """
        return None

    def ensure_schema(self, schema: str) -> None:
        """Create a schema if it does not exist."""
        self.execute(f"CREATE SCHEMA IF NOT EXISTS {self.quote(schema)}")

    def ensure_table(self, schema: str, table: str, columns: str) -> None:
        """Create a table if missing, and add any of ``columns`` it lacks.

        Args:
            schema: the table's schema (must exist).
            table: the table.
            columns: ``"name TYPE, name TYPE, …"`` in portable SQL types; names are
                stackyard's own (never user input).

        Metadata tables grow columns between stackyard versions; adding the missing ones keeps
        an older warehouse's history readable without a migration step.
        """
        name = self.quote(schema, table)
        self.execute(f"CREATE TABLE IF NOT EXISTS {name} ({columns})")
        existing = self.table_columns(schema, table)
        for column in columns.split(", "):
            column_name, column_type = column.split(" ", 1)
            if column_name not in existing:
                self.execute(f"ALTER TABLE {name} ADD COLUMN {column_name} {column_type}")

    def schema_exists(self, schema: str) -> bool:
        """Whether the schema exists."""
        result = self.query(
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name = " + self.param(),
            (schema,),
        )
        return bool(result.rows[0][0])

    def table_columns(self, schema: str, table: str) -> dict[str, str]:
        """``{column: data type}`` of a table, empty when it does not exist."""
        p = self.param()
        result = self.query(
            "SELECT column_name, data_type FROM information_schema.columns "
            f"WHERE table_schema = {p} AND table_name = {p} ORDER BY ordinal_position",
            (schema, table),
        )
        return {str(r[0]): str(r[1]) for r in result.rows}

    def all_columns(self) -> dict[tuple[str, str], dict[str, str]]:
        """Every table's and view's ``{column: data type}`` in every schema, keyed by
        ``(schema, table)``, read at once."""
        result = self.query(
            "SELECT table_schema, table_name, column_name, data_type "
            "FROM information_schema.columns ORDER BY table_schema, table_name, ordinal_position"
        )
        found: dict[tuple[str, str], dict[str, str]] = {}
        for schema, table, column, data_type in result.rows:
            found.setdefault((str(schema), str(table)), {})[str(column)] = str(data_type)
        return found

    def tables_in(self, schema: str) -> list[str]:
        """Names of the tables and views in a schema."""
        result = self.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = "
            + self.param()
            + " ORDER BY table_name",
            (schema,),
        )
        return [str(r[0]) for r in result.rows]

    def column_sequences(self, schema: str, table: str) -> tuple[ColumnSequence, ...]:
        """The sequences that hand out values of the table's columns, in column order;
        empty where the table is missing or the engine has none to read."""
        return ()

    def cascading_references(self, schema: str, table: str) -> list[str]:
        """Other tables whose foreign keys delete or change their rows when rows of this one
        are deleted, each with its action; empty where foreign keys only refuse."""
        return []

    @abstractmethod
    def close(self) -> None:
        """Release the connection; the next statement reconnects."""

    def end(self) -> None:
        """Close for good: the connection and what dbt's adapter keeps open past it."""
        self.close()

    def describe(self) -> str:
        """Where this target is, for messages (never includes a secret)."""
        return f"{self.KIND} target '{self.target_name}'"

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.end()
