"""Finding the dlt pipeline a team already loads a source with: its name and dataset, from
the module's own ``dlt.pipeline(...)`` call, the warehouse's dlt tables, or dlt's local
working folders. Reusing them lets stackyard continue the pipeline's state (its cursors)."""

from __future__ import annotations

import ast
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackyard.errors import StackyardError

#: Runs one SQL query on the project's default target and returns its rows.
Query = Callable[[str], Sequence[Sequence[Any]]]


@dataclass(frozen=True)
class Pipeline:
    """An existing dlt pipeline that loaded the source: its name, its dataset, and where
    that was found."""

    name: str
    dataset: str
    found_in: str


def pipeline_calls(code: str) -> dict[str | None, tuple[str, str | None]]:
    """The ``dlt.pipeline(...)`` calls in a module, literal names only: ``{the source
    function a pipeline runs: (pipeline_name, dataset_name)}``, and under ``None`` the
    module's one pipeline when it has only one.

    >>> pipeline_calls('import dlt\\np = dlt.pipeline(pipeline_name="shop", dataset_name="raw")'
    ...                '\\np.run(shop())')
    {'shop': ('shop', 'raw'), None: ('shop', 'raw')}
    """
    tree = ast.parse(code)
    pipelines: dict[str, tuple[str, str | None]] = {}
    every: set[tuple[str, str | None]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            named = _pipeline_call(node.value)
            if named is not None:
                every.add(named)
                pipelines.update({t.id: named for t in node.targets if isinstance(t, ast.Name)})
    found: dict[str | None, tuple[str, str | None]] = {}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        owner = node.func.value
        if node.func.attr != "run" or not (isinstance(owner, ast.Name) and owner.id in pipelines):
            continue
        for arg in node.args[:1]:
            call = arg
            while isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute):
                call = call.func.value  # shop().with_resources(...), shop().add_limit(...)
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Name):
                found[call.func.id] = pipelines[owner.id]
    if len(every) == 1:
        found[None] = next(iter(every))
    return found


def _pipeline_call(call: ast.Call) -> tuple[str, str | None] | None:
    func = call.func
    is_pipeline = (isinstance(func, ast.Attribute) and func.attr == "pipeline") or (
        isinstance(func, ast.Name) and func.id == "pipeline"
    )
    if not is_pipeline:
        return None
    values = {k.arg: k.value for k in call.keywords if k.arg}
    if call.args:
        values.setdefault("pipeline_name", call.args[0])
    name, dataset = values.get("pipeline_name"), values.get("dataset_name")
    if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
        return None
    if isinstance(dataset, ast.Constant) and isinstance(dataset.value, str):
        return name.value, dataset.value
    return name.value, None


def from_warehouse(dlt_name: str, query: Query | None) -> Pipeline | None:
    """The pipeline whose loads in the warehouse carry the source's schema name: dlt records
    each load's schema in ``_dlt_loads`` and each pipeline's state in
    ``_dlt_pipeline_state`` of the dataset."""
    if query is None:
        return None
    try:
        datasets = [
            str(r[0])
            for r in query(
                "select table_schema from information_schema.tables "
                "where table_name = '_dlt_loads' order by 1"
            )
        ]
        hits = []
        for dataset in datasets:
            quoted = '"' + dataset.replace('"', '""') + '"'
            schemas = {
                str(r[0]) for r in query(f"select distinct schema_name from {quoted}._dlt_loads")
            }
            if dlt_name not in schemas:
                continue
            names = {
                str(r[0])
                for r in query(f"select distinct pipeline_name from {quoted}._dlt_pipeline_state")
            }
            hits += [(n, dataset) for n in names]
    except StackyardError:
        return None  # an unreachable target: the local folders and the code still count
    if len(hits) != 1:
        return None
    return Pipeline(hits[0][0], hits[0][1], "the warehouse's _dlt_pipeline_state")


def from_local_folders(dlt_name: str) -> Pipeline | None:
    """dlt's own working folders (``~/.dlt/pipelines``, ``$DLT_DATA_DIR/pipelines``, or where
    dlt's run context says) of a pipeline that loaded a schema of this name."""
    from dlt.common.runtime.run_context import active

    data = Path(active().data_dir)
    hits = []
    for state in sorted((data / "pipelines").glob("*/state.json")):
        try:
            found = json.loads(state.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if dlt_name in (found.get("schema_names") or []) and found.get("dataset_name"):
            hits.append(Pipeline(found["pipeline_name"], found["dataset_name"], str(state.parent)))
    return hits[0] if len(hits) == 1 else None
