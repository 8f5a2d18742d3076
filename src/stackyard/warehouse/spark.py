"""Apache Spark: pyspark in process (``local[*]``) or a cluster by its master URL.

Loading: dlt's filesystem destination writes each source's tables as Parquet under the
target's ``lakehouse`` (``<lakehouse>/<schema>/<table>/``); after each load stackyard
registers every table folder in Spark's catalog as a table of a database named like the
source's schema. Transformation: dbt-spark's ``method: session`` runs in this process against
the same :class:`pyspark.sql.SparkSession` (https://docs.getdbt.com/docs/core/connect-data-platform/spark-setup#session).

One Spark session per process: Spark allows one ``SparkContext`` per JVM, and the embedded
Derby metastore one process per ``metastore_db``
(https://spark.apache.org/docs/latest/sql-data-sources-hive-tables.html). The session is
started on first use, kept for the life of the process (starting one costs seconds), and an
exclusive lock file beside the metastore stops a second stackyard process from opening the
same project's metastore (Derby would fail with ``XSDB6``).

Plain Parquet tables in Spark's own catalog have no ``DELETE`` or ``UPDATE`` (those need Delta
or Iceberg, whose jars Spark fetches from Maven at run time). stackyard's own small metadata
tables need ``DELETE``; :meth:`SparkWarehouse.execute` rewrites it as a read of the rows that
stay followed by an overwrite of the table, safe because this process is the only writer of the
project's Spark catalog. ``UPDATE`` is refused with a message.
"""

from __future__ import annotations

import atexit
import re
import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from stackyard.config.model import SparkTarget
from stackyard.errors import ConfigError, WarehouseError, WarehouseUnreachableError
from stackyard.warehouse.base import LoadedTable, QueryResult, Warehouse

# Portable metadata column types (stackyard.metadata.schema) → Spark SQL types.
_SPARK_TYPES = {
    "VARCHAR": "STRING",
    "TIMESTAMPTZ": "TIMESTAMP",
    "DOUBLE PRECISION": "DOUBLE",
}
# dlt's bookkeeping tables, registered beside the data tables.
_DLT_TABLES = ("_dlt_loads", "_dlt_pipeline_state", "_dlt_version")

_LOCK = threading.RLock()
# (the settings it was started with, the session, the open lock file)
_ACTIVE: dict[str, Any] = {}


def spark_type(portable: str) -> str:
    """A portable column declaration (``"name TYPE [NOT NULL] [PRIMARY KEY]"``'s type part)
    as a Spark SQL type: constraints are dropped (Spark's catalog enforces none).

    >>> spark_type("VARCHAR NOT NULL PRIMARY KEY"), spark_type("DOUBLE PRECISION")
    ('STRING', 'DOUBLE')
    """
    base = re.sub(r"\s+(NOT NULL|PRIMARY KEY)\b", "", portable.strip(), flags=re.I).upper()
    return _SPARK_TYPES.get(base, base)


class SparkWarehouse(Warehouse):
    """A Spark SQL catalog, with dlt loading Parquet into a lakehouse folder beside it."""

    KIND: ClassVar[str] = "spark"
    DIALECT: ClassVar[str] = "spark"
    SUPPORTS_ROLES = False
    SUPPORTS_TRANSACTIONAL_DDL = False
    # One Spark session per process does all the catalog work; loads register one by one.
    PARALLEL_LOADS = False
    COMPRESS_LOAD_FILES = True
    STORAGE: ClassVar[str] = "server"
    GRANTS_IN_CATALOG: ClassVar[bool] = False
    MAX_IDENTIFIER_LENGTH = 128
    # No information_schema: the catalog API lists tables and columns (all_columns).
    INFORMATION_SCHEMA: ClassVar[bool] = False

    config: SparkTarget

    # ----------------------------------------------------------- locations

    def _local(self, value: str) -> str:
        """A folder setting as a URL Spark and dlt both read: relative paths are the
        project's."""
        if "://" in value:
            return value
        path = Path(value)
        return str(path if path.is_absolute() else (self.project_dir / path).resolve())

    @property
    def lakehouse(self) -> str:
        """Where dlt writes the Parquet files (a folder or a URL)."""
        return self._local(self.config.lakehouse)

    def table_location(self, schema: str, table: str) -> str:
        """The folder of one loaded table, as dlt's filesystem layout writes it."""
        return f"{self.lakehouse.rstrip('/')}/{schema}/{table}"

    # ----------------------------------------------------------- what dlt and dbt need

    def dlt_destination_settings(self) -> dict[str, Any]:
        return {"bucket_url": self.lakehouse}

    def dlt_destination(self) -> Any:
        """dlt's filesystem destination over the lakehouse, writing Parquet."""
        import dlt

        return dlt.destinations.filesystem(**self.dlt_destination_settings())

    def dlt_environment(self) -> dict[str, str]:
        # Spark reads Parquet; the filesystem destination's default is JSON lines.
        return {"NORMALIZE__LOADER_FILE_FORMAT": "parquet"}

    def dbt_output(self) -> dict[str, Any]:
        return {
            "type": "spark",
            "method": "session",
            "host": "NA",
            "schema": self.config.schema_,
            "threads": self.config.threads,
        }

    def check_source(self, name: str, config: Any) -> None:
        """``deletes: detect|remove`` needs UPDATE and DELETE on the loaded table, which
        plain Parquet files do not have: refused before loading, never skipped silently."""
        tables = getattr(config, "tables", None) or {}
        found = sorted(t for t, c in tables.items() if getattr(c, "deletes", "keep") != "keep")
        if found:
            raise ConfigError(
                f"source '{name}': deletes: detect/remove ({', '.join(found)}) is not "
                f"supported on {self.describe()}: plain Parquet tables have no row deletes "
                "or updates",
                hint="use deletes: keep on this target (docs/scaling.md), or a DuckDB, "
                "Postgres, Snowflake or BigQuery target",
            )

    def before_dbt(self) -> None:
        """Start (or reuse) this target's Spark session, which dbt-spark's ``session``
        method then finds with ``getOrCreate`` instead of starting one with defaults."""
        self.spark()

    def after_load(self, schema: str, tables: Sequence[LoadedTable]) -> None:
        """Register a source's loaded tables (and dlt's bookkeeping tables) in the catalog,
        as Parquet tables over their folders, replacing earlier registrations so the table
        sees every file and every column dlt has written since.

        dlt's filesystem destination cannot merge into plain Parquet: it appends each load's
        rows (https://dlthub.com/docs/dlt-ecosystem/destinations/filesystem#write-disposition).
        So a merged table's files are registered in ``<schema>__files`` and the table users
        query is a view keeping each key's row from the latest load; its nested tables keep
        the rows of those parent rows only. Every earlier version stays in the files.
        """
        self.ensure_schema(schema)
        known = {t.name: t for t in tables}
        for table in [*known.values(), *(LoadedTable(n) for n in _DLT_TABLES if n not in known)]:
            location = self.table_location(schema, table.name)
            if not self._has_files(location):
                continue
            root = table
            while root.parent in known:
                root = known[root.parent]
            self._drop(schema, table.name)
            if not root.merge_key:
                self._register(self.quote(schema, table.name), location)
                continue
            files = f"{schema}__files"
            self.ensure_schema(files)
            self._drop(files, table.name)
            self._register(self.quote(files, table.name), location)
            self.execute(
                f"CREATE VIEW {self.quote(schema, table.name)} AS "
                + _latest_rows(
                    self.quote(files, table.name), table, root, self.quote(schema, root.name)
                )
            )

    def _register(self, name: str, location: str) -> None:
        self.execute(
            f"CREATE TABLE {name} USING parquet OPTIONS (mergeSchema 'true') LOCATION '{location}'"
        )

    def _drop(self, schema: str, table: str) -> None:
        """Drop a registration, table or view (Spark refuses DROP TABLE on a view)."""
        spark, name = self.spark(), self.quote(schema, table)
        if not spark.catalog.tableExists(name):
            return
        kind = spark.catalog.getTable(name).tableType
        self.execute(f"DROP {'VIEW' if kind == 'VIEW' else 'TABLE'} {name}")

    def _has_files(self, location: str) -> bool:
        if "://" in location and not location.startswith("file://"):
            return True  # a remote store: Spark itself says if the folder is missing
        folder = Path(location.removeprefix("file://"))
        return folder.is_dir() and any(p.suffix == ".parquet" for p in folder.iterdir())

    # ----------------------------------------------------------- the session

    def _settings(self) -> dict[str, str]:
        conf: dict[str, str] = {
            "spark.sql.warehouse.dir": self._local(self.config.warehouse_dir),
            "spark.sql.session.timeZone": "UTC",
            "spark.ui.enabled": "false",
            # stackyard reports progress itself; Spark's bars would interleave with it
            "spark.ui.showConsoleProgress": "false",
        }
        if self.config.master.startswith("local"):
            # A handful of partitions: the default 200 per shuffle costs seconds on small data.
            conf["spark.sql.shuffle.partitions"] = "4"
        if self.config.metastore_dir is not None:
            folder = Path(self._local(self.config.metastore_dir))
            conf["spark.hadoop.javax.jdo.option.ConnectionURL"] = (
                f"jdbc:derby:;databaseName={folder / 'metastore_db'};create=true"
            )
            # derby.log goes beside the metastore, not into the working directory
            conf["spark.driver.extraJavaOptions"] = f"-Dderby.system.home={folder}"
        conf.update(self.config.conf)
        return conf

    def spark(self) -> Any:
        """The process's Spark session, started with this target's settings on first use.

        Raises:
            WarehouseUnreachableError: another process holds this project's metastore, or a
                session with other settings is already running in this process.
        """
        settings = {"master": self.config.master, **self._settings()}
        with _LOCK:
            active = _ACTIVE.get("settings")
            if active is not None:
                if active != settings:
                    raise WarehouseUnreachableError(
                        f"{self.describe()}: this process already runs a Spark session with "
                        "other settings (another project or target), and Spark allows one",
                        hint="run stackyard for one Spark project at a time per process",
                    )
                return _ACTIVE["session"]
            _ACTIVE["lock"] = self._lock_metastore()
            _ACTIVE["session"] = self._start(settings)
            _ACTIVE["settings"] = settings
            atexit.register(_stop)
            return _ACTIVE["session"]

    def _lock_metastore(self) -> Any:
        if self.config.metastore_dir is None:
            return None
        import fcntl

        folder = Path(self._local(self.config.metastore_dir))
        folder.mkdir(parents=True, exist_ok=True)
        handle = (folder / "stackyard.lock").open("w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise WarehouseUnreachableError(
                f"{self.describe()}: another process has this project's Spark metastore "
                f"open ({folder})",
                hint="the embedded Derby metastore admits one process: wait for the other "
                "stackyard command to finish, or point `conf` at a shared Hive metastore",
            ) from None
        return handle

    def _start(self, settings: dict[str, str]) -> Any:
        try:
            from pyspark.sql import SparkSession
        except ImportError:
            raise WarehouseUnreachableError(
                f"{self.describe()}: pyspark is not installed",
                hint="install the extra: pip install 'stackyard[spark]' (Java 17 or newer "
                "must be on PATH or in JAVA_HOME)",
            ) from None
        builder = SparkSession.builder.appName(f"stackyard {self.target_name}")
        for key, value in settings.items():
            builder = builder.master(value) if key == "master" else builder.config(key, value)
        try:
            session = builder.enableHiveSupport().getOrCreate()
        except Exception as exc:  # the JVM failed to start: py4j and Spark raise many types
            raise WarehouseUnreachableError(
                f"cannot start Spark for {self.describe()}: {str(exc).splitlines()[0]}",
                hint="check that Java 17+ is installed (java -version) and that the master "
                "URL in stackyard.yml is reachable",
            ) from None
        session.sparkContext.setLogLevel("ERROR")
        _quiet_query_context_logs()
        return session

    # ----------------------------------------------------------- SQL

    def query(self, sql: str, params: Sequence[Any] = ()) -> QueryResult:
        rewritten = _rewrite_mutation(sql, list(params))
        if rewritten is not None:
            self._overwrite(*rewritten)
            return QueryResult((), ())
        try:
            frame = self.spark().sql(sql, args=list(params) or None)
            rows = frame.collect()
        except WarehouseUnreachableError:
            raise
        except Exception as exc:  # pyspark's AnalysisException, ParseException, …
            raise WarehouseError(
                f"Spark rejected the query: {_first_line(exc)}",
                hint="check the SQL against the schema (Spark SQL dialect)",
            ) from None
        return QueryResult(tuple(frame.columns), tuple(tuple(map(_value, r)) for r in rows))

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.query(sql, params)

    def execute_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        # Each statement is a Spark job writing a Parquet file: one multi-row INSERT per
        # chunk instead of one per row.
        head, values, group = sql.rpartition(" VALUES ")
        group = group.strip()
        if not values or not (group.startswith("(") and group.endswith(")")):
            super().execute_many(sql, rows)
            return
        pending = [list(r) for r in rows]
        for start in range(0, len(pending), 500):
            chunk = pending[start : start + 500]
            self.execute(
                head + values + ", ".join([group] * len(chunk)), [v for r in chunk for v in r]
            )

    def _overwrite(self, table: str, keep_sql: str, params: list[Any]) -> None:
        """Replace a table's rows with what ``keep_sql`` selects from it (DELETE/UPDATE)."""
        spark = self.spark()
        try:
            kept = spark.sql(keep_sql, args=params or None).localCheckpoint(eager=True)
            kept.write.insertInto(table, overwrite=True)
            spark.catalog.refreshTable(table)
        except Exception as exc:  # pyspark's AnalysisException and others
            raise WarehouseError(f"Spark rejected the statement: {_first_line(exc)}") from None

    def ensure_table(self, schema: str, table: str, columns: str) -> None:
        declared = []
        for column in columns.split(", "):
            column_name, column_type = column.split(" ", 1)
            declared.append((column_name, spark_type(column_type)))
        name = self.quote(schema, table)
        body = ", ".join(f"{c} {t}" for c, t in declared)
        self.execute(f"CREATE TABLE IF NOT EXISTS {name} ({body}) USING parquet")
        existing = self.table_columns(schema, table)
        missing = [f"{c} {t}" for c, t in declared if c not in existing]
        if missing:
            self.execute(f"ALTER TABLE {name} ADD COLUMNS ({', '.join(missing)})")

    def schema_exists(self, schema: str) -> bool:
        return bool(self.spark().catalog.databaseExists(schema))

    def table_columns(self, schema: str, table: str) -> dict[str, str]:
        spark, name = self.spark(), self.quote(schema, table)
        if not spark.catalog.tableExists(name):
            return {}
        return {c.name: c.dataType for c in spark.catalog.listColumns(name)}

    def tables_in(self, schema: str) -> list[str]:
        if not self.schema_exists(schema):
            return []
        tables = self.spark().catalog.listTables(schema)
        return sorted(t.name for t in tables if not t.isTemporary)

    def all_columns(self) -> dict[tuple[str, str], dict[str, str]]:
        # Spark's catalog has no information_schema; its catalog API lists the same.
        found: dict[tuple[str, str], dict[str, str]] = {}
        spark = self.spark()
        for database in sorted(d.name for d in spark.catalog.listDatabases()):
            tables = spark.catalog.listTables(database)
            for table in sorted(t.name for t in tables if not t.isTemporary):
                name = self.quote(database, table)
                columns = spark.catalog.listColumns(name)
                found[(database, table)] = {c.name: c.dataType for c in columns}
        return found

    def describe_query(self, sql: str) -> dict[str, str] | None:
        try:
            frame = self.spark().sql(sql)
        except Exception as exc:  # pyspark's AnalysisException
            raise WarehouseError(f"Spark rejected the query: {_first_line(exc)}") from None
        return {f.name: f.dataType.simpleString() for f in frame.schema.fields}

    def close(self) -> None:
        # Connections are released around dlt and dbt work; the Spark session is not a
        # connection (dbt-spark shares it) and lives until the process ends.
        return None

    def describe(self) -> str:
        return f"Spark target '{self.target_name}' ({self.config.master})"


def _latest_rows(files: str, table: LoadedTable, root: LoadedTable, root_view: str) -> str:
    """The SELECT of a merged table's view over its appended files: each key's row from the
    latest load (dlt's load ids sort by time), or a nested table's rows whose root row is
    one of those.

    >>> root = LoadedTable("orders", None, ("id",))
    >>> print(_latest_rows("`s__files`.`orders`", root, root, "`s`.`orders`"))
    SELECT * EXCEPT (_stackyard_version) FROM (SELECT *, row_number() OVER (PARTITION BY `id` ORDER BY _dlt_load_id DESC) AS _stackyard_version FROM `s__files`.`orders`) WHERE _stackyard_version = 1
    >>> child = LoadedTable("orders__items", "orders")
    >>> print(_latest_rows("`s__files`.`orders__items`", child, root, "`s`.`orders`"))
    SELECT * FROM `s__files`.`orders__items` WHERE _dlt_root_id IN (SELECT _dlt_id FROM `s`.`orders`)
    """
    if table is not root:
        return f"SELECT * FROM {files} WHERE _dlt_root_id IN (SELECT _dlt_id FROM {root_view})"
    keys = ", ".join(f"`{k.replace('`', '``')}`" for k in root.merge_key)
    return (
        "SELECT * EXCEPT (_stackyard_version) FROM (SELECT *, row_number() OVER "
        f"(PARTITION BY {keys} ORDER BY _dlt_load_id DESC) AS _stackyard_version FROM {files}) "
        "WHERE _stackyard_version = 1"
    )


def _stop() -> None:
    with _LOCK:
        session = _ACTIVE.pop("session", None)
        if session is not None:
            session.stop()
        lock = _ACTIVE.pop("lock", None)
        if lock is not None:
            lock.close()
        _ACTIVE.pop("settings", None)


def _value(value: Any) -> Any:
    # pyspark returns TIMESTAMP values as naive datetimes in the process's local time zone.
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.astimezone(UTC)
    return value


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _rewrite_mutation(sql: str, params: list[Any]) -> tuple[str, str, list[Any]] | None:
    """A ``DELETE`` as (table, the SELECT of the rows that stay, its parameters); ``None``
    for any other statement.

    Raises:
        WarehouseError: an ``UPDATE`` (plain Parquet tables have none).

    >>> _rewrite_mutation("DELETE FROM `s`.`t` WHERE a = ?", [1])
    ('`s`.`t`', 'SELECT * FROM `s`.`t` WHERE NOT COALESCE((a = ?), FALSE)', [1])
    """
    head = sql.lstrip()[:7].upper()
    if not (head.startswith("DELETE") or head.startswith("UPDATE")):
        return None
    from sqlglot import exp, parse_one

    statement = parse_one(sql, dialect="spark")
    table = statement.find(exp.Table)
    if table is None:
        return None
    name = table.sql(dialect="spark")
    where = statement.args.get("where")
    condition = where.this if where is not None else exp.true()
    if isinstance(statement, exp.Delete):
        kept = exp.not_(exp.func("COALESCE", exp.paren(condition), exp.false()))
        return name, f"SELECT * FROM {name} WHERE {kept.sql(dialect='spark')}", params
    raise WarehouseError(
        f"UPDATE of {name} is not supported on Spark targets (plain Parquet tables)",
        hint="this command needs a table format with updates (Delta or Iceberg) in Spark",
    )


def _quiet_query_context_logs() -> None:
    """PySpark logs every failed query as an 8 KB JSON line with the JVM's stack trace on
    stderr, before the error reaches stackyard, which says it in one line. Its two loggers are PySpark's own class: asked for as plain loggers first,
    they would fail on the fields PySpark passes them."""
    import logging

    from pyspark.logger import PySparkLogger

    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        PySparkLogger.getLogger(name).setLevel(logging.CRITICAL + 1)
