"""``stackyard source add --kind external``: tables another tool loads, taken in as a source.

Nothing is loaded. The tables' columns are read from the warehouse catalog, and the
runbook's artefacts are written as for any source: the stackyard.yml entry, the loader's
database, roles and service account in the access layout
(:func:`stackyard.infra.loaders.declare_loader`), the dbt source ``<loader>_<source>`` with
the loader's loaded-at column and freshness, a staging model per table with key tests, and
the verification (rows, models build, tests pass, freshness).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from stackyard.config.edit import ProjectFile
from stackyard.config.external import KNOWN_LOADERS, ExternalSource
from stackyard.config.model import normalised_schema
from stackyard.errors import UsageError, did_you_mean
from stackyard.infra.loaders import declare_loader
from stackyard.ingest.keys import detect_key
from stackyard.runbooks.source_access import read_chain
from stackyard.runbooks.source_results import Check, SourceAddResult
from stackyard.runbooks.steps import RunbookPlan, RunbookStep
from stackyard.transform.dbt_sources import write_sources_entry
from stackyard.transform.external_staging import catalog_type, external_staging_files
from stackyard.transform.generated import check_clashes, write_files
from stackyard.transform.staging import Column, LoadedTable
from stackyard.warehouse.base import Warehouse

if TYPE_CHECKING:
    from stackyard.runbooks.sources import SourcesRunbook


def complete_tables(warehouse: Warehouse, name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` with every table of the source's schema when no ``--table`` was given,
    after checking in the warehouse catalog that the schema and each table exist.

    A snowpipe source on a target without Snowpipe is read from its files, so it is not
    looked up.

    Raises:
        UsageError: the schema or a table is not in the warehouse (nothing is written).
    """
    options = dict(options)
    loader = str(options.get("loader") or "").lower()
    if loader == "snowpipe" or options.get("stage_url"):
        return options
    schema = normalised_schema(options.get("schema") or name)
    where = warehouse.describe()
    if not warehouse.schema_exists(schema):
        raise UsageError(
            f"schema '{schema}' does not exist on {where}: an external source reads tables "
            f"its loader ({loader or '?'}) has already written",
            hint="run the loader's first sync, or give the schema it writes with --schema",
        )
    present = [t for t in warehouse.tables_in(schema) if not t.startswith("_")]
    tables: dict[str, Any] = dict(options.get("tables") or {})
    missing = [t for t in tables if t not in present]
    if missing:
        raise UsageError(
            f"{', '.join(f'{schema}.{t}' for t in missing)} not found on {where}"
            + did_you_mean(missing[0], present),
            hint=f"tables in {schema}: {', '.join(present) or '(none)'}",
        )
    if not tables:
        if not present:
            raise UsageError(
                f"schema '{schema}' on {where} has no tables yet",
                hint="run the loader's first sync, then add the source",
            )
        tables = {t: {} for t in present}
    options["tables"] = tables
    try:
        probe = ExternalSource.model_validate(
            {"kind": "external", "loader": loader, "loaded_at": options.get("loaded_at"),
             "tables": tables}
        )  # fmt: skip
    except ValidationError:
        return options  # the entry's validation says what is wrong, with every problem
    # The keys found go into the entry, so monitors check them for duplicates on every run.
    found = catalog_tables(warehouse, probe, schema)
    # Freshness reads this column on every run: a table without it failed every run after.
    stamp = probe.columns().loaded_at
    for table in found:
        names = [c.name for c in table.columns]
        if stamp.lower() not in {n.lower() for n in names}:
            raise UsageError(
                f"{schema}.{table.name} on {where} has no column '{stamp}', which the "
                f"source's freshness would read" + did_you_mean(stamp, names),
                hint="give the column the loader stamps each row with when it writes it: "
                "--loaded-at COLUMN",
            )
    options["tables"] = {t.name: _with_key(tables[t.name], t) for t in found}
    return options


def catalog_key(warehouse: Warehouse, schema: str, table: str) -> tuple[str, ...]:
    """The primary key the catalog declares for a table, or ``()``."""
    p = warehouse.param()
    rows = warehouse.query(
        "SELECT k.column_name FROM information_schema.table_constraints c "
        "JOIN information_schema.key_column_usage k ON k.constraint_name = c.constraint_name "
        "AND k.table_schema = c.table_schema AND k.table_name = c.table_name "
        f"WHERE c.constraint_type = 'PRIMARY KEY' AND c.table_schema = {p} "
        f"AND c.table_name = {p} ORDER BY k.ordinal_position",
        (schema, table),
    ).rows
    return tuple(str(r[0]) for r in rows)


def catalog_tables(warehouse: Warehouse, source: ExternalSource, schema: str) -> list[LoadedTable]:
    """Each table with its columns as the catalog lists them and the key its tests use:
    the one declared in stackyard.yml, else the catalog's, else one unique and never null in
    the data (the loader's own columns excluded), else the loader's row id."""
    loader_columns = source.columns()
    bookkeeping = set(loader_columns.bookkeeping)
    tables = []
    for table in source.declared_tables():
        columns = tuple(
            Column(c, catalog_type(t)) for c, t in warehouse.table_columns(schema, table).items()
        )
        key = source.primary_keys().get(table, ())
        origin = "declared"
        if not key:
            key, origin = catalog_key(warehouse, schema, table), "declared in the warehouse"
        if not key:
            own = [c for c in columns if c.name not in bookkeeping]
            key, origin = detect_key(warehouse, schema, table, own), "detected in the data"
        row_id = loader_columns.row_id
        if not key and row_id and any(c.name == row_id for c in columns):
            key, origin = (row_id,), f"{source.loader}'s row id"
        marked = tuple(Column(c.name, c.data_type, c.name in key) for c in columns)
        tables.append(LoadedTable(table, marked, tuple(key), origin if key else ""))
    return tables


def add_external(runbook: SourcesRunbook, name: str, entry: dict[str, Any]) -> SourceAddResult:
    """The runbook for a source another tool loads: config and access, models, checks.

    Raises:
        ConfigError: a model file it would write exists and was not generated for it.
        UsageError: the loader's database is declared for another loader.
    """
    config = runbook.config
    existing = config.sources.get(name)
    source = ExternalSource.model_validate(entry)
    schema = normalised_schema(entry.get("schema") or name)
    check_clashes(
        runbook.project_dir, runbook.transform_dir, name, source.declared_tables(), source.loader
    )
    step = f"add {name}"
    runbook.console.step_started(step, "stackyard.yml")
    warehouse = runbook.warehouse
    tables = catalog_tables(warehouse, source, schema)
    runbook.session.release()
    project = ProjectFile(runbook.project_file)
    if existing is None:
        project.add_source(name, entry)
    declared = declare_loader(project, source.loader, schemas=[schema])
    project.save()
    config = runbook.config
    files = external_staging_files(
        name, source.dbt_name(name), source.loader, source.columns(), tables, warehouse.DIALECT
    )
    written, unchanged = write_files(runbook.project_dir, runbook.transform_dir, files)
    w2, u2 = write_sources_entry(
        runbook.project_dir, runbook.transform_dir, name, config, [t.name for t in tables]
    )
    runbook.console.step_finished(step, "ok", f"{len(tables)} tables, {len(written)} files")
    checks = runbook.verify(name)
    checks.insert(0, _access_check(declared.database, declared.roles, declared.service_account))
    chain = read_chain(runbook.session, schema)
    if chain.check is not None:
        checks.append(chain.check)
    return SourceAddResult(
        name,
        existing is None,
        tuple(written + w2),
        tuple(unchanged + u2),
        checks=tuple(checks),
        notes=_notes(source, tables) + ((chain.note,) if chain.note else ()),
    )


def external_plan(name: str, entry: Mapping[str, Any], target: str) -> RunbookPlan:
    """The steps of ``source add --kind external``, each with its undo; nothing is changed."""
    source = ExternalSource.model_validate(entry)
    schema = normalised_schema(entry.get("schema") or name)
    loader, folder = source.loader, f"transform/models/staging/{source.loader}"
    undo = f"`stackyard source remove {name}`"
    tables = ", ".join(source.declared_tables())
    steps = (
        RunbookStep(
            "edit stackyard.yml",
            f"add source '{name}' (external, loaded by {loader}) under sources:, and "
            f"{loader.upper()} (its database, {loader.upper()}_DB_READER/_WRITER, "
            f"SVC_{loader.upper()}) with schema {schema} under access:",
            f"{undo} takes the source out (the access entries stay for the loader)",
        ),
        RunbookStep("read catalog", f"columns and keys of {tables} in {schema} on {target}"),
        RunbookStep(
            "write models",
            f"the dbt source '{source.dbt_name(name)}' (loaded_at_field: "
            f"{source.columns().loaded_at}) in {folder}/_sources.yml, and "
            f"stg_{loader}__<table> (.sql + .yml with key tests) per table in {folder}",
            f"{undo} deletes exactly these files",
        ),
        RunbookStep(
            "verify",
            "the tables have rows, the staging models build, their tests pass and source "
            "freshness passes; nothing is loaded",
        ),
    )
    return RunbookPlan("source add", name, steps)


def _with_key(spec: Mapping[str, Any], table: LoadedTable) -> dict[str, Any]:
    out = dict(spec)
    if table.primary_key and "primary_key" not in out:
        key = table.primary_key
        out["primary_key"] = key[0] if len(key) == 1 else list(key)
    return out


def _access_check(database: str, roles: Sequence[str], account: str) -> Check:
    return Check(
        "loader access declared",
        True,
        f"database {database}, roles {', '.join(roles)}, service account {account} in "
        "stackyard.yml (access:)",
    )


def _notes(source: ExternalSource, tables: Sequence[LoadedTable]) -> tuple[str, ...]:
    notes = [
        f"{t.name}: no primary key declared or found; its model has no key tests"
        for t in tables
        if not t.primary_key
    ]
    if source.loader not in KNOWN_LOADERS:
        notes.append(
            f"{source.loader} is not a loader stackyard knows: its freshness uses "
            f"{source.columns().loaded_at}, and only that column is left out of the models"
        )
    notes.append(
        f"stackyard does not load this source: {source.loader} does; `stackyard run` checks "
        "its freshness and skips the models downstream of it when it is stale"
    )
    return tuple(notes)
