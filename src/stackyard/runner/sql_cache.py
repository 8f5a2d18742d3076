"""The SQL build's plan kept between runs, so an unchanged project is not compiled again.

``dbt compile`` is most of what ``--engine auto`` still costs (about 1.5–2 s for the example's
84 nodes). What it renders for a table, view or test depends only on the project's files, the
target, the vars and the selection — unless its Jinja reads the clock, the invocation, the
environment or the warehouse (the last never reaches the plan as SQL: such nodes go to dbt).
So the plan is kept in ``target/`` under a key of all of those, and only when no node run as
SQL uses ``run_started_at``, ``invocation_id``, ``modules.datetime``/``modules.time`` or
``env_var``, and no var holds Jinja (dbt renders it where a node uses it, with whatever it
calls).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from stackyard.runner import sql_plan
from stackyard.runner.sql_plan import BuildPlan, Step

CACHE_FILE = "stackyard-sql-plan.json"
# 2: a Step names its file (``path``)
_FORMAT = 2
# Folders dbt writes into, not inputs.
_OUTPUTS = frozenset({"target", "logs"})
_VOLATILE = re.compile(
    r"run_started_at|invocation_id|modules\s*\.\s*(datetime|time)\b|env_var\s*\("
)
# dbt's own variables for flags that change a build's outcome (sql_plan.flags_reason); dbt
# 1.11 reads DBT_ENGINE_<NAME> first and DBT_<NAME> after it
FLAG_VARIABLES = tuple(
    prefix + name
    for name in ("WARN_ERROR", "WARN_ERROR_OPTIONS", "FAIL_FAST")
    for prefix in ("DBT_ENGINE_", "DBT_")
)
# env_var('NAME' …) / env_var("NAME" …) in the project's files
_ENV_NAME = re.compile(rb"""env_var\s*\(\s*['"]([^'"]+)['"]""")
# A model's config() block is rendered when dbt parses, not when it compiles: what it computes
# (a microbatch model's `begin` from today's date) is in the manifest, not in the SQL.
_CONFIG_BLOCK = re.compile(r"\{\{\s*config\s*\(.*?\)\s*\}\}", re.S)


def plan_key(
    transform_dir: Path, parts: Mapping[str, Any], env: Mapping[str, str] | None = None
) -> str:
    """A digest of every file of the dbt project (packages included), of ``parts`` (the
    target's profile, the vars, the selection, dbt's versions), of the planner's code and of
    every environment variable the project's files read with ``env_var('NAME')``: a
    ``+schema`` from the environment in dbt_project.yml changes where the plan builds, not
    the files. ``env`` is the environment dbt runs with (this process's when None).

    The profile's own ``env_var`` calls are left out (``profiles.yml``, which stackyard
    writes into the project's folder unless told otherwise): stackyard writes that profile, its
    variables hold the target's secrets (which must not end up in a file, even hashed), and
    the database they connect to is read when the plan runs (``current_database()``)."""
    env = os.environ if env is None else env
    text = json.dumps([_FORMAT, parts], sort_keys=True, default=str).encode()
    digest = hashlib.sha256(text)
    names: set[bytes] = set()
    # another stackyard plans differently: its plan is not this one's
    digest.update(Path(sql_plan.__file__).read_bytes())
    for path in sorted(transform_dir.rglob("*")):
        rel = path.relative_to(transform_dir)
        if not path.is_file() or rel.parts[0] in _OUTPUTS:
            continue
        body = path.read_bytes()
        digest.update(str(rel).encode())
        digest.update(body)
        if path.name != "profiles.yml":
            names.update(_ENV_NAME.findall(body))
    values = {n: env.get(n) for n in sorted(n.decode(errors="replace") for n in names)}
    digest.update(json.dumps(values).encode())
    return digest.hexdigest()


def dbt_versions() -> dict[str, str | None]:
    """The installed versions of dbt and of the adapters that render and run the plan (None:
    not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str | None] = {}
    for name in ("dbt-core", "dbt-adapters", "dbt-duckdb", "dbt-postgres"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def load(transform_dir: Path, key: str) -> BuildPlan | None:
    """The plan kept under ``key``, or None."""
    path = transform_dir / "target" / CACHE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("key") != key:
        return None
    steps = []
    for raw in data.get("steps", []):
        raw = dict(raw)
        raw["after"] = frozenset(raw["after"])
        raw["fqn"] = tuple(raw["fqn"])
        steps.append(Step(**raw))
    return BuildPlan(tuple(steps))


def save(
    transform_dir: Path,
    key: str,
    plan: BuildPlan,
    manifest: Mapping[str, Any],
    variables: Mapping[str, Any] | None = None,
) -> bool:
    """Keep ``plan`` under ``key`` when what it runs as SQL renders the same every time;
    return whether it was kept. ``variables``: the ``--vars`` the build runs with; with the
    vars of dbt_project.yml (the project's and its packages'), they must hold no Jinja."""
    if volatile(manifest, [s.unique_id for s in plan.by_sql]):
        return False
    if _jinja_in_vars(transform_dir, variables or {}):
        return False
    steps = []
    for step in plan.steps:
        raw = asdict(step)
        raw["after"] = sorted(step.after)
        raw["fqn"] = list(step.fqn)
        steps.append(raw)
    folder = transform_dir / "target"
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"{CACHE_FILE}.tmp"
    tmp.write_text(json.dumps({"key": key, "steps": steps}), encoding="utf-8")
    tmp.replace(folder / CACHE_FILE)
    return True


def volatile(manifest: Mapping[str, Any], ids: Sequence[str]) -> bool:
    """Whether any of the nodes' Jinja (or its macros') may render differently next time.

    >>> m = {"nodes": {"model.p.a": {"raw_code": "select '{{ run_started_at }}' as t"}}}
    >>> volatile(m, ["model.p.a"])
    True
    >>> today = "{{ config(begin=modules.datetime.date.today()) }} select 1"
    >>> m = {"nodes": {"model.p.a": {"raw_code": today}}}
    >>> volatile(m, ["model.p.a"])
    False
    """
    nodes, macros = manifest.get("nodes", {}), manifest.get("macros", {})
    seen: set[str] = set()
    for uid in ids:
        node = nodes.get(uid, {})
        body = _CONFIG_BLOCK.sub("", str(node.get("raw_code") or ""))
        if _VOLATILE.search(body):
            return True
        todo = list(node.get("depends_on", {}).get("macros", []))
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            macro = macros.get(name) or {}
            if _VOLATILE.search(str(macro.get("macro_sql") or "")):
                return True
            todo.extend(macro.get("depends_on", {}).get("macros", []))
    return False


def _jinja_in_vars(transform_dir: Path, variables: Mapping[str, Any]) -> bool:
    """Whether a var holds Jinja: dbt renders a var's value where a node uses it, with
    whatever it calls (the clock, a macro reading it), so such a plan may be stale next time.
    The vars are those of ``--vars`` and of the project's and its packages' dbt_project.yml."""
    import yaml

    found: list[Any] = [dict(variables)]
    for path in [
        transform_dir / "dbt_project.yml",
        *transform_dir.glob("dbt_packages/*/dbt_project.yml"),
    ]:
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(loaded, dict):
            found.append(loaded.get("vars"))
    text = json.dumps(found, default=str)
    return "{{" in text or "{%" in text
