"""Source kinds: the ``sources:`` entries of stackyard.yml, and the registry of kinds.

Each kind is one config class (``kind: Literal[...]``) registered with
:func:`register_source_kind`; the project model, ``stackyard source add`` (its options, its
help and its validation), key detection, the dlt build and the monitors all look kinds up
here. docs/architecture.md ("How to add a source kind") lists the steps.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import Field, TypeAdapter, field_validator, model_validator

from stackyard.config.base import SecretRef, StrictModel
from stackyard.config.file_tables import FileTable as FileTable
from stackyard.config.orchestration import (
    DEFAULT_DEADLINE_SECONDS,
    Duration,
    Retries,
    Schedule,
    ScheduleField,
)
from stackyard.config.rest import (
    RestAuth,
    RestEndpoint,
    RestPaginator,
    RestRetries,
    _check_cursor_key,
)
from stackyard.config.source_options import _keys, _only_named_tables, pairs

Contract = Literal["evolve", "freeze", "discard_row", "discard_value"]


class SourceBase(StrictModel):
    """What every source kind shares, and what each kind answers about itself.

    A kind is a subclass with ``kind: Literal["<name>"]``, registered with
    :func:`register_source_kind`. It says which tables it declares, their keys and cursors,
    how command-line options become its stackyard.yml entry, and (``BUILDER``) which function
    builds its dlt resources. Everything else (``stackyard source add``, key detection, the
    monitors' duplicate-key check) asks these methods, so a kind is added in one place.
    """

    #: ``"module:function"`` building the kind's dlt resources, called as
    #: ``function(name, config, context)`` (see :mod:`stackyard.ingest.sources`).
    BUILDER: ClassVar[str]
    #: The ``stackyard source add`` options this kind reads (for ``--help``).
    CLI_OPTIONS: ClassVar[tuple[str, ...]] = ()
    #: Whether ``--primary-key COLUMN`` (no ``TABLE=``) is accepted: kinds with one table.
    BARE_KEY: ClassVar[bool] = False
    #: Which row of a key a load keeps when several share it: stackyard orders the rows it
    #: reads (by cursor, position or file) and keeps the latest; a user's own dlt resources
    #: are dlt's to order, and dlt keeps the first it read.
    KEPT_OF_A_KEY: ClassVar[str] = "the latest kept"
    #: Whether what it loads is read from the source once and confirmed only after the load
    #: (a stream's events): it cannot be reloaded, and what a failed load held is read again
    #: by the next run, so a load left unfinished is dropped rather than tried again.
    READ_ONCE: ClassVar[bool] = False

    kind: str

    schema_: str | None = Field(
        None, alias="schema", description="Warehouse schema to load into; default: the source name."
    )
    schedule: ScheduleField = Field(
        default_factory=Schedule,
        description="When orchestrators load it: a cron (UTC), or {cron, timezone, catch_up}.",
    )
    contract: Contract = Field(
        "evolve",
        description="What happens when the data's shape changes: new tables/columns evolve; "
        "a changed type is always caught (see docs/sources.md).",
    )
    owner: str | None = Field(None, description="Who is told when this source breaks.")
    enabled: bool = True
    dbt_source: str | None = Field(
        None,
        description="The dbt source (in the project's own sources .yml) that reads this "
        "source's tables; default: dlt_<name>, and any dbt source whose schema is this "
        "source's schema.",
    )
    retries: Retries = Field(
        default_factory=Retries, description="Retries of a failed load (count, backoff, jitter)."
    )
    deadline: Duration = Field(
        DEFAULT_DEADLINE_SECONDS, description="Longest one load attempt may take (90s, 30m, 2h)."
    )

    def declared_tables(self) -> tuple[str, ...]:
        """The tables stackyard.yml names for this source (empty: known after a load)."""
        return ()

    def local_paths(self) -> dict[str, tuple[str, Literal["file", "folder"]]]:
        """The files and folders on this machine the source reads, by key (relative to the
        project folder, or absolute): ``stackyard source add`` checks they exist first."""
        return {}

    def loaded_by_stackyard(self, snowpipe: bool = False) -> bool:
        """Whether stackyard loads it (False: another tool does, and a run checks its
        freshness instead), on a target that does (``snowpipe``) or does not load staged
        files itself."""
        return True

    def dbt_name(self, name: str) -> str:
        """The dbt source its tables appear as: ``<loader>_<source>``, dlt's by default."""
        return f"dlt_{name}"

    def primary_keys(self) -> dict[str, tuple[str, ...]]:
        """The primary key declared for each table that has one."""
        return {}

    def cursors(self) -> dict[str, str]:
        """The incremental cursor column of each table that has one."""
        return {}

    def json_tables(self) -> frozenset[str]:
        """Tables read as Arrow from JSON, which leaves out a field no row of a batch has."""
        return frozenset()

    @classmethod
    def entry_from_options(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        """This kind's stackyard.yml keys from ``stackyard source add`` options.

        Args:
            options: option name → value, None when not given; ``primary_key`` and
                ``cursor`` are already ``{table: column}``.
        """
        return {}


class SqlTable(StrictModel):
    """One table read from a SQL database."""

    primary_key: str | list[str] | None = None
    cursor: str | None = Field(None, description="Column for incremental loads, e.g. updated_at.")
    source_table: str | None = Field(None, description="Name in the source, if it differs.")
    append: bool = Field(
        False,
        description="With a cursor and no key: append each load's new rows (rows at the "
        "last cursor value are not loaded twice).",
    )
    deletes: Literal["keep", "detect", "remove"] = Field(
        "keep",
        description="Rows deleted upstream: keep them, detect (set _deleted_at) or remove "
        "them; detect and remove read every key of the source table on each load.",
    )

    @model_validator(mode="after")
    def _cursor_needs_key(self) -> SqlTable:
        _check_cursor_key(self.cursor, self.primary_key, self.append)
        if self.deletes != "keep" and not self.primary_key:
            raise ValueError(f"deletes: {self.deletes} needs a primary_key (the keys compared)")
        return self


class SqlDatabaseSource(SourceBase):
    """A relational database read through dlt's sql_database source (Arrow backend)."""

    BUILDER: ClassVar[str] = "stackyard.ingest.sources:build_sql"
    CLI_OPTIONS: ClassVar[tuple[str, ...]] = (
        "connection",
        "connection_secret",
        "source_schema",
        "table",
        "primary_key",
        "cursor",
        "append",
    )

    kind: Literal["sql_database"]
    connection: str | SecretRef = Field(
        description="SQLAlchemy URL without a password (e.g. sqlite:///sources/app.sqlite), "
        "or {secret: NAME} for one that has a password."
    )
    source_schema: str | None = Field(None, description="Schema to read from in the source.")
    backend: Literal["auto", "connectorx", "pyarrow", "sqlalchemy"] = Field(
        "auto",
        description="auto: ConnectorX (Rust, straight to Arrow) for SQLite and Postgres "
        "URLs, else SQLAlchemy rows converted to Arrow.",
    )
    chunk_size: int = Field(100_000, ge=100)
    tables: dict[str, SqlTable] = Field(min_length=1)

    @field_validator("connection")
    @classmethod
    def _no_inline_password(cls, value: str | SecretRef) -> str | SecretRef:
        if isinstance(value, str) and re.match(r"^[\w+]+://[^/@:]+:[^/@]+@", value):
            raise ValueError(
                "the connection URL holds a password; secrets never live in stackyard.yml: "
                "write connection: {secret: NAME} and put the URL in the environment "
                "variable NAME or in .stackyard/secrets.toml"
            )
        return value

    def declared_tables(self) -> tuple[str, ...]:
        return tuple(self.tables)

    def local_paths(self) -> dict[str, tuple[str, Literal["file", "folder"]]]:
        """A SQLite file the URL names (SQLite would create a missing one, empty).

        >>> SqlDatabaseSource(
        ...     kind="sql_database", connection="sqlite:///a.db?mode=ro", tables={"t": {}}
        ... ).local_paths()
        {'connection': ('a.db', 'file')}
        """
        if not isinstance(self.connection, str):
            return {}
        found = re.match(r"^sqlite(?:\+\w+)?:///([^?]+)", self.connection)
        if not found or found.group(1) == ":memory:":
            return {}
        return {"connection": (found.group(1), "file")}

    def primary_keys(self) -> dict[str, tuple[str, ...]]:
        return _keys({t: spec.primary_key for t, spec in self.tables.items()})

    def cursors(self) -> dict[str, str]:
        return {t: spec.cursor for t, spec in self.tables.items() if spec.cursor}

    @classmethod
    def entry_from_options(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        keys, cursors = options.get("primary_key") or {}, options.get("cursor") or {}
        connection: Any = options.get("connection")
        if options.get("connection_secret"):
            connection = {"secret": options["connection_secret"]}
        # NAME=SOURCE_TABLE loads a table under another name (two sources with a table of the
        # same name would otherwise want the same staging model).
        renamed = {
            n: src for n, _, src in (str(t).partition("=") for t in options.get("table") or [])
        }
        named = list(renamed)
        _only_named_tables(named, keys, cursors)
        tables = {
            t: {
                k: v
                for k, v in (
                    ("source_table", renamed[t]),
                    ("primary_key", keys.get(t)),
                    ("cursor", cursors.get(t)),
                    ("append", bool(options.get("append")) and t in cursors),
                )
                if v
            }
            for t in named
        }
        return {
            "connection": connection,
            "tables": tables,
            "source_schema": options.get("source_schema"),
        }


class FilesystemSource(SourceBase):
    """CSV, JSONL and Parquet files, local or on any fsspec URL (s3://, gs://, …)."""

    BUILDER: ClassVar[str] = "stackyard.ingest.sources:build_files"
    CLI_OPTIONS: ClassVar[tuple[str, ...]] = ("url", "table", "primary_key", "delimiter")

    kind: Literal["filesystem"]
    url: str = Field(description="Folder: a path relative to the project, or an fsspec URL.")
    credentials: SecretRef | None = None
    tables: dict[str, FileTable] = Field(min_length=1)

    @model_validator(mode="after")
    def _formats_known(self) -> FilesystemSource:
        for table in self.tables.values():
            table.file_format()
        return self

    def declared_tables(self) -> tuple[str, ...]:
        return tuple(self.tables)

    def local_paths(self) -> dict[str, tuple[str, Literal["file", "folder"]]]:
        url = self.url.removeprefix("file://")
        return {} if "://" in url else {"url": (url, "folder")}

    def primary_keys(self) -> dict[str, tuple[str, ...]]:
        return _keys({t: spec.primary_key for t, spec in self.tables.items()})

    def json_tables(self) -> frozenset[str]:
        return frozenset(t for t, spec in self.tables.items() if spec.file_format() == "jsonl")

    @classmethod
    def entry_from_options(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        keys = options.get("primary_key") or {}
        globs = pairs(options.get("table"), "--table")
        delimiter = {"delimiter": options["delimiter"]} if options.get("delimiter") else {}
        tables = {
            t: {"glob": g, **({"primary_key": keys[t]} if t in keys else {}), **delimiter}
            for t, g in globs.items()
        }
        return {"url": options.get("url"), "tables": tables}


class PythonSource(SourceBase):
    """The user's own ``@dlt.source`` function in ``sources/<file>.py``."""

    BUILDER: ClassVar[str] = "stackyard.ingest.python_source:build_python"
    KEPT_OF_A_KEY: ClassVar[str] = "one per key, as dlt read them"
    CLI_OPTIONS: ClassVar[tuple[str, ...]] = ("path", "function", "primary_key")

    kind: Literal["python"]
    path: str = Field(description="File relative to the project, e.g. sources/events.py.")
    function: str = Field(description="Name of the @dlt.source function in that file.")
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Arguments for the function: values, lists, mappings, or {secret: NAME} "
        "for one that is a secret (resolved when the source runs).",
    )
    primary_keys_: dict[str, str | list[str]] = Field(
        default_factory=dict, alias="primary_keys", description="Key column(s) per table."
    )
    pipeline_name: str | None = Field(
        None,
        description="The dlt pipeline name to load with: an adopted source keeps the one its "
        "team used, so its state (incremental cursors) carries on; default: stackyard's own.",
    )

    def local_paths(self) -> dict[str, tuple[str, Literal["file", "folder"]]]:
        return {"path": (self.path, "file")}

    def primary_keys(self) -> dict[str, tuple[str, ...]]:
        return _keys(dict(self.primary_keys_))

    @classmethod
    def entry_from_options(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "path": options.get("path"),
            "function": options.get("function"),
            "primary_keys": options.get("primary_key") or {},
        }


class RestApiSource(SourceBase):
    """An HTTP JSON API read with dlt's rest_api source."""

    BUILDER: ClassVar[str] = "stackyard.ingest.rest:build_rest"
    CLI_OPTIONS: ClassVar[tuple[str, ...]] = (
        "base_url",
        "endpoint",
        "auth",
        "paginator",
        "data_selector",
        "primary_key",
        "cursor",
        "cursor_param",
        "initial_value",
        "append",
    )

    kind: Literal["rest_api"]
    base_url: str = Field(pattern=r"^https?://")
    auth: RestAuth | None = None
    paginator: RestPaginator | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    retries: RestRetries = Field(default_factory=RestRetries)
    endpoints: dict[str, RestEndpoint] = Field(min_length=1)

    def declared_tables(self) -> tuple[str, ...]:
        return tuple(self.endpoints)

    def primary_keys(self) -> dict[str, tuple[str, ...]]:
        return _keys({t: spec.primary_key for t, spec in self.endpoints.items()})

    def cursors(self) -> dict[str, str]:
        return {t: spec.cursor for t, spec in self.endpoints.items() if spec.cursor}

    @classmethod
    def entry_from_options(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        keys, cursors = options.get("primary_key") or {}, options.get("cursor") or {}
        endpoints = {}
        for table, path in pairs(options.get("endpoint"), "--endpoint").items():
            spec: dict[str, Any] = {"path": path}
            if options.get("data_selector"):
                spec["data_selector"] = options["data_selector"]
            if table in keys:
                spec["primary_key"] = keys[table]
            if table in cursors:
                spec["cursor"] = cursors[table]
                if options.get("append") and table not in keys:
                    spec["append"] = True
                if options.get("cursor_param"):
                    spec["cursor_param"] = options["cursor_param"]
                if options.get("initial_value"):
                    spec["initial_value"] = options["initial_value"]
            endpoints[table] = spec
        return {
            "base_url": options.get("base_url"),
            "auth": options.get("auth"),
            "paginator": options.get("paginator"),
            "endpoints": endpoints,
        }


# --------------------------------------------------------------------------- the registry

S = TypeVar("S", bound=SourceBase)

_KINDS: dict[str, type[SourceBase]] = {}
_on_change: list[Callable[[], None]] = []
_adapter: dict[tuple[str, ...], TypeAdapter[Any]] = {}


def register_source_kind(cls: type[S]) -> type[S]:
    """Make a source kind known to stackyard (usable as a class decorator).

    Raises:
        ValueError: the class has no ``kind: Literal["name"]`` field or no ``BUILDER``, or
            another class has that kind already.
    """
    annotation = cls.model_fields["kind"].annotation
    names = typing.get_args(annotation)
    if typing.get_origin(annotation) is not Literal or len(names) != 1:
        raise ValueError(f"{cls.__name__}.kind must be Literal['<kind name>']")
    if not getattr(cls, "BUILDER", None):
        raise ValueError(f"{cls.__name__} needs BUILDER = 'module:function' (its dlt source)")
    name = str(names[0])
    if _KINDS.get(name, cls) is not cls:
        raise ValueError(f"source kind '{name}' is registered already")
    _KINDS[name] = cls
    for callback in _on_change:
        callback()
    return cls


def unregister_source_kind(name: str) -> None:
    """Forget a kind (tests and plugins that add one for a while)."""
    if _KINDS.pop(name, None) is not None:
        for callback in _on_change:
            callback()


def source_kinds() -> dict[str, type[SourceBase]]:
    """Every registered kind by name, in registration order."""
    return dict(_KINDS)


def source_union() -> Any:
    """The type of one ``sources:`` entry: the registered kinds, discriminated by ``kind``."""
    classes = tuple(_KINDS.values())
    union = classes[0] if len(classes) == 1 else typing.Union[classes]  # noqa: UP007
    return typing.Annotated[union, Field(discriminator="kind")]


def parse_source(entry: Mapping[str, Any]) -> SourceBase:
    """Validate one ``sources:`` entry as its kind.

    Raises:
        pydantic.ValidationError: the entry is not a valid source of a registered kind.
    """
    key = tuple(_KINDS)
    if key not in _adapter:
        _adapter.clear()
        _adapter[key] = TypeAdapter(source_union())
    result: SourceBase = _adapter[key].validate_python(entry)
    return result


def on_source_kinds_changed(callback: Callable[[], None]) -> None:
    """Call ``callback`` whenever a kind is registered (the project model rebuilds itself)."""
    _on_change.append(callback)


for _kind in (SqlDatabaseSource, FilesystemSource, RestApiSource, PythonSource):
    register_source_kind(_kind)
