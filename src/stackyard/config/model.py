"""The shape of stackyard.yml, as pydantic models that reject unknown keys.

Targets are discriminated by ``type`` and sources by ``kind``. Secrets are never values in
this file: a field that holds a credential takes ``{secret: NAME}``, resolved at run time by
:mod:`stackyard.config.secrets`.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from stackyard.config.access import AccessConfig
from stackyard.config.backups import BackupsConfig
from stackyard.config.base import SecretRef, StrictModel
from stackyard.config.monitors import MonitorsConfig
from stackyard.config.schema_changes import SchemaChangesConfig

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
_NAME = re.compile(NAME_PATTERN)


def is_dataset_name(name: str) -> bool:
    """Whether dlt's snake_case naming keeps ``name`` as it is, so the schema stackyard
    creates, grants and monitors is the one dlt loads into (dlt turns ``a__b`` into ``a_b``
    and a trailing ``_`` into ``x``).

    >>> [is_dataset_name(n) for n in ("shop_db", "shop__db", "shop_", "Shop")]
    [True, False, False, False]
    """
    return bool(_NAME.match(name)) and "__" not in name and not name.endswith("_")


# The runbook's default: daily at 07:00 UTC, after the overnight source exports.
DEFAULT_SCHEDULE = "0 7 * * *"


# --------------------------------------------------------------------------- targets


class DuckDBTarget(StrictModel):
    """An embedded DuckDB file inside the project: the default ``dev`` target."""

    type: Literal["duckdb"]
    path: str = Field(
        ".stackyard/dev.duckdb", description="Database file, relative to the project."
    )
    schema_: str = Field("main", alias="schema", description="Default schema for dbt.")
    threads: int = Field(4, ge=1, le=64, description="dbt threads.")


class PostgresTarget(StrictModel):
    """A PostgreSQL database; one stackyard target is one Postgres database."""

    type: Literal["postgres"]
    host: str = "127.0.0.1"
    port: int = Field(5432, ge=1, le=65535)
    user: str
    password: SecretRef | None = Field(None, description="Omit for trust or peer authentication.")
    database: str
    schema_: str = Field("analytics", alias="schema", description="Default schema for dbt.")
    sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] = "prefer"
    threads: int = Field(4, ge=1, le=64)
    connect_timeout: int = Field(10, ge=1, le=300, description="Seconds.")


class SnowflakeTarget(StrictModel):
    """A Snowflake account. Key-pair authentication is preferred over a password."""

    type: Literal["snowflake"]
    account: str
    user: str
    role: str
    warehouse: str
    database: str
    schema_: str = Field("ANALYTICS", alias="schema")
    private_key: SecretRef | None = Field(None, description="PEM private key for key-pair auth.")
    private_key_passphrase: SecretRef | None = None
    password: SecretRef | None = None
    threads: int = Field(8, ge=1, le=64)

    @model_validator(mode="after")
    def _one_credential(self) -> SnowflakeTarget:
        if (self.private_key is None) == (self.password is None):
            raise ValueError(
                "set exactly one of private_key (recommended: key-pair auth) or password"
            )
        return self


class BigQueryTarget(StrictModel):
    """A Google BigQuery project; datasets play the role of schemas."""

    type: Literal["bigquery"]
    project: str
    location: str = "US"
    dataset: str = Field("analytics", description="Default dataset for dbt.")
    keyfile_json: SecretRef | None = Field(
        None, description="Service-account key (JSON). Omit to use application default credentials."
    )
    threads: int = Field(8, ge=1, le=64)


Target = Annotated[
    DuckDBTarget | PostgresTarget | SnowflakeTarget | BigQueryTarget, Field(discriminator="type")
]


# --------------------------------------------------------------------------- sources

Contract = Literal["evolve", "freeze", "discard_row", "discard_value"]


class SourceBase(StrictModel):
    """What every source kind shares."""

    schema_: str | None = Field(
        None, alias="schema", description="Warehouse schema to load into; default: the source name."
    )
    schedule: str = Field(DEFAULT_SCHEDULE, description="Cron expression (UTC) for orchestrators.")
    contract: Contract = Field(
        "evolve",
        description="What happens when the data's shape changes: new tables/columns evolve; "
        "a changed type is always caught (see docs/sources.md).",
    )
    owner: str | None = Field(None, description="Who is told when this source breaks.")
    enabled: bool = True

    @field_validator("schema_")
    @classmethod
    def _schema(cls, value: str | None) -> str | None:
        # dlt names the dataset in snake case; any other name would leave stackyard's schema
        # (grants, dbt sources, monitors) and dlt's apart.
        if value is not None and not is_dataset_name(value):
            suggestion = re.sub(r"[^a-z0-9]+", "_", value.lower()).strip("_")
            hint = f" (e.g. '{suggestion}')" if is_dataset_name(suggestion) else ""
            raise ValueError(
                "schema must be lower-case letters, digits and single _ between them, "
                f"starting with a letter, as dlt names it{hint}"
            )
        return value

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        if len(value.split()) != 5:
            raise ValueError(f"schedule must be a 5-field cron expression, got '{value}'")
        return value


def _check_cursor_key(cursor: str | None, key: object, append: bool) -> None:
    """A cursor loads only new rows; without a key to merge on they can only be appended,
    which must be asked for, since a changed row then appears twice."""
    if cursor and not key and not append:
        raise ValueError(
            f"cursor '{cursor}' without a primary_key would append every changed row again: "
            "declare primary_key: COLUMN (rows merge on it) or append: true (each load's new "
            "rows are appended)"
        )
    if append and not cursor:
        raise ValueError("append: true needs a cursor (without one the table is replaced)")


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


class FileTable(StrictModel):
    """One table read from files matching a glob."""

    glob: str
    format: Literal["csv", "jsonl", "parquet"] | None = Field(
        None, description="Default: from the file extension."
    )
    primary_key: str | list[str] | None = None
    delimiter: str = ","
    allow_empty: bool = Field(
        False, description="A glob matching no file empties the table instead of failing it."
    )

    def file_format(self) -> str:
        """The format, from ``format`` or else the glob's extension.

        >>> FileTable(glob="x/*.parquet").file_format()
        'parquet'
        """
        if self.format:
            return self.format
        for ext, fmt in ((".csv", "csv"), (".jsonl", "jsonl"), (".ndjson", "jsonl")):
            if self.glob.endswith(ext):
                return fmt
        if self.glob.endswith((".parquet", ".pq")):
            return "parquet"
        raise ValueError(
            f"cannot tell the format of '{self.glob}' from its extension: set format: csv, "
            "jsonl or parquet"
        )


class FilesystemSource(SourceBase):
    """CSV, JSONL and Parquet files, local or on any fsspec URL (s3://, gs://, …)."""

    kind: Literal["filesystem"]
    url: str = Field(description="Folder: a path relative to the project, or an fsspec URL.")
    credentials: SecretRef | None = None
    tables: dict[str, FileTable] = Field(min_length=1)

    @model_validator(mode="after")
    def _formats_known(self) -> FilesystemSource:
        for table in self.tables.values():
            table.file_format()
        return self


class PythonSource(SourceBase):
    """The user's own ``@dlt.source`` function in ``sources/<file>.py``."""

    kind: Literal["python"]
    path: str = Field(description="File relative to the project, e.g. sources/events.py.")
    function: str = Field(description="Name of the @dlt.source function in that file.")
    options: dict[str, str | int | float | bool] = Field(default_factory=dict)
    primary_keys: dict[str, str | list[str]] = Field(default_factory=dict)


class RestAuth(StrictModel):
    """How an API authenticates: a bearer token, an API key, or HTTP basic auth."""

    type: Literal["bearer", "api_key", "http_basic"]
    token: SecretRef | None = Field(None, description="bearer: the token.")
    api_key: SecretRef | None = Field(None, description="api_key: the key.")
    name: str = Field("X-API-Key", description="api_key: header or query parameter name.")
    location: Literal["header", "query"] = "header"
    username: str | None = Field(None, description="http_basic: the user name.")
    password: SecretRef | None = Field(None, description="http_basic: the password.")

    @model_validator(mode="after")
    def _needs(self) -> RestAuth:
        needed = {"bearer": "token", "api_key": "api_key", "http_basic": "password"}[self.type]
        if getattr(self, needed) is None:
            raise ValueError(f"auth type {self.type} needs {needed}: {{secret: NAME}}")
        if self.type == "http_basic" and not self.username:
            raise ValueError("auth type http_basic needs username")
        return self


class RestPaginator(StrictModel):
    """How an API splits results into pages (dlt's rest_api paginators)."""

    type: Literal[
        "page_number", "offset", "cursor", "header_link", "json_link", "single_page", "auto"
    ]
    page_param: str | None = None
    base_page: int | None = None
    total_path: str | None = None
    maximum_page: int | None = None
    limit: int | None = None
    offset_param: str | None = None
    limit_param: str | None = None
    cursor_path: str | None = None
    cursor_param: str | None = None
    next_url_path: str | None = None
    stop_after_empty_page: bool | None = None

    @model_validator(mode="after")
    def _needs(self) -> RestPaginator:
        if self.type == "offset" and self.limit is None:
            raise ValueError("paginator type offset needs limit (rows per page)")
        if self.type == "cursor" and not self.cursor_path:
            raise ValueError("paginator type cursor needs cursor_path (where the next cursor is)")
        return self


class RestEndpoint(StrictModel):
    """One endpoint of an API, loaded into one table."""

    path: str
    params: dict[str, str | int | float | bool] = Field(default_factory=dict)
    data_selector: str | None = Field(None, description="JSON path to the rows, e.g. data.")
    primary_key: str | list[str] | None = None
    cursor: str | None = Field(None, description="Field for incremental loads, e.g. updated_at.")
    cursor_param: str | None = Field(
        None, description="Query parameter that sends the last cursor value, e.g. since."
    )
    initial_value: str | None = Field(None, description="First cursor value to send.")
    paginator: RestPaginator | None = None
    append: bool = Field(False, description="With a cursor and no key: append new rows.")

    @model_validator(mode="after")
    def _cursor_needs_key(self) -> RestEndpoint:
        _check_cursor_key(self.cursor, self.primary_key, self.append)
        return self


class RestRetries(StrictModel):
    """Retries for HTTP 429 and 5xx answers and connection errors, with jittered backoff."""

    max_attempts: int = Field(5, ge=1, le=20)
    backoff_seconds: float = Field(1.0, ge=0, description="First wait; doubles each retry.")
    jitter_seconds: float = Field(0.5, ge=0, description="Random extra wait, up to this.")
    timeout_seconds: float = Field(30.0, gt=0)


class RestApiSource(SourceBase):
    """An HTTP JSON API read with dlt's rest_api source."""

    kind: Literal["rest_api"]
    base_url: str = Field(pattern=r"^https?://")
    auth: RestAuth | None = None
    paginator: RestPaginator | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    retries: RestRetries = Field(default_factory=RestRetries)
    endpoints: dict[str, RestEndpoint] = Field(min_length=1)


Source = Annotated[
    SqlDatabaseSource | FilesystemSource | RestApiSource | PythonSource,
    Field(discriminator="kind"),
]

SOURCE_KINDS = ("sql_database", "filesystem", "rest_api", "python")


# --------------------------------------------------------------------------- project


class Freshness(StrictModel):
    """Source freshness thresholds, in hours (the runbook's defaults: warn 24, error 48)."""

    warn_after_hours: int = Field(24, ge=1)
    error_after_hours: int = Field(48, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> Freshness:
        if self.error_after_hours < self.warn_after_hours:
            raise ValueError("error_after_hours must be at least warn_after_hours")
        return self


class Defaults(StrictModel):
    """Project-wide defaults."""

    target: str = "dev"
    freshness: Freshness = Field(default_factory=Freshness)
    parallel_loads: int = Field(4, ge=1, le=32, description="Sources loaded at once.")


class TransformConfig(StrictModel):
    """Where the dbt project lives."""

    path: str = "transform"


def _default_targets() -> dict[str, Target]:
    return {"dev": DuckDBTarget(type="duckdb")}


class ProjectConfig(StrictModel):
    """The whole of stackyard.yml."""

    name: str = Field(pattern=NAME_PATTERN)
    targets: dict[str, Target] = Field(default_factory=_default_targets)
    sources: dict[str, Source] = Field(default_factory=dict)
    defaults: Defaults = Field(default_factory=Defaults)
    transform: TransformConfig = Field(default_factory=TransformConfig)
    access: AccessConfig = Field(default_factory=AccessConfig)
    monitors: MonitorsConfig = Field(default_factory=MonitorsConfig)
    backups: BackupsConfig = Field(default_factory=BackupsConfig)
    schema_changes: SchemaChangesConfig = Field(default_factory=SchemaChangesConfig)

    @field_validator("targets", "sources")
    @classmethod
    def _names(cls, value: dict[str, object], info: ValidationInfo) -> dict[str, object]:
        for name in value:
            if not _NAME.match(name):
                raise ValueError(
                    f"'{name}' is not a valid name: use lower-case letters, digits and _, "
                    "starting with a letter"
                )
            if info.field_name == "sources" and not is_dataset_name(name):
                # A source's name is its default schema: it must survive dlt's naming.
                raise ValueError(
                    f"'{name}' is not a valid source name: no double _ and no _ at the end "
                    "(dlt would load it into a differently named schema)"
                )
        return value

    @model_validator(mode="after")
    def _default_target_exists(self) -> ProjectConfig:
        if self.defaults.target not in self.targets:
            raise ValueError(
                f"defaults.target is '{self.defaults.target}', which is not one of the "
                f"targets: {', '.join(sorted(self.targets))}"
            )
        return self

    @model_validator(mode="after")
    def _schemas_not_reserved(self) -> ProjectConfig:
        for name in self.sources:
            schema = self.dataset_for(name)
            if schema in RESERVED_SCHEMAS or schema.startswith("pg_"):
                given = self.sources[name].schema_ or name
                raise ValueError(
                    f"source '{name}' would load into schema '{schema}'"
                    + (f" (from '{given}')" if given != schema else "")
                    + ", which is reserved (stackyard's run history, the engine's own "
                    "catalog or default schema): set schema: to another name"
                )
        return self

    def dataset_for(self, source_name: str) -> str:
        """The warehouse schema a source loads into (its ``schema``, else its name), spelled
        as dlt writes it: ``RawSales`` is loaded into ``raw_sales``."""
        return normalised_schema(self.sources[source_name].schema_ or source_name)


# Schemas a source may not load into: stackyard's run history and monitors, the engines' own
# catalogs (Postgres also reserves every pg_* name), and DuckDB's default schema, where dbt
# and users keep their own tables.
RESERVED_SCHEMAS = frozenset({"stackyard", "information_schema", "main"})


def normalised_schema(name: str) -> str:
    """A schema name as dlt normalises a dataset name (its snake_case naming convention).

    >>> normalised_schema("RawSales"), normalised_schema("raw-sales"), normalised_schema("crm")
    ('raw_sales', 'raw_sales', 'crm')
    """
    from dlt.common.normalizers.naming.snake_case import NamingConvention

    return str(NamingConvention().normalize_table_identifier(name))
