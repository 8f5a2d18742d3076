"""Asking a source whether it has anything new before building a dlt pipeline for it.

Building and running a dlt pipeline that then finds nothing new costs about half a second per
source (importing dlt, its state, schema and package bookkeeping). Some sources can say for
much less whether a load could bring anything:

- ``filesystem`` on a local folder: the name, size and modification time of every file under
  the folder (a ``stat`` per file, no file is opened). dlt reads only matching files, so any
  change anywhere in the folder counts as new.
- ``filesystem`` tables all need a key: a table without one is replaced on every load.
- ``sql_database`` on SQLite, when every table has a cursor and keeps deleted rows (merged on
  a key or appended): per table the row count, the highest cursor value compared as dlt
  compares it, and a digest of every row at that value (two queries per table through
  Python's own ``sqlite3``). dlt's incremental load reads rows whose cursor is above its last
  value, or at it and not loaded yet; either changes one of the three (see
  :func:`_table_state`).

Every other source (remote buckets, server databases, REST, streams, Python) is always loaded.

A probe's answer is kept in ``.stackyard/probes.json`` per target and source, with the run that
loaded the source. A source is skipped only when its probe equals the kept one *and* that run
is the latest run recorded in the target's own history — so a restored, recreated or
diverging warehouse (whose latest run is another one) is always loaded — *and* every table the
source's schema held then is still there: a table dropped by hand is not skipped over, the
load finds it missing and says to reload it. The entry is removed
before every real load and written again only once the load succeeded: a load that is
interrupted leaves no entry, and the next run loads.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stackyard.config.private import FILE_MODE, private_dir
from stackyard.config.secrets import Secrets
from stackyard.config.sources import FilesystemSource, SourceBase, SqlDatabaseSource
from stackyard.errors import StackyardError
from stackyard.results import SourceLoad

if TYPE_CHECKING:
    from stackyard.ingest.loader import Loader, LoadRequest

PROBES_FILE = "probes.json"


def probe(name: str, config: SourceBase, project_dir: Path, secrets: Secrets) -> str | None:
    """A digest of what a load of this source could read, or ``None`` when the kind cannot
    tell without loading.

    Args:
        name: the source's name in stackyard.yml.
        config: its config model (part of the digest: a changed entry always loads).
        project_dir: the project folder; relative paths are resolved against it.
        secrets: resolves a connection given as a secret.

    Returns:
        A hex digest; equal digests mean the load would find nothing new.
    """
    state: Any
    if isinstance(config, FilesystemSource):
        state = _files_state(config, project_dir)
    elif isinstance(config, SqlDatabaseSource):
        state = _sqlite_state(name, config, project_dir, secrets)
    else:
        return None
    if state is None:
        return None
    payload = {"config": config.model_dump(mode="json", by_alias=True), "state": state}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _files_state(config: FilesystemSource, project_dir: Path) -> list[Any] | None:
    if "://" in config.url or config.credentials:
        return None  # a bucket: listing it is most of what dlt's load costs anyway
    if not all(t.primary_key for t in config.tables.values()):
        # A table without a key is replaced from all its files on every load (new load id,
        # new _loaded_at, the rows counted as loaded): only dlt does that.
        return None
    folder = (project_dir / config.url).resolve()
    if not folder.is_dir():
        return None  # let the load say what is wrong
    files = []
    for root, _dirs, names in os.walk(folder):
        for file in names:
            path = Path(root) / file
            info = path.stat()
            files.append((str(path.relative_to(folder)), info.st_size, info.st_mtime_ns))
    return sorted(files)


# Rows at the highest cursor value hashed at most; beyond it the probe cannot tell cheaply.
MAX_BOUNDARY_ROWS = 100_000


def _sqlite_state(
    name: str, config: SqlDatabaseSource, project_dir: Path, secrets: Secrets
) -> list[Any] | None:
    from stackyard.ingest.sources import connection_url

    tables = config.tables.values()
    if config.source_schema or not all(t.cursor and t.deletes == "keep" for t in tables):
        return None
    url = connection_url(name, config, project_dir, secrets)
    if not url.startswith("sqlite:///") or "?" in url:
        return None
    path = url.removeprefix("sqlite:///")
    state = []
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        for table_name, table in config.tables.items():
            source = table.source_table or table_name
            declared = {
                str(column): str(kind).upper()
                for column, kind in connection.execute(
                    "SELECT name, type FROM pragma_table_info(?)", (source,)
                )
            }
            if table.cursor not in declared:
                # SQLite reads an unknown "name" as a string: the load reports it properly
                return None
            kind = declared[str(table.cursor)]
            timestamp = "DATE" in kind or "TIME" in kind
            found = _table_state(connection, _quote(source), _quote(str(table.cursor)), timestamp)
            if found is None:
                return None
            state.append((table_name, *found))
    except sqlite3.Error:
        return None  # a missing table or column: the load reports it properly
    finally:
        connection.close()
    return state


def _table_state(
    connection: sqlite3.Connection, source: str, cursor: str, timestamp: bool
) -> tuple[Any, ...] | None:
    """The row count, the highest cursor value and a digest of every row at it, as dlt
    compares cursor values; ``None`` when the column holds values the probe cannot order.

    dlt's incremental load reads the rows at or above its last cursor value and drops those
    at it already loaded (by key; an ``append`` table's by the count of copies of each
    content, :mod:`stackyard.ingest.boundary_copies`). So a
    load can bring something only if a row was added (the count), a row moved above the
    highest value (the highest value), or a row at the highest value was added, changed or
    moved there (the digest of those rows, compared whole, whatever dlt hashes).

    Timestamps in SQLite are text, which dlt reads as times and compares as times
    (:mod:`.sqlite_cursor`): the highest is found through ``julianday`` among the rows whose
    text is at most three days below the highest text (the load's own filter reads no
    further back than a day), and the rows "at" it are those within the load's margin, or
    at or above the highest text, or not readable as a time. Each query is answered from an
    index on the cursor when there is one.
    """
    from stackyard.ingest.sqlite_cursor import MARGIN_DAYS

    def one(sql: str, *args: Any) -> Any:
        return connection.execute(sql, args).fetchone()[0]

    count = one(f"SELECT count(*) FROM {source}")
    highest = one(f"SELECT max({cursor}) FROM {source}")
    if highest is None:
        return count, None, None, 0, ""
    # SQLite orders numbers before text before blobs, Python does not compare them at all:
    # the lowest and highest values of one kind mean every value is of that kind.
    if _kind(one(f"SELECT min({cursor}) FROM {source}")) != _kind(highest):
        return None
    highest_time = None
    if timestamp:
        if not isinstance(highest, str):
            return None
        try:
            start = (date.fromisoformat(highest[:10]) - timedelta(days=3)).isoformat()
        except ValueError:
            return None
        time = f"julianday({cursor})"
        highest_time = one(f"SELECT max({time}) FROM {source} WHERE {cursor} >= ?", start)
        if highest_time is None:
            return None
        at_highest = f"{cursor} >= ? AND ({cursor} >= ? OR {time} IS NULL OR {time} >= ?)"
        bounds: list[Any] = [start, highest, highest_time - MARGIN_DAYS]
    else:
        at_highest, bounds = f"{cursor} >= ?", [highest]
    rows = connection.execute(
        f"SELECT * FROM {source} WHERE {at_highest} LIMIT {MAX_BOUNDARY_ROWS + 1}", bounds
    ).fetchall()
    if len(rows) > MAX_BOUNDARY_ROWS:
        return None
    digest = hashlib.sha256("\n".join(sorted(map(repr, rows))).encode()).hexdigest()
    return count, highest, highest_time, len(rows), digest


def _kind(value: Any) -> str:
    """A value's kind as SQLite orders kinds.

    >>> _kind(1), _kind(1.5), _kind("a"), _kind(b"a")
    ('number', 'number', 'text', 'blob')
    """
    if isinstance(value, int | float):
        return "number"
    return "text" if isinstance(value, str) else "blob"


def _quote(identifier: str) -> str:
    """A SQLite identifier, quoted.

    >>> print(_quote('a"b'))
    "a""b"
    """
    return '"' + identifier.replace('"', '""') + '"'


class ProbeStore:
    """The kept probes of one target:
    ``{source: {"probe": digest, "run_id": run, "tables": [tables of its schema then]}}``."""

    def __init__(self, project_dir: Path, target: str) -> None:
        self.path = private_dir(project_dir) / PROBES_FILE
        self.target = target
        self._lock = threading.Lock()

    def unchanged(
        self,
        source: str,
        digest: str | None,
        latest_run: str | None,
        tables_now: Callable[[], Sequence[str]],
    ) -> bool:
        """Whether ``source`` can be skipped: same probe as kept, kept by the latest run, and
        none of the tables its schema held then is gone (``tables_now`` lists them now)."""
        if digest is None or latest_run is None:
            return False
        kept = self._read().get(self.target, {}).get(source)
        if not kept or kept.get("probe") != digest or kept.get("run_id") != latest_run:
            return False
        tables = kept.get("tables")
        return isinstance(tables, list) and set(tables) <= set(tables_now())

    def forget(self, source: str) -> None:
        """Drop a source's entry (before a real load, so an interrupted one leaves none)."""
        self._update(source, None)

    def keep(self, source: str, digest: str | None, run_id: str, tables: Sequence[str]) -> None:
        """Keep a source's probe after a successful load (or skip) in run ``run_id``, with the
        tables its schema holds."""
        entry = {"probe": digest, "run_id": run_id, "tables": sorted(tables)}
        self._update(source, entry if digest else None)

    def _read(self) -> dict[str, dict[str, dict[str, Any]]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # none yet, or unreadable: everything loads
        return data if isinstance(data, dict) else {}

    def _update(self, source: str, entry: dict[str, Any] | None) -> None:
        with self._lock:
            data = self._read()
            sources = data.setdefault(self.target, {})
            if entry is None:
                if sources.pop(source, None) is None:
                    return
            else:
                sources[source] = entry
            temporary = self.path.with_suffix(".tmp")
            temporary.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
            os.chmod(temporary, FILE_MODE)
            os.replace(temporary, self.path)


class SourceProbes:
    """The "anything new?" check of one :meth:`Loader.load` (see the module docstring).

    Without a ``run_id`` (a load outside ``stackyard run``) nothing is skipped and the kept
    probes of the loaded sources are dropped.
    """

    def __init__(self, loader: Loader, run_id: str | None, latest_run: str | None) -> None:
        self.loader = loader
        self.run_id = run_id
        self.latest_run = latest_run
        self.store = ProbeStore(loader.project_dir, loader.warehouse.target_name)
        self.digests: dict[str, str | None] = {}

    def skip_unchanged(self, requests: Sequence[LoadRequest]) -> dict[str, SourceLoad]:
        """Results for the sources with nothing new; every other one's kept probe is dropped
        before it loads, so an interrupted load leaves none behind."""
        skipped = {}
        for request in requests:
            digest = None
            if request.refresh is None and self.run_id is not None:
                try:
                    digest = probe(
                        request.name, request.config, self.loader.project_dir, self.loader.secrets
                    )
                except (StackyardError, OSError):
                    digest = None  # the load itself says what is wrong
            self.digests[request.name] = digest
            tables_now = partial(self.loader.warehouse.tables_in, request.dataset)
            if self.store.unchanged(request.name, digest, self.latest_run, tables_now):
                skipped[request.name] = self._unchanged(request)
            else:
                self.store.forget(request.name)
        return skipped

    def keep(self, loads: Sequence[SourceLoad]) -> dict[str, SourceLoad]:
        """Keep the probe of every source that loaded (or had nothing new) in this run.

        Returns:
            The loads by source name.
        """
        for load in loads:
            digest = self.digests.get(load.source)
            if load.status == "loaded" and self.run_id is not None:
                tables = self.loader.warehouse.tables_in(load.schema) if digest else []
                self.store.keep(load.source, digest, self.run_id, tables)
        return {load.source: load for load in loads}

    def _unchanged(self, request: LoadRequest) -> SourceLoad:
        step = f"load {request.name}"
        console = self.loader.console
        console.step_started(step, f"→ {request.dataset}")
        detail = f"nothing new since run {self.latest_run} (the source's probe is unchanged)"
        console.step_finished(step, "ok", detail)
        # As dlt reports a load that found nothing: no table written.
        return SourceLoad(source=request.name, schema=request.dataset, status="loaded")
