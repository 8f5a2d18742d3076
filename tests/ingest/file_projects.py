"""A new project with one filesystem source, for the tests of how files are read."""

from __future__ import annotations

from pathlib import Path

from stackyard.project import init_project


def file_project(tmp_path: Path, tables: str, files: dict[str, str | bytes] | None = None) -> Path:
    """A project in ``tmp_path/p`` whose source ``f`` reads ``sources/files`` with ``tables``
    (its YAML, inline), holding ``files`` (name → text or bytes)."""
    root = tmp_path / "p"
    init_project(root)
    folder = root / "sources" / "files"
    folder.mkdir(parents=True)
    for name, content in (files or {}).items():
        if isinstance(content, bytes):
            (folder / name).write_bytes(content)
        else:
            (folder / name).write_text(content)
    config = root / "stackyard.yml"
    config.write_text(
        config.read_text().replace(
            "sources: {}\n",
            f"sources:\n  f:\n    kind: filesystem\n    url: sources/files\n    tables: {tables}\n",
        )
    )
    return root


def on_postgres(root: Path, db: dict[str, object]) -> Path:
    """Point the project's dev target at the Postgres database ``db`` instead of DuckDB."""
    config = root / "stackyard.yml"
    config.write_text(
        config.read_text().replace(
            "    type: duckdb\n    path: .stackyard/dev.duckdb\n",
            f"    type: postgres\n    host: {db['host']}\n    port: {db['port']}\n"
            f"    user: {db['user']}\n    database: {db['database']}\n",
        )
    )
    return root
