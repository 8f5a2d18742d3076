"""The "Adding Data Sources" runbook as commands: add, remove (the rollback), list, show.

``add`` performs the runbook end to end: the source goes into stackyard.yml, a first load
runs, the dbt source and staging models are written from what was loaded, and the runbook's
verification runs as a checklist. Running it again changes nothing. ``remove`` undoes exactly
what ``add`` wrote.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stackyard.config.edit import ProjectFile
from stackyard.config.model import ProjectConfig
from stackyard.config.sources import parse_source
from stackyard.errors import ConfigError, UsageError, counted, did_you_mean
from stackyard.ingest.keys import declared_keys, declared_tables, detect_key
from stackyard.ingest.loader import REJECTED_TABLE, Loader
from stackyard.metadata.history import History
from stackyard.results import SourceLoad
from stackyard.runbooks.source_access import read_chain
from stackyard.runbooks.source_entry import invalid_options, source_entry
from stackyard.runbooks.source_plans import add_plan, remove_plan
from stackyard.runbooks.source_results import (
    Check,
    SourceAddResult,
    SourceRemoveResult,
    SourceStatus,
    TableStatus,
    nodes_detail,
)
from stackyard.runbooks.source_schemas import (
    built_models,
    check_local_paths,
    drop_relations,
    drop_schemas,
    present,
    row_count,
    source_schemas,
    source_tables,
    staging_schema,
)
from stackyard.runbooks.source_state import forget_state, state_folders
from stackyard.runbooks.steps import RunbookPlan
from stackyard.session import Session
from stackyard.transform.dbt_sources import (
    generated_entry,
    remove_sources_entry,
    write_sources_entry,
)
from stackyard.transform.generated import check_clashes, generated_files, write_files
from stackyard.transform.staging import (
    Column,
    LoadedTable,
    dbt_source_names,
    staging_files,
)
from stackyard.transform.state import manifest_freshness

__all__ = [
    "Check",
    "SourceAddResult",
    "SourceRemoveResult",
    "SourceStatus",
    "SourcesRunbook",
    "TableStatus",
    "source_entry",
]


class SourcesRunbook:
    """Add, remove, list and show sources of one project on one target."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.project_file = session.project.config_file
        self.project_dir = session.project.project_dir
        self.transform_dir = session.project.transform_dir
        self.warehouse = session.warehouse
        self.secrets = session.project.secrets
        self.console = session.console

    @property
    def config(self) -> ProjectConfig:
        """The project as the file says now (re-read: add and remove change it)."""
        return self.session.project.reloaded().config

    # ------------------------------------------------------------------ add

    def entry(self, name: str, kind: str, options: Mapping[str, Any]) -> dict[str, Any]:
        """The stackyard.yml entry ``add`` would write, from command-line options.

        A ``sql_database`` source given no tables gets every table of the database, each
        with the primary key the database declares.

        Raises:
            UsageError: an invalid name, kind or option, or an unreadable database.
        """
        import re

        from pydantic import ValidationError

        from stackyard.config.model import NAME_PATTERN, SqlDatabaseSource
        from stackyard.ingest.discovery import discover_sql_tables
        from stackyard.ingest.sources import connection_url

        if not re.match(NAME_PATTERN, name):
            raise UsageError(
                f"'{name}' is not a valid source name",
                hint="use lower-case letters, digits and _, starting with a letter",
            )
        options = dict(options)
        if kind == "sql_database" and options.get("connection"):
            from stackyard.runbooks.source_tables import complete_sql_tables

            try:
                probe = parse_source(
                    {"kind": kind, "connection": options["connection"], "tables": {"x": {}}}
                )
            except ValidationError as exc:
                raise invalid_options(kind, exc) from None
            assert isinstance(probe, SqlDatabaseSource)
            check_local_paths(name, probe, self.project_dir)
            url = connection_url(name, probe, self.project_dir, self.secrets)
            if options.get("tables"):
                options["tables"] = complete_sql_tables(
                    url, options.get("source_schema"), options["tables"]
                )
            else:
                options["tables"] = discover_sql_tables(url, options.get("source_schema"))
        if kind == "external":
            from stackyard.runbooks.external_sources import complete_tables

            options = complete_tables(self.warehouse, name, options)
        entry = source_entry(kind, options)
        check_local_paths(name, parse_source(entry), self.project_dir)
        return entry

    def plan_add(self, name: str, entry: dict[str, Any], *, load: bool = True) -> RunbookPlan:
        """The steps ``add`` would take, each with its rollback; nothing is changed."""
        existing = self.config.sources.get(name)
        if not parse_source(entry).loaded_by_stackyard(self.warehouse.SNOWPIPE):
            from stackyard.runbooks.external_sources import external_plan

            return external_plan(name, entry, self.warehouse.describe())
        return add_plan(
            name,
            entry,
            dataset=entry.get("schema") or name,
            target=self.warehouse.describe(),
            tables=declared_tables(entry),
            already_added=existing is not None and existing == parse_source(entry),
            load=load,
        )

    def plan_remove(self, name: str, *, drop_data: bool = False) -> RunbookPlan:
        """The steps ``remove`` would take; nothing is changed.

        Raises:
            UsageError: no such source.
        """
        self._check_known(name)
        generated = generated_files(self.transform_dir, name)
        return remove_plan(
            name,
            project_dir=self.project_dir,
            files=[p for p, _ in generated],
            edited=[p for p, unedited in generated if not unedited],
            sources_entry=generated_entry(self.transform_dir, name),
            state=state_folders(self.project_dir, name),
            drop_schemas=self.schemas_to_drop(name) if drop_data else [],
            drop_models=self._built(generated) if drop_data else [],
        )

    def schemas_to_drop(self, name: str) -> list[str]:
        """The schemas ``remove --drop-data`` drops: the source's, and dlt's staging schema
        beside it when that is the source's (:func:`source_schemas`).

        Raises:
            UsageError: no such source (so nothing is asked about, nor dropped).
        """
        self._check_known(name)
        schemas = source_schemas(self.warehouse, self.config, name)
        self.session.release()
        return schemas

    def _check_known(self, name: str) -> None:
        config = self.config
        if name not in config.sources:
            raise UsageError(
                f"no source named '{name}'{did_you_mean(name, config.sources)}",
                hint=f"sources: {', '.join(sorted(config.sources)) or '(none)'}",
            )

    def add(self, name: str, entry: dict[str, Any], *, load: bool = True) -> SourceAddResult:
        """Perform the runbook for a new source.

        Raises:
            ConfigError: the name is taken by a different source, or a model file it would
                write exists and was not generated for it. Nothing is changed then.
            UsageError: a file or folder it reads (a SQLite database, a folder of files) is
                not there; nothing is changed.
        """
        config = self.config
        existing = config.sources.get(name)
        if existing is not None:
            wanted = parse_source(entry)
            if existing != wanted:
                raise ConfigError(
                    f"a source named '{name}' already exists in {self.project_file.name} "
                    "with other settings",
                    hint=f"pick another name, edit its entry by hand, or `stackyard source "
                    f"remove {name}` first",
                )
        if not parse_source(entry).loaded_by_stackyard(self.warehouse.SNOWPIPE):
            from stackyard.runbooks.external_sources import add_external

            return add_external(self, name, entry)
        check_local_paths(name, parse_source(entry), self.project_dir)
        check_clashes(self.project_dir, self.transform_dir, name, declared_tables(entry))
        project = ProjectFile(self.project_file)
        if existing is None:
            project.add_source(name, entry)
            project.save()
        config = self.config
        step = f"add {name}"
        self.console.step_started(step, "stackyard.yml")
        if not load:
            written, unchanged = write_sources_entry(
                self.project_dir, self.transform_dir, name, config, declared_tables(entry)
            )
            self.console.step_finished(step, "ok", "added without loading")
            return SourceAddResult(
                name,
                existing is None,
                tuple(written),
                tuple(unchanged),
                notes=(
                    "added to stackyard.yml without a first load: staging models are written "
                    f"from loaded data, so run `stackyard source add {name} …` again without "
                    "--no-load (or `stackyard run`) when the source is reachable",
                ),
            )
        # The first load is the runbook's check that the source is reachable and right: a
        # person is waiting for the answer, so it is not retried with the run's backoff.
        loader = Loader(self.session, self.session.project.reloaded(), retry=False)
        schema = config.dataset_for(name)
        # what a failed first load drops again: the schemas it created, never one it found
        created = [
            s for s in (schema, staging_schema(schema)) if not self.warehouse.schema_exists(s)
        ]
        self.warehouse.ensure_schema(schema)
        started_at = datetime.now(UTC)
        with self.session.released():  # dlt loads through its own connection
            result = loader.load([name], started_at)[0]
        if result.status != "failed" and not result.rows and existing is None:
            from stackyard.runbooks.source_tables import empty_first_load

            result = empty_first_load(result, entry)
        if result.status == "failed":
            if existing is None:
                added = self.config
                project.restore()  # nothing half-added: the first load is part of the add
                self._forget_state(name, added)
                drop_schemas(self.warehouse, present(self.warehouse, created))
                self.session.release()
            self.console.step_finished(step, "failed", result.error or "")
            return SourceAddResult(
                name,
                False,
                load=result,
                checks=(Check("first load", False, result.error or "failed"),),
                notes=(
                    f"the first load failed, so '{name}' was not added; fix the cause "
                    "and run the same command again",
                ),
            )
        # recorded as a run's load is: `source list` shows when it last loaded
        run_id = History(self.warehouse).record_loads(
            config.name, started_at, [result], f"source {step}"
        )
        tables = self._loaded_tables(loader, name, config)
        check_clashes(self.project_dir, self.transform_dir, name, [t.name for t in tables])
        files = self._staging_files(name, tables)
        written, unchanged = write_files(self.project_dir, self.transform_dir, files)
        w2, u2 = write_sources_entry(
            self.project_dir, self.transform_dir, name, config, [t.name for t in tables]
        )
        self.console.step_finished(step, "ok", f"{len(tables)} tables, {len(written)} files")
        checks = self.verify(name, result, run_id)
        chain = read_chain(self.session, config.dataset_for(name))
        if chain.check is not None:
            checks.append(chain.check)
        return SourceAddResult(
            name,
            existing is None,
            tuple(written + w2),
            tuple(unchanged + u2),
            load=result,
            checks=tuple(checks),
            kept_of_a_key=parse_source(entry).KEPT_OF_A_KEY,
            notes=tuple(
                f"{t.name}: no primary key declared or found; its model has no key tests"
                for t in tables
                if not t.primary_key
            )
            + ((chain.note,) if chain.note else ()),
        )

    def verify(
        self, name: str, load: SourceLoad | None = None, run_id: str | None = None
    ) -> list[Check]:
        """The runbook's verification: schema, rows, staging build and tests, freshness;
        the build is added to the recorded run ``run_id`` (the first load's) when given."""
        config = self.config
        schema = config.dataset_for(name)
        checks = [
            Check(
                "schema exists",
                self.warehouse.schema_exists(schema),
                f"{self.warehouse.describe()}: schema {schema}",
            )
        ]
        for table in source_tables(self.warehouse, config, name):
            rows = row_count(self.warehouse, schema, table)
            detail = (
                f"{schema}.{table} does not exist: nothing was loaded"
                if rows is None
                else f"{counted(rows, 'row')} in {schema}.{table}"
            )
            if rows == 0:  # an empty table upstream is a table too: its columns are in place
                detail += ": the source sent none; rows arrive with later runs"
            checks.append(Check(f"rows loaded: {table}", rows is not None, detail))
        if load is not None and load.rejected:
            checks.append(
                Check(
                    "no rejected rows",
                    False,
                    f"{counted(load.rejected, 'row')} did not fit: see {schema}.{REJECTED_TABLE}",
                )
            )
        self.session.release()  # dbt opens its own connection
        dbt = self.session.dbt()
        dbt_name = config.sources[name].dbt_name(name)
        nodes = dbt.build(select=[f"source:{dbt_name}+"])
        if run_id is not None:
            History(self.warehouse).record_build(run_id, nodes)
            self.session.release()
        models = [n for n in nodes if n.resource_type == "model"]
        tests = [n for n in nodes if n.resource_type == "test"]
        checks.append(
            Check(
                "staging models build",
                bool(models) and not any(n.failed for n in models),
                nodes_detail(models, "models built"),
            )
        )
        checks.append(
            Check(
                "their tests pass",
                not any(n.failed for n in tests),
                nodes_detail(tests, "tests passed"),
            )
        )
        fresh = manifest_freshness(self.transform_dir, self.warehouse, [dbt_name])
        if fresh is None:
            fresh = dbt.freshness([f"source:{dbt_name}"])
        self.session.release()
        late = [f for f in fresh if f.status not in ("pass", "warn")]
        checks.append(
            Check(
                "freshness passes",
                bool(fresh) and not late,
                ", ".join(f"{f.table}: {f.status}" for f in fresh) or "no source tables checked",
            )
        )
        return checks

    # ------------------------------------------------------------------ remove

    def remove(
        self, name: str, *, drop_data: bool = False, force: bool = False
    ) -> SourceRemoveResult:
        """Undo ``add``: generated files, the dbt source entry, the config entry, dlt state,
        and with ``drop_data`` the loaded schema.

        Raises:
            UsageError: no such source.
            ConfigError: a generated file was edited since (``force`` removes it anyway).
        """
        config = self.config
        self._check_known(name)
        generated = generated_files(self.transform_dir, name)
        edited = [p for p, unedited in generated if not unedited]
        if edited and not force:
            files = ", ".join(str(p.relative_to(self.project_dir)) for p in edited)
            raise ConfigError(
                f"these files were generated for '{name}' and edited since: {files}",
                hint="keep your edits by moving them elsewhere, or pass --force to delete them",
            )
        from stackyard.runbooks.source_tables import models_reading

        mine = [p for p, _ in generated]
        others = models_reading(self.transform_dir, dbt_source_names(name), mine)
        if others and not force:
            raise ConfigError(
                f"these models read source '{name}' and were not generated by stackyard: "
                + ", ".join(str(p.relative_to(self.project_dir)) for p in others)
                + "; removing the source would make the next run fail on them",
                hint="delete them or change them to read something else first; --force removes "
                "the source anyway and keeps them (nothing was changed)",
            )
        dropped: list[str] = []
        models: list[str] = []
        if drop_data:
            models = drop_relations(self.warehouse, self._built(generated))
            dropped = source_schemas(self.warehouse, config, name)
            drop_schemas(self.warehouse, dropped)
            self.session.release()
        removed = []
        for path, _ in generated:
            path.unlink()
            removed.append(str(path.relative_to(self.project_dir)))
        for gone in remove_sources_entry(self.transform_dir, name):
            removed.append(str(gone.relative_to(self.project_dir)))
        project = ProjectFile(self.project_file)
        project.remove_source(name)
        project.save()
        state = self._forget_state(name, config)
        return SourceRemoveResult(
            name,
            tuple(removed),
            dropped[0] if dropped else None,
            tuple(state),
            tuple(str(p.relative_to(self.project_dir)) for p in others),
            tuple(dropped),
            tuple(models),
            self.session.target,
            tuple(t for t in config.targets if t != self.session.target) if drop_data else (),
        )

    # ------------------------------------------------------------------ list / show

    def status(self, names: Sequence[str] | None = None) -> list[SourceStatus]:
        """Kind, tables, last load, row counts and freshness of sources."""
        from stackyard.runbooks.source_status import source_status

        return source_status(self, names)

    # ------------------------------------------------------------------ helpers

    def _loaded_tables(self, loader: Loader, name: str, config: ProjectConfig) -> list[LoadedTable]:
        schema = loader.pipeline(name).default_schema
        declared = declared_keys(config.sources[name].model_dump(by_alias=True))
        dataset = config.dataset_for(name)
        tables = []
        for table in schema.data_table_names():
            if table == REJECTED_TABLE or schema.get_table(table).get("parent"):
                continue  # nested tables (from JSON lists) stay raw; their root is staged
            columns = tuple(
                Column(c, str(col.get("data_type")), bool(col.get("primary_key")))
                for c, col in schema.get_table_columns(table).items()
            )
            # As dlt names the columns: a declared `ID` loaded as `id`.
            key = tuple(schema.naming.normalize_identifier(k) for k in declared.get(table, ()))
            key = key or tuple(c.name for c in columns if c.primary_key)
            origin = "declared" if key else ""
            if not key:
                key = detect_key(self.warehouse, dataset, table, columns)
                origin = "detected in the data" if key else ""
            tables.append(LoadedTable(table, columns, tuple(key), origin))
        self.session.release()
        return tables

    def _staging_files(self, name: str, tables: list[LoadedTable]) -> list[Any]:
        """The staging models of what stackyard loaded (a snowpipe source read from its files
        off Snowflake gets its loader's dbt source and models, as on Snowflake)."""
        from stackyard.config.external import ExternalSource
        from stackyard.transform.external_staging import external_staging_files

        source, dialect = self.config.sources[name], self.warehouse.DIALECT
        if not isinstance(source, ExternalSource):
            return list(staging_files(name, tables, dialect))
        columns = source.columns()
        return external_staging_files(
            name, source.dbt_name(name), source.loader, columns, tables, dialect
        )

    def _built(self, generated: Sequence[tuple[Path, bool]]) -> list[tuple[str, str]]:
        """The relations dbt built on this target from the generated files."""
        files = [p for p, _ in generated]
        return built_models(self.transform_dir, files, self.warehouse.target_name)

    def _forget_state(self, name: str, config: ProjectConfig | None = None) -> list[str]:
        """Delete the source's dlt state and stream consumers (every target's): a re-add
        starts over. ``config``: the project that still declares the source."""
        return forget_state(self.project_dir, name, config, self.secrets)
