"""``SOURCE.TABLE`` as a backfill target: a sql_database or rest_api table with a cursor.

A worker's own dlt pipeline extracts a run of consecutive partitions in one pipeline run (dlt's
incremental with ``initial_value``/``end_value`` over the run's range, so no cursor state is
read or written) into the worker's staging schema. Then each partition is swapped in with its
own transaction: the window's rows (and any row whose key moved into the window) are deleted
from the table and the window's staged rows inserted — so the ledger still records each
partition exactly, and a failure fails only the partitions it touched.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stackyard.config.model import RestApiSource, SqlDatabaseSource
from stackyard.config.secrets import Secrets
from stackyard.errors import ConfigError, LoadError, StackyardError, UsageError
from stackyard.ingest.backend_fallback import (
    auto_chose_connectorx,
    from_connectorx,
    is_panic,
    panic_message,
)
from stackyard.runbooks.backfill.connection import Connection
from stackyard.runbooks.backfill.moved_out import (
    by_key,
    chunks,
    in_any,
    key_condition,
    keys_that_left,
)
from stackyard.runbooks.backfill.partitions import Window
from stackyard.runbooks.backfill.targets import BackfillTarget, Outcome, Worker
from stackyard.runbooks.backfill.windows import bucket, naive_utc, span_filter
from stackyard.warehouse.base import Warehouse


class SourceTableTarget(BackfillTarget):
    """``SOURCE.TABLE`` of a sql_database or rest_api source that has a cursor."""

    kind = "source"
    engine = "dlt"

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
                f"reload the whole table with `stackyard reload {self.name} --yes`",
            )
        self.time_column = spec.cursor
        self.pending: list[Window] = []
        key = spec.primary_key
        self.keys = [key] if isinstance(key, str) else list(key or [])

    def fingerprint(self) -> str:
        text = json.dumps(self.config.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def choose_engine(self, session: Connection, engine: str, windows: Sequence[Window]) -> None:
        self.pending = list(windows)  # a row moved into one of them is that partition's
        if engine == "sql":
            raise UsageError(
                f"{self.name} is a source table: it is extracted through dlt, not plain SQL",
                hint="leave out --engine for source tables (it applies to dbt models)",
            )

    def prepare(self) -> None:
        # Two threads importing pyarrow or dlt's sources for the first time at once can see a
        # half-initialised module; import them here, before the workers start.
        import os

        import pyarrow  # noqa: F401
        from dlt.sources import rest_api, sql_database  # noqa: F401

        from stackyard.ingest.dlt_settings import QUIET_DLT

        # Staged rows carry their load id, so a partition inserts exactly its own load's rows.
        os.environ.setdefault("NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID", "true")
        # As a source's own loads: dlt's schema-merge warnings went to the user's terminal
        # in the middle of the backfill's output. Set once here, not per worker: the workers
        # are threads sharing one environment.
        os.environ.setdefault("RUNTIME__LOG_LEVEL", "CRITICAL")
        for key, value in QUIET_DLT.items():
            os.environ.setdefault(key, value)

    def cleanup(self, session: Connection, workers: int) -> None:
        for n in range(workers):
            for schema in (self.staging_schema(n), self.staging_schema(n) + "_staging"):
                session.execute(f"DROP SCHEMA IF EXISTS {session.quote(schema)} CASCADE")
        shutil.rmtree(self.project_dir / ".stackyard" / "backfill_pipelines", ignore_errors=True)

    def staging_schema(self, worker: int) -> str:
        """The worker's own staging schema (dlt's dataset)."""
        return f"{self.schema}_backfill_w{worker}"[:63]

    def _resource(
        self, window: Window, exact: bool = False, keys: Sequence[tuple[Any, ...]] = ()
    ) -> Any:
        """dlt's ``sql_table`` for exactly ``[start, end)`` of the cursor, rows stamped with
        ``_loaded_at`` as a regular load stamps them; ``exact``: through SQLAlchemy; with
        ``keys``, the rows with those keys wherever their cursor is (appended)."""
        import dlt
        import pyarrow as pa
        from dlt.sources import sql_database

        from stackyard.ingest.sources import LOADED_AT, connection_url
        from stackyard.ingest.sql_backend import sql_backend
        from stackyard.ingest.sql_columns import (
            exact_values,
            reader_hooks,
            tables_connectorx_changes,
        )
        from stackyard.ingest.sqlite_cursor import widen_sqlite_cursor

        if isinstance(self.config, RestApiSource):
            return self._rest_resource(window)
        spec = self.config.tables[self.table]
        url = connection_url(self.source, self.config, self.project_dir, self.secrets)
        backend, backend_kwargs = sql_backend(self.config, url)
        source_table = spec.source_table or self.table
        if exact or tables_connectorx_changes(
            backend, url, self.config.source_schema, [source_table]
        ):
            backend, backend_kwargs = "pyarrow", {}  # as a run reads it (module sql_columns)
        sql_table: Any = sql_database.sql_table
        resource = sql_table(
            credentials=url,
            table=source_table,
            schema=self.config.source_schema,
            backend=backend,
            backend_kwargs=backend_kwargs,
            chunk_size=self.config.chunk_size,
            # initial_value/end_value: exactly [start, end), and no cursor state kept.
            incremental=None
            if keys
            else dlt.sources.incremental(
                self.time_column,
                initial_value=naive_utc(window.start),
                end_value=naive_utc(window.end),
                range_start="closed",
                range_end="open",
            ),
            primary_key=spec.primary_key,
            write_disposition="append" if keys else "replace",
            defer_table_reflect=True,
            reflection_level="full_with_precision",
            query_adapter_callback=by_key(self.keys, keys) if keys else widen_sqlite_cursor,
            **reader_hooks(url),
        ).with_name(self.table)
        resource = exact_values(resource, self.table)
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

    def replace_run(
        self, windows: Sequence[Window], seqs: Sequence[int], worker: Worker, preimage: str | None
    ) -> list[Outcome]:
        import dlt
        from dlt.pipeline.exceptions import PipelineStepFailed

        s = worker.session
        if not self.exists(s):
            raise ConfigError(
                f"{self.schema}.{self.table} does not exist yet on {self.warehouse.describe()}",
                hint=f"load it once with `stackyard run --select {self.source}`, then backfill",
            )
        name = f"{self.project}__backfill__{self.source}__w{worker.number}"
        span = Window(windows[0].start, windows[-1].end)
        label = span.label if len(windows) == 1 else f"{span.label} to {span.end.isoformat()}"

        read: dict[str, bool] = {}

        def extract(exact: bool, keys: Sequence[tuple[Any, ...]] = ()) -> Any:
            # A killed load leaves a package behind; this run is extracted again from scratch.
            if not keys:
                shutil.rmtree(worker.pipelines_dir / name, ignore_errors=True)
            pipeline = dlt.pipeline(
                pipeline_name=name,
                destination=self.warehouse.dlt_destination(),
                dataset_name=self.staging_schema(worker.number),
                pipelines_dir=str(worker.pipelines_dir),
            )
            read["exact"] = exact  # keys looked up later are read the same way
            resource = self._resource(span, exact, keys)
            return pipeline.run(resource, loader_file_format="parquet")

        try:
            try:
                info = extract(exact=False)
            except BaseException as exc:
                # ConnectorX panics on values it cannot convert (an enum, a date-only text);
                # as a run does, read again through SQLAlchemy, else fail the partitions.
                if not is_panic(exc):
                    raise
                if not (
                    from_connectorx(exc)
                    and auto_chose_connectorx(
                        self.source, self.config, self.project_dir, self.secrets
                    )
                ):
                    raise LoadError(panic_message(self.source, self.config, exc)) from None
                info = extract(exact=True)
        except PipelineStepFailed as exc:
            raise LoadError(f"loading {self.name} for {label}: {_root_cause(exc)}") from None
        load_id = info.loads_ids[0] if info.loads_ids else ""
        try:
            gone = self._moved_out(s, windows, seqs, load_id, worker.number, extract, read)
        except PipelineStepFailed as exc:
            raise LoadError(f"looking up {self.name} by key: {_root_cause(exc)}") from None
        staged_cols = s.table_columns(self.staging_schema(worker.number), self.table)
        if staged_cols and len(windows) > 1 and self.warehouse.RANGE_INDEXES:
            # Each partition reads its window of the staged rows: index them by the cursor
            # once, rather than scan the whole run's rows per partition.
            s.execute(
                f"CREATE INDEX IF NOT EXISTS {s.quote(self.table + '__backfill_cursor')} ON "
                f"{self._staged(s, worker.number)} ({s.quote(self.time_column)})"
            )
        moved = self._moved_keys(s, windows, seqs, load_id, worker.number) if staged_cols else {}
        if preimage:
            self.take_preimages(s, preimage, seqs, windows, moved)
        target_cols = s.table_columns(self.schema, self.table)
        changed = changed_shape(staged_cols, target_cols)
        if changed:
            # The swap inserts into the table's columns as they are: a decimal now in an
            # integer column was rounded, a renamed column went NULL and its new name was
            # dropped, and validation still passed. A run refuses the same change.
            # The instruction is in the message: a partition's outcome shows only that.
            raise LoadError(
                f"{self.name} changed upstream since it was loaded ({'; '.join(changed)}): "
                "backfilling would round, drop or blank those values, so nothing was swapped; "
                f"run `stackyard run --select {self.source}` first, which says how to take "
                "the change"
            )
        cols = ", ".join(s.quote(c) for c in staged_cols if c in target_cols)
        out: list[Outcome] = []
        for window, seq in zip(windows, seqs, strict=True):
            try:
                back = gone.get(seq)
                out.append(
                    self._swap(s, window, load_id, worker.number, cols, moved.get(seq), back)
                )
            except StackyardError as exc:
                out.append(exc.message)
        return out

    def _moved_out(
        self,
        s: Connection,
        windows: Sequence[Window],
        seqs: Sequence[int],
        load_id: str,
        worker: int,
        extract: Any,
        read: dict[str, bool],
    ) -> dict[int, tuple[list[str], list[tuple[Any, ...]]]]:
        """Per partition, the rows of the table that left its window upstream and are still
        in the source (their cursor moved out of the range): extracted by key into the
        staging table, as ``(their load ids, their keys)`` (module ``moved_out``)."""
        if not self.keys or not isinstance(self.config, SqlDatabaseSource) or not self.exists(s):
            return {}
        staged = self._staged(s, worker)
        have = s.table_columns(self.staging_schema(worker), self.table)
        left = keys_that_left(
            s, self.relation(s), staged if have else None, self.keys, self.time_column,
            windows, seqs, load_id,
        )  # fmt: skip
        wanted = [k for found in left.values() for k in found]
        loads = [
            info.loads_ids[0]
            for keys in chunks(wanted)
            if (info := extract(read.get("exact", False), keys)).loads_ids
        ]
        if not loads:
            return {}
        p = s.param()
        cols = ", ".join(s.quote(k) for k in self.keys)
        marks = ", ".join([p] * len(loads))
        rows = s.query(
            f"SELECT {s.quote(self.time_column)}, {cols} FROM {staged} "
            f"WHERE _dlt_load_id IN ({marks})",
            loads,
        ).rows
        back = {tuple(r[1:]) for r in rows if not in_any(r[0], self.pending)}
        kept = {seq: [k for k in keys if tuple(k) in back] for seq, keys in left.items()}
        return {seq: (loads, keys) for seq, keys in kept.items() if keys}

    def _staged(self, s: Connection, worker: int) -> str:
        return s.quote(self.staging_schema(worker), self.table)

    def _moved_keys(
        self,
        s: Connection,
        windows: Sequence[Window],
        seqs: Sequence[int],
        load_id: str,
        worker: int,
    ) -> dict[int, tuple[str, list[Any]]]:
        """Rows of the table whose key was re-loaded into another partition than the one they
        sit in (their cursor moved): per partition, a condition naming them, so the partition
        replaces them too and no key is left twice.

        One join of the staged rows with the table, whatever the number of partitions.
        """
        if not self.keys:
            return {}
        p = s.param()
        keys = [s.quote(k) for k in self.keys]
        on = " AND ".join(f"st.{k} = t.{k}" for k in keys)
        col = s.quote(self.time_column)
        staged_bucket, sb_params = bucket(f"st.{col}", windows, seqs, p)
        target_bucket, tb_params = bucket(f"t.{col}", windows, seqs, p)
        inside, in_params = span_filter(f"t.{col}", windows, p)
        rows = s.query(
            f"SELECT {staged_bucket} AS seq, {', '.join(f'st.{k}' for k in keys)} "
            f"FROM {self._staged(s, worker)} AS st JOIN {self.relation(s)} AS t ON {on} "
            f"WHERE st._dlt_load_id = {p} AND NOT COALESCE({inside} AND "
            f"{target_bucket} = {staged_bucket}, FALSE)",
            (*sb_params, load_id, *in_params, *tb_params, *sb_params),
        ).rows
        by_seq: dict[int, list[tuple[Any, ...]]] = {}
        for row in rows:
            by_seq.setdefault(int(row[0]), []).append(tuple(row[1:]))
        out = {}
        one = "(" + ", ".join([p] * len(keys)) + ")"
        for seq, found in by_seq.items():
            values = ", ".join([one] * len(found))
            condition = f"({', '.join(keys)}) IN (VALUES {values})"
            out[seq] = (condition, [v for key in found for v in key])
        return out

    def _swap(
        self,
        s: Connection,
        window: Window,
        load_id: str,
        worker: int,
        cols: str,
        moved: tuple[str, list[Any]] | None,
        back: tuple[list[str], list[tuple[Any, ...]]] | None = None,
    ) -> int:
        """One partition, in one transaction: delete the window (and the rows whose key moved
        into it), insert the window's staged rows, and the rows that moved out of it
        upstream (``back``: their load ids and keys) at their new place; return how many
        were inserted into the window."""
        p = s.param()
        target = self.relation(s)
        bounds = (naive_utc(window.start), naive_utc(window.end))
        with s.transaction():
            if moved:
                s.execute(f"DELETE FROM {target} WHERE {moved[0]}", moved[1])
            s.execute(f"DELETE FROM {target} WHERE {self.window_filter(s)}", bounds)
            # Nothing extracted means dlt created no staging table: the window ends up empty.
            if not cols:
                return 0
            rows_from = (
                f"FROM {self._staged(s, worker)} WHERE _dlt_load_id = {p} AND "
                f"{self.window_filter(s)}"
            )
            count = s.execute(
                f"INSERT INTO {target} ({cols}) SELECT {cols} {rows_from}", (load_id, *bounds)
            )
            if count < 0:
                count = s.query(f"SELECT count(*) {rows_from}", (load_id, *bounds)).rows[0][0]
            if back:
                loads, keys = back
                s.execute(
                    f"INSERT INTO {target} ({cols}) SELECT {cols} FROM {self._staged(s, worker)} "
                    f"WHERE _dlt_load_id IN ({', '.join([p] * len(loads))}) AND "
                    f"{key_condition(s, self.keys, keys)}",
                    (*loads, *(v for key in keys for v in key)),
                )
        return int(count)

    def expected_counts(self, session: Connection, windows: list[Window]) -> list[int]:
        """Rows per window in the source database itself (sql_database sources)."""
        if not isinstance(self.config, SqlDatabaseSource):
            return [-1] * len(windows)  # an API cannot be counted without reading it
        import sqlalchemy as sa

        from stackyard.ingest.sources import connection_url
        from stackyard.ingest.sqlite_cursor import time_range

        url = connection_url(self.source, self.config, self.project_dir, self.secrets)
        engine = sa.create_engine(url)
        spec = self.config.tables[self.table]
        table = sa.table(
            spec.source_table or self.table,
            sa.column(self.time_column),
            schema=self.config.source_schema,
        )
        col = table.c[self.time_column]
        sqlite = engine.dialect.name == "sqlite"
        out = []
        try:
            with engine.connect() as conn:
                for w in windows:
                    within = time_range(col, naive_utc(w.start), naive_utc(w.end), sqlite)
                    q = sa.select(sa.func.count()).select_from(table).where(within)
                    out.append(int(conn.execute(q).scalar_one()))
        except sa.exc.SQLAlchemyError as exc:
            raise LoadError(
                f"cannot count {self.name} in the source: {str(exc).splitlines()[0]}"
            ) from None
        finally:
            engine.dispose()
        return out


def changed_shape(staged: dict[str, str], table: dict[str, str]) -> list[str]:
    """How the columns a backfill extracted differ from the table's: a column of another
    type, one the source no longer sends, one the table lacks. Columns stackyard and dlt add
    are left out. Nothing when nothing was extracted.

    >>> changed_shape({"id": "BIGINT", "qty": "DECIMAL(10,2)", "memo": "VARCHAR"},
    ...               {"id": "BIGINT", "qty": "BIGINT", "note": "VARCHAR", "_deleted_at": "x"})
    ["'qty' is DECIMAL(10,2), the table's BIGINT", "'note' is not sent any more", "'memo' is new"]
    """
    if not staged:
        return []

    def own(column: str) -> bool:
        return not column.startswith("_dlt_") and column not in ("_loaded_at", "_deleted_at")

    found = [
        f"'{c}' is {kind}, the table's {table[c]}"
        for c, kind in staged.items()
        if own(c) and c in table and kind.upper() != table[c].upper()
    ]
    found += [f"'{c}' is not sent any more" for c in table if own(c) and c not in staged]
    found += [f"'{c}' is new" for c in staged if own(c) and c not in table]
    return found


def _root_cause(exc: BaseException) -> str:
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return f"{type(exc).__name__}: {exc}"
