"""The "Adding Data Sources" runbook as commands: add, remove (the rollback), list, show.

``add`` performs the runbook end to end: the source goes into stackyard.yml, a first load
runs, the dbt source and staging models are written from what was loaded, and the runbook's
verification runs as a checklist. Running it again changes nothing. ``remove`` undoes exactly
what ``add`` wrote.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from stackyard.config.edit import ProjectFile
from stackyard.config.loader import load_project_config
from stackyard.config.model import SOURCE_KINDS, ProjectConfig, Source
from stackyard.config.secrets import Secrets
from stackyard.console import Console
from stackyard.errors import (
    EXIT_FAILED,
    EXIT_OK,
    ConfigError,
    StackyardError,
    UsageError,
    did_you_mean,
)
from stackyard.ingest.loader import REJECTED_TABLE, Loader
from stackyard.results import FreshnessResult, NodeResult, SourceLoad
from stackyard.transform.dbt import Dbt
from stackyard.transform.staging import (
    LOADER,
    Column,
    LoadedTable,
    dbt_source_name,
    entity_name,
    generated_by,
    model_name,
    sources_entry,
    staging_files,
)
from stackyard.transform.state import manifest_freshness
from stackyard.warehouse.base import Warehouse

SOURCES_FILE = Path("models") / "staging" / LOADER / "_sources.yml"
SOURCES_HEADER = (
    "# dbt sources for the data stackyard loads with dlt. Entries with meta.stackyard_source\n"
    "# are managed by `stackyard source add` / `stackyard source remove`.\n"
)
_KEY_NAMES = ("id", "key", "uuid", "code", "sku")


@dataclass(frozen=True)
class Check:
    """One line of the runbook's verification checklist."""

    name: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class SourceAddResult:
    """What ``stackyard source add`` did."""

    source: str
    config_changed: bool
    files_written: tuple[str, ...] = ()
    files_unchanged: tuple[str, ...] = ()
    load: SourceLoad | None = None
    checks: tuple[Check, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Every check passed."""
        return all(c.ok for c in self.checks)

    @property
    def exit_code(self) -> int:
        """0 when every check passed, else 1."""
        return EXIT_OK if self.ok else EXIT_FAILED


@dataclass(frozen=True)
class SourceRemoveResult:
    """What ``stackyard source remove`` undid."""

    source: str
    files_removed: tuple[str, ...]
    dropped_schema: str | None
    state_removed: tuple[str, ...] = ()


@dataclass(frozen=True)
class TableStatus:
    """One table of a source, as it is in the warehouse."""

    table: str
    rows: int | None
    last_load_rows: int | None = None
    freshness: str | None = None
    age_hours: float | None = None
    model: str | None = None


@dataclass(frozen=True)
class SourceStatus:
    """A source for ``stackyard source list`` / ``show``."""

    name: str
    kind: str
    schema: str
    schedule: str
    contract: str
    enabled: bool
    tables: tuple[TableStatus, ...] = field(default_factory=tuple)
    last_loaded_at: datetime | None = None
    last_status: str | None = None


def source_entry(kind: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """A stackyard.yml entry for a source from command-line options, validated.

    Args:
        kind: the source kind.
        options: the kind's keys (``connection``, ``tables``, ``url``, ``base_url``,
            ``endpoints`` …) with None for options not given.

    Raises:
        UsageError: unknown kind or options the kind does not accept / needs.
    """
    if kind not in SOURCE_KINDS:
        raise UsageError(
            f"unknown source kind '{kind}'{did_you_mean(kind, SOURCE_KINDS)}",
            hint=f"kinds: {', '.join(SOURCE_KINDS)}",
        )
    entry: dict[str, Any] = {"kind": kind}
    entry.update({k: v for k, v in options.items() if v not in (None, {}, [], ())})
    try:
        TypeAdapter(Source).validate_python(entry)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or kind}: {e['msg']}" for e in exc.errors()
        )
        raise UsageError(
            f"the options do not make a valid {kind} source: {problems}",
            hint="see `stackyard source add --help` and docs/runbooks/adding-data-sources.md",
        ) from None
    return entry


class SourcesRunbook:
    """Add, remove, list and show sources of one project on one target."""

    def __init__(
        self,
        *,
        project_file: Path,
        transform_dir: Path,
        warehouse: Warehouse,
        secrets: Secrets,
        console: Console,
        make_dbt: Callable[..., Dbt],
    ) -> None:
        self.project_file = project_file
        self.project_dir = project_file.parent
        self.transform_dir = transform_dir
        self.warehouse = warehouse
        self.secrets = secrets
        self.console = console
        self.make_dbt = make_dbt

    @property
    def config(self) -> ProjectConfig:
        """The project as the file says now (re-read: add and remove change it)."""
        return load_project_config(self.project_file)

    # ------------------------------------------------------------------ add

    def entry(self, name: str, kind: str, options: Mapping[str, Any]) -> dict[str, Any]:
        """The stackyard.yml entry ``add`` would write, from command-line options.

        A ``sql_database`` source given no tables gets every table of the database, each
        with the primary key the database declares.

        Raises:
            UsageError: an invalid name, kind or option, or an unreadable database.
        """
        import re

        from stackyard.config.model import NAME_PATTERN, SqlDatabaseSource
        from stackyard.ingest.sources import connection_url

        if not re.match(NAME_PATTERN, name):
            raise UsageError(
                f"'{name}' is not a valid source name",
                hint="use lower-case letters, digits and _, starting with a letter",
            )
        options = dict(options)
        if kind == "sql_database" and options.get("connection"):
            from stackyard.runbooks.source_tables import complete_sql_tables

            probe = SqlDatabaseSource.model_validate(
                {"kind": kind, "connection": options["connection"], "tables": {"x": {}}}
            )
            url = connection_url(name, probe, self.project_dir, self.secrets)
            if options.get("tables"):
                options["tables"] = complete_sql_tables(
                    url, options.get("source_schema"), options["tables"]
                )
            else:
                options["tables"] = discover_sql_tables(url, options.get("source_schema"))
        return source_entry(kind, options)

    def add(self, name: str, entry: dict[str, Any], *, load: bool = True) -> SourceAddResult:
        """Perform the runbook for a new source.

        Raises:
            ConfigError: the name is taken by a different source, or a model file it would
                write exists and was not generated for it. Nothing is changed then.
        """
        config = self.config
        existing = config.sources.get(name)
        if existing is not None:
            wanted = TypeAdapter(Source).validate_python(entry)
            if existing != wanted:
                raise ConfigError(
                    f"a source named '{name}' already exists in {self.project_file.name} "
                    "with other settings",
                    hint=f"pick another name, edit its entry by hand, or `stackyard source "
                    f"remove {name}` first",
                )
        self._check_clashes(name, _declared_tables(entry))
        project = ProjectFile(self.project_file)
        if existing is None:
            project.add_source(name, entry)
            project.save()
        config = self.config
        step = f"add {name}"
        self.console.step_started(step, "stackyard.yml")
        if not load:
            written, unchanged = self._write_sources_entry(name, config, _declared_tables(entry))
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
        loader = Loader(config, self.project_dir, self.warehouse, self.secrets, self.console)
        self.warehouse.ensure_schema(config.dataset_for(name))
        self.warehouse.close()
        result = loader.load([name], datetime.now(UTC))[0]
        if result.status == "failed":
            if existing is None:
                project.restore()  # nothing half-added: the first load is part of the add
                self._forget_state(name)
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
        tables = self._loaded_tables(loader, name, config)
        self._check_clashes(name, [t.name for t in tables])
        files = staging_files(name, tables)
        written, unchanged = self._write_files(files)
        w2, u2 = self._write_sources_entry(name, config, [t.name for t in tables])
        self.console.step_finished(step, "ok", f"{len(tables)} tables, {len(written)} files")
        checks = self.verify(name, result)
        return SourceAddResult(
            name,
            existing is None,
            tuple(written + w2),
            tuple(unchanged + u2),
            load=result,
            checks=tuple(checks),
            notes=tuple(
                f"{t.name}: no primary key declared or found; its model has no key tests"
                for t in tables
                if not t.primary_key
            ),
        )

    def verify(self, name: str, load: SourceLoad | None = None) -> list[Check]:
        """The runbook's verification: schema, rows, staging build and tests, freshness."""
        config = self.config
        schema = config.dataset_for(name)
        checks = [
            Check(
                "schema exists",
                self.warehouse.schema_exists(schema),
                f"{self.warehouse.describe()}: schema {schema}",
            )
        ]
        for table in self._source_tables(name):
            rows = self._count(schema, table)
            detail = (
                f"{schema}.{table} does not exist: nothing was loaded"
                if rows is None
                else f"{rows:,} rows in {schema}.{table}"
            )
            checks.append(Check(f"rows loaded: {table}", bool(rows), detail))
        if load is not None and load.rejected:
            checks.append(
                Check(
                    "no rejected rows",
                    False,
                    f"{load.rejected} rows did not fit: see {schema}.{REJECTED_TABLE}",
                )
            )
        self.warehouse.close()
        dbt = self.make_dbt()
        nodes = dbt.build(select=[f"source:{dbt_source_name(name)}+"])
        models = [n for n in nodes if n.resource_type == "model"]
        tests = [n for n in nodes if n.resource_type == "test"]
        checks.append(
            Check(
                "staging models build",
                bool(models) and not any(n.failed for n in models),
                _nodes_detail(models, "models built"),
            )
        )
        checks.append(
            Check(
                "their tests pass",
                not any(n.failed for n in tests),
                _nodes_detail(tests, "tests passed"),
            )
        )
        fresh = manifest_freshness(self.transform_dir, self.warehouse, [dbt_source_name(name)])
        if fresh is None:
            fresh = dbt.freshness([f"source:{dbt_source_name(name)}"])
        self.warehouse.close()
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
        if name not in config.sources:
            raise UsageError(
                f"no source named '{name}'{did_you_mean(name, config.sources)}",
                hint=f"sources: {', '.join(sorted(config.sources)) or '(none)'}",
            )
        generated = self._generated_files(name)
        edited = [p for p, unedited in generated if not unedited]
        if edited and not force:
            raise ConfigError(
                "these files were generated for '"
                + name
                + "' and edited since: "
                + ", ".join(
                    str(p.relative_to(self.project_dir)) for p, _ in generated if p in edited
                ),
                hint="keep your edits by moving them elsewhere, or pass --force to delete them",
            )
        schema = config.dataset_for(name)
        dropped = None
        if drop_data:
            self.warehouse.execute(f"DROP SCHEMA IF EXISTS {self.warehouse.quote(schema)} CASCADE")
            self.warehouse.close()
            dropped = schema
        removed = []
        for path, _ in generated:
            path.unlink()
            removed.append(str(path.relative_to(self.project_dir)))
        if self._remove_sources_entry(name):
            removed.append(str(SOURCES_FILE))
        project = ProjectFile(self.project_file)
        project.remove_source(name)
        project.save()
        state = self._forget_state(name)
        return SourceRemoveResult(name, tuple(removed), dropped, tuple(state))

    # ------------------------------------------------------------------ list / show

    def status(self, names: Sequence[str] | None = None) -> list[SourceStatus]:
        """Kind, tables, last load, row counts and freshness of sources."""
        config = self.config
        selected = list(names) if names is not None else sorted(config.sources)
        for name in selected:
            if name not in config.sources:
                raise UsageError(f"no source named '{name}'{did_you_mean(name, config.sources)}")
        freshness: dict[tuple[str, str], FreshnessResult] = {}
        try:
            found = (
                manifest_freshness(
                    self.transform_dir, self.warehouse, [dbt_source_name(n) for n in selected]
                )
                or []
            )
        except StackyardError:
            found = []  # a source table that is missing shows as "missing" rows instead
        for f in found:
            freshness[(f.source, f.table)] = f
        out = []
        for name in selected:
            source = config.sources[name]
            schema = config.dataset_for(name)
            last = self._last_load(name)
            tables = []
            for table in self._source_tables(name):
                fresh = freshness.get((dbt_source_name(name), table))
                model = self.transform_dir / "models/staging" / LOADER / f"{model_name(table)}.sql"
                tables.append(
                    TableStatus(
                        table,
                        self._count(schema, table),
                        (last or {}).get("tables", {}).get(table),
                        fresh.status if fresh else None,
                        fresh.age_hours if fresh else None,
                        model_name(table) if model.exists() else None,
                    )
                )
            out.append(
                SourceStatus(
                    name,
                    source.kind,
                    schema,
                    source.schedule,
                    source.contract,
                    source.enabled,
                    tuple(tables),
                    (last or {}).get("at"),
                    (last or {}).get("status"),
                )
            )
        self.warehouse.close()
        return out

    # ------------------------------------------------------------------ helpers

    def _source_tables(self, name: str) -> list[str]:
        declared = _declared_tables(self.config.sources[name].model_dump(by_alias=True))
        if declared:
            return declared
        schema = self.config.dataset_for(name)
        if not self.warehouse.schema_exists(schema):
            return []
        return [
            t
            for t in self.warehouse.tables_in(schema)
            if not t.startswith("_dlt") and t != REJECTED_TABLE
        ]

    def _count(self, schema: str, table: str) -> int | None:
        if table not in self.warehouse.tables_in(schema):
            return None
        return int(
            self.warehouse.query(
                f"SELECT count(*) FROM {self.warehouse.quote(schema, table)}"
            ).rows[0][0]
        )

    def _last_load(self, name: str) -> dict[str, Any] | None:
        w = self.warehouse
        if not w.schema_exists("stackyard") or "loads" not in w.tables_in("stackyard"):
            return None
        p = w.param()
        result = w.query(
            "SELECT r.started_at, l.status, l.table_name, l.row_count FROM "
            f"{w.quote('stackyard', 'loads')} l JOIN {w.quote('stackyard', 'runs')} r "
            f"ON r.run_id = l.run_id WHERE l.source = {p} AND r.run_id = ("
            f"SELECT r2.run_id FROM {w.quote('stackyard', 'loads')} l2 JOIN "
            f"{w.quote('stackyard', 'runs')} r2 ON r2.run_id = l2.run_id "
            f"WHERE l2.source = {p} ORDER BY r2.started_at DESC LIMIT 1)",
            (name, name),
        )
        if not result.rows:
            return None
        return {
            "at": result.rows[0][0],
            "status": result.rows[0][1],
            "tables": {r[2]: r[3] for r in result.rows if r[2]},
        }

    def _loaded_tables(self, loader: Loader, name: str, config: ProjectConfig) -> list[LoadedTable]:
        schema = loader.pipeline(name).default_schema
        declared = _declared_keys(config.sources[name].model_dump(by_alias=True))
        dataset = config.dataset_for(name)
        tables = []
        for table in schema.data_table_names():
            if table == REJECTED_TABLE or schema.get_table(table).get("parent"):
                continue  # nested tables (from JSON lists) stay raw; their root is staged
            columns = tuple(
                Column(c, str(col.get("data_type")), bool(col.get("primary_key")))
                for c, col in schema.get_table_columns(table).items()
            )
            key = declared.get(table) or tuple(c.name for c in columns if c.primary_key)
            origin = "declared" if key else ""
            if not key:
                key = self._detect_key(dataset, table, columns)
                origin = "detected in the data" if key else ""
            tables.append(LoadedTable(table, columns, tuple(key), origin))
        self.warehouse.close()
        return tables

    def _detect_key(self, schema: str, table: str, columns: Sequence[Column]) -> tuple[str, ...]:
        """A column that is unique and never null in the loaded rows, preferring id-like names."""
        candidates = [
            c.name
            for c in columns
            if not c.name.startswith("_") and c.data_type in ("bigint", "text", "decimal")
        ]
        entity = entity_name(table)
        position = {c: i for i, c in enumerate(candidates)}

        def rank(column: str) -> tuple[int, int]:
            preferred = column in _KEY_NAMES or column in (f"{entity}_id", f"{table}_id")
            return (0 if preferred else 1 if column.endswith("_id") else 2, position[column])

        candidates.sort(key=rank)
        w = self.warehouse
        relation = w.quote(schema, table)
        for column in candidates[:8]:
            quoted = w.quote(column)
            total, distinct, present = w.query(
                f"SELECT count(*), count(DISTINCT {quoted}), count({quoted}) FROM {relation}"
            ).rows[0]
            if total and total == distinct == present:
                return (column,)
        return ()

    def _check_clashes(self, name: str, tables: Sequence[str]) -> None:
        for table in tables:
            for suffix in (".sql", ".yml"):
                path = (
                    self.transform_dir
                    / "models"
                    / "staging"
                    / LOADER
                    / (model_name(table) + suffix)
                )
                if path.exists():
                    owner, _ = generated_by(path.read_text(encoding="utf-8"))
                    if owner != name:
                        whose = (
                            f"generated for source '{owner}'"
                            if owner
                            else "not generated by stackyard"
                        )
                        raise ConfigError(
                            f"{path.relative_to(self.project_dir)} already exists and was "
                            f"{whose}: adding '{name}' would overwrite it",
                            hint="rename the table in the source (e.g. `source_table` for SQL "
                            "sources), or move the existing model; nothing was changed",
                        )

    def _write_files(self, files: Sequence[Any]) -> tuple[list[str], list[str]]:
        written, unchanged = [], []
        for file in files:
            path = self.transform_dir / file.path
            rel = str(path.relative_to(self.project_dir))
            if path.exists():
                text = path.read_text(encoding="utf-8")
                if text == file.text:
                    unchanged.append(rel)
                    continue
                if not generated_by(text)[1]:
                    unchanged.append(rel + " (edited by you: kept)")
                    continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(file.text, encoding="utf-8")
            written.append(rel)
        return written, unchanged

    def _write_sources_entry(
        self, name: str, config: ProjectConfig, tables: Sequence[str]
    ) -> tuple[list[str], list[str]]:
        from ruamel.yaml import YAML

        path = self.transform_dir / SOURCES_FILE
        rel = str(path.relative_to(self.project_dir))
        source = config.sources[name]
        entry = sources_entry(
            name,
            config.dataset_for(name),
            source.kind,
            tables,
            config.defaults.freshness.model_dump(),
        )
        yaml = _round_trip(YAML)
        if path.exists():
            original = path.read_text(encoding="utf-8")
            data = yaml.load(original) or {}
        else:
            original = None
            data = {"version": 2, "sources": []}
        sources = data.setdefault("sources", [])
        index = next((i for i, s in enumerate(sources) if s.get("name") == entry["name"]), None)
        if index is not None:
            current = sources[index]
            if (current.get("meta") or {}).get("stackyard_source") != name:
                raise ConfigError(
                    f"{rel} already has a dbt source '{entry['name']}' that stackyard did not add",
                    hint="rename one of them; nothing was changed",
                )
            if _plain(current) == entry:
                return [], [rel]
            sources[index] = entry
        else:
            sources.append(entry)
        import io

        buffer = io.StringIO()
        yaml.dump(data, buffer)
        text = buffer.getvalue()
        if original is None:
            text = SOURCES_HEADER + text
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return [rel], []

    def _remove_sources_entry(self, name: str) -> bool:
        """Drop the source's dbt entry; delete the file when stackyard created it and it is
        now empty. Returns whether the file itself was deleted."""
        from ruamel.yaml import YAML

        path = self.transform_dir / SOURCES_FILE
        if not path.exists():
            return False
        yaml = _round_trip(YAML)
        text = path.read_text(encoding="utf-8")
        data = yaml.load(text) or {}
        sources = data.get("sources") or []
        keep = [s for s in sources if (s.get("meta") or {}).get("stackyard_source") != name]
        if len(keep) == len(sources):
            return False
        if not keep and text.startswith(SOURCES_HEADER):
            path.unlink()
            return True
        for i in reversed(range(len(sources))):
            if (sources[i].get("meta") or {}).get("stackyard_source") == name:
                del sources[i]
        import io

        buffer = io.StringIO()
        yaml.dump(data, buffer)
        path.write_text(buffer.getvalue(), encoding="utf-8")
        return False

    def _generated_files(self, name: str) -> list[tuple[Path, bool]]:
        folder = self.transform_dir / "models" / "staging" / LOADER
        found = []
        for path in sorted(folder.glob("stg_*")) if folder.is_dir() else []:
            owner, unedited = generated_by(path.read_text(encoding="utf-8"))
            if owner == name:
                found.append((path, unedited))
        return found

    def _forget_state(self, name: str) -> list[str]:
        """Delete dlt's local state for the source (every target), so a re-add starts over."""
        base = self.project_dir / ".stackyard" / "pipelines"
        removed = []
        for path in sorted(base.glob(f"*__{name}__*")) if base.is_dir() else []:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(str(path.relative_to(self.project_dir)))
        return removed


def _round_trip(yaml_cls: Any) -> Any:
    yaml = yaml_cls(typ="rt")
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 100
    return yaml


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _declared_tables(entry: Mapping[str, Any]) -> list[str]:
    for key in ("tables", "endpoints"):
        if isinstance(entry.get(key), dict):
            return list(entry[key])
    return []


def _declared_keys(entry: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    keys: dict[str, tuple[str, ...]] = {}
    for key in ("tables", "endpoints"):
        for table, spec in (entry.get(key) or {}).items():
            pk = (spec or {}).get("primary_key")
            if pk:
                keys[table] = (pk,) if isinstance(pk, str) else tuple(pk)
    for table, pk in (entry.get("primary_keys") or {}).items():
        keys[table] = (pk,) if isinstance(pk, str) else tuple(pk)
    return keys


def _nodes_detail(nodes: Sequence[NodeResult], label: str) -> str:
    failed = [n for n in nodes if n.failed]
    text = f"{len(nodes) - len(failed)}/{len(nodes)} {label}"
    if failed:
        text += ": failed " + ", ".join(n.name for n in failed)
    return text


def discover_sql_tables(url: str, schema: str | None) -> dict[str, dict[str, Any]]:
    """Every table of a SQL database with its primary key, for ``source add`` without
    ``--table``.

    Raises:
        UsageError: the database cannot be reached or has no tables.
    """
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(url)
        with engine.connect() as conn:
            inspector = sqlalchemy.inspect(conn)
            names = inspector.get_table_names(schema=schema)
            tables: dict[str, dict[str, Any]] = {}
            for table in names:
                pk = (
                    inspector.get_pk_constraint(table, schema=schema).get("constrained_columns")
                    or []
                )
                spec: dict[str, Any] = {}
                if len(pk) == 1:
                    spec["primary_key"] = pk[0]
                elif pk:
                    spec["primary_key"] = list(pk)
                tables[table] = spec
        engine.dispose()
    except sqlalchemy.exc.SQLAlchemyError as exc:
        raise UsageError(
            f"cannot read the tables of the database: {str(exc).splitlines()[0]}",
            hint="check the connection URL and credentials, or name tables with --table",
        ) from None
    if not tables:
        raise UsageError(
            f"the database has no tables{f' in schema {schema}' if schema else ''}",
            hint="check --source-schema, or name tables with --table",
        )
    return tables
