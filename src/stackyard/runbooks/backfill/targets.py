"""What a backfill can replace, partition by partition: a dbt model or a source table.

Both kinds answer the same questions — which table, which time column, how to replace one
window, how many rows the window should hold — so the job that drives partitions, the
validation and the rollback do not care which kind they run.

* :class:`ModelTarget` — an incremental dbt model. Microbatch models run with
  ``--event-time-start/--event-time-end`` (dbt deletes the window and inserts it in one
  transaction); other incremental models get the window as ``backfill_start``/``backfill_end``
  vars.
* :class:`SourceTableTarget` — ``SOURCE.TABLE`` of a ``sql_database`` or ``rest_api`` source
  with a cursor. A worker's own dlt pipeline extracts the window (dlt's incremental with
  ``initial_value``/``end_value``, so no cursor state is read or written) into a staging
  schema; then, in one transaction, the window's rows and any row with a re-loaded key are
  deleted from the table and the staged rows inserted.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stackyard.config.model import RestApiSource, SqlDatabaseSource
from stackyard.config.secrets import Secrets
from stackyard.errors import ConfigError, LoadError, TransformError, UsageError, did_you_mean
from stackyard.metadata.schema import METADATA_SCHEMA
from stackyard.runbooks.backfill.connection import Connection
from stackyard.runbooks.backfill.partitions import Window
from stackyard.warehouse.base import Warehouse

MARKS_SUFFIX = "__marks"
PREIMAGE_SCHEMA = METADATA_SCHEMA


def naive_utc(moment: datetime) -> datetime:
    """A window bound as the warehouses compare it: UTC, without a zone.

    >>> naive_utc(datetime(2024, 1, 1, 1, tzinfo=UTC)).isoformat()
    '2024-01-01T01:00:00'
    """
    return moment.astimezone(UTC).replace(tzinfo=None)


@dataclass
class Worker:
    """What one worker thread owns: its connection and its dlt pipeline folder."""

    number: int
    session: Connection
    pipelines_dir: Path


class BackfillTarget:
    """The common part of both kinds: the table, its time column and its keys."""

    kind: str = ""
    name: str
    schema: str
    table: str
    time_column: str
    keys: list[str]

    def fingerprint(self) -> str:
        """A hash of the code or configuration that produces the table."""
        raise NotImplementedError

    def prepare(self) -> None:
        """Work done once, in the calling thread, before workers start."""

    def cleanup(self, session: Connection, workers: int) -> None:
        """Drop what workers left behind (staging schemas)."""

    def replace(self, window: Window, worker: Worker, preimage: str | None, seq: int) -> int:
        """Replace the window's rows; return how many rows it now holds."""
        raise NotImplementedError

    def expected_counts(self, session: Connection, windows: list[Window]) -> list[int]:
        """Rows each window should hold, read from upstream."""
        raise NotImplementedError

    # ------------------------------------------------------------------ shared SQL

    def relation(self, session: Connection) -> str:
        """The quoted table name."""
        return session.quote(self.schema, self.table)

    def exists(self, session: Connection) -> bool:
        """Whether the table exists yet."""
        return bool(session.table_columns(self.schema, self.table))

    def window_filter(self, session: Connection, column: str | None = None) -> str:
        """``col >= ? AND col < ?`` on the time column."""
        p = session.param()
        col = session.quote(column or self.time_column)
        return f"{col} >= {p} AND {col} < {p}"

    def counts(
        self, session: Connection, windows: list[Window], relation: str | None = None
    ) -> list[int]:
        """Rows per window in the table (or in ``relation``, any SQL relation)."""
        rel = relation or self.relation(session)
        if relation is None and not self.exists(session):
            return [0] * len(windows)
        out = []
        for w in windows:
            rows = session.query(
                f"SELECT count(*) FROM {rel} AS t WHERE {self.window_filter(session)}",
                (naive_utc(w.start), naive_utc(w.end)),
            ).rows
            out.append(int(rows[0][0]))
        return out

    def duplicate_keys(self, session: Connection) -> int:
        """Rows beyond the first per key (0 when the table has no declared key)."""
        if not self.keys or not self.exists(session):
            return 0
        cols = ", ".join(session.quote(k) for k in self.keys)
        rows = session.query(
            f"SELECT count(*) FROM (SELECT {cols} FROM {self.relation(session)} "
            f"GROUP BY {cols} HAVING count(*) > 1) AS d"
        ).rows
        return int(rows[0][0])

    def take_preimage(
        self,
        s: Connection,
        preimage: str,
        seq: int,
        window: Window,
        extra_where: str = "",
        extra_params: tuple[Any, ...] = (),
    ) -> None:
        """Keep the rows a partition is about to overwrite, once per partition (inside the
        partition's transaction). A mark records that it was taken — also when there was
        nothing to keep — so a retry keeps the first pre-image, and a rollback knows to empty
        the window."""
        p = s.param()
        marks = s.quote(PREIMAGE_SCHEMA, preimage + MARKS_SUFFIX)
        if s.query(f"SELECT count(*) FROM {marks} WHERE seq = {p}", (seq,)).rows[0][0]:
            return
        if self.exists(s):
            self.ensure_preimage(s, preimage)
            where = self.window_filter(s) + (f" OR {extra_where}" if extra_where else "")
            s.execute(
                f"INSERT INTO {s.quote(PREIMAGE_SCHEMA, preimage)} SELECT {p} AS _backfill_seq, "
                f"t.* FROM {self.relation(s)} AS t WHERE {where}",
                (seq, naive_utc(window.start), naive_utc(window.end), *extra_params),
            )
        s.execute(f"INSERT INTO {marks} VALUES ({p})", (seq,))

    def ensure_preimage(self, session: Connection, preimage: str) -> None:
        """Create the pre-image tables of a backfill: the marks, and an empty copy of the
        table's shape once the table exists."""
        marks = session.quote(PREIMAGE_SCHEMA, preimage + MARKS_SUFFIX)
        session.execute(f"CREATE TABLE IF NOT EXISTS {marks} (seq INTEGER)")
        if self.exists(session):
            session.execute(
                f"CREATE TABLE IF NOT EXISTS {session.quote(PREIMAGE_SCHEMA, preimage)} AS "
                f"SELECT CAST(NULL AS INTEGER) AS _backfill_seq, t.* "
                f"FROM {self.relation(session)} AS t WHERE 1 = 0"
            )


# ---------------------------------------------------------------------------- dbt models


class ModelTarget(BackfillTarget):
    """An incremental dbt model (microbatch, or any incremental reading backfill vars)."""

    kind = "model"

    def __init__(self, node: dict[str, Any], make_dbt: Callable[..., Any]) -> None:
        config = node.get("config", {})
        self.name = str(node["name"])
        self.node = node
        self.schema = str(node["schema"])
        self.table = str(node.get("alias") or node["name"])
        self.microbatch = config.get("incremental_strategy") == "microbatch"
        self.time_column = str(config.get("event_time") or "")
        key = config.get("unique_key")
        self.keys = [key] if isinstance(key, str) else list(key or [])
        self.make_dbt = make_dbt
        self._compiled: str | None = None

    @classmethod
    def resolve(
        cls, name: str, manifest: dict[str, Any], make_dbt: Callable[..., Any]
    ) -> ModelTarget:
        """The model called ``name``, checked to be backfillable.

        Raises:
            UsageError: no such model, or not an incremental model with an ``event_time``.
        """
        models = {
            n["name"]: n
            for n in manifest.get("nodes", {}).values()
            if n["resource_type"] == "model"
        }
        if name not in models:
            raise UsageError(
                f"'{name}' is neither a dbt model nor SOURCE.TABLE{did_you_mean(name, models)}",
                hint="backfill a model (e.g. fct_daily_orders) or a source table "
                "(e.g. shop_db.orders)",
            )
        node = models[name]
        config = node.get("config", {})
        if config.get("materialized") != "incremental" or not config.get("event_time"):
            raise UsageError(
                f"model '{name}' is {config.get('materialized')}, not an incremental model with "
                "an event_time: there is nothing to backfill by date",
                hint="`stackyard run --select " + name + "` rebuilds it whole; to backfill it, "
                "make it incremental (incremental_strategy: microbatch, event_time: …)",
            )
        return cls(node, make_dbt)

    def fingerprint(self) -> str:
        return str(self.node.get("checksum", {}).get("checksum", ""))[:16]

    def replace(self, window: Window, worker: Worker, preimage: str | None, seq: int) -> int:
        s = worker.session
        if preimage:
            with s.transaction():
                self.take_preimage(s, preimage, seq, window)
        start, end = naive_utc(window.start).isoformat(), naive_utc(window.end).isoformat()
        dbt = self.make_dbt()
        if self.microbatch:
            results = dbt.run_window([self.name], event_time_start=start, event_time_end=end)
        else:
            results = dbt.run_window(
                [self.name], variables={"backfill_start": start, "backfill_end": end}
            )
        failed = [r for r in results if r.status not in ("success", "pass")]
        if failed or not results:
            message = failed[0].message if failed else "dbt selected nothing"
            raise TransformError(f"dbt run of {self.name} for {window.label}: {message}")
        return self.counts(s, [window])[0]

    def expected_counts(self, session: Connection, windows: list[Window]) -> list[int]:
        """The model's own SQL, compiled once and counted per window: what it should hold."""
        if self._compiled is None:
            compiled = self.make_dbt().compile_sql([self.name])
            self._compiled = compiled.get(self.name, "")
        if not self._compiled:
            raise TransformError(f"dbt compiled no SQL for {self.name}")
        return self.counts(session, windows, relation=f"({self._compiled})")


# ---------------------------------------------------------------------------- source tables


class SourceTableTarget(BackfillTarget):
    """``SOURCE.TABLE`` of a sql_database or rest_api source that has a cursor."""

    kind = "source"

    def __init__(
        self,
        source: str,
        table: str,
        config: SqlDatabaseSource | RestApiSource,
        *,
        project: str,
        dataset: str,
        project_dir: Path,
        secrets: Secrets,
        warehouse: Warehouse,
    ) -> None:
        self.source = source
        self.name = f"{source}.{table}"
        self.config = config
        self.project = project
        self.schema = dataset
        self.table = table
        self.project_dir = project_dir
        self.secrets = secrets
        self.warehouse = warehouse
        spec = (
            config.tables[table]
            if isinstance(config, SqlDatabaseSource)
            else config.endpoints[table]
        )
        if not spec.cursor:
            raise UsageError(
                f"{self.name} has no cursor, so it cannot be cut into date windows",
                hint=f"add cursor: <timestamp column> to sources.{source} in stackyard.yml, or "
                f"reload the whole table with `stackyard run --select {source}`",
            )
        self.time_column = spec.cursor
        key = spec.primary_key
        self.keys = [key] if isinstance(key, str) else list(key or [])

    def fingerprint(self) -> str:
        text = json.dumps(self.config.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def prepare(self) -> None:
        # Two threads importing pyarrow or dlt's sources for the first time at once can see a
        # half-initialised module; import them here, before the workers start.
        import os

        import pyarrow  # noqa: F401
        from dlt.sources import rest_api, sql_database  # noqa: F401

        # Staged rows carry their load id, so a partition inserts exactly its own load's rows.
        os.environ.setdefault("NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID", "true")

    def cleanup(self, session: Connection, workers: int) -> None:
        for n in range(workers):
            for schema in (self.staging_schema(n), self.staging_schema(n) + "_staging"):
                session.execute(f"DROP SCHEMA IF EXISTS {session.quote(schema)} CASCADE")
        shutil.rmtree(self.project_dir / ".stackyard" / "backfill_pipelines", ignore_errors=True)

    def staging_schema(self, worker: int) -> str:
        """The worker's own staging schema (dlt's dataset)."""
        return f"{self.schema}_backfill_w{worker}"[:63]

    def _resource(self, window: Window) -> Any:
        """dlt's ``sql_table`` for exactly ``[start, end)`` of the cursor, rows stamped with
        ``_loaded_at`` as a regular load stamps them."""
        import dlt
        import pyarrow as pa
        from dlt.sources import sql_database

        from stackyard.ingest.sources import LOADED_AT, connection_url, sql_backend

        if isinstance(self.config, RestApiSource):
            return self._rest_resource(window)
        spec = self.config.tables[self.table]
        url = connection_url(self.source, self.config, self.project_dir, self.secrets)
        backend, backend_kwargs = sql_backend(self.config, url)
        sql_table: Any = sql_database.sql_table
        resource = sql_table(
            credentials=url,
            table=spec.source_table or self.table,
            schema=self.config.source_schema,
            backend=backend,
            backend_kwargs=backend_kwargs,
            chunk_size=self.config.chunk_size,
            # initial_value/end_value: exactly [start, end), and no cursor state kept.
            incremental=dlt.sources.incremental(
                self.time_column,
                initial_value=naive_utc(window.start),
                end_value=naive_utc(window.end),
                range_start="closed",
                range_end="open",
            ),
            primary_key=spec.primary_key,
            write_disposition="replace",
            defer_table_reflect=True,
            reflection_level="full_with_precision",
        ).with_name(self.table)
        loaded_at = pa.scalar(datetime.now(UTC), type=pa.timestamp("us", tz="UTC"))

        def stamp(item: Any) -> Any:
            if isinstance(item, pa.Table | pa.RecordBatch) and LOADED_AT not in item.column_names:
                return item.append_column(LOADED_AT, pa.repeat(loaded_at, item.num_rows))
            return item

        return resource.add_map(stamp)

    def _rest_resource(self, window: Window) -> Any:
        """The endpoint through dlt's rest_api with ``initial_value``/``end_value`` set: the
        start goes to the API as the cursor parameter, and dlt drops items at or past the end."""
        from dlt.sources.rest_api import rest_api_source

        from stackyard.ingest.rest import rest_api_config

        assert isinstance(self.config, RestApiSource)
        config: Any = rest_api_config(self.source, self.config, self.secrets)
        fmt = "%Y-%m-%dT%H:%M:%SZ"
        for resource in config["resources"]:
            if resource["name"] == self.table:
                resource["endpoint"]["incremental"].update(
                    initial_value=naive_utc(window.start).strftime(fmt),
                    end_value=naive_utc(window.end).strftime(fmt),
                    range_start="closed",
                    range_end="open",
                )
                resource["write_disposition"] = "replace"
        config["resources"] = [r for r in config["resources"] if r["name"] == self.table]
        return rest_api_source(config, name=self.source).resources[self.table]

    def replace(self, window: Window, worker: Worker, preimage: str | None, seq: int) -> int:
        import dlt
        from dlt.pipeline.exceptions import PipelineStepFailed

        if not self.exists(worker.session):
            raise ConfigError(
                f"{self.schema}.{self.table} does not exist yet on {self.warehouse.describe()}",
                hint=f"load it once with `stackyard run --select {self.source}`, then backfill",
            )
        name = f"{self.project}__backfill__{self.source}__w{worker.number}"
        folder = worker.pipelines_dir / name
        # A killed load leaves a package behind; this window is extracted again from scratch.
        shutil.rmtree(folder, ignore_errors=True)
        pipeline = dlt.pipeline(
            pipeline_name=name,
            destination=self.warehouse.dlt_destination(),
            dataset_name=self.staging_schema(worker.number),
            pipelines_dir=str(worker.pipelines_dir),
        )
        try:
            info = pipeline.run(self._resource(window), loader_file_format="parquet")
        except PipelineStepFailed as exc:
            raise LoadError(f"loading {self.name} for {window.label}: {_root_cause(exc)}") from None
        load_id = info.loads_ids[0] if info.loads_ids else ""
        return self._swap(worker.session, window, load_id, worker.number, preimage, seq)

    def _swap(
        self,
        s: Connection,
        window: Window,
        load_id: str,
        worker: int,
        preimage: str | None,
        seq: int,
    ) -> int:
        p = s.param()
        target = self.relation(s)
        staged_cols = s.table_columns(self.staging_schema(worker), self.table)
        staged = s.quote(self.staging_schema(worker), self.table)
        bounds = (naive_utc(window.start), naive_utc(window.end))
        with s.transaction():
            # Nothing extracted means dlt created no staging table: the window ends up empty.
            rows_from: tuple[str, tuple[Any, ...]] = ("", ())
            if staged_cols:
                rows_from = (f"FROM {staged} WHERE _dlt_load_id = {p}", (load_id,))
            key_match = ""
            key_params: tuple[Any, ...] = ()
            if self.keys and staged_cols:
                cols = ", ".join(s.quote(k) for k in self.keys)
                key_match = f"({cols}) IN (SELECT {cols} {rows_from[0]})"
                key_params = rows_from[1]
            if preimage:
                self.take_preimage(s, preimage, seq, window, key_match, key_params)
            where = self.window_filter(s) + (f" OR {key_match}" if key_match else "")
            s.execute(f"DELETE FROM {target} WHERE {where}", (*bounds, *key_params))
            if not staged_cols:
                return 0
            target_cols = s.table_columns(self.schema, self.table)
            cols = ", ".join(s.quote(c) for c in staged_cols if c in target_cols)
            s.execute(f"INSERT INTO {target} ({cols}) SELECT {cols} {rows_from[0]}", rows_from[1])
            count = s.query(f"SELECT count(*) {rows_from[0]}", rows_from[1]).rows[0][0]
        return int(count)

    def expected_counts(self, session: Connection, windows: list[Window]) -> list[int]:
        """Rows per window in the source database itself (sql_database sources)."""
        if not isinstance(self.config, SqlDatabaseSource):
            return [-1] * len(windows)  # an API cannot be counted without reading it
        import sqlalchemy as sa

        from stackyard.ingest.sources import connection_url

        url = connection_url(self.source, self.config, self.project_dir, self.secrets)
        engine = sa.create_engine(url)
        spec = self.config.tables[self.table]
        table = sa.table(
            spec.source_table or self.table,
            sa.column(self.time_column),
            schema=self.config.source_schema,
        )
        col = table.c[self.time_column]
        out = []
        try:
            with engine.connect() as conn:
                for w in windows:
                    q = (
                        sa.select(sa.func.count())
                        .select_from(table)
                        .where(col >= naive_utc(w.start), col < naive_utc(w.end))
                    )
                    out.append(int(conn.execute(q).scalar_one()))
        except sa.exc.SQLAlchemyError as exc:
            raise LoadError(
                f"cannot count {self.name} in the source: {str(exc).splitlines()[0]}"
            ) from None
        finally:
            engine.dispose()
        return out


def _root_cause(exc: BaseException) -> str:
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return f"{type(exc).__name__}: {exc}"
