"""What ``source add`` and ``source remove`` create and drop in the warehouse, and the local
paths ``add`` checks before it changes anything."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from stackyard.config.model import ProjectConfig
from stackyard.config.sources import PythonSource, SourceBase
from stackyard.errors import ConfigError, UsageError, WarehouseError, did_you_mean
from stackyard.metadata.schema import METADATA_SCHEMA
from stackyard.warehouse.base import Warehouse

# dlt merges through a copy of the rows in a schema beside the dataset, named by its
# `staging_dataset_name_layout` ("%s_staging" unless set):
# https://dlthub.com/docs/general-usage/destination-tables#staging-dataset
STAGING_LAYOUT = "{}_staging"
# every dataset dlt writes, staging included, holds its schema versions in this table
DLT_VERSION_TABLE = "_dlt_version"


def staging_schema(schema: str) -> str:
    """dlt's staging schema of a dataset.

    >>> staging_schema("crm")
    'crm_staging'
    """
    return STAGING_LAYOUT.format(schema)


def source_schemas(warehouse: Warehouse, config: ProjectConfig, name: str) -> list[str]:
    """The schemas the source's loads wrote: its own and, when it is there and dlt's, the
    staging schema dlt keeps beside it — unless that name is another source's schema or
    stackyard's own.

    Args:
        warehouse: the target.
        config: the project, with the source in it.
        name: the source.
    """
    schema = config.dataset_for(name)
    staging = staging_schema(schema)
    others = {config.dataset_for(n) for n in config.sources if n != name} | {METADATA_SCHEMA}
    found = [schema]
    if (
        staging not in others
        and warehouse.schema_exists(staging)
        and DLT_VERSION_TABLE in warehouse.tables_in(staging)
    ):
        found.append(staging)
    return found


def built_models(transform_dir: Path, files: Sequence[Path], target: str) -> list[tuple[str, str]]:
    """``(schema, relation)`` of each model dbt built from ``files`` (generated staging models)
    on ``target``, read from the manifest dbt wrote for it; empty before the first build.

    The relations outlive their files: ``remove --drop-data`` drops them with the data they
    read, or a view would be left over a dropped table (DuckDB keeps no dependencies between
    schemas, so ``DROP SCHEMA … CASCADE`` leaves it behind) and the next monitor pass would
    report it as an error.
    """
    from stackyard.transform.state import read_manifest

    manifest = read_manifest(transform_dir, target) or read_manifest(transform_dir)
    if not files or manifest is None:
        return []
    wanted = {p.resolve().relative_to(transform_dir.resolve()).as_posix() for p in files}
    nodes = (manifest.get("nodes") or {}).values()
    return sorted(
        (str(node["schema"]), str(node.get("alias") or node["name"]))
        for node in nodes
        if node.get("resource_type") == "model" and node.get("original_file_path") in wanted
    )


def drop_relations(warehouse: Warehouse, relations: Sequence[tuple[str, str]]) -> list[str]:
    """Drop each view or table of ``relations`` that exists; ``schema.name`` of those dropped.

    Raises:
        WarehouseError: the warehouse refused.
    """
    p = warehouse.param()
    dropped = []
    for schema, name in relations:
        found = warehouse.query(
            "SELECT table_type FROM information_schema.tables "
            f"WHERE table_schema = {p} AND table_name = {p}",
            (schema, name),
        ).rows
        if not found:
            continue
        kind = "VIEW" if "VIEW" in str(found[0][0]).upper() else "TABLE"
        warehouse.execute(f"DROP {kind} IF EXISTS {warehouse.quote(schema, name)}")
        dropped.append(f"{schema}.{name}")
    return dropped


def source_tables(warehouse: Warehouse, config: ProjectConfig, name: str) -> list[str]:
    """The source's tables, as the warehouse names them: those it declares (``MixedCase``
    loads as ``mixed_case``), else those its schema holds (dlt's own and the rejected rows'
    table left out)."""
    from stackyard.config.model import normalised_schema
    from stackyard.ingest.keys import declared_tables
    from stackyard.ingest.loader import REJECTED_TABLE

    declared = declared_tables(config.sources[name].model_dump(by_alias=True))
    if declared:
        return [normalised_schema(t) for t in declared]
    schema = config.dataset_for(name)
    if not warehouse.schema_exists(schema):
        return []
    return [
        t for t in warehouse.tables_in(schema) if not t.startswith("_dlt") and t != REJECTED_TABLE
    ]


def row_count(warehouse: Warehouse, schema: str, table: str) -> int | None:
    """The table's rows, or None when it does not exist."""
    if table not in warehouse.tables_in(schema):
        return None
    return int(warehouse.query(f"SELECT count(*) FROM {warehouse.quote(schema, table)}").rows[0][0])


def present(warehouse: Warehouse, schemas: Sequence[str]) -> list[str]:
    """Those of ``schemas`` that exist."""
    return [s for s in schemas if warehouse.schema_exists(s)]


def drop_schemas(warehouse: Warehouse, schemas: Sequence[str]) -> None:
    """``DROP SCHEMA … CASCADE`` each schema, then check that none is left.

    Raises:
        WarehouseError: the warehouse refused, or a schema still exists afterwards.
    """
    for schema in schemas:
        warehouse.execute(f"DROP SCHEMA IF EXISTS {warehouse.quote(schema)} CASCADE")
    left = present(warehouse, schemas)
    if left:
        raise WarehouseError(
            f"{warehouse.describe()}: schema {', '.join(left)} still exists after DROP SCHEMA",
            hint="drop it by hand (the loader account may lack the right to), then run the "
            "same command again",
        )


def check_local_paths(name: str, source: SourceBase, project_dir: Path) -> None:
    """Refuse a source whose folder or file on this machine does not exist, or a ``python``
    source's file that defines no such function, before anything is created for it.

    Raises:
        UsageError: a path given (``--url``, ``--path``) is not there, or ``--function``
            is not in the file.
    """
    for key, (path, what) in source.local_paths().items():
        found = (project_dir / path).resolve()
        if found.is_dir() if what == "folder" else found.is_file():
            continue
        option = "--" + key.replace("_", "-")
        raise UsageError(
            f"{option} {path}: the {what} {found} does not exist",
            hint=f"create it, or fix the path (relative to the project folder {project_dir}); "
            f"nothing was created or changed for source '{name}'",
        )
    if isinstance(source, PythonSource):
        _check_function(name, source, project_dir)


def _check_function(name: str, source: PythonSource, project_dir: Path) -> None:
    """A missing function was found only by the first load, as a failed load (exit 1)."""
    missing = _missing_function(source, project_dir)
    if missing is not None:
        said, listed = missing
        raise UsageError(
            f"--function {said}",
            hint=f"pass the function that returns your @dlt.source (functions in the file: "
            f"{listed}); nothing was created or changed for source '{name}'",
        )


def check_functions(config: ProjectConfig, project_dir: Path, names: Sequence[str]) -> None:
    """Refuse a run whose ``python`` sources (of ``names``) name a function their file does
    not define: it was a failed load (exit 1), after the other sources had loaded.

    Raises:
        ConfigError: the function is not in the file, with the functions that are.
    """
    for name in names:
        source = config.sources.get(name)
        if not isinstance(source, PythonSource) or not (project_dir / source.path).is_file():
            continue  # a missing file is the load's to say, as it always was
        missing = _missing_function(source, project_dir)
        if missing is not None:
            said, listed = missing
            raise ConfigError(
                f"stackyard.yml: sources.{name}.function: {said}",
                hint=f"set it to the function that returns your @dlt.source (functions in "
                f"the file: {listed}); nothing was run",
            )


def _missing_function(source: PythonSource, project_dir: Path) -> tuple[str, str] | None:
    """What is wrong with ``source.function`` and the file's functions, or None when the
    file defines it (or only running the file can tell)."""
    from stackyard.ingest.python_source import defined_names

    functions, names = defined_names(project_dir / source.path)
    if names is None or source.function in names:
        return None
    listed = ", ".join(functions) if functions else "none"
    said = (
        f"{source.function}: {source.path} defines no '{source.function}'"
        f"{did_you_mean(source.function, functions)}"
    )
    return said, listed
