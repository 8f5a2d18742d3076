"""The lineage façade the Context hands out: ``Context(...).lineage().impact("orders.id")``.

It makes sure dbt's manifest holds every model's compiled SQL (compiling in process when a
model file changed since), reads the warehouse's columns, and builds the column graph once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stackyard.lineage.diff import (
    SchemaDiff,
    built_shapes,
    describe_query,
    diff_shapes,
    gone_models,
    project_shapes,
)
from stackyard.lineage.graph import ColumnGraph, Columns, build_graph, load_manifest
from stackyard.lineage.impact import ImpactResult, LineageResult, impact, lineage
from stackyard.metadata.history import History
from stackyard.session import Session
from stackyard.transform.state import target_manifest_path
from stackyard.warehouse.base import Warehouse

# Folders of a dbt project whose files change what it compiles to.
_SOURCES = ("models", "macros", "seeds", "snapshots", "tests", "analyses")
_SKIP_SCHEMAS = ("information_schema", "pg_catalog", "stackyard")


class LineageService:
    """Column lineage, impact and the graph behind them, for one project and target.

    Args:
        session: the target's session: its warehouse (whose columns expand ``SELECT *``)
            and dbt (to compile when the manifest is stale).
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        self.target = session.target
        self.transform_dir = session.project.transform_dir
        self.warehouse = session.warehouse
        self._graph: ColumnGraph | None = None

    def graph(self) -> ColumnGraph:
        """The project's column lineage (compiled first when the manifest is stale)."""
        if self._graph is None:
            manifest = self.compiled_manifest()
            columns = warehouse_columns(self.warehouse)
            catalog_path = target_manifest_path(self.transform_dir, self.target, "catalog.json")
            catalog = (
                json.loads(catalog_path.read_text(encoding="utf-8"))
                if catalog_path.is_file()
                else None
            )
            self._graph = build_graph(
                manifest, columns, self.warehouse.DIALECT, catalog, self.transform_dir
            )
        return self._graph

    def compiled_manifest(self) -> dict[str, Any]:
        """dbt's manifest for this target with compiled SQL for every model; compiles when
        it is stale, or when dbt last wrote one only for another target (its relations are
        that target's)."""
        manifest = load_manifest(self.transform_dir, self.target)
        if not manifest or _stale(self.transform_dir, self.target, manifest):
            dbt = self.session.dbt()
            with self.session.released():  # dbt opens the warehouse itself
                dbt.compile()
            manifest = load_manifest(self.transform_dir, self.target)
        return manifest

    def lineage(self, spec: str, direction: str = "both") -> LineageResult:
        """Columns upstream and/or downstream of ``NODE[.COLUMN]``."""
        return lineage(self.graph(), spec, direction)

    def impact(self, spec: str) -> ImpactResult:
        """What a change to ``NODE.COLUMN`` reaches downstream."""
        return impact(self.graph(), spec)

    def schema_diff(
        self,
        approves: Callable[[str, str, str], bool],
        against_ref: str | None = None,
        against_target: LineageService | None = None,
    ) -> SchemaDiff:
        """Classify how the project now differs from what is built (or from a git ref, or
        from another target's warehouse).

        A model the project no longer has, whose table a run built and the warehouse still
        holds, is a ``drop``: nobody rebuilds that table any more, and its readers read it
        stale (it was left out as unknown, and ``--check`` passed).

        Args:
            approves: ``(node, column, change) → bool``, from stackyard.yml.
            against_ref: a git ref: compare with the project as it was there.
            against_target: another target's lineage: compare with what it has built, at
                its own relations (its database and schemas: read at this target's, every
                model there looked new, and ``--check`` passed a breaking change).

        Raises:
            UsageError: the git ref does not exist or the project is not in git.
            TransformError: the project (now or at the ref) does not compile.
        """
        graph = self.graph()
        after, notes = project_shapes(graph, lambda sql: describe_query(self.warehouse, sql))
        if against_ref is not None:
            old_manifest = self._manifest_at(against_ref)
            old_graph = build_graph(
                old_manifest, warehouse_columns(self.warehouse), self.warehouse.DIALECT
            )
            before, old_notes = project_shapes(
                old_graph, lambda sql: describe_query(self.warehouse, sql)
            )
            notes += old_notes
            label = f"git {against_ref}"
        else:
            other = against_target or self
            built = warehouse_columns(other.warehouse)
            before = built_shapes(other.graph(), built)
            before.update(gone_models(other.graph(), built, History(other.warehouse).models()))
            label = other.warehouse.describe()
        return diff_shapes(before, after, graph, approves, label, tuple(notes))

    def change_subject(self, spec: str) -> tuple[str, str]:
        """The node and column a schema change of ``NODE[.COLUMN]`` is about, as ``schema
        diff`` names them, checked against the project and the warehouse.

        A column counts as known when the project outputs it or the warehouse still has it
        (the old name of a rename, a dropped column); a node when the project has it or the
        warehouse has a table of that name (a model since deleted).

        Returns:
            ``(node, column)``, ``column`` being ``*`` when only a node is given.

        Raises:
            UsageError: no such node or column (with the closest names).
        """
        from stackyard.errors import UsageError, did_you_mean

        graph = self.graph()
        built = warehouse_columns(self.warehouse)
        parts = spec.split(".")
        for cut in range(len(parts), 0, -1):
            head, rest = ".".join(parts[:cut]), parts[cut:]
            if len(rest) > 1:
                continue
            node = _node_named(graph, built, head)
            if node is None:
                continue
            if not rest or rest[0] == "*":
                return node, "*"
            info = graph.nodes.get(node)
            known = list(info.columns) if info else []
            relation = info.relation if info else next(k for k in built if k[2] == node.lower())
            known += [c for c in built.get(relation or ("", "", ""), {}) if c not in known]
            for name in known:
                if name.lower() == rest[0].lower():
                    return node, name
            raise UsageError(
                f"{node} has no column '{rest[0]}' in the project or the warehouse"
                f"{did_you_mean(rest[0], known)}: nothing approved",
                hint=f"its columns: {', '.join(known) or '(none known)'}",
            )
        names = [*graph.nodes, *{k[2] for k in built}]
        raise UsageError(
            f"'{parts[0]}' is neither a model, a source table nor a table in the warehouse"
            f"{did_you_mean(parts[0], names)}: nothing approved",
            hint="give NODE.COLUMN as `stackyard schema diff` shows it (the old column name)",
        )

    def _manifest_at(self, ref: str) -> dict[str, Any]:
        """Compile the dbt project as it is at a git ref, in a scratch folder."""
        import io
        import shutil
        import subprocess
        import tarfile
        import tempfile

        from stackyard.errors import UsageError

        top = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"],
            cwd=self.transform_dir,
            capture_output=True,
            text=True,
        )
        if top.returncode != 0:
            raise UsageError(
                f"{self.transform_dir} is not in a git repository, so --against {ref} "
                "has nothing to compare with",
                hint="commit the project to git, or compare with the warehouse (no --against)",
            )
        root = Path(top.stdout.strip())
        rel = self.transform_dir.resolve().relative_to(root.resolve())
        archive = subprocess.run(
            ["git", "archive", "--format=tar", ref, "--", str(rel) or "."],
            cwd=root,
            capture_output=True,
        )
        if archive.returncode != 0:
            raise UsageError(
                f"git could not read {rel} at '{ref}': "
                f"{archive.stderr.decode(errors='replace').strip()}",
                hint="give a branch, tag or commit that has the dbt project (git log)",
            )
        scratch = Path(tempfile.mkdtemp(prefix="stackyard-ref-"))
        try:
            with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
                tar.extractall(scratch, filter="data")
            old_dir = scratch / rel
            profiles = self.transform_dir / "profiles.yml"
            dbt = self.session.dbt()
            if profiles.is_file():
                shutil.copy(profiles, old_dir / "profiles.yml")
            dbt.transform_dir = old_dir
            with self.session.released():
                dbt.compile()
            return load_manifest(old_dir)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


def warehouse_columns(warehouse: Warehouse) -> Columns:
    """``{(database, schema, table): {column: type}}`` of every table and view, one query
    (on an engine without ``information_schema``, its catalog's listing: no database part,
    as dbt-spark's relations have none)."""
    if not warehouse.INFORMATION_SCHEMA:
        return {
            ("", schema.lower(), table.lower()): columns
            for (schema, table), columns in warehouse.all_columns().items()
            if schema.lower() not in _SKIP_SCHEMAS
        }
    p = warehouse.param()
    skip = ", ".join([p] * len(_SKIP_SCHEMAS))
    result = warehouse.query(
        "SELECT table_catalog, table_schema, table_name, column_name, data_type "
        f"FROM information_schema.columns WHERE table_schema NOT IN ({skip}) "
        "ORDER BY table_catalog, table_schema, table_name, ordinal_position",
        _SKIP_SCHEMAS,
    )
    out: Columns = {}
    for catalog, schema, table, column, data_type in result.rows:
        key = (str(catalog).lower(), str(schema).lower(), str(table).lower())
        out.setdefault(key, {})[str(column)] = str(data_type)
    return out


def _node_named(graph: ColumnGraph, built: Columns, text: str) -> str | None:
    """The graph's node called ``text`` (any name :meth:`ColumnGraph.resolve` takes), or a
    warehouse table of that name the project no longer has, or ``None``."""
    from stackyard.errors import UsageError

    try:
        node, column = graph.resolve(text)
    except UsageError:
        node, column = None, None
    if node is not None and column is None:
        return node
    lowered = text.lower()
    return next((k[2] for k in built if lowered in (k[2], f"{k[1]}.{k[2]}")), None)


def _stale(transform_dir: Path, target: str, manifest: dict[str, Any]) -> bool:
    nodes = (manifest.get("nodes") or {}).values()
    if any(n.get("resource_type") == "model" and not n.get("compiled_code") for n in nodes):
        return True
    # A file deleted since leaves no newer file behind: the model it held looked still there.
    own = manifest.get("metadata", {}).get("project_name")
    if any(
        n.get("package_name") == own
        and n.get("original_file_path")
        and not (transform_dir / str(n["original_file_path"])).exists()
        for n in nodes
    ):
        return True
    path = target_manifest_path(transform_dir, target)
    built = path.stat().st_mtime
    files = [transform_dir / "dbt_project.yml"]
    for folder in _SOURCES:
        if (transform_dir / folder).is_dir():
            files.extend(f for f in (transform_dir / folder).rglob("*") if f.is_file())
    return any(f.exists() and f.stat().st_mtime > built for f in files)
