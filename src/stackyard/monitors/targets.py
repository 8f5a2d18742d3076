"""What a monitor pass watches: the tables a run loaded or built, their keys and owners."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from stackyard.config.external import ExternalSource
from stackyard.config.model import ProjectConfig, normalised_schema
from stackyard.errors import ConfigError, did_you_mean
from stackyard.ingest.loader import REJECTED_TABLE
from stackyard.metadata.history import History
from stackyard.metadata.monitors import Snapshot
from stackyard.metadata.schema import METADATA_SCHEMA
from stackyard.monitors.lineage import Lineage
from stackyard.monitors.metrics import TableRef
from stackyard.results import RunResult
from stackyard.warehouse.base import Warehouse


def table_columns(warehouse: Warehouse) -> dict[str, dict[str, str]]:
    """Every table's columns in every schema, with one query."""
    return {
        f"{schema}.{table}": columns
        for (schema, table), columns in warehouse.all_columns().items()
        if schema != METADATA_SCHEMA
    }


def watched_tables(
    project: ProjectConfig,
    run: RunResult | None,
    lineage: Lineage,
    snapshots: Mapping[str, Snapshot],
    columns: Mapping[str, Mapping[str, str]],
) -> list[TableRef]:
    by_relation = lineage.by_relation()
    sources = {project.dataset_for(name): name for name in project.sources}
    found: dict[str, TableRef] = {}

    def add_source(schema: str, name: str) -> None:
        if is_own_table(name) or schema not in sources:
            return
        rel = f"{schema}.{name}"
        node = by_relation.get(rel)
        source = sources[schema]
        found.setdefault(
            rel,
            TableRef(
                schema,
                name,
                "source",
                node=f"{source}.{name}",
                owner_keys=(source,),
                unique_id=node.unique_id if node else None,
                key=source_key(project, source, name),
            ),
        )

    def add_model(uid: str) -> None:
        node = lineage.nodes.get(uid)
        if node is None or node.kind != "model":
            return
        found.setdefault(
            node.relation,
            TableRef(
                node.schema,
                node.relation_name,
                "model",
                node=node.name,
                owner_keys=(node.name,),
                unique_id=uid,
                key=node.key,
            ),
        )

    loaded_schemas = {load.schema for load in run.loads} if run else set(sources)
    # Tables another tool loads are in no run's loads, and are watched on every run.
    loaded_schemas |= {
        project.dataset_for(n) for n, s in project.sources.items() if s.kind == "external"
    }
    for load in run.loads if run else ():
        for t in load.tables:
            add_source(load.schema, t.table)
    # An incremental load that brought no rows lists no tables: its earlier tables are
    # still the source's, and still watched.
    for rel in columns:
        schema, name = rel.split(".", 1)
        if schema in loaded_schemas:
            add_source(schema, name)
    if run is not None and run.build != "skipped":
        for n in run.nodes:
            # Seeds and snapshots are tables the project builds too: watched from the first
            # run, as they are on a run that skips the build (the set must not change).
            if n.resource_type in ("model", "seed", "snapshot") and n.status == "success":
                add_model(n.unique_id)
    else:
        for uid, node in lineage.nodes.items():
            if node.kind == "model" and node.relation in columns:
                add_model(uid)
    # Tables watched before stay watched while they are still declared, so one dropped
    # between runs is reported missing instead of silently forgotten.
    for rel, snap in snapshots.items():
        schema, name = rel.split(".", 1)
        if snap.kind == "source":
            add_source(schema, name)
        elif snap.unique_id:
            add_model(snap.unique_id)
    return [
        t
        for _, t in sorted(found.items())
        if project.monitors.for_table(t.relation, t.node).enabled
    ]


def is_own_table(name: str) -> bool:
    """Whether a table in a source's schema is dlt's or stackyard's own bookkeeping (dlt's
    ``_dlt_*`` tables, the rows a load rejected), not one of the source's tables.

    A source table may well start with ``_``: dlt spells a name that starts with a character
    it does not keep that way (``Événements`` loads as ``_v_nements``), and a user's
    ``_archive`` is theirs to watch.

    >>> [is_own_table(n) for n in ("_dlt_loads", "_rejected_rows", "_archive", "_v_nements")]
    [True, True, False, False]
    """
    return name.startswith("_dlt_") or name == REJECTED_TABLE


def unmatched_names(
    project: ProjectConfig,
    lineage: Lineage,
    known_relations: Iterable[str],
    targets: Iterable[TableRef],
) -> list[str]:
    """Notes for ``monitors.tables`` and ``monitors.alerts.owners`` entries that name no
    table, model or source of this target: a misspelt name is otherwise silently unused
    (its settings never applied, its owners never told).

    Args:
        project: the project's configuration.
        lineage: dbt's manifest for the target (models not built this run count).
        known_relations: every ``schema.table`` in the warehouse or measured before.
        targets: the tables this pass watches.

    Returns:
        One note per unmatched entry, with a "did you mean" when a name is close.
    """
    tables = set(known_relations) | {n.relation for n in lineage.nodes.values()}
    names = {n.name for n in lineage.nodes.values() if n.kind == "model"}
    for t in targets:
        tables.add(t.relation)
        names.update(n for n in (t.node, *t.owner_keys) if n)
    if not tables:
        # Nothing loaded or built yet: every entry would "match nothing", typo or not.
        return ["nothing has been loaded or built on this target yet: `stackyard run`"]
    monitors = project.monitors
    known = tables | names
    notes = [
        f"monitors.tables.{key} matches no table or model of this target"
        f"{did_you_mean(key, sorted(known))}: its settings are not used"
        for key in monitors.tables
        if key not in known
    ]
    # Named, an ephemeral model matched, and its settings (its owner) went unused unsaid.
    ephemeral = {
        n.name
        for n in lineage.nodes.values()
        if n.kind == "model" and n.materialized == "ephemeral"
    }
    notes.extend(
        f"monitors.{part}.{key} names an ephemeral model, which has no table of its own: "
        f"{what} (watch the models that select from it)"
        for part, entries, what in (
            ("tables", monitors.tables, "its settings are not used"),
            ("alerts.owners", monitors.alerts.owners, "its owners are never told"),
        )
        for key in entries
        if key in ephemeral
    )
    owned = known | set(project.sources)
    notes.extend(
        f"monitors.alerts.owners.{key} matches no source, model or table of this target"
        f"{did_you_mean(key, sorted(owned))}: its owners are never told"
        for key in monitors.alerts.owners
        if key not in owned
    )
    return notes


def refuse_entries_naming_one_table(project: ProjectConfig, lineage: Lineage) -> None:
    """Refuse two ``monitors.tables`` entries that name one table (its model's name and its
    ``schema.table``, or a source table by its source's name and by its schema): only one
    of them would be used, and which one is not what the file says.

    Args:
        project: the project's configuration.
        lineage: dbt's manifest for the target (which relation each model builds).

    Raises:
        ConfigError: naming the entries and the table they both name.
    """
    relations: dict[str, list[str]] = {}
    models: dict[str, list[str]] = {}
    for node in lineage.nodes.values():
        if node.kind == "model":
            models.setdefault(node.name, []).append(node.relation)
    for key in project.monitors.tables:
        schema, dot, name = key.partition(".")
        if not dot:
            named = models.get(key, [])
        elif schema in project.sources and project.dataset_for(schema) != schema:
            named = [f"{project.dataset_for(schema)}.{name}"]  # the source's name, not schema
        else:
            named = [key]
        for relation in named:
            relations.setdefault(relation, []).append(key)
    clashes = {rel: keys for rel, keys in relations.items() if len(keys) > 1}
    if not clashes:
        return
    said = "; ".join(
        " and ".join(f"monitors.tables.{k}" for k in keys) + f" both name the table {rel}"
        for rel, keys in sorted(clashes.items())
    )
    raise ConfigError(
        f"{said}: only one entry of a table is used, so the other's settings would be "
        "silently dropped",
        hint="keep one entry per table, with the settings of both (docs/observability.md)",
    )


def source_key(project: ProjectConfig, source: str, table: str) -> tuple[str, ...]:
    """The primary key a source declares for a table (any kind), or ``()``."""
    config = project.sources.get(source)
    if config is None:
        return ()
    keys = config.primary_keys()
    # A table declared with a name dlt spells another way (``Événements`` loads as
    # ``_v_nements``) is found by its loaded name; a key's columns too (``ID`` is ``id``),
    # unless another tool loads the table and names its columns.
    key = keys.get(table) or {normalised_schema(n): k for n, k in keys.items()}.get(table, ())
    if isinstance(config, ExternalSource):
        return tuple(key)
    return tuple(normalised_schema(column) for column in key)


def table_owners(project: ProjectConfig, table: TableRef) -> tuple[str, ...]:
    """Who is told when a table alerts, most specific first, each once: the table's own
    ``owner``, the ``monitors.alerts.owners`` entries for the table, its model or its
    source, then the source's ``owner``."""
    configured = project.monitors.alerts.owners
    own = project.monitors.for_table(table.relation, table.node).owner
    owners: list[str] = [own] if isinstance(own, str) else list(own or ())
    for name in (table.relation, table.node, *table.owner_keys):
        owners.extend(configured.get(name, ()))
    for name in table.owner_keys:
        source = project.sources.get(name)
        if source is not None and source.owner:
            owners.append(source.owner)
    return tuple(dict.fromkeys(owners))


def built_models(run: RunResult | None) -> set[str] | None:
    """Models confirmed current by this run ("*": all, when the build was skipped as
    unchanged); ``None`` on demand."""
    if run is None:
        return None
    if run.build == "skipped":
        return {"*"}
    return {n.unique_id for n in run.nodes if n.resource_type == "model" and n.status == "success"}


def tests_per_model(
    warehouse: Warehouse, run: RunResult | None, lineage: Lineage
) -> dict[str, tuple[list[tuple[str, int | None]], int]]:
    """Failing and total dbt tests per model, from the run or else the latest recorded."""
    results: Iterable[tuple[str, str, str, int | None]]
    if run is not None:
        results = [
            (n.unique_id, n.name, n.status, n.failures)
            for n in run.nodes
            if n.resource_type == "test"
        ]
    else:
        results = History(warehouse).latest_tests()
    per_model: dict[str, tuple[list[tuple[str, int | None]], int]] = {}
    for uid, name, status, failures in results:
        model = lineage.tests.get(uid)
        if model is None:
            continue
        failed, total = per_model.get(model, ([], 0))
        if status in ("fail", "error", "runtime error"):
            failed.append((name, failures))
        per_model[model] = (failed, total + 1)
    return per_model


def as_tuple(key: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    if key is None:
        return ()
    return (key,) if isinstance(key, str) else tuple(key)


def stored_table(table: str, kind: str, node: str) -> TableRef:
    """The :class:`TableRef` of a table known from stored findings (for its owners).

    >>> stored_table("app.orders", "source", "app.orders").owner_keys
    ('app',)
    """
    schema, name = table.split(".", 1)
    keys = (node.split(".", 1)[0],) if kind == "source" else (node,)
    return TableRef(schema, name, "source" if kind == "source" else "model", node, keys)
