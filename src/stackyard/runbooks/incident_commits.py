"""The git commits that touched a lineage node's files, for ``stackyard incident trace``."""

from __future__ import annotations

import subprocess
from pathlib import Path

from stackyard.lineage.graph import ColumnGraph


def recent_commits(
    graph: ColumnGraph, node: str, transform_dir: Path, project_dir: Path
) -> list[tuple[str, str]]:
    """``(sha subject (author), authored at)`` of the last five commits touching the node's
    own file (a model's SQL, a source's YAML) or the models that read it directly; none
    outside a git repository."""
    info = graph.nodes.get(node)
    if info is None:
        return []
    manifest = graph.manifest
    files: set[str] = set()
    entry = (manifest.get("sources") or {}).get(info.unique_id) or (
        manifest.get("nodes") or {}
    ).get(info.unique_id)
    if entry and entry.get("original_file_path"):
        files.add(str(entry["original_file_path"]))
    for child, parents in graph.table_parents.items():
        if node in parents and graph.nodes[child].path:
            files.add(graph.nodes[child].path)
    paths = [str(transform_dir / f) for f in sorted(files)]
    done = subprocess.run(
        ["git", "log", "-n", "5", "--format=%h%x1f%an%x1f%aI%x1f%s", "--", *paths],
        cwd=project_dir,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        return []
    out = []
    for line in done.stdout.splitlines():
        sha, author, at, subject = [*line.split("\x1f"), "", "", ""][:4]
        out.append((f"{sha} {subject} ({author})", at))
    return out
