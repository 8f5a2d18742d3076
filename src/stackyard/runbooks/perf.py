"""The performance runbook: ``stackyard perf``.

Read-only. From run history in the ``stackyard`` schema: the slowest models and their trend
(the last run against the median of the runs before it), and each source's load time with
its trend and rows per run. From dbt's manifest and the warehouse: models materialized as
tables that read far more rows than they write (candidates for ``incremental``), and
partition and cluster keys suggested by the columns that downstream SQL filters and joins
the table on.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from typing import Any

from stackyard.runbooks.backup import ProjectFiles
from stackyard.warehouse.base import Warehouse

# A model reading at least this many times the rows it writes, and this many rows, is listed.
SCAN_RATIO = 10.0
SCAN_MIN_ROWS = 10_000


@dataclass(frozen=True)
class Timing:
    """How long one model (or source) took over recent runs.

    Attributes:
        name: the model or source.
        runs: how many runs it appeared in.
        last_seconds: its time in the most recent run.
        mean_seconds: its mean time over those runs.
        trend: last / median of the runs before it (1.0 = steady; None with one run).
        verdict: ``slower`` (trend ≥ 1.5), ``faster`` (≤ 0.67), ``steady`` or ``new``.
    """

    name: str
    runs: int
    last_seconds: float
    mean_seconds: float
    trend: float | None
    verdict: str


@dataclass(frozen=True)
class ScanRatio:
    """A table model that reads far more rows than it writes (a candidate for
    ``incremental``).

    Attributes:
        model: the model.
        materialized: how dbt builds it.
        rows_read: the rows of the relations it selects from.
        rows_written: its own rows.
        ratio: read / written.
        reads: the relations it reads.
    """

    model: str
    materialized: str
    rows_read: int
    rows_written: int
    ratio: float
    reads: tuple[str, ...]


@dataclass(frozen=True)
class KeySuggestion:
    """Partition and cluster keys for a table, from how downstream SQL filters it.

    Attributes:
        table: the relation (``schema.table``).
        partition_by: the date/time column filtered most, if any.
        cluster_by: the other columns filtered or joined on most (up to 3).
        filters: how many filter/join predicates name its columns.
        used_by: the models whose SQL they come from.
    """

    table: str
    partition_by: str | None
    cluster_by: tuple[str, ...]
    filters: int
    used_by: tuple[str, ...]


@dataclass(frozen=True)
class PerfReport:
    """Everything ``stackyard perf`` found.

    Attributes:
        runs: how many runs of history were read.
        models: model timings, slowest first.
        sources: source timings (last load), slowest first.
        scans: models reading ≥ 10x what they write.
        keys: partition/cluster key suggestions.
    """

    runs: int
    models: tuple[Timing, ...]
    sources: tuple[Timing, ...]
    scans: tuple[ScanRatio, ...]
    keys: tuple[KeySuggestion, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data for ``--json``."""
        return {
            "runs": self.runs,
            "models": [asdict(t) for t in self.models],
            "sources": [asdict(t) for t in self.sources],
            "scans": [asdict(s) for s in self.scans],
            "keys": [asdict(k) for k in self.keys],
        }


def timing(name: str, seconds: list[float]) -> Timing:
    """A timing from one name's seconds, oldest run first.

    >>> timing("orders", [1.0, 1.2, 0.8, 3.0]).verdict
    'slower'
    >>> timing("orders", [2.0]).verdict
    'new'
    """
    last = seconds[-1]
    trend = None
    verdict = "new"
    if len(seconds) > 1:
        base = statistics.median(seconds[:-1])
        trend = round(last / base, 2) if base > 0 else None
        verdict = "steady"
        if trend is not None and trend >= 1.5:
            verdict = "slower"
        elif trend is not None and trend <= 0.67:
            verdict = "faster"
    return Timing(
        name, len(seconds), round(last, 3), round(statistics.fmean(seconds), 3), trend, verdict
    )


class Perf:
    """Reads history, manifest and warehouse for one target.

    Args:
        files: the project's folders and config.
        warehouse: the target's warehouse.
    """

    def __init__(self, files: ProjectFiles, warehouse: Warehouse) -> None:
        self.files = files
        self.warehouse = warehouse

    def report(self, runs: int = 20) -> PerfReport:
        """The report over the last ``runs`` runs."""
        run_ids, models = self._model_timings(runs)
        manifest = self._manifest()
        return PerfReport(
            runs=len(run_ids),
            models=models,
            sources=self._source_timings(runs),
            scans=self._scans(manifest),
            keys=self._keys(manifest),
        )

    # ------------------------------------------------------------------ history

    def _model_timings(self, runs: int) -> tuple[list[str], tuple[Timing, ...]]:
        from stackyard.metadata.history import History

        run_ids, rows = History(self.warehouse).model_seconds(runs)
        order = {run_id: i for i, run_id in enumerate(run_ids)}
        by_model: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for run_id, name, seconds in rows:
            by_model[name].append((order[run_id], seconds))
        timings = [timing(name, [s for _, s in sorted(v)]) for name, v in by_model.items()]
        return run_ids, tuple(sorted(timings, key=lambda t: -t.last_seconds))

    def _source_timings(self, runs: int) -> tuple[Timing, ...]:
        # From the run history's load steps: dlt's own trace is not kept (it can hold
        # secrets), and the history has every run, not only the last.
        from stackyard.metadata.history import History

        by_source: dict[str, list[float]] = defaultdict(list)
        for _, source, seconds in History(self.warehouse).source_seconds(runs):
            by_source[source].append(seconds)
        found = [timing(source, series) for source, series in by_source.items()]
        return tuple(sorted(found, key=lambda t: -t.last_seconds))

    # ------------------------------------------------------------------ manifest

    def _manifest(self) -> dict[str, Any]:
        path = self.files.transform_dir / "target" / "manifest.json"
        if not path.is_file():
            return {"nodes": {}, "sources": {}}
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data

    def _relation(self, node: dict[str, Any]) -> str | None:
        if not node.get("relation_name"):
            return None
        return f"{node['schema']}.{node.get('alias') or node.get('identifier') or node['name']}"

    def _parents(self, manifest: dict[str, Any], unique_id: str) -> set[str]:
        """The relations a node reads, looking through ephemeral models."""
        nodes = {**manifest["nodes"], **manifest["sources"]}
        found: set[str] = set()
        for parent in nodes.get(unique_id, {}).get("depends_on", {}).get("nodes", []):
            node = nodes.get(parent)
            if node is None:
                continue
            relation = self._relation(node)
            if relation is None:
                found |= self._parents(manifest, parent)
            else:
                found.add(relation)
        return found

    def _count(self, relation: str) -> int:
        schema, table = relation.split(".", 1)
        return int(
            self.warehouse.query(
                f"SELECT count(*) FROM {self.warehouse.quote(schema, table)}"
            ).rows[0][0]
        )

    def _scans(self, manifest: dict[str, Any]) -> tuple[ScanRatio, ...]:
        found = []
        counts: dict[str, int] = {}
        for unique_id, node in manifest["nodes"].items():
            materialized = node.get("config", {}).get("materialized")
            relation = self._relation(node)
            # Only a table rebuilds all of its history each run: an incremental model is what
            # the report would suggest already.
            if node["resource_type"] != "model" or materialized != "table":
                continue
            if relation is None:
                continue
            reads = sorted(self._parents(manifest, unique_id))
            for name in [relation, *reads]:
                if name not in counts:
                    counts[name] = self._count(name)
            read = sum(counts[r] for r in reads)
            written = counts[relation]
            ratio = read / max(written, 1)
            if ratio >= SCAN_RATIO and read >= SCAN_MIN_ROWS:
                found.append(
                    ScanRatio(
                        node["name"], materialized, read, written, round(ratio, 1), tuple(reads)
                    )
                )
        return tuple(sorted(found, key=lambda s: -s.ratio))

    def _keys(self, manifest: dict[str, Any]) -> tuple[KeySuggestion, ...]:
        """Columns of each relation that downstream compiled SQL filters or joins on."""
        import sqlglot
        from sqlglot import exp

        uses: dict[str, Counter[str]] = defaultdict(Counter)
        users: dict[str, set[str]] = defaultdict(set)
        for node in manifest["nodes"].values():
            sql = node.get("compiled_code")
            if node["resource_type"] != "model" or not sql:
                continue
            try:
                tree = sqlglot.parse_one(sql, read=self.warehouse.DIALECT)
            except sqlglot.errors.ParseError:
                continue
            # dbt's import CTEs (`orders as (select * from "db"."marts"."orders")`) stand
            # for the relation they select from.
            ctes = {}
            for cte in tree.find_all(exp.CTE):
                tables = list(cte.this.find_all(exp.Table))
                if len(tables) == 1 and tables[0].db and cte.this.is_star:
                    ctes[cte.alias] = f"{tables[0].db}.{tables[0].name}"
            for select in tree.find_all(exp.Select):
                aliases = {}
                for table in select.find_all(exp.Table):
                    if table.find_ancestor(exp.Select) is not select:
                        continue
                    relation = f"{table.db}.{table.name}" if table.db else ctes.get(table.name)
                    if relation:
                        aliases[table.alias_or_name] = relation
                predicates = [w.this for w in select.find_all(exp.Where) if w.parent is select]
                predicates += [
                    j.args["on"] for j in select.args.get("joins", []) if j.args.get("on")
                ]
                for predicate in predicates:
                    for column in predicate.find_all(exp.Column):
                        relation = (
                            aliases.get(column.table)
                            if column.table
                            else (next(iter(aliases.values())) if len(aliases) == 1 else None)
                        )
                        if relation:
                            uses[relation][column.name] += 1
                            users[relation].add(node["name"])
        # Views and ephemeral models store nothing to partition: only tables and sources.
        stored = {
            self._relation(n)
            for n in manifest["nodes"].values()
            if n.get("config", {}).get("materialized") in ("table", "incremental", "seed")
        } | {self._relation(n) for n in manifest["sources"].values()}
        suggestions = []
        for relation, columns in sorted(uses.items()):
            if relation not in stored:
                continue
            schema, name = relation.split(".", 1)
            types = self.warehouse.table_columns(schema, name)
            if not types:
                continue
            ranked = [c for c, _ in columns.most_common() if c in types]
            dated = [c for c in ranked if types[c].upper().startswith(("DATE", "TIMESTAMP"))]
            partition = dated[0] if dated else None
            cluster = tuple(c for c in ranked if c != partition)[:3]
            suggestions.append(
                KeySuggestion(
                    relation,
                    partition,
                    cluster,
                    sum(columns.values()),
                    tuple(sorted(users[relation])),
                )
            )
        return tuple(sorted(suggestions, key=lambda k: -k.filters))


def read_perf(files: ProjectFiles, warehouse: Warehouse, runs: int) -> PerfReport:
    """The perf report of a target (the Context's entry point)."""
    return Perf(files, warehouse).report(runs)


__all__ = ["KeySuggestion", "PerfReport", "ScanRatio", "Timing", "read_perf"]
