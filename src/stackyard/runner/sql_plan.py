"""Which nodes of a ``dbt build`` run as plain SQL, and in what order: a plan built from the
manifest ``dbt compile`` wrote, before anything runs.

dbt spends most of a small project's build on per-node overhead (rendering, a thread pool,
introspection, events), not on the warehouse: the example project's 84 nodes take about 6 s
through dbt and a quarter of a second as the same compiled statements. Table and view models,
ephemerals (already inlined by dbt's compiler as ``__dbt__cte__`` CTEs) and data tests are, after
compilation, one ``CREATE … AS`` or one ``count(*)`` each; everything else — incremental and
microbatch models, seeds, snapshots, hooks, contracts, grants, a ``sql_header`` (or another
config dbt applies around the SQL), custom materialisations, Python models, ``store_failures``,
a non-default ``fail_calc``, SQL ending in ``;``, names the warehouse would fold or cut — is
left to dbt, node by node, or, for what concerns the whole build (``on-run-*`` hooks, unit
tests, exposures, saved queries, warn-error and fail-fast flags, Jinja reading which command
runs), the whole build is.

The order is dbt's build order: a node waits for its parents and, as
``dbt.compilation.Linker.add_test_edges`` adds, for every test whose nodes are all upstream of
it; a failed node skips everything after it in that order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

StepKind = Literal["table", "view", "microbatch", "test", "dbt"]

# Resource types `dbt build` runs; anything else a compile returns (analyses, operations) is not.
BUILT_TYPES = frozenset({"model", "test", "seed", "snapshot"})

# Macro text that queries the warehouse while compiling: compiled once before the build, such a
# node would read its inputs as they were before this build rebuilt them.
_INTROSPECTION = re.compile(
    r"\brun_query\s*\(|\bstatement\s*\(|\bload_result\s*\(|get_columns_in_relation|"
    r"get_relation\s*\(|\bdbt_utils\.get_|get_column_values|get_filtered_columns_in_relation"
)

# Macros that, when a project or package overrides them, change what dbt runs for a node.
_OVERRIDES = re.compile(
    r"^(materialization_(table|view|test)_|([a-z_]+__)?(get_test_sql|create_table_as|"
    r"create_view_as|get_create_table_as_sql|get_create_view_as_sql)$)"
)
_ADAPTER_PACKAGES = frozenset({"dbt", "dbt_duckdb", "dbt_postgres"})

_DEFAULT_TEST = {"fail_calc": "count(*)"}

# Jinja that asks which dbt command runs: the plan is compiled by `dbt compile`, so it would
# render what a compile asks for, not what `dbt build` does.
_INVOCATION = re.compile(r"\bflags\s*\.\s*(WHICH|which)\b|\binvocation_args_dict\b")
# A relation name dbt quoted whole ("db"."schema"."name"): the name stands as written. An
# unquoted part (quoting: identifier: false) is folded by the warehouse (Postgres: lower case).
_QUOTED_RELATION = re.compile(r'^("([^"]|"")*"\.)*"([^"]|"")*"$')

# Model configs dbt's table and view materialisations apply around the compiled SQL (a
# statement before it, a table option, DuckLake's partitioning and sort order, indexes after).
_AROUND_SQL = (
    "sql_header",
    "indexes",
    "unlogged",
    "constraints",
    "partitioned_by",
    "partition_by",
    "sorted_by",
    "sort_by",
)


@dataclass(frozen=True)
class Step:
    """One selected node: how it runs and what it waits for.

    ``after`` holds every selected node that runs before it (transitively), as dbt's build
    graph has it; ``why`` says why a ``dbt`` step is not run as SQL.
    """

    unique_id: str
    name: str
    resource_type: str
    kind: StepKind
    after: frozenset[str]
    sql: str = ""
    relation: str = ""
    database: str = ""
    schema: str = ""
    identifier: str = ""
    severity: str = "ERROR"
    warn_if: str = "!= 0"
    error_if: str = "!= 0"
    limit: int | None = None
    fqn: tuple[str, ...] = ()
    why: str = ""
    # the node's file in the project, as dbt names it in an error (``models/marts/stores.sql``)
    path: str = ""
    # a microbatch model: its node, inputs and strategy macros, for the backfill's batch SQL
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BuildPlan:
    """The selected nodes in build order."""

    steps: tuple[Step, ...]

    @property
    def by_sql(self) -> tuple[Step, ...]:
        """The steps stackyard runs as SQL."""
        return tuple(s for s in self.steps if s.kind != "dbt")

    @property
    def by_dbt(self) -> tuple[Step, ...]:
        """The steps left to dbt, each with its reason."""
        return tuple(s for s in self.steps if s.kind == "dbt")

    def on_database(self, current: str, longest_name: int) -> BuildPlan:
        """The plan on a connection to database ``current``: models another database holds
        are left to dbt (Postgres cannot create across databases), as are models whose name
        or schema is longer than the warehouse keeps (``longest_name`` bytes: Postgres would
        cut it; dbt refuses such a name)."""

        def why(s: Step) -> str:
            if s.kind not in ("table", "view", "microbatch"):
                return ""
            if s.kind != "microbatch" and s.database and s.database != current:
                return f"it is built in database {s.database}"
            if max(len(s.identifier.encode()), len(s.schema.encode())) > longest_name:
                return f"its name is longer than {longest_name} bytes"
            return ""

        return BuildPlan(
            tuple(replace(s, kind="dbt", why=why(s)) if why(s) else s for s in self.steps)
        )


def whole_build_reason(manifest: Mapping[str, Any]) -> str | None:
    """Why the whole build must go through dbt, or None.

    >>> whole_build_reason({"nodes": {"operation.p.p-on-run-end-0": {
    ...     "resource_type": "operation"}}})
    'the project has on-run-start/on-run-end hooks'
    """
    nodes = manifest.get("nodes", {})
    if any(n.get("resource_type") == "operation" for n in nodes.values()):
        return "the project has on-run-start/on-run-end hooks"
    for key, what in (
        ("unit_tests", "unit tests"),
        ("exposures", "exposures"),
        ("saved_queries", "saved queries"),
        ("functions", "functions"),
    ):
        if manifest.get(key):
            return f"the project has {what} (dbt build runs them)"
    for macro in manifest.get("macros", {}).values():
        if macro.get("package_name") in _ADAPTER_PACKAGES:
            continue
        if _OVERRIDES.match(str(macro.get("name", ""))):
            return (
                f"macro {macro.get('name')} ({macro.get('original_file_path')}) overrides how "
                "dbt builds tables, views or tests"
            )
        if _INVOCATION.search(str(macro.get("macro_sql") or "")):
            return f"macro {macro.get('name')} reads which dbt command runs (flags.WHICH)"
    for node in nodes.values():
        if _INVOCATION.search(str(node.get("raw_code") or "")):
            return f"{node.get('original_file_path')} reads which dbt command runs (flags.WHICH)"
    return None


def project_reason(transform_dir: Path) -> str | None:
    """Why the project's files need the whole build in dbt, before anything is compiled:
    ``dbt_project.yml`` (or a properties file) reading which dbt command runs.

    The manifest holds the Jinja of nodes and macros, not of the YAML files dbt renders while
    it parses (``+schema``, ``vars``), so these are read here."""
    for path in sorted(transform_dir.rglob("*.y*ml")):
        rel = path.relative_to(transform_dir)
        if rel.parts[0] in ("target", "logs") or not path.is_file():
            continue
        if _INVOCATION.search(path.read_text(encoding="utf-8", errors="replace")):
            return f"{rel} reads which dbt command runs (flags.WHICH)"
    return None


def flags_reason() -> str | None:
    """Why dbt's flags (those of the last invocation in this process: the plan's compile) need
    the whole build in dbt: a test warning made an error, or fail-fast. dbt applies both while
    it builds; the SQL build judges neither. They come from dbt_project.yml's ``flags:``, the
    profile or ``DBT_WARN_ERROR``/``DBT_WARN_ERROR_OPTIONS``/``DBT_FAIL_FAST``."""
    from dbt.flags import get_flags

    flags = get_flags()
    if getattr(flags, "FAIL_FAST", False):
        return "fail_fast is on (dbt stops the build at the first failure)"
    if getattr(flags, "WARN_ERROR", False):
        return "warn_error is on (dbt makes every warning an error)"
    options = getattr(flags, "WARN_ERROR_OPTIONS", None)
    if options is not None and options.includes("LogTestResult"):
        return "warn_error_options makes a test's warning an error"
    return None


def plan_build(
    manifest: Mapping[str, Any], selected: Iterable[str], full_refresh: bool = False
) -> BuildPlan:
    """The build plan of the ``selected`` nodes (unique ids of a ``dbt compile``).

    Args:
        manifest: dbt's manifest.json after ``dbt compile``, with compiled SQL.
        selected: the nodes the build selects.
        full_refresh: the build is ``--full-refresh`` (microbatch models then go to dbt).

    Returns:
        Every selected node that ``dbt build`` runs, in an order dbt's would allow.
    """
    nodes: Mapping[str, Any] = manifest.get("nodes", {})
    chosen = [
        u
        for u in dict.fromkeys(selected)
        if nodes.get(u, {}).get("resource_type") in BUILT_TYPES and not _ephemeral(nodes[u])
    ]
    after = build_order(nodes, chosen)
    steps = [_step(nodes[u], after[u], manifest, full_refresh) for u in chosen]
    steps.sort(key=lambda s: (len(s.after), s.unique_id))
    return BuildPlan(tuple(steps))


def build_order(nodes: Mapping[str, Any], chosen: Sequence[str]) -> dict[str, frozenset[str]]:
    """For each chosen node, the chosen nodes that run before it in ``dbt build``.

    A node waits for its ancestors, and for each test all of whose nodes are upstream of it
    (dbt's ``parent_test`` edges); through unchosen nodes too, as dbt's subgraph keeps
    transitive edges.

    >>> nodes = {
    ...     "model.p.a": {"resource_type": "model", "depends_on": {"nodes": []}},
    ...     "test.p.t": {"resource_type": "test", "depends_on": {"nodes": ["model.p.a"]}},
    ...     "model.p.b": {"resource_type": "model", "depends_on": {"nodes": ["model.p.a"]}},
    ... }
    >>> sorted(build_order(nodes, ["model.p.a", "test.p.t", "model.p.b"])["model.p.b"])
    ['model.p.a', 'test.p.t']
    """
    parents = {u: list(n.get("depends_on", {}).get("nodes", [])) for u, n in nodes.items()}
    upstream: dict[str, frozenset[str]] = {}

    def ancestors(uid: str) -> frozenset[str]:
        # iterative: a deep project would overflow Python's recursion
        stack = [uid]
        while stack:
            top = stack[-1]
            if top in upstream:
                stack.pop()
                continue
            todo = [p for p in parents.get(top, []) if p not in upstream]
            if todo:
                stack.extend(todo)
                continue
            found: set[str] = set()
            for p in parents.get(top, []):
                found.add(p)
                found |= upstream[p]
            upstream[top] = frozenset(found)
            stack.pop()
        return upstream[uid]

    # tests by one of their nodes: a test can only wait upstream of a node that has it above
    tests_of: dict[str, list[str]] = {}
    for uid, node in nodes.items():
        if node.get("resource_type") == "test" and parents.get(uid):
            tests_of.setdefault(parents[uid][0], []).append(uid)
    waits: dict[str, set[str]] = {u: set(parents.get(u, [])) for u in nodes}
    for uid, node in nodes.items():
        if node.get("resource_type") == "test":
            continue
        above = ancestors(uid)
        for first in above:
            for test in tests_of.get(first, ()):
                if set(parents[test]) <= above:
                    waits[uid].add(test)

    before: dict[str, frozenset[str]] = {}

    def closure(uid: str) -> frozenset[str]:
        stack = [uid]
        while stack:
            top = stack[-1]
            if top in before:
                stack.pop()
                continue
            todo = [p for p in waits.get(top, ()) if p not in before]
            if todo:
                stack.extend(todo)
                continue
            found: set[str] = set()
            for p in waits.get(top, ()):
                found.add(p)
                found |= before[p]
            before[top] = frozenset(found)
            stack.pop()
        return before[uid]

    chosen_set = set(chosen)
    return {u: closure(u) & chosen_set for u in chosen}


def _ephemeral(node: Mapping[str, Any]) -> bool:
    return node.get("config", {}).get("materialized") == "ephemeral"


def _step(
    node: Mapping[str, Any], after: frozenset[str], manifest: Mapping[str, Any], refresh: bool
) -> Step:
    kind, why = _kind(node, manifest.get("macros", {}), refresh)
    config = node.get("config", {})
    return Step(
        unique_id=str(node["unique_id"]),
        name=str(node["name"]),
        resource_type=str(node["resource_type"]),
        kind=kind,
        after=after,
        sql=_plain(str(node.get("compiled_code") or "")),
        relation=str(node.get("relation_name") or ""),
        database=str(node.get("database") or ""),
        schema=str(node.get("schema") or ""),
        identifier=str(node.get("alias") or node.get("name")),
        severity=str(config.get("severity") or "ERROR").upper(),
        warn_if=str(config.get("warn_if") or "!= 0"),
        error_if=str(config.get("error_if") or "!= 0"),
        limit=config.get("limit"),
        fqn=tuple(node.get("fqn") or ()),
        why=why,
        path=str(node.get("original_file_path") or ""),
        extra=_microbatch_inputs(node, manifest) if kind == "microbatch" else {},
    )


def _microbatch_inputs(node: Mapping[str, Any], manifest: Mapping[str, Any]) -> dict[str, Any]:
    """What the backfill's batch SQL (``runbooks.backfill.model_sql.plan``) reads of a
    microbatch model: its node, its inputs, and the project's microbatch strategy macros."""
    known = {**manifest.get("nodes", {}), **manifest.get("sources", {})}
    parents = []
    for uid in node.get("depends_on", {}).get("nodes", []):
        n = known.get(uid, {})
        config = n.get("config", {})
        parents.append(
            [
                uid,
                str(n.get("relation_name") or ""),
                str(n.get("identifier") or n.get("alias") or n.get("name") or ""),
                config.get("event_time"),
                config.get("materialized") == "ephemeral",
            ]
        )
    macros = {
        uid: m
        for uid, m in manifest.get("macros", {}).items()
        if str(m.get("name", "")).endswith("get_incremental_microbatch_sql")
    }
    keep = ("unique_id", "name", "alias", "schema", "database", "language", "config")
    return {"node": {k: node.get(k) for k in keep}, "parents": parents, "macros": macros}


def _kind(
    node: Mapping[str, Any], macros: Mapping[str, Any], refresh: bool = False
) -> tuple[StepKind, str]:
    """How a node runs, and if through dbt why (the first reason found)."""
    rtype = node.get("resource_type")
    config = node.get("config", {})
    if rtype in ("seed", "snapshot"):
        return "dbt", f"a {rtype}"
    if str(node.get("language", "sql")) != "sql":
        return "dbt", "a Python model"
    if not node.get("compiled_code"):
        return "dbt", "no compiled SQL"
    if _ends_with_semicolon(str(node["compiled_code"])):
        # inside dbt's wrapper a trailing ';' is a syntax error: dbt reports it
        return "dbt", "its SQL ends with a semicolon"
    if rtype == "test":
        if config.get("store_failures") or config.get("store_failures_as"):
            return "dbt", "the test stores its failures"
        if str(config.get("fail_calc") or "count(*)").strip().lower() != "count(*)":
            return "dbt", f"fail_calc {config.get('fail_calc')!r}"
        if config.get("sql_header"):
            return "dbt", "the test sets sql_header"
        why = _introspects(node, macros)
        return ("dbt", why) if why else ("test", "")
    materialized = config.get("materialized")
    microbatch = (
        materialized == "incremental"
        and config.get("incremental_strategy") == "microbatch"
        and not refresh
        # compiled once and kept: is_incremental() must not change what it renders
        and "is_incremental" not in str(node.get("raw_code") or "")
    )
    if materialized not in ("table", "view") and not microbatch:
        return "dbt", f"materialized={materialized}"
    if not _QUOTED_RELATION.match(str(node.get("relation_name") or "")):
        return "dbt", "a part of its name is not quoted (the warehouse may fold its case)"
    if config.get("pre-hook") or config.get("post-hook"):
        return "dbt", "the model has hooks"
    if (config.get("contract") or {}).get("enforced"):
        return "dbt", "the model has an enforced contract"
    if config.get("grants"):
        return "dbt", "the model has grants"
    docs = config.get("persist_docs") or {}
    if docs.get("relation") or docs.get("columns"):
        return "dbt", "the model persists docs"
    # what dbt-duckdb's and dbt-postgres's create_table_as/create_view_as put around the SQL
    for key in _AROUND_SQL:
        if config.get(key):
            return "dbt", f"the model sets {key}"
    if node.get("constraints"):
        return "dbt", "the model has constraints"
    why = _introspects(node, macros)
    if why:
        return "dbt", why
    return ("microbatch", "") if microbatch else (materialized, "")


def _introspects(node: Mapping[str, Any], macros: Mapping[str, Any]) -> str:
    """Why compiling ``node`` ahead of the build may differ from dbt's compile inside it."""
    seen: set[str] = set()
    todo = list(node.get("depends_on", {}).get("macros", []))
    if _INTROSPECTION.search(str(node.get("raw_code") or "")):
        return "its SQL queries the warehouse while compiling"
    while todo:
        uid = todo.pop()
        if uid in seen:
            continue
        seen.add(uid)
        macro = macros.get(uid) or {}
        if _INTROSPECTION.search(str(macro.get("macro_sql") or "")):
            return f"macro {macro.get('name', uid)} queries the warehouse while compiling"
        todo.extend(macro.get("depends_on", {}).get("macros", []))
    return ""


def _ends_with_semicolon(sql: str) -> bool:
    r"""Whether the SQL's last statement ends with ``;``, comments after it aside.

    >>> _ends_with_semicolon("select 1; -- done")
    True
    >>> _ends_with_semicolon("select 1 /* ; */\n-- a note")
    False
    """
    text = sql.rstrip()
    while True:
        last = text.rsplit("\n", 1)[-1].lstrip()
        if text.endswith("*/") and "/*" in text:
            text = text[: text.rfind("/*")].rstrip()
        elif last.startswith("--"):
            text = text[: len(text) - len(last)].rstrip()
        elif re.search(r";\s*--[^\n]*$", text):
            return True
        else:
            return text.endswith(";")


def _plain(sql: str) -> str:
    """Compiled SQL without its trailing semicolon, ready to wrap.

    >>> _plain("select 1;  ")
    'select 1'
    """
    return sql.strip().rstrip(";").rstrip()
