"""Before a load: finish what an interrupted run left, and check that dlt's state and the
warehouse still agree.

dlt keeps, per pipeline, the cursors it reached and the tables it created. When the warehouse
loses tables that state says are loaded (the DuckDB file deleted, a table dropped by hand), an
incremental load would read only rows newer than the cursor and report success over a
half-empty table. The load fails instead, naming the tables and the command that loads them
again from the source.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stackyard.config.private import write_private
from stackyard.errors import LoadError, UsageError, did_you_mean
from stackyard.ingest.counts import loaded_tables, missing_tables

# How ``stackyard reload`` and ``run --full-refresh`` ask dlt to start a source over: drop its
# tables and reset its state (cursors included) in the same run that loads it again
# (https://dlthub.com/docs/general-usage/pipeline#refresh-pipeline-data-and-state).
REFRESH_SOURCE = "drop_sources"
REFRESH_TABLES = "drop_resources"


def finish_pending(
    pipeline: Any, source: str = "SOURCE", read_again: bool = False, notes: list[str] | None = None
) -> list[str]:
    """Load the packages an interrupted run left, before extracting anything new.

    ``pipeline.run`` would load them and then stop without extracting the new data; finishing
    them first makes one run do both. Their ids are written down before they load and
    crossed out once :func:`drop_rows_loaded_twice` has gone over them, so a run that dies
    (or fails) in between leaves the check to the next run.

    With ``read_again`` (a stream, whose events are acknowledged only once loaded), a
    package that fails to load is dropped instead: its events were never acknowledged, so
    this run reads them again, and one it cannot load fails with its own cause rather than
    blocking every later run (a stream cannot be reloaded).

    A package normalize refuses for good (a type the contract freezes, an integer no column
    holds) left every later run failing on it, however the source was fixed, until a reload
    started over without what upstream no longer had. Such a package never reached the
    warehouse: it is set aside (its files kept, see :func:`_read_again_without`), dlt's state
    rewinds to where it started, and this run reads the source again; ``notes`` hears of it.

    Returns:
        The ids of the loads finished (their rows count as this run's).
    """
    marker = Path(pipeline.working_dir) / _RECHECK_FILE
    earlier: list[str] = json.loads(marker.read_text(encoding="utf-8")) if marker.exists() else []
    finished: list[str] = []
    if pipeline.has_pending_data:
        finished = finish_interrupted_commits(pipeline)
        adopt_extracted_schemas(pipeline)
        try:
            try:
                pipeline.normalize()
            except Exception as exc:
                if read_again or _unfinished(exc, source) is exc or _normalized(pipeline):
                    raise
                _read_again_without(pipeline, exc, notes if notes is not None else [])
            pending = [str(i) for i in pipeline.list_normalized_load_packages()]
            if pending:
                write_private(marker, json.dumps(sorted({*earlier, *pending})))
                finished.extend(pipeline.load().loads_ids)
        except Exception as exc:
            unfinished = _unfinished(exc, source)
            if unfinished is exc:
                raise
            if not read_again:
                raise unfinished from exc
            pipeline.drop_pending_packages()
    if marker.exists():
        drop_rows_loaded_twice(pipeline, sorted({*earlier, *finished}))
        marker.unlink()
    return finished


# Where the packages normalize refused are kept, in the pipeline's folder; the latest few.
SET_ASIDE = "set_aside"
_SET_ASIDE_KEPT = 3


def _normalized(pipeline: Any) -> bool:
    """Whether older packages wait to be loaded: those stay, and the run fails as before."""
    return bool(pipeline.list_normalized_load_packages())


def _read_again_without(pipeline: Any, exc: Exception, notes: list[str]) -> None:
    """Set the extracted packages aside and rewind dlt's state to where they started (dlt's
    ``abort_packages``), so that the run reads the source again; their files are copied to
    ``set_aside/`` first, as what a source with side effects may not give again."""
    import shutil

    from stackyard.ingest.load_errors import root_cause

    folder = Path(pipeline.working_dir) / SET_ASIDE
    extracted = pipeline._get_normalize_storage().extracted_packages
    for load_id in pipeline.list_extracted_load_packages():
        path = extracted.storage.make_full_path(extracted.get_package_path(load_id))
        shutil.copytree(path, folder / str(load_id))
    for old in sorted(folder.iterdir())[:-_SET_ASIDE_KEPT]:
        shutil.rmtree(old, ignore_errors=True)
    pipeline.abort_packages()
    notes.append(
        f"a load an earlier run left could not be finished ({root_cause(exc)}); it never "
        f"reached the warehouse, so it was set aside (its files are in {folder}) and the "
        "source was read again from where the last finished load left it"
    )


def _unfinished(exc: Exception, source: str) -> Exception:
    """A left package that fails to load fails every run the same way, however the source
    changed since: say so, and how to start over without it. A lost connection stays as it
    is (retried); so does stackyard's own error."""
    from stackyard.ingest.attempts import looks_transient
    from stackyard.ingest.load_errors import root_cause, stackyard_error

    if stackyard_error(exc) is not None or looks_transient(exc):
        return exc
    null = _null_in_key(exc)
    if null is not None:
        table, column = null
        return LoadError(
            f"a load an earlier run left could not be finished: a row of table '{table}' has "
            f"no value for its key column '{column}' (NULL), and a merge cannot place it",
            hint="every run tries that load again first and reads nothing new from the "
            f"source until it is gone: `stackyard reload {source} --yes` starts the source "
            "over without it (a row with no key now goes to _rejected_rows)",
        )
    return LoadError(
        f"a load an earlier run left could not be finished: {root_cause(exc)}",
        hint="every run tries it again first; once the cause is fixed at the source, "
        f"`stackyard reload {source} --yes` starts the source over without it",
    )


_NULL_IN = re.compile(r"Cannot coerce NULL in table `([^`]+)` column `([^`]+)`")


def _null_in_key(exc: BaseException) -> tuple[str, str] | None:
    """The table and column of dlt's refusal of a NULL in a column that cannot hold one
    (``CannotCoerceNullException``, which keeps them only in its message), if that is
    what ``exc`` wraps."""
    seen: BaseException | None = exc
    while seen is not None:
        found = _NULL_IN.search(str(seen))
        if type(seen).__name__ == "CannotCoerceNullException" and found:
            return found.group(1), found.group(2)
        seen = seen.__cause__ or seen.__context__
    return None


def finish_interrupted_commits(pipeline: Any) -> list[str]:
    """Do the second half of a two-step commit that dlt was killed between, as dlt would have.

    dlt moves a package along in steps that are not one atomic change, and a run killed
    between them leaves a state every later run fails on, for good:

    - normalize renames the normalized package into place, then deletes the extracted one it
      came from: with both left, normalizing again fails ("Directory not empty");
    - load records the load in the warehouse and marks the package completed, then moves it
      to the loaded packages: a completed package left among the normalized ones fails the
      next load ("already completed").

    The first step had happened, so the second is the one dlt was about to take.

    Returns:
        The ids of packages whose loading this completed (their rows were in the warehouse
        already, counted by no run: they count as this run's).
    """
    loads = pipeline._get_load_storage()
    # dlt writes a storage's version file and then its folders one by one: a run killed in
    # between leaves folders missing, which the next normalize creates. Nothing to finish there.
    if not all(loads.storage.has_folder(f) for f in (loads.NORMALIZED_FOLDER, loads.LOADED_FOLDER)):
        return []
    normalized = {str(i) for i in pipeline.list_normalized_load_packages()}
    done = normalized | {str(i) for i in pipeline.list_completed_load_packages()}
    for load_id in pipeline.list_extracted_load_packages():
        if str(load_id) in done:
            pipeline._get_normalize_storage().extracted_packages.delete_package(load_id)
    completed = []
    for load_id in sorted(normalized):
        if loads.normalized_packages.is_package_completed(load_id):
            loads.storage.rename_tree(
                loads.get_normalized_package_path(load_id), loads.get_loaded_package_path(load_id)
            )
            completed.append(str(load_id))
    return completed


def adopt_extracted_schemas(pipeline: Any) -> None:
    """Give the pipeline the schema a pending extracted package was extracted with, when it
    is newer than the one the pipeline keeps.

    dlt commits an extracted package (its rows, its schema and the new cursors) before it saves
    the pipeline's own schema and state, and its normalize step prefers the pipeline's schema
    over the package's. A run stopped between the two (Ctrl-C, a kill) leaves the pipeline's
    older schema, in which a table loaded incrementally is still ``append`` from its first
    load: finishing the package would then append the changed rows it should merge on their
    key, one duplicate per changed row.
    """
    for load_id in pipeline.list_extracted_load_packages():
        schema = pipeline.get_load_package_info(load_id).schema
        kept = pipeline.schemas.get(schema.name)
        if kept is None or schema.version > kept.version:
            pipeline.schemas.save_schema(schema)


# Load ids of interrupted packages whose rows are still to be checked for a job loaded twice.
_RECHECK_FILE = "stackyard_recheck.json"


def drop_rows_loaded_twice(pipeline: Any, load_ids: list[str]) -> None:
    """Keep one row per key of what a finished package appended into a table it created.

    A first load into a table that does not exist yet appends (the source's key already
    makes its rows unique, and a merge would cost a staging copy). dlt loads a job again when
    the run died after the warehouse committed it and before dlt marked it done, which adds
    its rows twice. When every row of such a table came from these packages, a key seen twice
    is a job loaded twice: one copy is kept. Tables with rows from earlier loads, merged and
    replaced tables are left alone (loading those again is harmless). DuckDB and Postgres:
    they have ``DISTINCT ON``.
    """
    from dlt.common.schema.utils import has_table_seen_data

    if not load_ids or not pipeline.default_schema_name:
        return
    if pipeline.destination.destination_name not in ("duckdb", "postgres"):
        return
    ids = ", ".join("'" + i.replace("'", "''") + "'" for i in load_ids)
    mine = f"_dlt_load_id IN ({ids})"
    with pipeline.sql_client() as client:
        for table in pipeline.default_schema.data_tables():
            keys = [c for c, col in table["columns"].items() if col.get("primary_key")]
            if (
                table.get("write_disposition") != "append"
                or not keys
                or "_dlt_load_id" not in table["columns"]
                or not has_table_seen_data(table)  # never created in the warehouse
            ):
                continue
            name = client.make_qualified_table_name(table["name"])
            key = ", ".join(client.escape_column_name(k) for k in keys)
            if client.execute_sql(f"SELECT 1 FROM {name} WHERE NOT ({mine}) LIMIT 1"):
                continue  # loaded before these packages: not a first load
            twice = f"SELECT 1 FROM {name} WHERE {mine} GROUP BY {key} HAVING count(*) > 1"
            if not client.execute_sql(twice + " LIMIT 1"):
                continue
            with client.begin_transaction():
                client.execute_sql(
                    f"CREATE TEMP TABLE stackyard_once AS SELECT DISTINCT ON ({key}) * "
                    f"FROM {name} WHERE {mine}"
                )
                client.execute_sql(f"DELETE FROM {name} WHERE {mine}")
                client.execute_sql(f"INSERT INTO {name} SELECT * FROM stackyard_once")
                client.execute_sql("DROP TABLE stackyard_once")


def check_state_matches_warehouse(pipeline: Any, source: str, target: str) -> None:
    """Fail when tables dlt's state says were loaded are missing from the warehouse.

    Raises:
        LoadError: naming the missing tables and the reload command.
    """
    missing = missing_tables(pipeline, loaded_tables(pipeline))
    if not missing:
        return
    dataset = pipeline.dataset_name
    names = ", ".join(f"{dataset}.{t}" for t in missing)
    raise LoadError(
        f"source '{source}': {names} {'is' if len(missing) == 1 else 'are'} missing on target "
        f"'{target}', though dlt's state says {'it was' if len(missing) == 1 else 'they were'} "
        "loaded (a lost warehouse file, or a table dropped by hand); loading now would bring "
        "back only rows newer than the saved cursors",
        hint=f"load them again from the source: `stackyard reload {source} --yes`, or "
        f"`stackyard run --full-refresh --select {source}` (also rebuilds what depends on it); "
        "after a lost warehouse file, `stackyard restore latest` puts back every table and "
        "dlt's state from the last backup (`stackyard doctor` says whether one exists)",
    )


def merged_tables(pipeline: Any) -> list[str]:
    """Tables of the pipeline's schema that merge on a key."""
    if not pipeline.default_schema_name:
        return []
    schema = pipeline.default_schema
    return [str(t["name"]) for t in schema.data_tables() if t.get("write_disposition") == "merge"]


def refreshed(source: str, resources: list[Any], tables: Sequence[str]) -> tuple[list[Any], str]:
    """The resources to load again and dlt's refresh mode: the whole source, or the tables.

    Raises:
        UsageError: a table the source does not have.
    """
    if not tables:
        return resources, REFRESH_SOURCE
    names = [r.name for r in resources]
    unknown = [t for t in tables if t not in names]
    if unknown:
        raise UsageError(
            f"source '{source}' has no table '{unknown[0]}'{did_you_mean(unknown[0], names)}",
            hint=f"its tables: {', '.join(names)}",
        )
    return [r for r in resources if r.name in tables], REFRESH_TABLES
