"""What a backfill can replace, partition by partition: a dbt model or a source table.

Both kinds answer the same questions — which table, which time column, how to replace one
window, how many rows the window should hold — so the job that drives partitions, the
validation and the rollback do not care which kind they run.

A worker hands a target a *run* of consecutive partitions at once (:meth:`replace_run`): one
dbt invocation or one dlt pipeline run covers them all, which is where the time goes, while
the ledger still gets one outcome per partition.

* :class:`ModelTarget` — an incremental dbt model. Microbatch models run once over the run's
  range with ``--event-time-start/--event-time-end``; dbt cuts it into batches, deletes and
  inserts each batch in one transaction and reports each batch, so a failed batch fails exactly
  the partitions it overlaps. Other incremental models get the range as
  ``backfill_start``/``backfill_end`` vars.
* :class:`~stackyard.runbooks.backfill.source_table.SourceTableTarget` — ``SOURCE.TABLE`` of a
  ``sql_database`` or ``rest_api`` source with a cursor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stackyard.errors import StackyardError, TransformError, UsageError, did_you_mean
from stackyard.metadata.schema import METADATA_SCHEMA
from stackyard.runbooks.backfill.connection import Connection
from stackyard.runbooks.backfill.partitions import Window
from stackyard.runbooks.backfill.windows import bucket, contiguous, naive_utc, runs, span_filter

if TYPE_CHECKING:
    from stackyard.runbooks.backfill.model_sql import BatchSql, Parent

MARKS_SUFFIX = "__marks"
PREIMAGE_SCHEMA = METADATA_SCHEMA

# What replace_run gives back per partition: the rows it now holds, or why it failed.
Outcome = int | str


@dataclass
class Worker:
    """What one worker thread owns: its connection and its dlt pipeline folder."""

    number: int
    session: Connection
    pipelines_dir: Path


class BackfillTarget:
    """The common part of both kinds: the table, its time column and its keys."""

    kind: str = ""
    engine: str = ""
    engine_note: str | None = None
    name: str
    schema: str
    table: str
    time_column: str
    keys: list[str]
    #: The dbt node ``stackyard run`` builds this table as (a model), whose later builds a
    #: rollback must not undo; ``None`` for a source table, whose rows carry their load.
    built_as: str | None = None

    def fingerprint(self) -> str:
        """A hash of the code or configuration that produces the table."""
        raise NotImplementedError

    def prepare(self) -> None:
        """Work done once, in the calling thread, before workers start."""

    def choose_engine(self, session: Connection, engine: str, windows: Sequence[Window]) -> None:
        """Decide, once before workers start, what replaces the partitions (``engine``:
        ``auto``, ``sql`` or ``dbt``); :attr:`engine` and :attr:`engine_note` say which and
        why.

        Raises:
            UsageError: ``engine`` asks for a path this target cannot take.
        """

    def cleanup(self, session: Connection, workers: int) -> None:
        """Drop what workers left behind (staging schemas)."""

    def replace_run(
        self, windows: Sequence[Window], seqs: Sequence[int], worker: Worker, preimage: str | None
    ) -> list[Outcome]:
        """Replace the rows of consecutive partitions ``windows`` (numbered ``seqs``).

        Returns:
            Per partition, the rows it now holds, or the message of why it failed.

        Raises:
            StackyardError: the whole run failed before any partition was replaced.
        """
        raise NotImplementedError

    def expected_counts(self, session: Connection, windows: list[Window]) -> list[int]:
        """Rows each window should hold, read from upstream."""
        raise NotImplementedError

    def estimate(
        self, session: Connection, windows: Sequence[Window], exact: bool = False
    ) -> dict[str, Any]:
        """What a dry run shows of each window: rows (None when unknown), bytes scanned, and
        how they were found (``method``: ``count``, ``explain`` or ``unknown``); ``exact``
        counts rather than asks the planner (a budget is enforced on it)."""
        counts = self.expected_counts(session, list(windows))
        if all(c < 0 for c in counts):
            return {"rows_per_partition": [None] * len(windows), "method": "unknown"}
        return {"rows_per_partition": counts, "method": "count", "bytes_scanned": None}

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
        self, session: Connection, windows: Sequence[Window], relation: str | None = None
    ) -> list[int]:
        """Rows per window in the table (or in ``relation``, any SQL relation), in one pass."""
        rel = relation or self.relation(session)
        if not windows or (relation is None and not self.exists(session)):
            return [0] * len(windows)
        if not contiguous(windows):
            return [self.counts(session, [w], relation)[0] for w in windows]
        col = "t." + session.quote(self.time_column)
        case, case_params = bucket(col, windows, range(len(windows)), session.param())
        where, where_params = span_filter(col, windows, session.param())
        rows = session.query(
            f"SELECT {case} AS n, count(*) FROM {rel} AS t WHERE {where} GROUP BY 1",
            (*case_params, *where_params),
        ).rows
        out = [0] * len(windows)
        for n, count in rows:
            out[int(n)] = int(count)
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

    def keys_removed(self, session: Connection, preimage: str | None) -> list[list[Any]]:
        """Keys the backfill took out of the table and did not put back (at most 21, to say
        "more"): deleted upstream (or, for a target that cannot look rows up by key, a row
        whose cursor moved out of the range). Empty without a declared key or a pre-image."""
        if not self.keys or not preimage or not session.table_columns(PREIMAGE_SCHEMA, preimage):
            return []
        keys = [session.quote(k) for k in self.keys]
        on = " AND ".join(f"t.{k} = pre.{k}" for k in keys)
        rows = session.query(
            f"SELECT DISTINCT {', '.join(f'pre.{k}' for k in keys)} FROM "
            f"{session.quote(PREIMAGE_SCHEMA, preimage)} AS pre WHERE NOT EXISTS "
            f"(SELECT 1 FROM {self.relation(session)} AS t WHERE {on}) LIMIT 21"
        ).rows
        return [list(r) for r in rows]

    def take_preimages(
        self,
        s: Connection,
        preimage: str,
        seqs: Sequence[int],
        windows: Sequence[Window],
        moved: dict[int, tuple[str, list[Any]]] | None = None,
    ) -> None:
        """Keep the rows partitions are about to overwrite, once per partition, in one
        transaction and one pass over the table. A mark records that a partition's pre-image
        was taken — also when there was nothing to keep — so a retry keeps the first one, and
        a rollback knows to empty the window.

        Args:
            moved: per partition, a ``(condition, params)`` on ``t`` naming rows outside its
                window that it will also replace (a key that moved to it).
        """
        p = s.param()
        marks = s.quote(PREIMAGE_SCHEMA, preimage + MARKS_SUFFIX)
        marked = {int(r[0]) for r in s.query(f"SELECT seq FROM {marks}").rows}
        todo = [(q, w) for q, w in zip(seqs, windows, strict=True) if q not in marked]
        if not todo:
            return
        by_seq = dict(todo)
        pre = s.quote(PREIMAGE_SCHEMA, preimage)
        with s.transaction():
            if self.exists(s):
                self.ensure_preimage(s, preimage)
                col = "t." + s.quote(self.time_column)
                for run in runs([q for q, _ in todo]):
                    span = [by_seq[q] for q in run]
                    case, case_params = bucket(col, span, run, p)
                    where, where_params = span_filter(col, span, p)
                    s.execute(
                        f"INSERT INTO {pre} SELECT {case} AS _backfill_seq, t.* "
                        f"FROM {self.relation(s)} AS t WHERE {where}",
                        (*case_params, *where_params),
                    )
                for q, (condition, params) in (moved or {}).items():
                    if q in by_seq:
                        s.execute(
                            f"INSERT INTO {pre} SELECT {p} AS _backfill_seq, t.* "
                            f"FROM {self.relation(s)} AS t WHERE {condition}",
                            (q, *params),
                        )
            s.execute(
                f"INSERT INTO {marks} VALUES {', '.join([f'({p})'] * len(todo))}",
                [q for q, _ in todo],
            )

    def forget_preimages(self, session: Connection, preimage: str, seqs: Sequence[int]) -> None:
        """Drop the pre-images of partitions ``seqs`` that failed, for their retry to take
        afresh. Nothing of theirs was swapped (a partition is replaced in one transaction),
        but the table may have changed since their copy was taken (a reload): a rollback
        then put back rows older than what the retry overwrote. With no copy left, the
        pre-image table goes too, to be made again in the table's shape now."""
        marks = session.quote(PREIMAGE_SCHEMA, preimage + MARKS_SUFFIX)
        if not seqs or not session.table_columns(PREIMAGE_SCHEMA, preimage + MARKS_SUFFIX):
            return
        pre = session.quote(PREIMAGE_SCHEMA, preimage)
        listed = ", ".join([session.param()] * len(seqs))
        with session.transaction():
            session.execute(f"DELETE FROM {marks} WHERE seq IN ({listed})", list(seqs))
            if not session.table_columns(PREIMAGE_SCHEMA, preimage):
                return
            if session.query(f"SELECT count(*) FROM {marks}").rows[0][0]:
                session.execute(f"DELETE FROM {pre} WHERE _backfill_seq IN ({listed})", list(seqs))
            else:
                session.execute(f"DROP TABLE {pre}")

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

    engine = "dbt"

    def __init__(
        self,
        node: dict[str, Any],
        make_dbt: Callable[..., Any],
        manifest: dict[str, Any] | None = None,
    ) -> None:
        config = node.get("config", {})
        self.manifest = manifest or {}
        self._batch: BatchSql | None = None
        self.name = str(node["name"])
        self.node = node
        self.built_as = str(node.get("unique_id") or "") or None
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
        return cls(node, make_dbt, manifest)

    def fingerprint(self) -> str:
        return str(self.node.get("checksum", {}).get("checksum", ""))[:16]

    def choose_engine(self, session: Connection, engine: str, windows: Sequence[Window]) -> None:
        """The SQL path (:mod:`~stackyard.runbooks.backfill.model_sql`) when the model allows
        it and the partitions are whole dbt batches; dbt otherwise, or when asked.

        Raises:
            UsageError: ``engine`` is ``sql`` and the model cannot take the SQL path.
        """
        from stackyard.runbooks.backfill.model_sql import plan

        self._batch, self.engine, self.engine_note = None, "dbt", None
        if engine == "dbt":
            self.engine_note = "asked for (--engine dbt)"
            return
        found = plan(
            self.node,
            self.parents(),
            self.compiled(),
            session,
            self.manifest.get("macros", {}),
        )
        if isinstance(found, str):
            reason = found
        elif any(found.batches(w) is None for w in windows):
            reason = f"its partitions are not whole {found.batch_size} batches in UTC"
        else:
            self._batch, self.engine = found, "sql"
            return
        if engine == "sql":
            raise UsageError(
                f"{self.name} cannot be backfilled with plain SQL: {reason}",
                hint="leave out --engine (or --engine dbt) to run it through dbt",
            )
        self.engine_note = reason

    def parents(self) -> list[Parent]:
        """The model's inputs as the manifest has them."""
        from stackyard.runbooks.backfill.model_sql import Parent

        nodes = {**self.manifest.get("nodes", {}), **self.manifest.get("sources", {})}
        out = []
        for uid in self.node.get("depends_on", {}).get("nodes", []):
            n = nodes.get(uid, {})
            config = n.get("config", {})
            out.append(
                Parent(
                    uid,
                    str(n.get("relation_name") or ""),
                    str(n.get("identifier") or n.get("alias") or n.get("name") or ""),
                    config.get("event_time"),
                    config.get("materialized") == "ephemeral",
                )
            )
        return out

    def replace_run(
        self, windows: Sequence[Window], seqs: Sequence[int], worker: Worker, preimage: str | None
    ) -> list[Outcome]:
        s = worker.session
        if preimage:
            self.take_preimages(s, preimage, seqs, windows)
        if self._batch is not None:
            out: list[Outcome] = []
            for window in windows:
                try:
                    out.append(self._batch.run(s, window))
                except StackyardError as exc:
                    out.append(f"{self.name} for {window.label}: {exc.message}")
            return out
        start = naive_utc(windows[0].start).isoformat()
        end = naive_utc(windows[-1].end).isoformat()
        outcome = self.make_dbt().run_range(self.name, start, end, microbatch=self.microbatch)
        node = outcome.nodes[0] if outcome.nodes else None
        if node is None:
            return [f"dbt run of {self.name} selected nothing"] * len(windows)
        counts = self.counts(s, windows)
        out = []
        for window, rows in zip(windows, counts, strict=True):
            # A partition stands or falls with the dbt batches that overlap it.
            bad = [b for b in outcome.failed if b[0] < window.end and b[1] > window.start]
            done = any(b[0] < window.end and b[1] > window.start for b in outcome.successful)
            ok = done and not bad if outcome.batched else node.status in ("success", "pass")
            if ok:
                out.append(rows)
            else:
                why = node.message or ("its dbt batch failed" if bad else "dbt ran no batch")
                out.append(f"dbt run of {self.name} for {window.label}: {why}")
        return out

    def compiled(self) -> str:
        """The model's SQL as dbt compiles it (compiled once).

        Raises:
            TransformError: dbt compiled nothing for the model.
        """
        if self._compiled is None:
            compiled = self.make_dbt().compile_sql([self.name])
            self._compiled = compiled.get(self.name, "")
        if not self._compiled:
            raise TransformError(f"dbt compiled no SQL for {self.name}")
        return self._compiled

    def expected_counts(self, session: Connection, windows: list[Window]) -> list[int]:
        """The model's own SQL counted per window (one pass): what the table should hold."""
        return self.counts(session, windows, relation=f"({self.compiled()})")

    def estimate(
        self, session: Connection, windows: Sequence[Window], exact: bool = False
    ) -> dict[str, Any]:
        """The planner's estimate (EXPLAIN) of the model's SQL over each window, where the
        engine gives one; otherwise, or ``exact``, the model's SQL counted per window (a
        planner's guess at an aggregate's groups came out twenty times low, and a budget
        enforced on it let the writes through)."""
        warehouse = session.warehouse
        if exact or not warehouse.EXPLAIN_ESTIMATES:
            return super().estimate(session, windows)
        sql = f"SELECT * FROM ({self.compiled()}) AS t WHERE {self.window_filter(session)}"
        rows: list[int | None] = []
        scanned: int | None = 0
        for w in windows:
            found = warehouse.estimate_query(sql, (naive_utc(w.start), naive_utc(w.end)))
            if found is None:
                return super().estimate(session, windows)
            rows.append(found.rows)
            scanned = (
                None
                if scanned is None or found.bytes_scanned is None
                else (scanned + found.bytes_scanned)
            )
        return {"rows_per_partition": rows, "method": "explain", "bytes_scanned": scanned}
