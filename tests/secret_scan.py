"""The secrets scan end-to-end tests use: every output, every file under the project and the
warehouse's history and dlt tables are searched for the test's secrets when the test ends.

    def test_x(secret_scan, tmp_path):
        secret_scan.secret(TOKEN)
        secret_scan.project(root)          # files, and the DuckDB file's tables
        secret_scan.postgres(pg_database)  # the target database's tables
        result = runner.invoke(...)
        secret_scan.output(result.output)

The only file allowed to hold a secret is ``.stackyard/secrets.toml`` (and private keys under
``.stackyard/keys``, which are secrets themselves, not copies of the test's).
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ALLOWED = (".stackyard/secrets.toml",)
MAX_ROWS = 10_000


class SecretScan:
    """What one test registered: its secrets and where to look for them."""

    def __init__(self) -> None:
        self.secrets: set[str] = set()
        self.outputs: list[str] = []
        self.roots: list[Path] = []
        self.pg: list[dict[str, object]] = []

    def secret(self, *values: str) -> None:
        """Values that must not appear anywhere (at least 6 characters each)."""
        assert all(len(v) >= 6 for v in values), "too short to search for reliably"
        self.secrets.update(values)

    def output(self, *texts: str) -> None:
        """Something stackyard printed or returned."""
        self.outputs.extend(texts)

    def project(self, root: Path) -> None:
        """A project folder: every file in it, and the tables of each DuckDB file."""
        self.roots.append(root)

    def postgres(self, database: dict[str, object]) -> None:
        """A Postgres database (``pg_database``'s dict): every table's rows."""
        self.pg.append(database)

    def leaks(self) -> list[str]:
        """Where a secret was found, as ``place: secret-prefix…``."""
        found: list[str] = []
        for index, text in enumerate(self.outputs):
            found += [f"output #{index}: {s[:3]}…" for s in self.secrets if s in text]
        for root in self.roots:
            for path in sorted(root.rglob("*")):
                rel = path.relative_to(root).as_posix()
                if not path.is_file() or path.is_symlink() or rel in ALLOWED:
                    continue
                data = path.read_bytes()
                found += [f"{rel}: {s[:3]}…" for s in self.secrets if s.encode() in data]
                if path.suffix == ".duckdb":
                    found += self._duckdb(path, rel)
        for database in self.pg:
            found += self._postgres(database)
        return found

    def _search(self, where: str, rows: list[tuple[Any, ...]]) -> list[str]:
        text = repr(rows) + "".join(_unpacked(v) for row in rows for v in row)
        return [f"{where}: {s[:3]}…" for s in self.secrets if s in text]

    def _duckdb(self, path: Path, rel: str) -> list[str]:
        import duckdb

        found: list[str] = []
        try:
            con = duckdb.connect(str(path), read_only=True)
        except duckdb.Error:
            return found  # held open by the test itself; its files were searched
        with con:
            tables = con.sql(
                "select table_schema, table_name from information_schema.tables"
            ).fetchall()
            for schema, table in tables:
                rows = con.sql(f'select * from "{schema}"."{table}" limit {MAX_ROWS}').fetchall()
                found += self._search(f"{rel} {schema}.{table}", rows)
        return found

    def _postgres(self, database: dict[str, object]) -> list[str]:
        import psycopg

        found: list[str] = []
        with psycopg.connect(
            host=str(database["host"]),
            port=int(str(database["port"])),
            user=str(database["user"]),
            dbname=str(database["database"]),
        ) as conn:
            tables = conn.execute(
                "select table_schema, table_name from information_schema.tables "
                "where table_schema not in ('pg_catalog', 'information_schema')"
            ).fetchall()
            for schema, table in tables:
                rows = conn.execute(
                    f'select * from "{schema}"."{table}" limit {MAX_ROWS}'
                ).fetchall()
                found += self._search(f"postgres {schema}.{table}", rows)
        return found


def _unpacked(value: Any) -> str:
    """dlt keeps pipeline state base64-encoded and zlib-compressed: search it decoded."""
    if not isinstance(value, str) or len(value) < 16:
        return ""
    try:
        return zlib.decompress(base64.b64decode(value, validate=True)).decode("utf-8", "replace")
    except (ValueError, zlib.error):
        return ""


@pytest.fixture()
def secret_scan() -> Iterator[SecretScan]:
    """A :class:`SecretScan`; the test fails at teardown if any secret leaked."""
    scan = SecretScan()
    yield scan
    leaks = scan.leaks()
    assert not leaks, "test secrets leaked into: " + "; ".join(leaks)
