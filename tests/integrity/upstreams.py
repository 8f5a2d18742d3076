"""The upstream systems of the per-kind harness (tests/integrity/test_harness_kinds.py): one
source named ``src`` with three tables, held in a real database, files, an HTTP API or a
user's Python source.

* ``accounts`` — key ``id``, cursor ``tick`` (files: key only): merge.
* ``events`` — cursor ``tick``, no key: append (files: no cursor, so replace).
* ``plans`` — no cursor: replace.

Every change is published whole (tables re-created, files re-written, the API's lists
swapped), so one model of what upstream holds drives every kind.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

TABLES = ("accounts", "events", "plans")


@dataclass
class Upstream:
    """What the source holds now: rows as dicts, and how the accounts columns changed."""

    accounts: dict[int, dict[str, Any]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    plans: dict[int, dict[str, Any]] = field(default_factory=dict)
    renamed: bool = False  # accounts.name is now accounts.label
    noted: bool = False  # accounts has a new column, note
    widened: bool = False  # accounts.amount holds fractions now

    def rows(self, table: str) -> list[dict[str, Any]]:
        if table == "events":
            return list(self.events)
        return list(getattr(self, table).values())

    def account_columns(self) -> list[tuple[str, str]]:
        """(column, kind) of accounts: kind is int, text or float."""
        columns = [("id", "int"), ("label" if self.renamed else "name", "text"), ("tick", "int")]
        columns.append(("amount", "float" if self.widened else "int"))
        if self.noted:
            columns.append(("note", "text"))
        return columns


COLUMNS = {
    "events": [("id", "int"), ("kind", "text"), ("tick", "int")],
    "plans": [("id", "int"), ("name", "text")],
}


def columns_of(up: Upstream, table: str) -> list[tuple[str, str]]:
    return up.account_columns() if table == "accounts" else COLUMNS[table]


class Kind:
    """One source kind's upstream. ``semantics`` says what each table keeps."""

    name = ""
    semantics: ClassVar[dict[str, str]] = {
        "accounts": "merge",
        "events": "append",
        "plans": "replace",
    }
    # a fraction in an integer column: "fail" (the load fails until a reload) or "reject"
    widening = "fail"

    def __init__(self, project: Path) -> None:
        self.project = project
        self.env: dict[str, str] = {}
        self.reachable = True

    def start(self, stack: ExitStack) -> None:
        """Start what the source needs (a server, a database)."""

    def entry(self) -> dict[str, Any]:
        raise NotImplementedError

    def publish(self, up: Upstream) -> None:
        raise NotImplementedError

    def set_reachable(self, reachable: bool) -> None:
        self.reachable = reachable


# ---------------------------------------------------------------- sql_database


_SQL_TYPES = {"int": "BIGINT", "text": "VARCHAR(40)", "float": "DOUBLE PRECISION"}


class SqlKind(Kind):
    def __init__(self, project: Path, url: str, name: str) -> None:
        super().__init__(project)
        self.name = name
        self.url = url
        self.env = {"SRC_URL": url}

    def entry(self) -> dict[str, Any]:
        return {
            "kind": "sql_database",
            "connection": {"secret": "SRC_URL"},
            "tables": {
                "accounts": {"primary_key": "id", "cursor": "tick"},
                "events": {"cursor": "tick", "append": True},
                "plans": {"primary_key": "id"},
            },
        }

    def publish(self, up: Upstream) -> None:
        import sqlalchemy

        engine = sqlalchemy.create_engine(self.url)
        try:
            with engine.begin() as conn:
                for table in TABLES:
                    columns = columns_of(up, table)
                    kinds = {c: k for c, k in columns}
                    conn.execute(sqlalchemy.text(f"DROP TABLE IF EXISTS {table}"))
                    spec = ", ".join(
                        f"{c} {_SQL_TYPES[k]}{' PRIMARY KEY' if c == 'id' and table != 'events' else ''}"
                        for c, k in columns
                    ).replace("DOUBLE PRECISION", self._double())
                    conn.execute(sqlalchemy.text(f"CREATE TABLE {table} ({spec})"))
                    rows = up.rows(table)
                    if rows:
                        names = [c for c, _ in columns]
                        conn.execute(
                            sqlalchemy.text(
                                f"INSERT INTO {table} ({', '.join(names)}) VALUES "
                                f"({', '.join(':' + n for n in names)})"
                            ),
                            [{n: _cast(r.get(n), kinds[n]) for n in names} for r in rows],
                        )
        finally:
            engine.dispose()
        self.set_reachable(self.reachable)

    def _double(self) -> str:
        return "DOUBLE" if self.url.startswith("mysql") else "DOUBLE PRECISION"

    def set_reachable(self, reachable: bool) -> None:
        self.reachable = reachable
        if reachable:
            self.env["SRC_URL"] = self.url
        elif self.url.startswith("sqlite"):
            self.env["SRC_URL"] = self.url + ".gone"  # a missing file: an error, nothing made
        else:  # a port nobody listens on
            scheme, rest = self.url.split("://", 1)
            user, _, path = rest.partition("@")
            self.env["SRC_URL"] = f"{scheme}://{user}@127.0.0.1:9/{path.split('/', 1)[1]}"


def _cast(value: Any, kind: str) -> Any:
    if value is None:
        return None
    return float(value) if kind == "float" else value


# ---------------------------------------------------------------- filesystem


class FilesKind(Kind):
    semantics: ClassVar[dict[str, str]] = {
        "accounts": "merge",
        "events": "replace",
        "plans": "replace",
    }

    def __init__(self, project: Path, fmt: str) -> None:
        super().__init__(project)
        self.name = fmt
        self.fmt = fmt
        self.folder = project / "sources/files"
        self.mtime = 1_700_000_000.0
        self.widening = "reject" if fmt == "csv" else "fail"

    def entry(self) -> dict[str, Any]:
        ext = self.fmt
        return {
            "kind": "filesystem",
            "url": "sources/files",
            "tables": {
                "accounts": {"glob": f"accounts.{ext}", "primary_key": "id"},
                "events": {"glob": f"events.{ext}"},
                "plans": {"glob": f"plans.{ext}"},
            },
        }

    def publish(self, up: Upstream) -> None:
        folder = self.folder if self.reachable else self.folder.with_name("files.away")
        folder.mkdir(parents=True, exist_ok=True)
        for table in TABLES:
            path = folder / f"{table}.{self.fmt}"
            data = self._encode(columns_of(up, table), up.rows(table))
            if path.exists() and path.read_bytes() == data:
                continue
            path.write_bytes(data)
            self.mtime += 10  # dlt finds changed files by modification time
            os.utime(path, (self.mtime, self.mtime))

    def _encode(self, columns: list[tuple[str, str]], rows: list[dict[str, Any]]) -> bytes:
        names = [c for c, _ in columns]
        if self.fmt == "csv":
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerow(names)
            writer.writerows([["" if r.get(n) is None else r[n] for n in names] for r in rows])
            return buffer.getvalue().encode()
        if self.fmt == "jsonl":
            kinds = dict(columns)
            return "".join(
                json.dumps({n: _cast(r.get(n), kinds[n]) for n in names}) + "\n" for r in rows
            ).encode()
        import pyarrow as pa
        import pyarrow.parquet as pq

        types = {"int": pa.int64(), "text": pa.string(), "float": pa.float64()}
        schema = pa.schema([(c, types[k]) for c, k in columns])
        table = pa.Table.from_pylist(
            [{n: _cast(r.get(n), k) for n, k in columns} for r in rows], schema=schema
        )
        sink = io.BytesIO()
        pq.write_table(table, sink)
        return sink.getvalue()

    def set_reachable(self, reachable: bool) -> None:
        away = self.folder.with_name("files.away")
        if reachable and away.exists():
            away.rename(self.folder)
        elif not reachable and self.folder.exists():
            self.folder.rename(away)
        self.reachable = reachable


# ---------------------------------------------------------------- rest_api


class RestKind(Kind):
    name = "rest"

    def start(self, stack: ExitStack) -> None:
        from tests.ingest.api_server import TOKEN, ApiState, serve

        self.state = ApiState(page_size=3, since_inclusive=True, cursor_field="tick")
        self.url = stack.enter_context(serve(self.state))
        self.env = {"SRC_TOKEN": TOKEN}

    def entry(self) -> dict[str, Any]:
        endpoint = {"data_selector": "data"}
        return {
            "kind": "rest_api",
            "base_url": self.url,
            "auth": {"type": "bearer", "token": {"secret": "SRC_TOKEN"}},
            "paginator": {
                "type": "page_number", "page_param": "page", "base_page": 1,
                "total_path": "total_pages",
            },
            "retries": {"max_attempts": 2, "backoff_seconds": 0.01, "jitter_seconds": 0.01},
            "endpoints": {
                "accounts": {**endpoint, "path": "/accounts", "primary_key": "id",
                             "cursor": "tick", "cursor_param": "since"},
                "events": {**endpoint, "path": "/events", "cursor": "tick",
                           "cursor_param": "since", "append": True},
                "plans": {**endpoint, "path": "/plans"},
            },
        }  # fmt: skip

    def publish(self, up: Upstream) -> None:
        for table in TABLES:
            kinds = dict(columns_of(up, table))
            self.state.tables[table] = [
                {n: _cast(v, kinds[n]) for n, v in r.items() if n in kinds} for r in up.rows(table)
            ]

    def set_reachable(self, reachable: bool) -> None:
        self.reachable = reachable
        self.state.always_500 = not reachable


# ---------------------------------------------------------------- python

_PYTHON_SOURCE = '''\
"""A user's own source: reads what upstream.json holds."""
import json
from pathlib import Path

import dlt

HERE = Path(__file__).parent


def _rows(table):
    return json.loads((HERE / "upstream.json").read_text())[table]


@dlt.source
def src():
    @dlt.resource(primary_key="id", write_disposition="merge")
    def accounts(tick=dlt.sources.incremental("tick")):
        yield _rows("accounts")

    @dlt.resource(write_disposition="append")
    def events(tick=dlt.sources.incremental("tick")):
        yield _rows("events")

    @dlt.resource(write_disposition="replace")
    def plans():
        yield _rows("plans")

    return accounts, events, plans
'''


class PythonKind(Kind):
    name = "python"

    def entry(self) -> dict[str, Any]:
        path = self.project / "sources/src.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_PYTHON_SOURCE)
        return {"kind": "python", "path": "sources/src.py", "function": "src"}

    def publish(self, up: Upstream) -> None:
        data = {
            t: [
                {n: _cast(r.get(n), k) for n, k in columns_of(up, t) if r.get(n) is not None}
                for r in up.rows(t)
            ]
            for t in TABLES
        }
        target = self.project / "sources/upstream.json"
        (target if self.reachable else target.with_suffix(".away")).write_text(json.dumps(data))

    def set_reachable(self, reachable: bool) -> None:
        here, away = self.project / "sources/upstream.json", self.project / "sources/upstream.away"
        if reachable and away.exists():
            away.rename(here)
        elif not reachable and here.exists():
            here.rename(away)
        self.reachable = reachable


def rows_of(project: Path, table: str) -> Iterator[dict[str, Any]]:
    """The warehouse's ``src.TABLE`` as dicts without dlt's and stackyard's load columns."""
    import duckdb

    con = duckdb.connect(str(project / ".stackyard/dev.duckdb"), read_only=True)
    try:
        found = con.sql(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = 'src' "
            f"AND table_name = '{table}'"
        ).fetchall()
        if not found:
            return
        result = con.sql(f"SELECT * FROM src.{table}")
        names = result.columns
        for values in result.fetchall():
            yield {
                n: v
                for n, v in zip(names, values, strict=True)
                if not n.startswith("_dlt") and n != "_loaded_at"
            }
    finally:
        con.close()


def open_kind(name: str, project: Path, stack: ExitStack, server_url: Any = None) -> Kind:
    """The upstream of a kind, started. ``server_url``: a database URL for sqlite/postgres/
    mariadb (made by the test's fixtures)."""
    kind: Kind
    if name in ("sqlite", "postgres", "mariadb"):
        kind = SqlKind(project, server_url, name)
    elif name in ("csv", "jsonl", "parquet"):
        kind = FilesKind(project, name)
    elif name == "rest":
        kind = RestKind(project)
    else:
        kind = PythonKind(project)
    kind.start(stack)
    return kind
