"""Snowpipe sources in the access plan: stage, file format, table and pipe per table.

A source ``kind: external, loader: snowpipe, stage_url: s3://…`` is loaded by Snowflake
itself on a Snowflake target: the plan creates, in the loader's database (``SNOWPIPE``) and
the source's schema, a file format, an external stage over the URL, one table per source
table (the record as a ``VARIANT``, the file it came from, and ``_loaded_at`` filled from
``METADATA$START_SCAN_TIME``), and a pipe ``AUTO_INGEST = TRUE`` copying new files into it
(https://docs.snowflake.com/en/sql-reference/sql/create-pipe,
https://docs.snowflake.com/en/user-guide/querying-metadata). Every statement is
``IF NOT EXISTS``, so applying it again changes nothing.

Other engines have no Snowpipe: there stackyard reads the same files itself (the filesystem
kind over the same URL) on each run, and the plan says so in a note.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from stackyard.config.external import ExternalSource
from stackyard.config.sources import FileTable, SourceBase
from stackyard.errors import ConfigError
from stackyard.infra.plan import Plan, Step
from stackyard.infra.snowflake import ident, literal

SNOWPIPE = "SNOWPIPE"
_FORMATS = {"jsonl": "JSON", "parquet": "PARQUET"}


def snowpipe_sources(sources: Mapping[str, SourceBase]) -> dict[str, ExternalSource]:
    """The project's snowpipe sources by name."""
    return {n: s for n, s in sources.items() if isinstance(s, ExternalSource) and s.stage_url}


def glob_pattern(glob: str) -> str:
    """A file glob as the regular expression ``COPY … PATTERN`` takes.

    >>> glob_pattern("orders/*.jsonl")
    '.*orders/[^/]*\\\\.jsonl'
    """
    out = []
    for part in re.split(r"(\*\*/|\*\*|\*|\?)", glob):
        wild = {"**/": "(.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
        out.append(wild.get(part, re.escape(part)))
    return ".*" + "".join(out)


def snowpipe_steps(name: str, source: ExternalSource, schema: str) -> list[Step]:
    """The statements that make Snowflake load one snowpipe source.

    Args:
        name: the source.
        source: its entry.
        schema: the schema it lands in (as ``dataset_for`` names it).

    Raises:
        ConfigError: a table's files are CSV (a pipe that loads whole records takes JSON
            lines or Parquet).
    """
    db, sch = SNOWPIPE, schema.upper()
    stage = ident(db, sch, f"{name.upper()}_STAGE")
    steps: list[Step] = []
    formats: dict[str, str] = {}
    for table, spec in source.tables.items():
        files = FileTable(glob=spec.glob or f"{table}/*.jsonl", format=spec.format)
        kind = _FORMATS.get(files.file_format())
        if kind is None:
            raise ConfigError(
                f"source '{name}', table '{table}': Snowpipe here loads whole records, from "
                f"JSON lines or Parquet files, not {files.file_format()}",
                hint="write the files as .jsonl or .parquet, or load CSV with the filesystem kind",
            )
        formats.setdefault(kind, ident(db, sch, f"{name.upper()}_{kind}"))
    for kind, fmt in formats.items():
        steps.append(
            Step(
                "create_file_format",
                f"CREATE FILE FORMAT IF NOT EXISTS {fmt} TYPE = {kind}",
                f"file format {fmt} for source '{name}'",
            )
        )
    integration = (
        f" STORAGE_INTEGRATION = {ident(source.storage_integration.upper())}"
        if source.storage_integration
        else ""
    )
    steps.append(
        Step(
            "create_stage",
            f"CREATE STAGE IF NOT EXISTS {stage} URL = {literal(str(source.stage_url))}"
            + integration,
            f"stage {stage} over {source.stage_url}",
        )
    )
    for table, spec in source.tables.items():
        files = FileTable(glob=spec.glob or f"{table}/*.jsonl", format=spec.format)
        fmt = formats[_FORMATS[files.file_format()]]
        target = ident(db, sch, table.upper())
        pipe = ident(db, sch, f"{table.upper()}_PIPE")
        steps.append(
            Step(
                "create_table",
                f"CREATE TABLE IF NOT EXISTS {target} "
                "(RECORD VARIANT, _SOURCE_FILE VARCHAR, _LOADED_AT TIMESTAMP_LTZ)",
                f"table {target}: each record, its file and when Snowpipe loaded it",
            )
        )
        steps.append(
            Step(
                "create_pipe",
                f"CREATE PIPE IF NOT EXISTS {pipe} AUTO_INGEST = TRUE AS "
                f"COPY INTO {target} (RECORD, _SOURCE_FILE, _LOADED_AT) "
                f"FROM (SELECT $1, METADATA$FILENAME, METADATA$START_SCAN_TIME FROM @{stage}) "
                f"PATTERN = {literal(glob_pattern(files.glob))} "
                f"FILE_FORMAT = (FORMAT_NAME = {literal(fmt)})",
                f"pipe {pipe}: new files matching {files.glob} are copied into {target}",
            )
        )
    return steps


def with_snowpipes(
    plan: Plan, sources: Mapping[str, SourceBase], schemas: Mapping[str, str], snowpipe: bool
) -> Plan:
    """``plan`` with its snowpipe sources: their objects where the engine has Snowpipe, a
    note elsewhere.

    Args:
        plan: the access plan of one target.
        sources: the project's sources.
        schemas: each source's schema (``dataset_for``).
        snowpipe: the target's engine loads staged files itself (its ``SNOWPIPE`` flag).
    """
    pipes = snowpipe_sources(sources)
    if not pipes:
        return plan
    if not snowpipe:
        notes = tuple(
            f"source '{n}' (snowpipe): {plan.engine} has no Snowpipe, so stackyard reads "
            f"{s.stage_url} itself on each run, as a filesystem source"
            for n, s in pipes.items()
        )
        return _replace(plan, steps=plan.steps, notes=(*plan.notes, *notes))
    steps = [step for n, s in pipes.items() for step in snowpipe_steps(n, s, schemas[n])]
    return _replace(plan, steps=(*plan.steps, *steps), notes=plan.notes)


def _replace(plan: Plan, *, steps: tuple[Step, ...], notes: tuple[str, ...]) -> Plan:
    from dataclasses import replace

    return replace(plan, steps=steps, notes=notes)
