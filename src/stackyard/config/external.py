"""The ``external`` source kind: tables another tool loads (Airbyte, Fivetran, Snowpipe …).

stackyard does not load these tables. ``stackyard source add --kind external`` reads their
columns from the warehouse catalog and writes the runbook's artefacts for them (the dbt
source ``<loader>_<source>`` with the loader's own loaded-at column, staging models with key
tests, monitors, the loader's database, roles and service account); ``stackyard run`` checks
their freshness instead of loading them, and skips the models downstream of a stale one.
See docs/runbooks/adding-data-sources.md ("External loaders").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from stackyard.config.base import StrictModel
from stackyard.config.source_options import _keys, _only_named_tables
from stackyard.config.sources import (
    FilesystemSource,
    FileTable,
    SourceBase,
    register_source_kind,
)
from stackyard.errors import UsageError

_LOADER_NAME = r"^[a-z][a-z0-9_]{0,40}$"


@dataclass(frozen=True)
class LoaderColumns:
    """The bookkeeping columns a loader adds to the tables it writes.

    Attributes:
        loaded_at: when the loader wrote the row (the freshness column).
        bookkeeping: the loader's own columns, left out of staging models.
        deleted_flag: a boolean column set on rows deleted upstream (soft deletes).
        deleted_at: a timestamp column set on rows deleted upstream (soft deletes).
        current_flag: a boolean column marking the current version of a row (history mode).
        row_id: a column the loader fills with a unique id when the table has no key.
    """

    loaded_at: str
    bookkeeping: tuple[str, ...] = ()
    deleted_flag: str | None = None
    deleted_at: str | None = None
    current_flag: str | None = None
    row_id: str | None = None


# Each loader's columns as its vendor documents them:
# Airbyte: https://docs.airbyte.com/understanding-airbyte/airbyte-metadata-fields and
#   https://docs.airbyte.com/understanding-airbyte/cdc (soft deletes: _ab_cdc_deleted_at).
# Fivetran: https://fivetran.com/docs/core-concepts/system-columns-and-tables
#   (_fivetran_synced, _fivetran_deleted, _fivetran_id; history mode: _fivetran_active).
# Snowpipe: METADATA$START_SCAN_TIME is copied into _loaded_at by the pipe stackyard
#   generates (https://docs.snowflake.com/en/user-guide/querying-metadata).
KNOWN_LOADERS: dict[str, LoaderColumns] = {
    "airbyte": LoaderColumns(
        loaded_at="_airbyte_extracted_at",
        bookkeeping=(
            "_airbyte_raw_id",
            "_airbyte_extracted_at",
            "_airbyte_meta",
            "_airbyte_generation_id",
            "_airbyte_loaded_at",
            "_airbyte_ab_id",
            "_airbyte_emitted_at",
            "_airbyte_normalized_at",
            "_ab_cdc_lsn",
            "_ab_cdc_updated_at",
            "_ab_cdc_deleted_at",
            "_ab_cdc_cursor",
        ),
        deleted_at="_ab_cdc_deleted_at",
        row_id="_airbyte_raw_id",
    ),
    "fivetran": LoaderColumns(
        loaded_at="_fivetran_synced",
        bookkeeping=(
            "_fivetran_synced",
            "_fivetran_deleted",
            "_fivetran_id",
            "_fivetran_active",
            "_fivetran_start",
            "_fivetran_end",
        ),
        deleted_flag="_fivetran_deleted",
        current_flag="_fivetran_active",
        row_id="_fivetran_id",
    ),
    "snowpipe": LoaderColumns(loaded_at="_loaded_at", bookkeeping=("_loaded_at", "_source_file")),
}


class ExternalTable(StrictModel):
    """One table an external loader writes."""

    primary_key: str | list[str] | None = Field(
        None, description="Key column(s); default: the catalog's key, else found in the data."
    )
    glob: str | None = Field(
        None, description="snowpipe: the table's files under stage_url, e.g. orders/*.csv."
    )
    format: Literal["csv", "jsonl", "parquet"] | None = Field(
        None, description="snowpipe: the files' format; default: from the glob's extension."
    )
    # Off Snowflake the files are read as a filesystem table's are, and its refusals of a
    # CSV read with the wrong delimiter or in no fixed date order ask for these settings.
    delimiter: str = Field(",", description="snowpipe, CSV files: the field separator.")
    date_format: str | None = Field(
        None, description="snowpipe, CSV files: dates not year first, e.g. '%d/%m/%Y'."
    )
    timestamp_format: str | None = Field(
        None, description="snowpipe, CSV files: the same for timestamps."
    )


class ExternalSource(SourceBase):
    """Tables another tool loads into the warehouse; stackyard checks and models them."""

    BUILDER: ClassVar[str] = "stackyard.ingest.sources:build_external"
    CLI_OPTIONS: ClassVar[tuple[str, ...]] = (
        "loader",
        "table",
        "primary_key",
        "loaded_at",
        "stage_url",
        "delimiter",
    )

    kind: Literal["external"]
    loader: str = Field(
        pattern=_LOADER_NAME,
        description="The tool that loads it: airbyte, fivetran, snowpipe, or any name with "
        "loaded_at.",
    )
    loaded_at: str | None = Field(
        None,
        description="Column holding when the loader wrote each row; default: the loader's own "
        "(_airbyte_extracted_at, _fivetran_synced, _loaded_at for snowpipe).",
    )
    stage_url: str | None = Field(
        None,
        description="snowpipe: the files' URL (s3://…); Snowflake gets a stage and a pipe, "
        "other targets read the files as a filesystem source.",
    )
    storage_integration: str | None = Field(
        None,
        description="snowpipe: the Snowflake storage integration the stage reads the bucket "
        "through (https://docs.snowflake.com/en/sql-reference/sql/create-storage-integration).",
    )
    tables: dict[str, ExternalTable] = Field(min_length=1)

    @field_validator("loader", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _loaded_at_known(self) -> ExternalSource:
        if self.loaded_at is None and self.loader not in KNOWN_LOADERS:
            raise ValueError(
                f"stackyard does not know which column loader '{self.loader}' stamps rows "
                f"with: give loaded_at (--loaded-at COLUMN); known loaders: "
                + ", ".join(KNOWN_LOADERS)
            )
        if self.stage_url is not None and self.loader != "snowpipe":
            raise ValueError("stage_url (--stage-url) is for loader snowpipe only")
        if self.loader == "snowpipe" and not self.stage_url:
            raise ValueError("a snowpipe source needs stage_url (--stage-url s3://bucket/path/)")
        return self

    def columns(self) -> LoaderColumns:
        """The loader's bookkeeping columns, with ``loaded_at`` as configured.

        >>> ExternalSource(kind="external", loader="x", loaded_at="synced_at",
        ...                tables={"t": {}}).columns().loaded_at
        'synced_at'
        """
        known = KNOWN_LOADERS.get(self.loader)
        if known is None:
            return LoaderColumns(loaded_at=str(self.loaded_at), bookkeeping=(str(self.loaded_at),))
        if self.loaded_at and self.loaded_at != known.loaded_at:
            return LoaderColumns(
                self.loaded_at,
                (*known.bookkeeping, self.loaded_at),
                known.deleted_flag,
                known.deleted_at,
                known.current_flag,
                known.row_id,
            )
        return known

    def loaded_by_stackyard(self, snowpipe: bool = False) -> bool:
        """Snowpipe exists on Snowflake only: elsewhere stackyard reads the same files itself
        (as the filesystem kind does), so the source works the same on every target.

        >>> src = ExternalSource(kind="external", loader="snowpipe", stage_url="s3://b/p/",
        ...                      tables={"orders": {"glob": "orders/*.csv"}})
        >>> src.loaded_by_stackyard(snowpipe=True), src.loaded_by_stackyard(snowpipe=False)
        (False, True)
        """
        return self.loader == "snowpipe" and not snowpipe

    def as_files(self) -> FilesystemSource:
        """The filesystem source reading the same files (snowpipe off Snowflake)."""
        return FilesystemSource(
            kind="filesystem",
            url=str(self.stage_url),
            # The key too: without it the files were appended, and a row sent again in a
            # later file (an update) was in the table twice.
            tables={
                t: FileTable(
                    glob=spec.glob or f"{t}/*.jsonl",
                    format=spec.format,
                    primary_key=spec.primary_key,
                    delimiter=spec.delimiter,
                    date_format=spec.date_format,
                    timestamp_format=spec.timestamp_format,
                )
                for t, spec in self.tables.items()
            },
            **{"schema": self.schema_, "contract": self.contract},
        )

    def dbt_name(self, name: str) -> str:
        """The dbt source it appears as: ``<loader>_<source>``.

        >>> ExternalSource(kind="external", loader="airbyte", tables={"t": {}}).dbt_name("crm")
        'airbyte_crm'
        """
        return f"{self.loader}_{name}"

    def declared_tables(self) -> tuple[str, ...]:
        return tuple(self.tables)

    def primary_keys(self) -> dict[str, tuple[str, ...]]:
        return _keys({t: spec.primary_key for t, spec in self.tables.items()})

    @classmethod
    def entry_from_options(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        keys = options.get("primary_key") or {}
        tables: dict[str, dict[str, Any]] = {}
        # TABLE, or TABLE=GLOB for snowpipe (the table's files under --stage-url)
        for name, _, glob in (str(t).partition("=") for t in options.get("table") or []):
            given = (("primary_key", keys.get(name)), ("glob", glob))
            tables[name] = {k: v for k, v in given if v}
        if options.get("delimiter"):
            if not options.get("stage_url"):
                raise UsageError(
                    "--delimiter is for files: a snowpipe source's (with --stage-url) or a "
                    "filesystem source's"
                )
            for spec in tables.values():
                spec["delimiter"] = options["delimiter"]
        _only_named_tables(list(tables), keys, {})
        if options.get("stage_url") and not tables:
            raise UsageError(
                "a snowpipe source names its tables and their files: --table TABLE=GLOB "
                "(e.g. --table orders='orders/*.jsonl')"
            )
        return {
            "loader": options.get("loader"),
            "loaded_at": options.get("loaded_at"),
            "stage_url": options.get("stage_url"),
            "tables": tables,
        }


register_source_kind(ExternalSource)
