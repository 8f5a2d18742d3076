"""The backfill runbook: resolve the target, run it (and, with ``--cascade``, what depends on
it), report status from the ledger, roll a backfill back from its pre-images."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from stackyard.config.model import RestApiSource, SqlDatabaseSource
from stackyard.errors import (
    StackyardError,
    UsageError,
    WarehouseUnreachableError,
    did_you_mean,
)
from stackyard.metadata.schema import METADATA_SCHEMA
from stackyard.runbooks.backfill.connection import Connection
from stackyard.runbooks.backfill.job import BackfillJob, BackfillOptions, BackfillResult
from stackyard.runbooks.backfill.ledger import (
    LeaseHeldError,
    Ledger,
    holder_name,
    lease_holders,
    read_mirror,
)
from stackyard.runbooks.backfill.names import unknown_source_table
from stackyard.runbooks.backfill.partitions import check_not_ahead, time_zone
from stackyard.runbooks.backfill.retention import expires_at, prune
from stackyard.runbooks.backfill.rollback_guard import (
    deleted_rows,
    refuse_if_in_the_way,
)
from stackyard.runbooks.backfill.source_table import SourceTableTarget
from stackyard.runbooks.backfill.targets import MARKS_SUFFIX, BackfillTarget, ModelTarget
from stackyard.session import Session
from stackyard.transform.staging import dbt_source_names


class BackfillRunbook:
    """Backfills on one target of one project."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.config = session.project.config
        self.project_dir = session.project.project_dir
        self.warehouse = session.warehouse
        self.secrets = session.project.secrets
        self.make_dbt: Callable[..., Any] = session.dbt
        self.console = session.console
        self.mirror_dir = self.project_dir / ".stackyard" / "backfills"
        self._manifest: dict[str, Any] | None = None

    # ------------------------------------------------------------------ targets

    def manifest(self) -> dict[str, Any]:
        """dbt's parsed project (parsed once per runbook)."""
        if self._manifest is None:
            self._manifest = self.make_dbt().manifest()
        return self._manifest

    def resolve(self, name: str) -> BackfillTarget:
        """``SOURCE.TABLE`` or a dbt model name → the target to backfill.

        Raises:
            UsageError: unknown, or not backfillable by date.
        """
        source, _, table = name.partition(".")
        if table and source in self.config.sources:
            config = self.config.sources[source]
            if not isinstance(config, SqlDatabaseSource | RestApiSource):
                raise UsageError(
                    f"source '{source}' is {config.kind}: only sql_database and rest_api "
                    "tables with a cursor can be backfilled by date",
                    hint=f"reload it whole with `stackyard reload {name} --yes`",
                )
            tables = config.tables if isinstance(config, SqlDatabaseSource) else config.endpoints
            if table not in tables:
                raise UsageError(
                    f"source '{source}' has no table '{table}'{did_you_mean(table, tables)}",
                    hint=f"its tables: {', '.join(sorted(tables))}",
                )
            return SourceTableTarget(
                source,
                table,
                config,
                project=self.config.name,
                dataset=self.config.dataset_for(source),
                project_dir=self.project_dir,
                secrets=self.secrets,
                warehouse=self.warehouse,
            )
        if table:
            models = {
                str(n["name"]): str(n.get("schema"))
                for n in self.manifest().get("nodes", {}).values()
                if n.get("resource_type") == "model"
            }
            raise unknown_source_table(name, self.config, models)
        return ModelTarget.resolve(name, self.manifest(), self.make_dbt)

    def _connect(self, patience: float = 15.0) -> Connection:
        """A new connection for a worker or the ledger.

        A DuckDB file admits one process at a time: when a running backfill holds it, fail at
        once naming it; when something else does (a `backfill status` glancing at the ledger,
        a shell), wait up to ``patience`` seconds for it to let go.
        """
        deadline = time.monotonic() + patience
        while True:
            try:
                return Connection(self.warehouse)
            except WarehouseUnreachableError:
                if self.warehouse.STORAGE != "file":
                    raise
                holders = lease_holders(self.mirror_dir)
                if holders:
                    raise LeaseHeldError(
                        f"{self.warehouse.describe()} is held by a running backfill: "
                        + "; ".join(holders),
                        hint="wait for it to finish (`stackyard backfill status` reads its "
                        "progress meanwhile)",
                    ) from None
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def job(self, target: BackfillTarget) -> BackfillJob:
        """The job that backfills ``target``."""
        return BackfillJob(
            target,
            session_factory=self._connect,
            mirror_dir=self.mirror_dir,
            pipelines_dir=self.project_dir / ".stackyard" / "backfill_pipelines",
            warehouse_target=self.warehouse.target_name,
            console=self.console,
            preimage_days=self.config.backfills.preimage_days,
        )

    # ------------------------------------------------------------------ run

    def run(self, options: BackfillOptions) -> BackfillResult:
        """Backfill a target; with ``cascade``, then the models downstream of it."""
        target = self.resolve(options.target)
        job = self.job(target)
        # Here, not in the job: a cascade runs its models over the same range, and the
        # warning is said once.
        ahead = check_not_ahead(job.windows(options), datetime.now(UTC), time_zone(options.tz))
        if isinstance(target, SourceTableTarget):
            self._check_connection(target)
        if ahead:
            self.console.message("warning", f"warning: {ahead}")
        result = replace(job.execute(options), warnings=(ahead,) if ahead else ())
        if options.dry_run:
            models = [target.name]
            if options.cascade:
                models += [n["name"] for n in self.downstream(target)]
            result = replace(result, estimate={**result.estimate, "models": models})
        if not options.cascade:
            return result
        failed = {p.window_start for p in result.record.partitions if p.status != "success"}
        cascaded = []
        rebuilt: list[dict[str, str]] = []
        reached = self.downstream(target)
        for node in reached:
            config = node.get("config", {})
            if config.get("materialized") == "incremental" and config.get("event_time"):
                child = ModelTarget(node, self.make_dbt, self.manifest())
                own = replace(options, target=child.name, cascade=False, budget_rows=None)
                widened = None
                if isinstance(target, SourceTableTarget) and not options.dry_run:
                    from stackyard.runbooks.backfill.cascade import model_range

                    columns = [
                        str(config["event_time"]),
                        *self._upstream_event_times(node, reached),
                    ]
                    own, widened = model_range(self.warehouse, target, result, own, columns)
                try:
                    sub = self.job(child).execute(own, skip=frozenset(failed))
                except LeaseHeldError as exc:
                    # The target is backfilled already: this is a failed step, not a refusal.
                    raise StackyardError(
                        f"{target.name} was backfilled (backfill {result.record.backfill_id}), "
                        f"but the cascade stopped at {child.name}: {exc.message}",
                        hint=f"when it is free, run `stackyard backfill {child.name}` over the "
                        "same range",
                    ) from None
                sub = replace(sub, widened=widened)
                failed |= {p.window_start for p in sub.record.partitions if p.status != "success"}
                cascaded.append(sub)
            elif config.get("materialized") in ("table", "incremental") and not options.dry_run:
                rebuilt.append(self._rebuild(node["name"], failed))
        rebuilt += self._views_again(reached, rebuilt)
        return replace(result, cascaded=tuple(cascaded), rebuilt=tuple(rebuilt))

    def _check_connection(self, target: SourceTableTarget) -> None:
        """Resolve the source's secrets (and SQLite file) before anything is recorded: one
        that is missing failed every partition, then the validation (exit 1, no hint).

        Raises:
            ConfigError: a secret is not set, or the SQLite file is not there.
        """
        from stackyard.ingest.rest import rest_api_config
        from stackyard.ingest.sources import connection_url

        if isinstance(target.config, SqlDatabaseSource):
            connection_url(target.source, target.config, self.project_dir, self.secrets)
        elif isinstance(target.config, RestApiSource):
            rest_api_config(target.source, target.config, self.secrets)

    def _views_again(
        self, reached: list[dict[str, Any]], rebuilt: list[dict[str, str]]
    ) -> list[dict[str, str]]:
        """The views over a table the cascade rebuilt (and views over those), created again.

        dbt-postgres rebuilds a table by dropping the old one with CASCADE, which drops every
        view on it; the backfill said it succeeded, and the next run skipped its build (no new
        rows, no change in transform/), so the reporting views stayed gone.
        """
        tables = {r["model"] for r in rebuilt if r["status"] == "success"}
        parents = self.manifest().get("parent_map", {})
        gone = {n["unique_id"] for n in reached if n["name"] in tables}
        views = []
        for node in reached:  # parents before children
            if node.get("config", {}).get("materialized") == "view" and (
                set(parents.get(node["unique_id"], [])) & gone
            ):
                views.append(node["name"])
                gone.add(node["unique_id"])
        if not views:
            return []
        results = {r.name: r for r in self.make_dbt().run_window(views)}
        made = []
        for view in views:
            found = results.get(view)
            if found is not None and found.status in ("success", "pass"):
                made.append({"model": view, "status": "success", "message": ""})
            else:
                why = found.message if found is not None else "dbt did not run it"
                made.append({"model": view, "status": "error", "message": why})
        return made

    def _upstream_event_times(
        self, node: dict[str, Any], reached: list[dict[str, Any]]
    ) -> list[str]:
        """The event-time columns of the models between the backfilled source and ``node``,
        nearest first: dbt filters ``node``'s inputs on them."""
        parents = self.manifest().get("parent_map", {})
        between = {n["unique_id"]: n for n in reached}
        found: list[str] = []
        todo = list(parents.get(node["unique_id"], []))
        while todo:
            uid = todo.pop(0)
            if uid in between:
                column = between[uid].get("config", {}).get("event_time")
                if column and column not in found:
                    found.append(str(column))
                todo += parents.get(uid, [])
        return found

    def _rebuild(self, model: str, failed: set[str]) -> dict[str, str]:
        # A table model is rebuilt whole, once, and only from complete upstream data: with a
        # failed window upstream it would bake the gap in, so it is left as it was and said so.
        if failed:
            why = f"{len(failed)} upstream window(s) failed; it was left as it was"
            return {"model": model, "status": "not_rebuilt", "message": why}
        results = [r for r in self.make_dbt().run_window([model]) if r.name == model]
        bad = [r for r in results if r.status not in ("success", "pass")]
        if bad or not results:
            message = bad[0].message if bad else "dbt did not run it"
            return {"model": model, "status": "error", "message": message}
        return {"model": model, "status": "success", "message": ""}

    def downstream(self, target: BackfillTarget) -> list[dict[str, Any]]:
        """Models that depend on the target, parents before children."""
        manifest = self.manifest()
        nodes = manifest.get("nodes", {})
        if isinstance(target, ModelTarget):
            roots = [target.node["unique_id"]]
        else:
            assert isinstance(target, SourceTableTarget)
            names = dbt_source_names(target.source)
            roots = [
                uid
                for uid, s in manifest.get("sources", {}).items()
                if s["source_name"] in names and s["name"] == target.table
            ]
        children = manifest.get("child_map", {})
        seen: list[str] = []
        stack = list(roots)
        while stack:
            for child in children.get(stack.pop(), []):
                if (
                    child not in seen
                    and child in nodes
                    and nodes[child]["resource_type"] == "model"
                ):
                    seen.append(child)
                    stack.append(child)
        parents = manifest.get("parent_map", {})
        ordered: list[str] = []
        pending = set(seen)
        while pending:
            ready = sorted(u for u in pending if not (set(parents.get(u, [])) & pending))
            ordered += ready
            pending -= set(ready)
        return [nodes[u] for u in ordered]

    # ------------------------------------------------------------------ status

    def status(self, backfill_id: str | None = None, limit: int = 10) -> list[dict[str, Any]]:
        """Backfills as the ledger has them: one by id, or the latest ``limit``.

        Read from the warehouse; when another process holds a DuckDB file, from the ledger's
        JSON mirror, which that process keeps current.
        """
        if self.warehouse.STORAGE == "file" and lease_holders(self.mirror_dir):
            # A backfill holds the file: read its mirror rather than contend for the lock.
            mirrored = read_mirror(self.mirror_dir, backfill_id, self.warehouse.target_name)
            if mirrored is not None:
                return [self._with_expiry(mirrored)]
        try:
            session = Connection(self.warehouse)
        except WarehouseUnreachableError:
            if self.warehouse.STORAGE != "file":
                raise
            mirrored = read_mirror(self.mirror_dir, backfill_id, self.warehouse.target_name)
            if mirrored is None:
                raise
            return [self._with_expiry(mirrored)]
        try:
            ledger = Ledger(session, self.mirror_dir)
            ids = [backfill_id] if backfill_id else ledger.recent(limit)
            return [self._with_expiry(ledger.get(i).to_dict()) for i in ids]
        finally:
            session.close()

    def _with_expiry(self, data: dict[str, Any]) -> dict[str, Any]:
        from stackyard.metadata.leases import holder_alive

        days = self.config.backfills.preimage_days
        expiry = expires_at(
            data["status"], data.get("finished_at"), data.get("preimage_dropped_at"), days
        )
        # A backfill killed (kill -9, a lost terminal) stays "running" in the ledger: nothing
        # is left to say otherwise. Its process being gone is what tells it apart.
        holder = data.get("holder")
        stopped = data["status"] == "running" and bool(holder) and not holder_alive(str(holder))
        return {**data, "preimage_expires_at": expiry, "stopped": stopped}

    def prune(self, backfill_id: str | None = None) -> list[dict[str, Any]]:
        """Drop the pre-images of one backfill (confirming it), or of every expired one.

        Raises:
            UsageError: unknown id, or a failed/unfinished backfill (its pre-images are kept).
        """
        session = self._connect()
        try:
            return prune(
                Ledger(session, self.mirror_dir), self.config.backfills.preimage_days, backfill_id
            )
        finally:
            session.close()

    # ------------------------------------------------------------------ rollback

    def rollback(
        self, backfill_id: str, dry_run: bool = False, force: bool = False
    ) -> dict[str, Any]:
        """Put back the rows a backfill overwrote, from its pre-images, in one transaction.

        A later backfill of the same target that replaced some of the same partitions (and
        was not rolled back) must be rolled back first: rolling this one back would silently
        undo it. Rows loaded into those partitions since (a reload), or a model built
        since (a run), are kept unless ``force``. With ``dry_run``, check and count, change
        nothing.

        Raises:
            UsageError: unknown id, already rolled back, pre-images dropped, a later
                backfill replaced some of the same partitions, or rows were loaded into them
                since, or the model was built since (without ``force``).
            LeaseHeldError: a backfill of the same target is running.
        """
        session = self._connect()
        ledger = Ledger(session, self.mirror_dir)
        try:
            if dry_run and not ledger.exists():
                raise UsageError(
                    f"no backfill with id '{backfill_id}' on this target",
                    hint="`stackyard backfill status --json` lists the recent ones",
                )
            if not dry_run:
                ledger.ensure()
            record = ledger.get(backfill_id)
            if record.status == "rolled_back":
                raise UsageError(f"backfill {backfill_id} was already rolled back")
            if record.preimage_dropped_at:
                raise UsageError(
                    f"backfill {backfill_id} can no longer be rolled back: its pre-images were "
                    f"dropped at {record.preimage_dropped_at} (backfills.preimage_days in "
                    "stackyard.yml says how long they are kept)",
                    hint="restore the table from a backup (`stackyard restore`), or backfill "
                    "the range again from the source",
                )
            target = self.resolve(record.target)
            pre_name = record.preimage_table or ""
            seqs = self._preimage_seqs(session, pre_name)
            refuse_if_in_the_way(session, target, record, seqs, force)
            if dry_run:
                restored = self._count_preimages(session, pre_name, seqs)
                return {
                    "backfill_id": backfill_id,
                    "target": record.target,
                    "dry_run": True,
                    **restored,
                }
            ledger.acquire(target.name, backfill_id, holder_name(backfill_id), 30.0)
            try:
                # Checked again under the lease: no backfill of the target can start now.
                refuse_if_in_the_way(session, target, record, seqs, force)
                restored = self._restore(session, target, pre_name, record)
                ledger.set_status(backfill_id, "rolled_back", None)
            finally:
                ledger.release(target.name, backfill_id)
        finally:
            session.close()
        return {"backfill_id": backfill_id, "target": record.target, **restored}

    def _preimage_seqs(self, s: Connection, pre_name: str) -> set[int]:
        # The partitions whose rows were copied before being replaced: what a rollback touches.
        if not pre_name or not s.table_columns(METADATA_SCHEMA, pre_name + MARKS_SUFFIX):
            return set()
        marks = s.quote(METADATA_SCHEMA, pre_name + MARKS_SUFFIX)
        return {int(r[0]) for r in s.query(f"SELECT seq FROM {marks}").rows}

    def _count_preimages(self, s: Connection, pre_name: str, seqs: set[int]) -> dict[str, int]:
        if not seqs or not s.table_columns(METADATA_SCHEMA, pre_name):
            return {"partitions": len(seqs), "rows_restored": 0}
        pre = s.quote(METADATA_SCHEMA, pre_name)
        marks = ", ".join(str(n) for n in sorted(seqs))
        rows = s.query(f"SELECT count(*) FROM {pre} WHERE _backfill_seq IN ({marks})").rows
        return {"partitions": len(seqs), "rows_restored": int(rows[0][0])}

    def _restore(
        self, s: Connection, target: BackfillTarget, pre_name: str, record: Any
    ) -> dict[str, int]:
        marks = s.quote(METADATA_SCHEMA, pre_name + MARKS_SUFFIX)
        if not s.table_columns(METADATA_SCHEMA, pre_name + MARKS_SUFFIX):
            return {"partitions": 0, "rows_restored": 0}
        p = s.param()
        seqs = {int(r[0]) for r in s.query(f"SELECT seq FROM {marks}").rows}
        # No pre-image table: the target did not exist before, every window was empty.
        kept = s.table_columns(METADATA_SCHEMA, pre_name)
        pre = s.quote(METADATA_SCHEMA, pre_name)
        cols = ", ".join(s.quote(c) for c in kept if c != "_backfill_seq")
        deleted = deleted_rows(s, target, pre_name)
        restored = 0
        with s.transaction():
            # Latest first, so the earliest pre-image — the state before the backfill — wins.
            for part in sorted(record.partitions, key=lambda r: -r.seq):
                if part.seq not in seqs:
                    continue
                where, params = deleted(part.seq, part.window)
                s.execute(f"DELETE FROM {target.relation(s)} WHERE {where}", params)
                if not kept:
                    continue
                s.execute(
                    f"INSERT INTO {target.relation(s)} ({cols}) SELECT {cols} FROM {pre} "
                    f"WHERE _backfill_seq = {p}",
                    (part.seq,),
                )
                restored += int(
                    s.query(
                        f"SELECT count(*) FROM {pre} WHERE _backfill_seq = {p}", (part.seq,)
                    ).rows[0][0]
                )
        return {"partitions": len(seqs), "rows_restored": restored}
