"""Turning a source in stackyard.yml into dlt resources.

Each kind is a thin layer over dlt's own source: ``sql_database`` over
``dlt.sources.sql_database.sql_table`` with the Arrow backend, ``filesystem`` over
``dlt.sources.filesystem`` with DuckDB reading the files (streamed in batches), ``python`` over the user's own
``@dlt.source``. Every row gets ``_loaded_at``, the time stackyard loaded it, which dbt's source
freshness and the monitors read.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from stackyard.config.base import SecretRef
from stackyard.config.external import ExternalSource
from stackyard.config.secrets import Secrets
from stackyard.config.sources import (
    FilesystemSource,
    SourceBase,
    SqlDatabaseSource,
)
from stackyard.errors import ConfigError, StackyardError
from stackyard.ingest.csv_dates import DateFormats
from stackyard.ingest.drift import check_item
from stackyard.ingest.first_loads import FirstLoad, collapse_repeated_keys
from stackyard.ingest.sql_backend import sql_backend, with_connect_timeout
from stackyard.ingest.stamping import LOADED_AT as LOADED_AT
from stackyard.ingest.stamping import stamper, whole_pages
from stackyard.results import RejectedRow


class SourceBuild:
    """What a source kind built: the dlt resources, plus the rows readers rejected."""

    def __init__(self) -> None:
        self.resources: list[Any] = []
        # A user's @dlt.source, loaded whole so its own settings hold; its selected
        # resources are the ones in ``resources``.
        self.source: Any = None
        self.rejected: list[RejectedRow] = []
        # {table: rows collapsed because a later row of the same load had the same key}
        self.duplicates: dict[str, int] = {}
        self.first_loads: dict[str, FirstLoad] = {}  # keyed tables appended on a first load
        self.notes: list[str] = []  # what the user should know about a load that succeeded
        self._lock = threading.Lock()
        self._after_load: list[Callable[[], None]] = []
        self._on_close: list[Callable[[], None]] = []

    def after_load(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the load and its rejected rows are in the warehouse (a
        stream acknowledges its messages then, never before)."""
        self._after_load.append(callback)

    def on_close(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when the load is over, whether it succeeded or not."""
        self._on_close.append(callback)

    def loaded(self) -> None:
        """The load is in the warehouse: run the ``after_load`` callbacks."""
        for callback in self._after_load:
            callback()

    def close(self) -> None:
        """Run the ``on_close`` callbacks (each one, even if an earlier one raised)."""
        callbacks, self._on_close = self._on_close, []
        with contextlib.ExitStack() as stack:
            for callback in reversed(callbacks):
                stack.callback(callback)

    def reject(self, rows: list[RejectedRow]) -> None:
        """Keep rows that did not fit (called from dlt's extraction threads)."""
        with self._lock:
            self.rejected.extend(rows)

    def rejected_by_table(self) -> tuple[tuple[str, int], ...]:
        """How many rows were rejected from each table (``SourceLoad.rejected_in``)."""
        return tuple(Counter(r.table for r in self.rejected).items())

    def collapsed(self, table: str, rows: int) -> None:
        """Count rows dropped for sharing a key with a later row of the same load."""
        with self._lock:
            self.duplicates[table] = self.duplicates.get(table, 0) + rows

    def settle(self, pipeline: Any, load_ids: list[str]) -> None:
        """After the load: collapse the keys a first load appended more than once."""
        for table, rows in collapse_repeated_keys(pipeline, self.first_loads, load_ids).items():
            self.collapsed(table, rows)


@dataclass(frozen=True)
class BuildContext:
    """What a kind's builder gets besides its name and config.

    Attributes:
        project_dir: the project folder; relative paths are resolved against it.
        secrets: resolves ``{secret: …}`` references.
        known_columns: ``{table: {column: dlt data type}}`` already in the warehouse.
        build: collects rows a reader rejected (:meth:`SourceBuild.reject`).
        target: the target loaded into (a stream's consumer is its own per target).
    """

    project_dir: Path
    secrets: Secrets
    known_columns: Mapping[str, Mapping[str, str]]
    build: SourceBuild
    target: str = ""


def _builder(config: SourceBase) -> Callable[[str, Any, BuildContext], Iterable[Any]]:
    """The function a kind names as its BUILDER (``module:function``)."""
    module_name, _, function = type(config).BUILDER.partition(":")
    found: Callable[[str, Any, BuildContext], Iterable[Any]] = getattr(
        importlib.import_module(module_name), function
    )
    return found


def build_sql(name: str, config: SqlDatabaseSource, context: BuildContext) -> list[Any]:
    """The ``sql_database`` kind: one ``sql_table`` resource per table (Arrow backend)."""
    return _sql_resources(name, config, context)


def build_files(name: str, config: FilesystemSource, context: BuildContext) -> list[Any]:
    """The ``filesystem`` kind: files read by DuckDB, rejected rows kept."""
    return _file_resources(
        name, config, context.project_dir, context.secrets, context.known_columns, context.build
    )


def build_resources(
    name: str,
    config: SourceBase,
    *,
    project_dir: Path,
    secrets: Secrets,
    loaded_at: datetime,
    known_columns: Mapping[str, Mapping[str, str]],
    required: Mapping[str, Mapping[str, list[str]]] | None = None,
    target: str = "",
    text_holds_nul: bool = True,
    optional: Callable[[str, list[str]], set[str]] | None = None,
) -> SourceBuild:
    """dlt resources for one configured source.

    Args:
        name: the source's name in stackyard.yml.
        config: its config model.
        project_dir: the project folder; relative paths are resolved against it.
        secrets: resolves ``{secret: …}`` references.
        loaded_at: stamped on every row as ``_loaded_at``.
        known_columns: ``{table: {column: dlt data type}}`` already in the warehouse, so that
            file readers reject values that do not fit instead of changing a column's type.
        required: ``{table: {column: [models]}}`` the staging models select; a batch
            without one of them fails the load (:mod:`stackyard.ingest.drift`).
        target: the target loaded into.
        text_holds_nul: the target's text columns hold NUL; when not, rows holding one
            are rejected (:mod:`stackyard.ingest.text_fit`).
        optional: which of a table's columns hold a NULL in the warehouse, for the drift
            check of JSON (:func:`stackyard.ingest.drift.check_item`).

    Raises:
        ConfigError: a setting cannot be used (missing secret, unknown function).
        UserCodeError: the user's Python source failed to import or build.
    """
    build = SourceBuild()
    builder = _builder(config)
    context = BuildContext(project_dir, secrets, known_columns, build, target)
    build.resources = list(builder(name, config, context))
    last = False
    if len(build.resources) == 1 and hasattr(build.resources[0], "selected_resources"):
        build.source = build.resources[0]
        build.resources = list(build.source.selected_resources.values())
        # A user's source: stamped after its incremental step (dlt keeps that step last),
        # so the step sees the rows as plain dlt does and the hashes it keeps of the rows at
        # the cursor match those of loads made without stackyard.
        last = True
    json_tables = config.json_tables()
    # add_map changes the resource in place, so a source holding it is stamped as well.
    build.resources = [
        r.add_step(
            whole_pages(
                stamper(
                    loaded_at,
                    r.name,
                    partial(
                        check_item,
                        name,
                        r.name,
                        required=(required or {}).get(r.name, {}),
                        from_json=r.name in json_tables,
                        optional=optional,
                        known=known_columns.get(r.name, {}),
                        read_once=config.READ_ONCE,
                    ),
                    None if text_holds_nul else build,
                    _key_rejects(r, build),
                )
            ),
            insert_at=len(r._pipe) if last else None,
        )
        for r in build.resources
    ]
    return build


def _key_rejects(resource: Any, build: SourceBuild) -> tuple[SourceBuild, tuple[str, ...]] | None:
    """Where a resource's rows with no key value go, and its key (None: no key)."""
    from stackyard.ingest.null_keys import declared_key

    key = declared_key(resource)
    return (build, key) if key else None


def connection_url(
    name: str, config: SqlDatabaseSource, project_dir: Path, secrets: Secrets
) -> str:
    """The SQLAlchemy URL, with the secret resolved and relative SQLite paths made absolute."""
    url = (
        secrets.resolve(config.connection, used_for=f"sources.{name}.connection")
        if isinstance(config.connection, SecretRef)
        else config.connection
    )
    match = re.match(r"^(sqlite(?:\+\w+)?):///(?!/)(.+)$", url)
    if match:  # sqlite:///relative/path is relative to the project, not the current folder
        url = f"{match.group(1)}:///{(project_dir / match.group(2)).resolve()}"
    file = re.match(r"^sqlite(?:\+\w+)?:///([^?]+)", url)
    if file and file.group(1) != ":memory:" and not Path(file.group(1)).is_file():
        # SQLite creates a missing file on connect: an empty database that then "has no
        # tables". Say what is wrong instead, and create nothing.
        raise ConfigError(
            f"sources.{name}.connection: the SQLite file {file.group(1)} does not exist",
            hint="check the path (relative paths are relative to the project folder); "
            "nothing was created",
        )
    from stackyard.ingest.discovery import check_driver

    check_driver(name, url)
    return with_connect_timeout(url)


def source_url(name: str, config: Any, project_dir: Path, secrets: Secrets) -> str | None:
    """A SQL source's connection URL (:func:`connection_url`), or None for another kind of
    source or a connection that no longer resolves (to name where a load could not connect)."""
    if not isinstance(config, SqlDatabaseSource):
        return None
    try:
        return connection_url(name, config, project_dir, secrets)
    except StackyardError:
        return None


def _sql_resources(name: str, config: SqlDatabaseSource, context: BuildContext) -> list[Any]:
    import dlt
    from dlt.sources import sql_database
    from dlt.sources.sql_database.helpers import get_table_loader_class

    from stackyard.config.model import normalised_schema
    from stackyard.ingest.boundary_copies import copies_step
    from stackyard.ingest.empty_tables import reader_of_empty_tables
    from stackyard.ingest.null_cursors import reader_of_unchanged_null_cursors
    from stackyard.ingest.sql_columns import exact_values, reader_hooks, tables_connectorx_changes
    from stackyard.ingest.sqlite_cursor import widen_sqlite_cursor

    # dlt's factories are typed for literals; our values are validated by the config model.
    sql_table: Any = sql_database.sql_table
    url = connection_url(name, config, context.project_dir, context.secrets)
    backend, backend_kwargs = sql_backend(config, url)
    sources = (t.source_table or n for n, t in config.tables.items())
    rounded = tables_connectorx_changes(backend, url, config.source_schema, sources)
    known = set(context.known_columns)
    resources = []
    for table_name, table in config.tables.items():
        # Without a cursor every load re-reads the whole table, so replace it: a merge would
        # keep rows deleted upstream. With a cursor, merge on the key (append if none) —
        # except into a table that does not exist yet, where a merge only costs a staging
        # copy: the source's key already makes the rows unique.
        if not table.cursor:
            disposition = "replace"
        elif table.primary_key and normalised_schema(table_name) in known:  # dlt's form
            disposition = "merge"
        else:
            disposition = "append"
            if table.primary_key:
                context.build.first_loads[table_name] = FirstLoad(table.primary_key, table.cursor)
        read_by = "pyarrow" if (table.source_table or table_name) in rounded else backend
        first = normalised_schema(table_name) not in known and read_by == "pyarrow"
        reader = reader_of_empty_tables() if first else None
        if table.cursor and table.primary_key:
            # Rows with a NULL cursor are read on every load: those unchanged are not loaded.
            reader = reader_of_unchanged_null_cursors(
                reader or get_table_loader_class(read_by), table_name, table.cursor
            )
        resource = sql_table(
            credentials=url,
            table=table.source_table or table_name,
            schema=config.source_schema,
            # A table whose values ConnectorX would change reads through SQLAlchemy (sql_columns).
            backend=read_by,
            table_loader_class=reader,
            backend_kwargs={} if (table.source_table or table_name) in rounded else backend_kwargs,
            chunk_size=config.chunk_size,
            incremental=(
                dlt.sources.incremental(
                    table.cursor,
                    # Rows at the last cursor value are read again: an appending table's
                    # copies of them are counted by boundary_copies, dlt's check is off.
                    primary_key=() if table.append else None,
                    # A row with no cursor value cannot be placed in time: with a key it is
                    # read on every load, and loaded when new or changed (null_cursors; it
                    # was skipped for good by the query's filter, and a first load failed);
                    # without one it stays an error.
                    on_cursor_value_missing="include" if table.primary_key else "raise",
                )
                if table.cursor
                else None
            ),
            primary_key=table.primary_key,
            write_disposition=disposition,
            defer_table_reflect=True,
            reflection_level="full_with_precision",
            query_adapter_callback=widen_sqlite_cursor,
            **reader_hooks(url),
        )
        resource = exact_values(resource, table_name)
        if table.append and table.cursor:
            resource.add_step(copies_step(table.cursor))
        if disposition == "merge":
            # Two versions of one key in a load (updated twice between runs): the later one
            # is kept. Without an order dlt kept the first it read, and the cursor had
            # already moved past the later one, which was never loaded.
            resource.apply_hints(columns={table.cursor: {"dedup_sort": "desc"}})
        if table.source_table:
            resource = resource.with_name(table_name)
        resources.append(resource)
    return resources


def _file_resources(
    name: str,
    config: FilesystemSource,
    project_dir: Path,
    secrets: Secrets,
    known_columns: Mapping[str, Mapping[str, str]],
    build: SourceBuild,
) -> list[Any]:
    import dlt
    from dlt.sources import filesystem as dlt_filesystem

    from stackyard.ingest.files import duckdb_type, local_copy

    url = config.url
    if "://" not in url:
        folder = (project_dir / url).resolve()
        if not folder.is_dir():
            raise ConfigError(
                f"sources.{name}.url: the folder {config.url} does not exist (looked in {folder})",
                hint="create it and put the files there, or fix the path (relative to the project)",
            )
        url = str(folder)
    from stackyard.ingest.file_batches import bucket_credentials, check_files_exist

    credentials = (
        bucket_credentials(
            name,
            url,
            secrets.resolve(config.credentials, used_for=f"sources.{name}.credentials"),
        )
        if config.credentials
        else None
    )
    filesystem: Any = dlt_filesystem.filesystem
    transformer: Any = dlt.transformer
    resources = []

    for table_name, table in config.tables.items():
        check_files_exist(
            name,
            table_name,
            url,
            table.glob,
            allow_empty=table.allow_empty,
            credentials=credentials,
        )
        # Passing credentials=None explicitly makes dlt skip resolving its local_dir default.
        extra = {"credentials": credentials} if credentials else {}
        files = filesystem(bucket_url=url, file_glob=table.glob, **extra)
        files = files.with_name(f"{table_name}__files")
        types = {
            column: t
            for column, dlt_type in known_columns.get(table_name, {}).items()
            if (t := duckdb_type(dlt_type)) is not None
        }

        key = [table.primary_key] if isinstance(table.primary_key, str) else table.primary_key
        read = _file_reader(
            build,
            table_name,
            table.file_format(),
            table.delimiter,
            types,
            local_copy,
            key or [],
            DateFormats(table.date_format, table.timestamp_format),
        )
        reader = transformer(
            read,
            name=table_name,
            primary_key=table.primary_key,
            write_disposition="merge" if table.primary_key else "replace",
        )
        resources.append(files | reader)
    return resources


def _file_reader(
    build: SourceBuild,
    table_name: str,
    fmt: str,
    delimiter: str,
    types: dict[str, str],
    local_copy: Callable[..., Any],
    key: list[str],
    dates: DateFormats,
) -> Callable[[list[Any]], Any]:
    from stackyard.ingest.file_stream import read_batches

    # A closure rather than default arguments: dlt turns a transformer's parameters into
    # configuration fields, and a dict default is not a valid one.
    def read(items: list[Any]) -> Any:
        if key:
            items = _new_or_changed(table_name, items)
        yield from read_batches(
            items,
            file_format=fmt,
            table=table_name,
            column_types=types,
            delimiter=delimiter,
            key=key,
            local_copy=local_copy,
            reject=build.reject,
            collapsed=lambda rows: build.collapsed(table_name, rows),
            dates=dates,
        )

    return read


def _new_or_changed(table_name: str, items: list[Any]) -> list[Any]:
    """The files of a keyed table not read before, or changed since (their rows merge on the
    key): each file read is remembered with its modification time and size in the table's dlt
    state, which is kept with the load. A cursor on the latest modification time skipped a new
    file carrying an older one (copied with ``cp -p``, unpacked from an archive, an S3
    multipart upload) without a word."""
    import dlt

    seen = dlt.current.resource_state(table_name).setdefault("files_read", {})
    fresh = []
    for item in items:
        stamp = f"{item['modification_date']}|{item.get('size_in_bytes')}"
        path = str(item["relative_path"])
        if seen.get(path) != stamp:
            fresh.append(item)
            seen[path] = stamp
    return fresh


def build_external(name: str, config: ExternalSource, context: BuildContext) -> list[Any]:
    """The ``external`` kind off Snowflake: a snowpipe source's files, read as the filesystem
    kind reads them (another loader's tables are never loaded by stackyard).

    Raises:
        ConfigError: the source is loaded by another tool.
    """
    if not config.stage_url:
        raise ConfigError(
            f"source '{name}' is loaded by {config.loader}, not by stackyard",
            hint="`stackyard run` checks its freshness instead of loading it",
        )
    return build_files(name, config.as_files(), context)
