"""The shape of stackyard.yml, as pydantic models that reject unknown keys.

Targets are discriminated by ``type`` and sources by ``kind``. Secrets are never values in
this file: a field that holds a credential takes ``{secret: NAME}``, resolved at run time by
:mod:`stackyard.config.secrets`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from stackyard.config.access import AccessConfig
from stackyard.config.backfills import BackfillsConfig
from stackyard.config.backups import BackupsConfig
from stackyard.config.base import SecretRef, StrictModel
from stackyard.config.external import ExternalSource as ExternalSource
from stackyard.config.monitors import MonitorsConfig
from stackyard.config.orchestration import DEFAULT_DEADLINE_SECONDS, Duration, Retries
from stackyard.config.orchestration import (
    DEFAULT_SCHEDULE as DEFAULT_SCHEDULE,
)
from stackyard.config.rest import (
    RestAuth as RestAuth,
)
from stackyard.config.rest import (
    RestEndpoint as RestEndpoint,
)
from stackyard.config.rest import (
    RestPaginator as RestPaginator,
)
from stackyard.config.rest import (
    RestRetries as RestRetries,
)
from stackyard.config.schema_changes import SchemaChangesConfig
from stackyard.config.sources import (
    FilesystemSource as FilesystemSource,
)
from stackyard.config.sources import (
    FileTable as FileTable,
)
from stackyard.config.sources import (
    PythonSource as PythonSource,
)
from stackyard.config.sources import (
    RestApiSource as RestApiSource,
)
from stackyard.config.sources import (
    SourceBase as SourceBase,
)
from stackyard.config.sources import (
    SqlDatabaseSource as SqlDatabaseSource,
)
from stackyard.config.sources import (
    SqlTable as SqlTable,
)
from stackyard.config.sources import (
    on_source_kinds_changed,
    source_union,
)
from stackyard.config.streams import StreamSource as StreamSource

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


# --------------------------------------------------------------------------- targets


class DuckDBTarget(StrictModel):
    """An embedded DuckDB file inside the project: the default ``dev`` target."""

    type: Literal["duckdb"]
    path: str = Field(
        ".stackyard/dev.duckdb", description="Database file, relative to the project."
    )
    schema_: str = Field("main", alias="schema", description="Default schema for dbt.")
    threads: int = Field(4, ge=1, le=64, description="dbt threads.")
    memory_limit: str | None = Field(
        None,
        pattern=r"^\s*[0-9]+(\.[0-9]+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$",
        description="DuckDB's memory_limit for stackyard's loads and dbt (e.g. '1GB'): "
        "DuckDB keeps the file's pages in memory up to it and spills beyond it. Unset: "
        "DuckDB's default, 80% of the machine's RAM.",
    )


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


class SnowflakeTransform(StrictModel):
    """Where and as whom dbt builds on Snowflake: the access layout's transformer, which
    writes the analytics database (docs/access-control.md). dlt loads with the target's own
    ``database``/``role``/``warehouse`` instead (the loader database, ``SVC_DLT``, LOADING)."""

    database: str = Field("ANALYTICS", description="access.analytics_database.")
    role: str = "ANALYTICS_TRANSFORMER"
    warehouse: str = "TRANSFORMING"
    user: str | None = Field(None, description="Default: the target's user.")
    private_key: SecretRef | None = Field(
        None, description="The dbt user's key, when it is not the target's user."
    )


class SnowflakeTarget(StrictModel):
    """A Snowflake account. Key-pair authentication is preferred over a password."""

    type: Literal["snowflake"]
    account: str
    user: str
    role: str
    warehouse: str
    database: str = Field(description="Where dlt loads: the dlt loader database (DLT).")
    transform: SnowflakeTransform = Field(
        default_factory=SnowflakeTransform, description="Where and as whom dbt builds."
    )
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


class SparkTarget(StrictModel):
    """Apache Spark: ``local[*]`` in process by default, or a cluster by its master URL.

    dlt writes each source's tables as Parquet under ``lakehouse``; stackyard registers them
    in Spark's catalog, and dbt-spark builds in the same Spark session (``method: session``).
    """

    type: Literal["spark"]
    master: str = Field(
        "local[*]", description="local[N], spark://host:7077, yarn or k8s://https://host:443."
    )
    lakehouse: str = Field(
        ".stackyard/spark/lakehouse",
        description="Where dlt writes the loaded Parquet files: a folder relative to the "
        "project, or any Hadoop/fsspec URL (s3://…, abfss://…, hdfs://…).",
    )
    warehouse_dir: str = Field(
        ".stackyard/spark/warehouse",
        description="spark.sql.warehouse.dir: where managed tables (dbt's models) live.",
    )
    metastore_dir: str | None = Field(
        ".stackyard/spark/metastore",
        description="Folder of the embedded Derby metastore (one process at a time); null "
        "when `conf` points at a shared Hive metastore.",
    )
    schema_: str = Field("analytics", alias="schema", description="Default database for dbt.")
    conf: dict[str, str] = Field(
        default_factory=dict, description="Spark settings passed through as they are."
    )
    threads: int = Field(1, ge=1, le=64, description="dbt threads.")

    @field_validator("conf", mode="before")
    @classmethod
    def _settings_as_text(cls, value: object) -> object:
        # Spark takes every setting as text; YAML reads `4` and `true` as a number and a
        # boolean, which is how people write them (`true`, not Python's `True`).
        if not isinstance(value, dict):
            return value
        return {
            k: str(v).lower()
            if isinstance(v, bool)
            else str(v)
            if isinstance(v, int | float)
            else v
            for k, v in value.items()
        }

    def folders(self) -> dict[str, str]:
        """The folders this target keeps its data and catalog in, by the key naming each."""
        named = {"lakehouse": self.lakehouse, "warehouse_dir": self.warehouse_dir}
        if self.metastore_dir is not None:
            named["metastore_dir"] = self.metastore_dir
        return {key: path.rstrip("/").removeprefix("./") for key, path in named.items()}


Target = Annotated[
    DuckDBTarget | PostgresTarget | SnowflakeTarget | BigQueryTarget | SparkTarget,
    Field(discriminator="type"),
]


# --------------------------------------------------------------------------- sources

# The built-in kinds, for static typing; the field's runtime type is every registered kind.
Source = Annotated[
    SqlDatabaseSource | FilesystemSource | RestApiSource | PythonSource,
    Field(discriminator="kind"),
]


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
    """Where the dbt project lives, what stackyard passes it, and how its build is retried
    and bounded by orchestrators (``stackyard run`` applies the deadline)."""

    path: str = "transform"
    vars: dict[str, Any] = Field(
        default_factory=dict,
        description="dbt vars for every dbt command (as `dbt --vars`); `run --vars` adds to them.",
    )
    profiles_dir: str | None = Field(
        None,
        description="Folder (relative to the project) stackyard writes dbt's profiles.yml "
        "into; default: the dbt project's folder, or .stackyard/dbt when that folder has a "
        "profiles.yml stackyard did not write. `stackyard adopt dbt` sets .stackyard/dbt.",
    )
    retries: Retries = Field(default_factory=Retries)
    deadline: Duration = Field(
        DEFAULT_DEADLINE_SECONDS, description="Longest one dbt build may take (90s, 30m, 2h)."
    )


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
    backfills: BackfillsConfig = Field(default_factory=BackfillsConfig)
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
    def _spark_targets_apart(self) -> ProjectConfig:
        # Two Spark targets on one folder share dlt's files and one catalog: the second's
        # first load added every row again to the first's tables.
        seen: dict[str, tuple[str, str]] = {}
        for name, target in self.targets.items():
            if not isinstance(target, SparkTarget):
                continue
            for key, folder in target.folders().items():
                if folder in seen:
                    other, other_key = seen[folder]
                    keys = f"both as {key}" if key == other_key else f"{other_key} and {key}"
                    raise ValueError(
                        f"targets '{other}' and '{name}' both keep their data in '{folder}' "
                        f"({keys}): give '{name}' folders of its own, e.g. "
                        f"lakehouse: .stackyard/{name}/lakehouse, warehouse_dir: "
                        f".stackyard/{name}/warehouse, metastore_dir: .stackyard/{name}/metastore"
                    )
                seen[folder] = (name, key)
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


# Lower case letters and digits in words joined by single underscores, no leading digit or
# underscore, no trailing underscore: every rule of dlt's snake_case convention already holds.
_SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")


def normalised_schema(name: str) -> str:
    """A schema name as dlt normalises a dataset name (its snake_case naming convention).

    >>> normalised_schema("RawSales"), normalised_schema("raw-sales"), normalised_schema("crm")
    ('raw_sales', 'raw_sales', 'crm')
    """
    if _SNAKE_CASE.match(name):
        # Already in dlt's form (it would return it unchanged): importing dlt to say so
        # costs about a second of every command's start-up.
        return name
    from dlt.common.normalizers.naming.snake_case import NamingConvention

    return str(NamingConvention().normalize_table_identifier(name))


def _every_registered_kind() -> None:
    """Let ``sources:`` take every registered kind (a kind registered after this import)."""
    sources: Any = dict[str, source_union()]  # type: ignore[misc]
    ProjectConfig.model_fields["sources"].annotation = sources
    ProjectConfig.model_rebuild(force=True)


on_source_kinds_changed(_every_registered_kind)
# Kinds registered before the hook above (the `stream` kind, imported at the top) count too.
_every_registered_kind()
